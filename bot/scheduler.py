"""APScheduler wiring of the reminder engine (services/outbox/queue.py explains the design).

One interval job sweeps the outbox (claim -> commit -> send -> mark); cron jobs only trigger
scans that *enqueue* rows (escalations, installment overdue checks, deferred-demand dates)
and the morning summary. Nothing is kept in APScheduler's job store: a restart loses no
reminder, and a missed morning summary is caught up at start (its JobRun row and dedupe
keys make every job safe to run twice).

Settings read (with these defaults when a settings object lacks them): see `DEFAULTS`.
The company policy the services read (`services.policy.CompanyPolicy`) is built from the
same settings by `company_policy`; bot/app.py hands it to the unit-of-work factory, and the
jobs here pass its values explicitly.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from services import backups
from services.clock import Clock
from services.outbox.queue import Notifier, Sweeper
from services.policy import CompanyPolicy, parse_norms, parse_quiet_hours
from services.sales import plans
from services.team import norms
from services.work import installments, orders, response, rotting
from services.work import jobs as work_jobs
from services.worktime import WorkHours
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

UowFactory = Callable[[], UnitOfWork]

DEFAULTS: dict[str, Any] = {
    "timezone": "Europe/Moscow",
    "reminder_sweep_seconds": 10,
    "reminder_lease_seconds": 20,
    "reminder_late_minutes": 10,
    "telegram_rate_per_second": 29.0,
    "telegram_send_concurrency": 4,
    "escalation_delay_minutes": 60,
    "work_hours": "09:00-19:00",
    "work_days": "mon-fri",
    "first_response_minutes": 15,
    "lead_distribution": "round_robin",
    "norms": "",
    "installment_grace_days": 3,
    "installment_reminder_days": 3,
    "measure_remind_before_minutes": 60,
    "summary_hour": 9,
    "stale_days": 7,
    "scan_minutes": 5,
    "business_capture": True,
    "business_roles": "manager,leader,admin",
    "client_quiet_hours": "21:00-09:00",
}


def setting(settings: Any, name: str) -> Any:
    value = getattr(settings, name, None)
    return DEFAULTS[name] if value is None else value


def company_policy(settings: Any) -> CompanyPolicy:
    """The company policy from the settings (an unknown time zone is refused here)."""
    return CompanyPolicy(
        timezone=str(setting(settings, "timezone")),
        measure_remind_before=timedelta(
            minutes=float(setting(settings, "measure_remind_before_minutes"))
        ),
        escalation_delay=timedelta(minutes=float(setting(settings, "escalation_delay_minutes"))),
        installment_grace_days=int(setting(settings, "installment_grace_days")),
        installment_reminder_days=int(setting(settings, "installment_reminder_days")),
        stale_days=int(setting(settings, "stale_days")),
        business_capture=bool(setting(settings, "business_capture")),
        business_roles=frozenset(
            r for r in str(setting(settings, "business_roles")).split(",") if r
        ),
        work_hours=WorkHours.parse(
            str(setting(settings, "work_hours")),
            str(setting(settings, "work_days")),
            str(setting(settings, "timezone")),
        ),
        first_response=timedelta(minutes=float(setting(settings, "first_response_minutes"))),
        distribution=str(setting(settings, "lead_distribution")),
        norms=parse_norms(str(setting(settings, "norms"))),
        client_quiet_hours=parse_quiet_hours(str(setting(settings, "client_quiet_hours"))),
    )


class ReminderJobs:
    """The jobs, as plain coroutines (tests call them directly, without a scheduler)."""

    def __init__(
        self,
        uow_factory: UowFactory,
        notifier: Notifier,
        clock: Clock,
        settings: Any,
        **sweeper_options: Any,  # tests: sleep=..., monotonic=... (a fake timer)
    ) -> None:
        self.uow_factory = uow_factory
        self.clock = clock
        self.policy = company_policy(settings)
        self.tz: str = self.policy.timezone
        self.summary_hour = int(setting(settings, "summary_hour"))
        self.sweeper = Sweeper(
            uow_factory,
            notifier,
            clock,
            per_second=float(setting(settings, "telegram_rate_per_second")),
            max_in_flight=int(setting(settings, "telegram_send_concurrency")),
            lease=timedelta(seconds=float(setting(settings, "reminder_lease_seconds"))),
            late_after=timedelta(minutes=float(setting(settings, "reminder_late_minutes"))),
            **sweeper_options,
        )

    async def sweep(self) -> None:
        # Late leads first (issue 26): on the sweep's beat, so the leaders hear of one
        # within REMINDER_SWEEP_SECONDS of its due moment (one indexed read when none is).
        await self._run("first response", response.first_response_scan)
        stats = await self.sweeper.sweep_until_idle()
        if stats.claimed:
            log.info(
                "outbox: %d messages (%d items) sent, %d 429s, %d errors, %d failed",
                stats.messages_sent,
                stats.items_sent,
                stats.rate_limited,
                stats.transient_errors,
                stats.failed,
            )

    async def scan(self) -> None:
        """Generators: escalations, installment overdue, deferred contact dates, stale
        deals, orders' slipped dates."""
        policy = self.policy
        await self._run(
            "escalate", lambda uow: work_jobs.escalate_overdue(uow, policy.escalation_delay)
        )
        await self._run(
            "installments",
            lambda uow: installments.mark_overdue(uow, policy.installment_grace_days, self.tz),
        )
        await self._run("deferred", work_jobs.deferred_due_scan)
        await self._run("rotting", rotting.rot_scan)
        await self._run("order dates", orders.slipped_scan)
        await self.backfill_response()

    # Leads touched before their first-response time was stored (migration 0024) get it
    # here, at most this many batches (services/team/norms.BACKFILL_BATCH) per scan: a
    # small company's in one scan, a million leads within a few hours.
    BACKFILL_BATCHES = 10

    async def backfill_response(self) -> None:
        for _ in range(self.BACKFILL_BATCHES):
            try:
                async with self.uow_factory() as uow:
                    if await norms.backfill_response(uow) < norms.BACKFILL_BATCH:
                        return
            except Exception:  # the other scans go on; the next scan tries again
                log.exception("reminder job first-response times failed")
                return

    async def morning_summary(self) -> None:
        await self._run(
            "summary", lambda uow: work_jobs.morning_summary(uow, self.tz, self.policy.stale_days)
        )
        await self._run("plan pace", plans.behind_scan)  # once a day per manager (dedupe)

    async def catch_up(self) -> None:
        """At start: the morning summary if its hour has passed today and it was not sent."""
        local = self.clock.now().astimezone(ZoneInfo(self.tz))
        if local.hour >= self.summary_hour:
            await self.morning_summary()
        await self.scan()

    async def _run(self, name: str, job: Callable[[UnitOfWork], Awaitable[Any]]) -> None:
        try:
            async with self.uow_factory() as uow:
                await job(uow)
        except Exception:  # one failing scan must not stop the others
            log.exception("reminder job %s failed", name)


