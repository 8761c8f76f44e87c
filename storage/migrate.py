"""Run Alembic migrations programmatically (used by the bot at start and `voronka migrate`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _run_sync(fn_name: str, url: str, revision: str) -> None:
    cfg = alembic_config(url)
    getattr(command, fn_name)(cfg, revision)


async def upgrade(url: str, revision: str = "head") -> None:
    # env.py runs its own event loop for the async engine: keep it off ours.
    await asyncio.to_thread(_run_sync, "upgrade", url, revision)


async def downgrade(url: str, revision: str) -> None:
    await asyncio.to_thread(_run_sync, "downgrade", url, revision)


def revisions(url: str) -> list[str]:
    """Revision ids from base to head."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(url))
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]
