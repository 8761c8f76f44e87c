"""Nightly backups, their retention, the report of a failed one, and the bot's heartbeat.

- `nightly`: a checked copy (storage/backup.py) into the backup directory, then the old
  ones pruned by `to_prune`; any failure becomes a ``backup.failed`` message to every admin
  through the outbox (one per admin per day), besides the log line.
- `to_prune` (the retention rule): keep the newest copy of each of the last `keep_daily`
  days that have one, and the newest copy of each of the last `keep_weekly` ISO weeks that
  have one (days and weeks in the company's time zone); every other copy goes. The newest
  copy is always kept.
- The heartbeat: every running bot process (`voronka run`, each webhook worker) writes a
  ``job_runs`` row of its own (``alive:<host>:<pid>``) every `BEAT_SECONDS` and deletes it
  when it stops; `voronka restore` refuses while a row is younger than `ALIVE_WITHIN`. A
  killed process's row stops counting after that long.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from services.clock import Clock
from services.outbox.payloads import BackupFailed
from services.outbox.queue import Kind, enqueue
from storage import backup as copies
from storage.enums import Role
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

UowFactory = Callable[[], UnitOfWork]

BEAT_SECONDS = 30.0
ALIVE_WITHIN = timedelta(seconds=3 * BEAT_SECONDS)
ALIVE_PREFIX = "alive:"


# --- retention ----------------------------------------------------------------------------


def to_prune(
    backups: Sequence[copies.Backup], keep_daily: int, keep_weekly: int, tz: str
) -> list[copies.Backup]:
    """The copies the retention rule lets go (see the module docstring), oldest first."""
    zone = ZoneInfo(tz)
    keep: set[Path] = set()
    days: list[object] = []
    weeks: list[object] = []
    for b in sorted(backups, key=lambda b: b.taken_at, reverse=True):  # newest first
        local = b.taken_at.astimezone(zone)
        day, week = local.date(), local.isocalendar()[:2]
        if day not in days:
            days.append(day)
            if len(days) <= max(keep_daily, 1):
                keep.add(b.path)
        if week not in weeks:
            weeks.append(week)
            if len(weeks) <= keep_weekly:
                keep.add(b.path)
    return [b for b in sorted(backups, key=lambda b: b.taken_at) if b.path not in keep]


# --- the nightly job ----------------------------------------------------------------------


async def nightly(
    uow_factory: UowFactory,
    clock: Clock,
    *,
    url: str,
    directory: Path,
    keep_daily: int,
    keep_weekly: int,
    tz: str,
) -> copies.Backup | None:
    """Take a copy, prune the old ones; a failure is reported to the admins (None)."""
    try:
        made = await asyncio.to_thread(copies.take, url, directory, clock.now())
        for old in to_prune(copies.list_backups(directory), keep_daily, keep_weekly, tz):
            old.path.unlink(missing_ok=True)
            log.info("backup: removed %s (retention)", old.path.name)
    except Exception as exc:
        log.exception("backup into %s failed", directory)
        await report_failure(uow_factory, clock, directory, str(exc) or type(exc).__name__)
        return None
    log.info("backup: %s (%d bytes); the files are not in it (FILES_DIR)", made.path, made.size)
    return made


async def report_failure(uow_factory: UowFactory, clock: Clock, directory: Path, why: str) -> int:
    """A ``backup.failed`` message to every reachable admin; how many were enqueued."""
    now = clock.now()
    payload = BackupFailed(error=why[:500], directory=str(directory))
    sent = 0
    try:
        async with uow_factory() as uow:
            for admin in await uow.repo.employees.with_role(Role.ADMIN):
                if admin.unreachable:
                    continue
                key = f"backup:{admin.id}:{now.date().isoformat()}"
                if await enqueue(uow, admin.id, Kind.BACKUP_FAILED, payload, now, dedupe_key=key):
                    sent += 1
            await uow.commit()
    except Exception:  # the database itself may be what failed: the log is all that is left
        log.exception("could not tell the admins that the backup failed")
    return sent


# --- the heartbeat ------------------------------------------------------------------------


def beat_name() -> str:
    return f"{ALIVE_PREFIX}{socket.gethostname()[:40]}:{os.getpid()}"


async def beat(uow: UnitOfWork, name: str) -> None:
    now = uow.clock.now()
    await uow.repo.system.record_run(name, now)
    await uow.repo.system.forget_runs_before(ALIVE_PREFIX, now - timedelta(days=1))
    await uow.commit()


async def stop_beating(uow: UnitOfWork, name: str) -> None:
    await uow.repo.system.forget_run(name)
    await uow.commit()


async def running(uow: UnitOfWork) -> list[tuple[str, datetime]]:
    """Bot processes that beat within `ALIVE_WITHIN`: (name, last beat)."""
    since = uow.clock.now() - ALIVE_WITHIN
    return await uow.repo.system.runs_since(ALIVE_PREFIX, since)
