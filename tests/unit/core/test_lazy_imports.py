"""Heavy libraries are imported on first use, not at start (issue 14).

The bot serving /funnel must not carry matplotlib, openpyxl, Alembic, asyncpg or redis
when it does not need them. Checked in a fresh interpreter (this test process has them all).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from storage import migrate

HEAVY = ("matplotlib", "openpyxl", "alembic", "asyncpg", "redis")
ROOT = Path(__file__).resolve().parents[3]


def _loaded_after(code: str, **env: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
    )
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def test_the_bot_with_every_router_and_job_imports_no_heavy_library() -> None:
    code = """
import bot.app, bot.cli, bot.notifier, bot.scheduler, bot.digests
from handlers.routers import routers
from bot.settings import Settings
from storage.uow import UnitOfWorkFactory
from storage.db import create_engine, create_session_factory
settings = Settings(bot_token="1:x", database_url="sqlite+aiosqlite:///:memory:")
engine = create_engine(settings.database_url)
dp = bot.app.build_dispatcher(settings, UnitOfWorkFactory(create_session_factory(engine)))
"""
    assert _loaded_after(code) == set()


def test_charts_and_export_import_their_library_on_first_use() -> None:
    assert _loaded_after("import handlers.funnel.charts, services.reports.export") == set()
    loaded = _loaded_after(
        "from handlers.funnel import charts\ncharts._render(('a','b','c','d'), [], [],"
        " centered=False, empty='-')"
    )
    assert loaded == {"matplotlib"}


async def test_start_on_a_migrated_database_does_not_import_alembic(empty_db_url: str) -> None:
    await migrate.upgrade(empty_db_url)
    assert await migrate.current_revision(empty_db_url) in migrate.head_revisions()
    code = f"""
import asyncio
from pathlib import Path
from bot.cli import migrate_and_sync
from bot.settings import Settings
settings = Settings(bot_token="1:x", database_url={empty_db_url!r})
result = asyncio.run(migrate_and_sync(settings, child=True))
assert result.before == result.after, result
"""
    loaded = _loaded_after(code)
    assert "alembic" not in loaded
    if empty_db_url.startswith("sqlite"):
        assert loaded == set()


def test_head_revision_is_read_from_the_files() -> None:
    heads = migrate.head_revisions()
    assert len(heads) == 1
    assert heads == {migrate.revisions("sqlite+aiosqlite://")[-1]}
