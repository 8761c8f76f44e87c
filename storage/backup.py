"""Copies of the database: take one while the bot runs, check one, put one back.

- SQLite: ``VACUUM INTO`` on a connection of its own. It reads the whole database inside one
  read transaction, so the copy is the database at one instant (WAL lets the bot's writers
  go on meanwhile: they never wait for it, it never sees half of a transaction). The copy
  is checked with ``PRAGMA integrity_check`` and must carry an ``alembic_version``.
- PostgreSQL: ``pg_dump --format=custom`` (one repeatable-read snapshot, the same
  guarantee), checked by reading its table of contents back (``pg_restore --list``). The
  client binaries are taken from ``/usr/lib/postgresql/<newest>/bin`` (Debian's layout, a
  pg_dump at least as new as most servers) or else from PATH.

A copy is written under a temporary name and renamed only once it passed its check: a
file named like a backup is always a whole, checked one. Names carry the UTC moment
(``voronka-20261207T031500Z.db`` / ``.dump``) so a directory listing sorts by age and the
retention rule (services/backups.py) reads the time from the name.

Everything here blocks (sqlite3, subprocesses): callers in an event loop run it in a thread.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import URL, make_url

NAME = re.compile(r"^voronka-(\d{8}T\d{6}Z)\.(db|dump)$")
STAMP = "%Y%m%dT%H%M%SZ"


class BackupError(Exception):
    """A copy that could not be made, checked or put back; the message says why."""


@dataclass(frozen=True)
class Backup:
    path: Path
    taken_at: datetime
    size: int


def backup_name(at: datetime, url: str) -> str:
    ext = "db" if is_sqlite(url) else "dump"
    return f"voronka-{at.astimezone(UTC).strftime(STAMP)}.{ext}"


def taken_at(path: Path) -> datetime | None:
    """The moment in a backup's name, or None for a file that is not one of ours."""
    match = NAME.match(path.name)
    if match is None:
        return None
    return datetime.strptime(match.group(1), STAMP).replace(tzinfo=UTC)


def list_backups(directory: Path) -> list[Backup]:
    """Our backups in `directory`, oldest first (other files are left alone)."""
    found = []
    if directory.is_dir():
        for path in directory.iterdir():
            at = taken_at(path)
            if at is not None and path.is_file():
                found.append(Backup(path, at, path.stat().st_size))
    return sorted(found, key=lambda b: b.taken_at)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError(f"{url} is not a database file")
    return Path(database)


# --- take ---------------------------------------------------------------------------------


def take(url: str, directory: Path, at: datetime) -> Backup:
    """A checked copy of the database at `url` in `directory`, named by `at`."""
    directory.mkdir(parents=True, exist_ok=True)
    at = at.replace(microsecond=0)
    while (directory / backup_name(at, url)).exists():  # never over an older copy
        at += timedelta(seconds=1)
    target = directory / backup_name(at, url)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        if is_sqlite(url):
            _sqlite_copy(sqlite_path(url), partial)
        else:
            _pg_dump(url, partial)
        check(partial, sqlite=is_sqlite(url))
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return Backup(target, at, target.stat().st_size)


def _sqlite_copy(source: Path, target: Path) -> None:
    if not source.is_file():
        raise BackupError(f"no database file at {source}")
    conn = sqlite3.connect(source, timeout=15)  # reads only; WAL needs no read-only mode
    try:
        conn.execute("VACUUM INTO ?", (str(target),))
    except sqlite3.Error as exc:
        raise BackupError(f"sqlite: {exc}") from exc
    finally:
        conn.close()


# --- check --------------------------------------------------------------------------------


def check(path: Path, *, sqlite: bool | None = None) -> str:
    """Raise BackupError unless `path` is a whole Voronka backup; returns its schema
    revision (SQLite) or "pg_dump" (a dump's revision is known once it is restored)."""
    if not path.is_file():
        raise BackupError(f"no file at {path}")
    if sqlite is None:
        sqlite = _looks_like_sqlite(path)
    if not sqlite:
        _pg_list(path)
        return "pg_dump"
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise BackupError(f"{path}: {exc}") from exc
    try:
        verdict = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        if verdict != ["ok"]:
            raise BackupError(f"{path} fails its integrity check: {'; '.join(verdict[:5])}")
        revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a Voronka database: {exc}") from exc
    finally:
        conn.close()
    if revision is None:
        raise BackupError(f"{path} has no schema revision (not a Voronka database)")
    return str(revision[0])


def _looks_like_sqlite(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(16) == b"SQLite format 3\x00"


# --- restore ------------------------------------------------------------------------------


def restore(path: Path, url: str) -> None:
    """Replace the database at `url` with the backup at `path` (already checked). The
    caller makes sure no bot runs on it, and migrates it forward afterwards."""
    if is_sqlite(url):
        if not _looks_like_sqlite(path):
            raise BackupError(f"{path} is a PostgreSQL dump; DATABASE_URL is SQLite")
        target = sqlite_path(url)
        target.parent.mkdir(parents=True, exist_ok=True)
        incoming = target.with_name(target.name + ".restoring")
        shutil.copyfile(path, incoming)
        # The old database's WAL and shared memory belong to the file being replaced.
        for suffix in ("-wal", "-shm", "-journal"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        os.replace(incoming, target)
        return
    if _looks_like_sqlite(path):
        raise BackupError(f"{path} is a SQLite file; DATABASE_URL is PostgreSQL")
    # Everything of the current schema goes (tables a newer version added included), then
    # the dump comes in whole or not at all.
    _pg(
        "psql",
        ["--quiet", "-v", "ON_ERROR_STOP=1"],
        url,
        "--command",
        "DROP SCHEMA public CASCADE; CREATE SCHEMA public;",
    )
    _pg("pg_restore", ["--no-owner", "--no-privileges", "--single-transaction"], url, str(path))


# --- PostgreSQL client binaries -------------------------------------------------------------


def pg_binary(name: str) -> str:
    """The newest Debian-installed client binary `name`, else the one on PATH."""
    versions = []
    for bin_dir in Path("/usr/lib/postgresql").glob("*/bin"):
        if (bin_dir / name).is_file() and bin_dir.parent.name.isdigit():
            versions.append((int(bin_dir.parent.name), bin_dir / name))
    if versions:
        return str(max(versions)[1])
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} not found (install the PostgreSQL client tools)")
    return found


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq URL without the password, and the environment carrying it (not on the
    command line, where `ps` would show it)."""
    parsed: URL = make_url(url)
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None, query={})
    return plain.render_as_string(hide_password=False), env


def _pg(tool: str, args: list[str], url: str | None, *tail: str) -> str:
    env = dict(os.environ)
    command = [pg_binary(tool), *args]
    if url is not None:
        conninfo, env = _libpq(url)
        command += ["--dbname", conninfo]
    command += tail
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise BackupError(f"{tool}: {exc}") from exc
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise BackupError(f"{tool} failed: {detail[-1] if detail else done.returncode}")
    return done.stdout


def _pg_dump(url: str, target: Path) -> None:
    _pg("pg_dump", ["--format=custom", "--no-owner", "--no-privileges"], url, "--file", str(target))


def _pg_list(path: Path) -> None:
    listing = _pg("pg_restore", ["--list"], None, str(path))
    if "TABLE DATA" not in listing or "alembic_version" not in listing:
        raise BackupError(f"{path} is not a Voronka database dump")
