"""compose.yaml and the Dockerfile against the settings (issue 13).

Every variable compose.yaml sets for a Voronka container must be a setting documented in
.env.example (a renamed setting would otherwise be silently ignored in the containers), and
the values must pass Settings' validation. compose.yaml is read by a small parser of the
subset it uses (services, `environment:` maps, `&anchor`/`*alias`), so the test needs no
YAML library; when a compose command is installed, `compose config` validates the whole
file as well (skipped otherwise: this machine has no Docker daemon)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bot.settings import Settings
from tests.factories import env_example_entries

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "compose.yaml"
KEY = re.compile(r"^(\s*)([A-Za-z0-9_.-]+):\s*(.*)$")
DEFAULTED = re.compile(r"\$\{([A-Z_][A-Z0-9_]*):-([^}]*)\}")


def services(text: str) -> dict[str, tuple[bool, dict[str, str]]]:
    """service -> (is a Voronka container (<<: *voronka), its environment)."""
    found: dict[str, tuple[bool, dict[str, str]]] = {}
    anchors: dict[str, dict[str, str]] = {}
    section = service = None
    env: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.split(" #")[0].rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = KEY.match(line)
        indent = len(line) - len(line.lstrip())
        if env is not None and indent <= 4:
            env = None
        if indent == 0:
            section = match.group(2) if match else None
            continue
        if section != "services":
            continue
        if indent == 2 and match:
            service = match.group(2)
            found[service] = (False, {})
        elif indent == 4 and service is not None:
            stripped = line.strip()
            if stripped == "<<: *voronka":
                found[service] = (True, found[service][1])
            elif match and match.group(2) == "environment":
                value = match.group(3)
                if value.startswith("*"):
                    found[service][1].update(anchors[value[1:]])
                else:
                    env = found[service][1]
                    if value.startswith("&"):
                        anchors[value[1:]] = env
        elif indent == 6 and env is not None and match:
            env[match.group(2)] = match.group(3).strip().strip("\"'")
    return found


def voronka_environments() -> dict[str, dict[str, str]]:
    return {name: env for name, (ours, env) in services(COMPOSE.read_text("utf-8")).items() if ours}


def test_the_parser_sees_the_services_and_their_environment():
    """(a guard: a parser that finds nothing would pass the checks below)"""
    envs = voronka_environments()
    assert set(envs) == {"bot", "migrate", "webhook"}
    assert set(envs["bot"]) == {"DATABASE_URL"}
    assert envs["webhook"] == envs["migrate"]
    assert {"DATABASE_URL", "REDIS_URL", "WEBHOOK_PORT"} <= set(envs["webhook"])
    assert "postgres" in services(COMPOSE.read_text("utf-8"))  # not ours: its own variables


@pytest.mark.parametrize("service", sorted(voronka_environments()))
def test_compose_sets_only_settings_documented_in_env_example(service):
    documented = set(env_example_entries())
    env = voronka_environments()[service]
    assert set(env) <= documented, f"{service}: not in .env.example: {set(env) - documented}"


@pytest.mark.parametrize("service", sorted(voronka_environments()))
def test_compose_values_are_valid_settings(service, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env here
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    env = {
        k: DEFAULTED.sub(lambda m: m.group(2), v)
        for k, v in voronka_environments()[service].items()
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.database_url == env["DATABASE_URL"]
    assert "${" not in settings.database_url


def test_the_image_runs_the_installed_package():
    dockerfile = (ROOT / "Dockerfile").read_text("utf-8")
    assert "-c requirements.lock" in dockerfile  # the locked versions
    assert 'CMD ["voronka", "run"]' in dockerfile and "USER voronka" in dockerfile
    ignored = (ROOT / ".dockerignore").read_text("utf-8").split()
    assert ".env" in ignored and ".venv" in ignored  # no secrets, no host venv in the image
    for copied in re.findall(r"^COPY (\S+) ", dockerfile, re.M):
        if not copied.startswith("--"):
            assert (ROOT / copied).exists(), copied


def _compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_compose_config_validates(tmp_path):
    command = _compose_command()
    if command is None:
        pytest.skip("no docker compose / docker-compose here")
    shutil.copy(COMPOSE, tmp_path / "compose.yaml")
    (tmp_path / ".env").write_text("BOT_TOKEN=123:abc\n", encoding="utf-8")
    for profile in ([], ["--profile", "scale"]):
        done = subprocess.run(
            [*command, "-f", "compose.yaml", *profile, "config", "--services"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        listed = set(done.stdout.split())
        assert "bot" in listed  # (compose v1 lists every profile's services either way)
        if profile:
            assert {"postgres", "redis", "migrate", "webhook"} <= listed
