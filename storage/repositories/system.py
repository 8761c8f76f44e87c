"""Bookkeeping: processed Telegram updates; the commands menus set in Telegram."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime

from sqlalchemy import delete, select

from storage.models import BotMenu, JobRun, ProcessedUpdate
from storage.repositories.base import Repo


class SystemRepo(Repo):
    async def seen(self, update_id: int) -> bool:
        return await self.session.get(ProcessedUpdate, update_id) is not None

    async def delete_before(self, when: datetime) -> int:
        result = await self.session.execute(
            delete(ProcessedUpdate).where(ProcessedUpdate.at < when)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def menu_digests(self) -> dict[str, str]:
        rows = await self.session.execute(select(BotMenu.scope, BotMenu.digest))
        return {scope: digest for scope, digest in rows.all()}

    async def save_menu_digests(self, digests: Mapping[str, str], at: datetime) -> None:
        """Insert or replace the digest of each scope."""
        if not digests:
            return
        await self.forget_menus(digests.keys())
        self.session.add_all(
            BotMenu(scope=scope, digest=digest, set_at=at) for scope, digest in digests.items()
        )

    async def forget_menus(self, scopes: Collection[str]) -> None:
        scopes = list(scopes)
        for lo in range(0, len(scopes), 500):  # within SQLite's bound-parameter limit
            await self.session.execute(
                delete(BotMenu).where(BotMenu.scope.in_(scopes[lo : lo + 500]))
            )

    async def last_run(self, name: str) -> datetime | None:
        run = await self.session.get(JobRun, name)
        return run.last_run_at if run is not None else None

    async def lock_runs(self, names: Collection[str]) -> dict[str, JobRun]:
        """These jobs' run rows (those that exist) by name, locked until the transaction
        ends: a second worker checking the same jobs waits, then sees this one's runs."""
        rows = await self.session.scalars(
            select(JobRun).where(JobRun.name.in_(list(names))).with_for_update()
        )
        return {r.name: r for r in rows}

    async def runs_since(self, prefix: str, since: datetime) -> list[tuple[str, datetime]]:
        """Runs named `prefix`... that ran at or after `since` (the bots' heartbeats)."""
        rows = await self.session.execute(
            select(JobRun.name, JobRun.last_run_at).where(
                JobRun.name.startswith(prefix, autoescape=True), JobRun.last_run_at >= since
            )
        )
        return [(name, at) for name, at in rows.all()]

    async def forget_run(self, name: str) -> None:
        await self.session.execute(delete(JobRun).where(JobRun.name == name))

    async def forget_runs_before(self, prefix: str, when: datetime) -> None:
        await self.session.execute(
            delete(JobRun).where(
                JobRun.name.startswith(prefix, autoescape=True), JobRun.last_run_at < when
            )
        )

    async def record_run(self, name: str, at: datetime) -> None:
        """The job's last run is `at` (in the caller's transaction)."""
        run = await self.session.get(JobRun, name)
        if run is None:
            self.session.add(JobRun(name=name, last_run_at=at))
        else:
            run.last_run_at = at
