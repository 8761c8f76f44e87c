"""Bookkeeping: processed Telegram updates and last runs of scheduled jobs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete

from storage.models import JobRun, ProcessedUpdate
from storage.repositories.base import Repo


class SystemRepo(Repo):
    async def seen(self, update_id: int) -> bool:
        return await self.session.get(ProcessedUpdate, update_id) is not None

    async def delete_before(self, when: datetime) -> int:
        result = await self.session.execute(
            delete(ProcessedUpdate).where(ProcessedUpdate.at < when)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def last_run(self, name: str) -> datetime | None:
        run = await self.session.get(JobRun, name)
        return run.last_run_at if run is not None else None

    async def record_run(self, name: str, at: datetime) -> None:
        """The job's last run is `at` (in the caller's transaction)."""
        run = await self.session.get(JobRun, name)
        if run is None:
            self.session.add(JobRun(name=name, last_run_at=at))
        else:
            run.last_run_at = at