class BackupJobs:
    """The nightly backup (services/backups.py) as a plain coroutine: `check` takes one when
    the last BACKUP_AT moment has passed since the newest copy in BACKUP_DIR (so a night the
    bot was down is made up for at the next check)."""

    def __init__(self, uow_factory: UowFactory, clock: Clock, settings: Any) -> None:
        from services.reports.digests import parse_time

        self.uow_factory = uow_factory
        self.clock = clock
        self.url = str(settings.database_url)
        self.directory = Path(settings.backup_dir)
        self.keep_daily = int(settings.backup_keep_daily)
        self.keep_weekly = int(settings.backup_keep_weekly)
        self.tz = str(setting(settings, "timezone"))
        self.at = None if settings.backup_at == "off" else parse_time(settings.backup_at)

    def due(self) -> datetime | None:
        """The BACKUP_AT moment a copy is owed for, or None when the newest is newer."""
        if self.at is None:
            return None
        local = self.clock.now().astimezone(ZoneInfo(self.tz))
        moment = datetime.combine(local.date(), self.at, tzinfo=local.tzinfo)
        if moment > local:
            moment -= timedelta(days=1)
        from storage.backup import list_backups

        made = list_backups(self.directory)
        return None if made and made[-1].taken_at >= moment else moment

    async def check(self) -> None:
        if self.due() is None:
            return
        await backups.nightly(
            self.uow_factory,
            self.clock,
            url=self.url,
            directory=self.directory,
            keep_daily=self.keep_daily,
            keep_weekly=self.keep_weekly,
            tz=self.tz,
        )


def build_scheduler(
    uow_factory: UowFactory, notifier: Notifier, clock: Clock, settings: Any
) -> AsyncIOScheduler:
    """The scheduler with the sweep, the scans and the morning summary; call .start() in
    the running event loop (bot/app.py does) and .shutdown() on the way out."""
    jobs = ReminderJobs(uow_factory, notifier, clock, settings)
    tz = ZoneInfo(jobs.tz)
    scheduler = AsyncIOScheduler(timezone=tz)
    common: dict[str, Any] = {"max_instances": 1, "coalesce": True, "replace_existing": True}
    scheduler.add_job(
        jobs.sweep,
        IntervalTrigger(seconds=float(setting(settings, "reminder_sweep_seconds")), timezone=tz),
        id="outbox.sweep",
        misfire_grace_time=60,
        **common,
    )
    scheduler.add_job(
        jobs.scan,
        # An interval, not a cron step: a fractional SCAN_MINUTES (0.1 = every 6 s) works.
        IntervalTrigger(seconds=60 * float(setting(settings, "scan_minutes")), timezone=tz),
        id="reminders.scan",
        misfire_grace_time=300,
        **common,
    )
    scheduler.add_job(
        jobs.morning_summary,
        CronTrigger(hour=jobs.summary_hour, minute=0, timezone=tz),
        id="summary.morning",
        misfire_grace_time=3 * 3600,
        **common,
    )
    scheduler.add_job(jobs.catch_up, id="reminders.catch_up", **common)  # once, at start
    if getattr(settings, "backup_at", "off") != "off":
        nightly = BackupJobs(uow_factory, clock, settings)
        scheduler.add_job(
            nightly.check,  # not at start: a first copy ten minutes after the first start
            IntervalTrigger(minutes=10, timezone=tz),
            id="backup.nightly",
            misfire_grace_time=600,
            **common,
        )
    from bot.digests import add_digest_jobs

    add_digest_jobs(scheduler, uow_factory, clock, settings)
    for job in scheduler.get_jobs():
        job.modify(func=stoppable(job.func))
    return scheduler


def stoppable(job: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[None]]:
    """A job cancelled by the scheduler's shutdown (SIGTERM while it runs) stops quietly:
    APScheduler would log the CancelledError's traceback at ERROR. What it was doing is
    safe to cut (the outbox's claimed rows go back when their lease runs out)."""

    @functools.wraps(job)
    async def run(*args: Any, **kwargs: Any) -> None:
        try:
            await job(*args, **kwargs)
        except asyncio.CancelledError:
            log.info("job %s stopped by the shutdown", getattr(job, "__name__", job))

    return run
