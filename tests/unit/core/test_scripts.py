"""scripts/run checks the token before installing anything; requirements.lock covers the
dependencies and is what this environment runs (issue 13)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
LOCK = ROOT / "requirements.lock"


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """scripts/run, scripts/_setup.sh and .env.example in a directory of their own."""
    (tmp_path / "scripts").mkdir()
    for name in ("scripts/run", "scripts/_setup.sh", ".env.example"):
        shutil.copy2(ROOT / name, tmp_path / name)
    return tmp_path


def run_script(checkout: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k.upper() != "BOT_TOKEN"}
    # A Python that does not exist: if the script gets to its set-up, it stops right there.
    base["PYTHON"] = str(checkout / "no-such-python")
    base.update(env)
    return subprocess.run(
        ["bash", str(checkout / "scripts" / "run")],
        cwd=checkout,
        env=base,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_run_without_env_file_creates_it_and_stops_before_installing(checkout):
    done = run_script(checkout)
    assert done.returncode == 1
    assert "created .env from .env.example" in done.stderr and "BOT_TOKEN=" in done.stderr
    assert (checkout / ".env").read_text() == (checkout / ".env.example").read_text()
    assert not (checkout / ".venv").exists() and "installing" not in done.stdout


@pytest.mark.parametrize(
    "line", ["BOT_TOKEN=", "BOT_TOKEN=  # from @BotFather", 'bot_token=""', "# BOT_TOKEN=1:a"]
)
def test_run_with_an_empty_token_stops_before_installing(checkout, line):
    (checkout / ".env").write_text(f"TIMEZONE=UTC\n{line}\n", encoding="utf-8")
    done = run_script(checkout)
    assert done.returncode == 1
    assert "BOT_TOKEN is empty" in done.stderr, done.stderr
    assert not (checkout / ".venv").exists()


@pytest.mark.parametrize(
    "line", ["BOT_TOKEN=123:abc", 'bot_token = "123:abc"', "export BOT_TOKEN=1:a"]
)
def test_run_with_a_token_goes_on_to_the_set_up(checkout, line):
    (checkout / ".env").write_text(f"{line}\n", encoding="utf-8")
    done = run_script(checkout)
    assert done.returncode == 1 and "no-such-python not found" in done.stderr, done.stderr


def test_a_token_in_the_environment_is_enough(checkout):
    done = run_script(checkout, BOT_TOKEN="123:abc")
    assert "no-such-python not found" in done.stderr, done.stderr
    assert not (checkout / ".env").exists()


def locked() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text("utf-8").splitlines():
        if line and not line.startswith("#"):
            name, _, pinned = line.partition("==")
            assert pinned, f"requirements.lock: {line!r} is not name==version"
            pins[re.sub(r"[-_.]+", "-", name).lower()] = pinned
    return pins


def test_the_lock_pins_every_declared_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["dev"]
    names = {
        re.sub(r"[-_.]+", "-", re.split(r"[\[<>=!~; ]", d, maxsplit=1)[0]).lower() for d in declared
    }
    missing = sorted(names - set(locked()))
    assert not missing, f"not in requirements.lock (add them, or run scripts/lock): {missing}"


def test_this_environment_runs_the_locked_versions():
    """scripts/_setup.sh installs with `-c requirements.lock`: what is installed is what is
    locked (a lock that drifted from the environment would pin versions nobody tested)."""
    drift = []
    for name, pinned in locked().items():
        try:
            have = version(name)
        except PackageNotFoundError:
            drift.append(f"{name}: locked {pinned}, not installed")
            continue
        if have != pinned:
            drift.append(f"{name}: locked {pinned}, installed {have}")
    assert not drift, "\n".join(drift)
