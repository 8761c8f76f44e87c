"""APScheduler wiring of the digests to leaders (services/reports/digests.py explains the rules).

One cron job checks every minute whether the daily or the weekly digest is due (and one run
at start catches up a missed one); the check only *enqueues* outbox rows, which the
reminder engine's sweep sends. Nothing lives in APScheduler's job store: the `job_runs`
rows make a restart (or two workers) send nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger

from services.clock import Clock
from services.reports import digests
from services.reports.digests import DigestStats
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

DEFAULTS = {
    "timezone": "Europe/Moscow",
    "digest_daily_at": "08:30",
    "digest_weekly_at": "Mon 09:00",
}


def _setting(settings: Any, name: str) -> Any:
    value = getattr(settings, name, None)
    return DEFAULTS[name] if value is None else value


class DigestJobs:
    """The check as a plain coroutine (tests call it directly, no scheduler thread)."""

    def __init__(self, uow_factory: Callable[[], UnitOfWork], clock: Clock, settings: Any) -> None:
        self.uow_factory = uow_factory
        self.clock = clock
        self.tz = str(_setting(settings, "timezone"))
        self.daily_at = digests.parse_time(str(_setting(settings, "digest_daily_at")))
        self.weekday, self.weekly_at = digests.parse_weekly(
            str(_setting(settings, "digest_weekly_at"))
        )

    async def check(self) -> DigestStats | None:
        try:
            async with self.uow_factory() as uow:
                stats = await digests.send_due_digests(
                    uow,
                    tz=self.tz,
                    daily_at=self.daily_at,
                    weekly_at=self.weekly_at,
                    weekday=self.weekday,
                )
        except Exception:  # a failed check is retried by the next one
            log.exception("digest check failed")
            return None
        if stats.sent:
            log.info("digests enqueued: %s", stats.sent)
        return stats


def add_digest_jobs(
    scheduler: BaseScheduler,
    uow_factory: Callable[[], UnitOfWork],
    clock: Clock,
    settings: Any,
) -> DigestJobs:
    """Add the every-minute check and its run at start to `scheduler`."""
    jobs = DigestJobs(uow_factory, clock, settings)
    common: dict[str, Any] = {"max_instances": 1, "coalesce": True, "replace_existing": True}
    scheduler.add_job(
        jobs.check,
        CronTrigger(minute="*", timezone=ZoneInfo(jobs.tz)),
        id="digests.check",
        misfire_grace_time=60,
        **common,
    )
    scheduler.add_job(jobs.check, id="digests.catch_up", **common)  # once, at start
    return jobs
