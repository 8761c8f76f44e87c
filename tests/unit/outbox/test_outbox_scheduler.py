"""bot/scheduler.py: the jobs exist with the right triggers, and each job does its part
(driven by hand with a fake clock: no scheduler thread, no sleeping)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.scheduler import ReminderJobs, build_scheduler
from bot.settings import Settings
from services import tasks
from services.outbox.queue import Kind
from tests.factories import new_deal
from tests.outbox_fakes import FakeTimer, RecordingNotifier

SETTINGS = SimpleNamespace(timezone="Europe/Moscow", summary_hour=9, escalation_delay_minutes=30)


def test_build_scheduler_registers_the_sweep_the_scans_and_the_summary(uow_factory, clock):
    scheduler = build_scheduler(uow_factory, RecordingNotifier(), clock, SETTINGS)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {
        "outbox.sweep",
        "reminders.scan",
        "summary.morning",
        "reminders.catch_up",
        "digests.check",  # bot/digests.py
        "digests.catch_up",
    }
    sweep = jobs["outbox.sweep"]
    assert isinstance(sweep.trigger, IntervalTrigger)
    assert sweep.trigger.interval == timedelta(seconds=10)
    assert sweep.max_instances == 1 and sweep.coalesce
    summary = jobs["summary.morning"].trigger
    assert isinstance(summary, CronTrigger)
    assert str(summary.fields[5]) == "9" and str(summary.timezone) == "Europe/Moscow"
    assert isinstance(jobs["reminders.scan"].trigger, IntervalTrigger)
    assert jobs["reminders.scan"].trigger.interval == timedelta(minutes=5)


async def test_jobs_catch_up_scan_and_sweep(uow_factory, clock, make_actor):
    ann = await make_actor(roles=("manager",), name="Ann")
    lee = await make_actor(roles=("leader",), name="Lee")
    await new_deal(uow_factory, ann)
    async with uow_factory() as uow:
        await tasks.create_manual_task(uow, ann, "Позвонить", clock.now() + timedelta(hours=1))
    notifier = RecordingNotifier()
    timer = FakeTimer(clock)
    jobs = ReminderJobs(
        uow_factory, notifier, clock, SETTINGS, sleep=timer.sleep, monotonic=timer.monotonic
    )

    clock.set(datetime(2026, 1, 20, 5, 0, tzinfo=UTC))  # 08:00 in Moscow: before the summary
    await jobs.catch_up()  # the task is overdue by now: escalated to the leader
    await jobs.sweep()
    assert Kind.SUMMARY_MORNING not in notifier.kinds(ann.id)
    assert notifier.kinds(lee.id) == [Kind.TASK_ESCALATED]

    clock.set(datetime(2026, 1, 20, 7, 30, tzinfo=UTC))  # 10:30: restarted after 09:00
    await jobs.catch_up()
    await jobs.morning_summary()  # the cron firing too changes nothing
    await jobs.sweep()
    assert notifier.kinds(ann.id).count(Kind.SUMMARY_MORNING) == 1
    await jobs.sweep()
    assert notifier.kinds(ann.id).count(Kind.SUMMARY_MORNING) == 1


def test_a_fractional_scan_interval_builds_the_scheduler(uow_factory, clock):
    """SCAN_MINUTES=0.1 used to crash the start ("Increment must be higher than 0")."""
    settings = Settings(_env_file=None, scan_minutes=0.1, reminder_sweep_seconds=0.5)
    scheduler = build_scheduler(uow_factory, RecordingNotifier(), clock, settings)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert jobs["reminders.scan"].trigger.interval == timedelta(seconds=6)
    assert jobs["outbox.sweep"].trigger.interval == timedelta(seconds=0.5)


async def test_a_stop_while_a_job_runs_logs_no_traceback(uow_factory, clock, make_actor, caplog):
    """SIGTERM while the sweep is sending: the scheduler's shutdown cancels the job, and
    that is said at INFO -- not APScheduler's CancelledError traceback at ERROR."""
    import asyncio
    import logging

    from tests.unit.outbox.test_outbox import put

    ann = await make_actor()
    await put(uow_factory, ann.id, clock.now())
    sending = asyncio.Event()

    class Hangs(RecordingNotifier):
        async def deliver(self, delivery):
            sending.set()
            await asyncio.Event().wait()  # Telegram never answers

    settings = SimpleNamespace(**vars(SETTINGS), reminder_sweep_seconds=0.5)
    scheduler = build_scheduler(uow_factory, Hangs(), clock, settings)
    caplog.set_level(logging.INFO)
    scheduler.start()
    try:
        await asyncio.wait_for(sending.wait(), 10)
    finally:
        scheduler.shutdown(wait=False)
    await asyncio.sleep(0.1)  # the cancelled job finishes
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert "stopped by the shutdown" in caplog.text
