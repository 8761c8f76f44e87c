"""The ``voronka`` command, run as a real process (the console script users run)."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from services.clock import FakeClock
from services.sales.pipeline_config import DEFAULT_FILE as DEFAULT_PIPELINES_FILE
from storage import migrate
from storage.db import create_engine, create_session_factory
from storage.models import Stage
from tests.factories import bare_deal, clean_env, voronka

PROJECT_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "pipelines" / "default.toml"
assert DEFAULT_CONFIG.resolve() == DEFAULT_PIPELINES_FILE  # the packaged default, in a checkout


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = voronka("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for command in ("run", "migrate", "check-config"):
        assert command in result.stdout


def test_python_dash_m_bot_is_the_same_command(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "--help"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "check-config" in result.stdout


def test_bare_voronka_prints_the_help(tmp_path: Path) -> None:
    result = voronka(cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: voronka")
    for command in ("run", "webhook", "migrate", "check-config", "demo"):
        assert command in result.stdout
    assert not (tmp_path / "data").exists()


def test_version(tmp_path: Path) -> None:
    from importlib.metadata import version

    result = voronka("--version", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"voronka \d+\.\d+\.\d+\S* \(Python 3\.\d+\.\d+\S*\)\n", result.stdout)
    assert result.stdout.startswith(f"voronka {version('voronka')} ")


def test_run_without_token_says_what_to_do(tmp_path: Path) -> None:
    assert not (tmp_path / ".env").exists()
    result = voronka("run", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # one line, no traceback
    assert lines[0].startswith("error: BOT_TOKEN is not set")
    assert "@BotFather" in lines[0] and ".env" in lines[0]
    assert result.stdout == ""
    assert not (tmp_path / "data").exists()  # nothing was created before the check


def test_run_with_empty_token_in_dotenv_is_refused_too(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("BOT_TOKEN=\n", encoding="utf-8")
    result = voronka("run", cwd=tmp_path)
    assert result.returncode == 2
    assert "BOT_TOKEN is not set" in result.stderr


def test_invalid_setting_is_one_line(tmp_path: Path) -> None:
    result = voronka("run", cwd=tmp_path, env=clean_env(TIMEZONE="Mars/Olympus"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert "TIMEZONE" in result.stderr and "Traceback" not in result.stderr


def test_check_config_default(tmp_path: Path) -> None:
    result = voronka("check-config", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert str(DEFAULT_CONFIG) in out.splitlines()[0] and "OK" in out.splitlines()[0]
    assert "Продажа [sales]" in out
    for stage in ("data_collection", "Замер выполнен", "conditional_refusal"):
        assert stage in out
    assert "★ key" in next(line for line in out.splitlines() if "measurement_done" in line)
    assert "requires: measurement_at, address" in out
    assert "head_measurer" in out  # the auto task
    assert "Дорого" in out  # loss reasons


def test_check_config_given_file(tmp_path: Path) -> None:
    b2b = PROJECT_ROOT / "config" / "pipelines" / "b2b.toml"
    result = voronka("check-config", str(b2b), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Новые клиенты [new_clients]" in result.stdout
    assert "manual (any order)" in result.stdout


def test_check_config_broken_file_names_the_field(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    broken.write_text(text.replace('kind = "frozen"', 'kind = "melted"'), encoding="utf-8")
    result = voronka("check-config", str(broken), cwd=tmp_path)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"{broken}: ")
    assert 'stages[7] "conditional_refusal" > kind' in line
    assert "Traceback" not in result.stderr


def test_check_config_explains_a_bad_link(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    broken.write_text(text.replace('to = "fulfilment"', 'to = "orders"'), encoding="utf-8")
    result = voronka("check-config", str(broken), cwd=tmp_path)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line == (
        f'{broken}: pipelines[1] "sales" > stages[6] "won" > links[1] > to: there is no '
        'pipeline "orders" in this file (pipelines: leads, deferred, installments, '
        "fulfilment, claims)"
    )
    ok = voronka("check-config", cwd=tmp_path)
    assert "links to: fulfilment, carries" in ok.stdout


def test_check_config_uses_pipelines_file_setting(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    result = voronka("check-config", cwd=tmp_path, env=clean_env(PIPELINES_FILE=str(missing)))
    assert result.returncode == 1
    assert str(missing) in result.stderr and "cannot read" in result.stderr


def _dump(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        lines = list(conn.iterdump())
    conn.close()
    return lines


def test_migrate_creates_the_database_and_a_second_run_is_a_no_op(tmp_path: Path) -> None:
    db = tmp_path / "nested" / "voronka.db"
    env = clean_env(DATABASE_URL=f"sqlite+aiosqlite:///{db}")
    head = migrate.revisions("sqlite+aiosqlite://")[-1]

    first = voronka("migrate", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    assert db.exists()
    assert f"schema: empty -> {head}" in first.stdout
    assert (
        "pipelines added (6): leads, sales, deferred, installments, fulfilment, claims"
        in first.stdout
    )
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(head,)]
        assert conn.execute("SELECT count(*) FROM pipelines").fetchone() == (6,)
    conn.close()
    before = _dump(db)

    second = voronka("migrate", cwd=tmp_path, env=env)
    assert second.returncode == 0, second.stderr
    assert f"schema: {head} (up to date)" in second.stdout
    assert "pipelines: up to date" in second.stdout
    assert "added" not in second.stdout
    assert _dump(db) == before


def test_migrate_with_a_broken_config_leaves_the_database_alone(tmp_path: Path) -> None:
    db = tmp_path / "voronka.db"
    broken = tmp_path / "broken.toml"
    broken.write_text("[company\n", encoding="utf-8")
    env = clean_env(DATABASE_URL=f"sqlite+aiosqlite:///{db}", PIPELINES_FILE=str(broken))
    result = voronka("migrate", cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert f"{broken}: TOML syntax" in result.stderr and "line 1" in result.stderr
    assert "Traceback" not in result.stderr
    assert not db.exists()


def test_bad_log_level_is_reported(tmp_path: Path) -> None:
    env = clean_env(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'v.db'}", LOG_LEVEL="LOUD")
    result = voronka("migrate", cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "LOG_LEVEL" in result.stderr and "Traceback" not in result.stderr


async def test_migrate_refuses_to_drop_a_stage_with_deals(tmp_path: Path) -> None:
    db = tmp_path / "voronka.db"
    url = f"sqlite+aiosqlite:///{db}"
    assert voronka("migrate", cwd=tmp_path, env=clean_env(DATABASE_URL=url)).returncode == 0
    engine = create_engine(url)
    try:
        async with create_session_factory(engine)() as session:
            stage = await session.scalar(select(Stage).where(Stage.code == "measurer_assigned"))
            assert stage is not None
            now = FakeClock().now()
            session.add(bare_deal(stage, now))
            await session.commit()
    finally:
        await engine.dispose()
    before = _dump(db)
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    block = text[text.index('  [[pipelines.stages]]\n  code = "measurer_assigned"') :]
    block = block[: block.index("\n\n") + 2]
    smaller = tmp_path / "smaller.toml"
    smaller.write_text(text.replace(block, ""), encoding="utf-8")

    result = voronka(
        "migrate", cwd=tmp_path, env=clean_env(DATABASE_URL=url, PIPELINES_FILE=str(smaller))
    )

    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and '"measurer_assigned"' in line and "1 deal" in line
    assert _dump(db) == before


def test_noisy_libraries_log_warnings_only_unless_debug() -> None:
    import logging

    from bot.cli import configure_logging

    sweep = logging.getLogger("apscheduler.executors.default")  # "Running job ..." at INFO
    update = logging.getLogger("aiogram.event")  # "Update id=... is handled" at INFO
    ours = logging.getLogger("voronka")
    root = logging.getLogger()
    saved, handlers = root.level, root.handlers[:]
    try:
        configure_logging("INFO")
        assert not sweep.isEnabledFor(logging.INFO) and sweep.isEnabledFor(logging.WARNING)
        assert not update.isEnabledFor(logging.INFO)
        assert ours.isEnabledFor(logging.INFO)
        configure_logging("DEBUG")
        assert sweep.isEnabledFor(logging.DEBUG) and update.isEnabledFor(logging.DEBUG)
        configure_logging("ERROR")
        assert not sweep.isEnabledFor(logging.WARNING) and sweep.isEnabledFor(logging.ERROR)
    finally:
        for name in ("apscheduler", "aiogram.event", "aiohttp.access", "alembic"):
            logging.getLogger(name).setLevel(logging.NOTSET)
        for handler in root.handlers[:]:
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(saved)


def test_settings_out_of_range_are_one_line_naming_the_unit(tmp_path: Path) -> None:
    """Every number has a range and a unit; a bad value is refused at load, before anything
    starts, with one line (no traceback) that says what is expected."""
    db = f"sqlite+aiosqlite:///{tmp_path / 'v.db'}"
    for name, value, expected in (
        ("SCAN_MINUTES", "0", "minutes, 0.1-1440"),
        ("SCAN_MINUTES", "0.01", "minutes, 0.1-1440"),
        ("REMINDER_SWEEP_SECONDS", "-1", "seconds"),
        ("REMINDER_LEASE_SECONDS", "1", "seconds, 5-3600"),
        ("TELEGRAM_RATE_PER_SECOND", "0", "messages per second"),
        ("TELEGRAM_SEND_CONCURRENCY", "0", "1-100"),
        ("SUMMARY_HOUR", "24", "0-23"),
        ("WEBHOOK_PORT", "70000", "1-65535"),
        ("INSTALLMENT_GRACE_DAYS", "many", "days"),
        ("ADMIN_IDS", "12,abc", "Telegram user ids"),
        ("DEFAULT_LANGUAGE", "de", "'ru' or 'en'"),
    ):
        result = voronka("migrate", cwd=tmp_path, env=clean_env(DATABASE_URL=db, **{name: value}))
        assert result.returncode == 2, (name, value, result.stderr)
        assert result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith(f"error: invalid setting {name}: "), result.stderr
        assert expected in result.stderr and "Traceback" not in result.stderr, result.stderr
        assert repr(value) in result.stderr  # the value given, quoted


def test_a_fractional_scan_interval_is_accepted(tmp_path: Path) -> None:
    env = clean_env(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'v.db'}", SCAN_MINUTES="0.1")
    result = voronka("migrate", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
