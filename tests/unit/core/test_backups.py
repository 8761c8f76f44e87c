"""The nightly backup with a fake clock (bot/scheduler.py BackupJobs, services/backups.py):
one copy a night, old ones pruned by the retention rule, a failure told to the admins."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.interval import IntervalTrigger

from bot.cli import main
from bot.scheduler import BackupJobs, ReminderJobs, build_scheduler
from services.backups import to_prune
from services.outbox.payloads import BackupFailed
from services.outbox.queue import Kind
from storage.backup import Backup, BackupError, check, list_backups, take
from tests.outbox_fakes import FakeTimer, RecordingNotifier

MSK = ZoneInfo("Europe/Moscow")


def settings(db_url: str, directory: Path) -> SimpleNamespace:
    return SimpleNamespace(
        database_url=db_url,
        timezone="Europe/Moscow",
        backup_dir=directory,
        backup_at="03:30",
        backup_keep_daily=7,
        backup_keep_weekly=4,
    )


def local_days(backups: list[Backup]) -> list[date]:
    return [b.taken_at.astimezone(MSK).date() for b in backups]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_nightly_backups_are_made_and_pruned(db_url, uow_factory, clock, tmp_path):
    directory = tmp_path / "backups"
    jobs_settings = settings(db_url, directory)
    jobs = BackupJobs(uow_factory, clock, jobs_settings)
    scheduler = build_scheduler(uow_factory, RecordingNotifier(), clock, jobs_settings)
    job = scheduler.get_job("backup.nightly")
    assert job is not None and isinstance(job.trigger, IntervalTrigger)

    clock.set(datetime(2026, 3, 1, 4, 0, tzinfo=MSK).astimezone(UTC))  # a Sunday
    end = datetime(2026, 4, 29, 4, 0, tzinfo=MSK)  # a Wednesday, the 60th night
    seen: set[Path] = set()
    while clock.now() <= end:  # a check every 4 hours
        await jobs.check()
        seen.update(b.path for b in list_backups(directory))
        clock.advance(hours=4)
    # One copy a night, taken at the first check after 03:30 (04:00 local), none twice.
    taken = sorted(seen)
    assert len(taken) == 60
    assert {p.name[17:21] for p in taken} == {"0100"}  # 04:00 MSK is 01:00 UTC

    kept = list_backups(directory)
    days = local_days(kept)
    last = date(2026, 4, 29)  # the 60th night
    daily = [last - timedelta(days=n) for n in range(7)]
    # the newest copy of each of the last four ISO weeks: Sundays, and the week running
    weekly = [last, date(2026, 4, 26), date(2026, 4, 19), date(2026, 4, 12)]
    assert sorted(days) == sorted(set(daily) | set(weekly))
    assert date(2026, 4, 5) not in days  # a fifth week back: pruned
    for b in kept:
        check(b.path)  # every kept copy is whole


def test_the_retention_rule_keeps_the_newest_copy_of_a_day():
    def at(day: int, hour: int) -> Backup:
        moment = datetime(2026, 5, day, hour, tzinfo=MSK)
        return Backup(Path(f"{day}-{hour}"), moment.astimezone(UTC), 1)

    copies = [at(4, 3), at(4, 15), at(5, 3), at(11, 3), at(12, 3), at(12, 20)]
    gone = to_prune(copies, keep_daily=2, keep_weekly=2, tz="Europe/Moscow")
    # kept: 12th 20:00 and 11th (the last two days); week of the 4th: its newest, the 5th
    # (Tue); the week of 11-12 counts once.
    assert [b.path.name for b in gone] == ["4-3", "4-15", "12-3"]
    assert to_prune(copies[:1], keep_daily=1, keep_weekly=0, tz="UTC") == []


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_failing_backup_is_a_message_to_the_admins(
    db_url, uow_factory, clock, make_actor, tmp_path
):
    admin = await make_actor(roles=("admin",), name="Ada")
    other = await make_actor(roles=("admin",), name="Bob", unreachable=True)
    manager = await make_actor(roles=("manager",), name="Ann")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the backup folder should be")
    jobs = BackupJobs(uow_factory, clock, settings(db_url, blocker / "backups"))
    clock.set(datetime(2026, 3, 2, 4, 0, tzinfo=MSK).astimezone(UTC))

    await jobs.check()
    clock.advance(hours=1)
    await jobs.check()  # still failing: the same day's message is not repeated

    notifier = RecordingNotifier()
    timer = FakeTimer(clock)
    sender = ReminderJobs(
        uow_factory,
        notifier,
        clock,
        SimpleNamespace(timezone="Europe/Moscow"),
        sleep=timer.sleep,
        monotonic=timer.monotonic,
    )
    await sender.sweep()
    assert notifier.kinds(admin.id) == [Kind.BACKUP_FAILED]
    assert notifier.kinds(other.id) == [] and notifier.kinds(manager.id) == []
    (item,) = notifier.items(admin.id)
    assert isinstance(item.payload, BackupFailed)
    assert item.payload.directory == str(blocker / "backups")
    assert "Not a directory" in item.payload.error

    # the next day it fails again: told again
    clock.advance(days=1)
    await jobs.check()
    await sender.sweep()
    assert notifier.kinds(admin.id) == [Kind.BACKUP_FAILED, Kind.BACKUP_FAILED]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_restore_refuses_a_file_that_is_not_a_whole_backup(
    db_url, db_snapshot, tmp_path, monkeypatch, capsys
):
    before = await db_snapshot()
    made = take(db_url, tmp_path / "backups", datetime(2026, 3, 2, tzinfo=UTC))
    broken = tmp_path / "broken.db"
    broken.write_bytes(made.path.read_bytes()[:4096])  # cut short: not a whole database
    text = tmp_path / "notes.txt"
    text.write_text("not a database")
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("BACKUP_DIR", str(tmp_path / "safety"))
    for bad in (broken, text, tmp_path / "missing.db"):
        with pytest.raises(BackupError):
            check(bad)
        assert await asyncio.to_thread(main, ["restore", "--yes", str(bad)]) == 1
        assert "the database was not touched" in capsys.readouterr().err
    assert await db_snapshot() == before
    assert not (tmp_path / "safety").exists()
