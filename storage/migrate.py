"""Run Alembic migrations programmatically (used by the bot at start and `voronka migrate`).

Alembic (and Mako, which it brings) is imported only when a migration actually runs: the
bot's start checks the schema with one SELECT against the head revision read from the
migration files' ``revision``/``down_revision`` lines, and ``voronka run`` upgrades in a
child process (`python -m storage.migrate`), so the serving process never holds Alembic.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_REVISION = re.compile(r'^(down_revision|revision)\b[^=]*=\s*(?:"([^"]*)"|None)', re.M)
URL_ENV = "VORONKA_MIGRATE_URL"
DRIVER_ENV = "VORONKA_MIGRATE_SQLITE_DRIVER"  # the parent's SQLITE_DRIVER (it may be in .env)


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _run_sync(fn_name: str, url: str, revision: str) -> None:
    from alembic import command

    cfg = alembic_config(url)
    getattr(command, fn_name)(cfg, revision)


async def upgrade(url: str, revision: str = "head") -> None:
    # env.py runs its own event loop for the async engine: keep it off ours.
    await asyncio.to_thread(_run_sync, "upgrade", url, revision)


async def upgrade_in_child(url: str) -> None:
    """Upgrade to head in a child Python process (this one never imports Alembic)."""
    from storage.db import sqlite_driver_in_use

    env = {**os.environ, URL_ENV: url, DRIVER_ENV: sqlite_driver_in_use()}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "storage.migrate", env=env)
    if await proc.wait() != 0:
        raise subprocess.CalledProcessError(proc.returncode or 1, "python -m storage.migrate")


def announce_drops(revision: str, *what: str) -> None:
    """A downgrade that drops data says what, as it runs (on stderr and in the log): what
    it names is gone for good; upgrading again brings the tables and columns back empty."""
    line = f"downgrade {revision} drops: " + "; ".join(what)
    logging.getLogger("voronka.migrate").warning(line)
    print(line, file=sys.stderr, flush=True)


async def downgrade(url: str, revision: str) -> None:
    await asyncio.to_thread(_run_sync, "downgrade", url, revision)


def revisions(url: str) -> list[str]:
    """Revision ids from base to head."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(url))
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def head_revisions() -> set[str]:
    """The head revision id(s), read from the migration files without importing Alembic:
    every revision that is nobody's down_revision."""
    revs: set[str] = set()
    downs: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        found = dict((k, v) for k, v in _REVISION.findall(path.read_text(encoding="utf-8")))
        if found.get("revision"):
            revs.add(found["revision"])
            if found.get("down_revision"):
                downs.add(found["down_revision"])
    return revs - downs


async def current_revision(url: str) -> str | None:
    """The database's revision (one SELECT on alembic_version); None: an empty database."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from storage.db import create_engine

    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            try:
                rows = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
            except DBAPIError:  # no table yet
                return None
            return rows[0][0] if len(rows) == 1 else None
    finally:
        await engine.dispose()


def main() -> int:
    from storage.db import use_sqlite_driver

    use_sqlite_driver(os.environ.get(DRIVER_ENV, "voronka"))
    asyncio.run(upgrade(os.environ[URL_ENV]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
