"""The built package works outside the checkout (issue 13, "Must show" 1).

Builds the wheel from a copy of the sources (no build isolation, no index: the venv's own
setuptools and wheel), installs it into a fresh virtualenv in a temporary directory, and
runs the installed `voronka` from another temporary directory with no PYTHONPATH, so the
repository is nowhere on sys.path: `--version`, `check-config` on the packaged default
pipelines file, `migrate` of a new SQLite file, and a Russian render from the packaged
catalogs. The new virtualenv reuses this one's installed dependencies through a .pth line
(nothing is downloaded); this environment's editable install of Voronka is not activated
there (a .pth line adds a directory, it does not run the .pth files inside it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("pyproject.toml", "README.md", "bot", "handlers", "services", "storage", "config")


def run(*args: str | Path, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    names = {name.upper() for name in Settings.model_fields}
    env = {
        k: v
        for k, v in os.environ.items()
        if k.upper() not in names and k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    }
    env["PYTHONNOUSERSITE"] = "1"
    return subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ directory of a fresh virtualenv with the wheel installed."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for name in SHIPPED:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(path, src / name)
    built = run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "--wheel-dir",
        base / "dist",
        src,
        cwd=base,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    [wheel] = (base / "dist").glob("voronka-*.whl")

    venv = base / "venv"
    made = run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=base)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=base)
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site.stdout.strip()) / "_parent_deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    done = run(
        python,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-deps",
        "--no-index",
        "--ignore-installed",
        wheel,
        cwd=base,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return venv / "bin"


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    assert not tmp_path.is_relative_to(ROOT)
    return tmp_path


def test_the_installed_code_is_the_wheel_not_the_checkout(installed: Path, elsewhere: Path):
    probe = (
        "import bot, handlers, services, storage, sys;"
        "print('\\n'.join(m.__file__ for m in (bot, handlers, services, storage)));"
        f"print(any(p.rstrip('/') == {str(ROOT)!r} for p in sys.path))"
    )
    result = run(installed / "python", "-c", probe, cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    *files, on_path = result.stdout.split()
    venv = installed.parent
    assert all(Path(f).is_relative_to(venv) for f in files), files
    assert on_path == "False"


def test_voronka_version_and_check_config_from_the_wheel(installed: Path, elsewhere: Path):
    version = run(installed / "voronka", "--version", cwd=elsewhere)
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("voronka 0.") or version.stdout.startswith("voronka 1.")

    check = run(installed / "voronka", "check-config", cwd=elsewhere)
    assert check.returncode == 0, check.stderr
    first = check.stdout.splitlines()[0]
    shipped = installed.parent / "lib"
    assert first.endswith("services/sales/defaults/default.toml: OK"), first
    assert Path(first.removesuffix(": OK")).is_relative_to(shipped), first
    assert "Продажа [sales]" in check.stdout and "Дорого" in check.stdout
    b2b = Path(first.removesuffix(": OK")).with_name("b2b.toml")
    assert run(installed / "voronka", "check-config", b2b, cwd=elsewhere).returncode == 0


def test_migrate_from_the_wheel(installed: Path, elsewhere: Path):
    """The migrations and the default pipelines file are in the package."""
    (elsewhere / ".env").write_text(
        f"DATABASE_URL=sqlite+aiosqlite:///{elsewhere / 'crm.db'}\n", encoding="utf-8"
    )
    result = run(installed / "voronka", "migrate", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert "schema: empty -> " in result.stdout and "pipelines: synced from" in result.stdout


def test_a_russian_render_from_the_wheel(installed: Path, elsewhere: Path):
    script = (
        "from handlers.ui.i18n import t, LOCALES_DIR\n"
        "print(LOCALES_DIR)\n"
        "print(t('cmd.start', 'ru'))\n"
        "print(t('access.denied', 'ru'))\n"
        "print(t('digest.snapshot', 'ru', pipeline='P', count=2, money='1', weighted='1'))\n"
        "print(t('digest.snapshot', 'en', pipeline='P', count=1, money='1', weighted='1'))\n"
    )
    result = run(installed / "python", "-c", script, cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    where, start, denied, ru, en = result.stdout.splitlines()
    assert Path(where).is_relative_to(installed.parent)
    assert start != "cmd.start" and denied != "access.denied"
    assert any("\u0400" <= ch <= "\u04ff" for ch in start + denied)
    assert "2 сделки" in ru and "1 deal," in en
