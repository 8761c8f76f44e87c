"""Order fulfilment's reports (issue 24): lead times, crews' jobs, claims per crew."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select

from storage.enums import TaskKind, TaskStatus
from storage.models import Deal, StageHistory, Task
from storage.repositories.base import Repo


class FulfilmentRepo(Repo):
    async def first_entries(
        self, stage_id: int, deal_ids: Sequence[int] | None = None
    ) -> dict[int, datetime]:
        """{deal id: its first entry into the stage} (of the given deals, or of all)."""
        stmt = (
            select(StageHistory.deal_id, func.min(StageHistory.at))
            .where(StageHistory.to_stage_id == stage_id, StageHistory.deal_id.is_not(None))
            .group_by(StageHistory.deal_id)
        )
        if deal_ids is not None:
            if not deal_ids:
                return {}
            stmt = stmt.where(StageHistory.deal_id.in_(list(deal_ids)))
        return {int(d): at for d, at in await self.session.execute(stmt) if d is not None}

    async def parents(self, deal_ids: Sequence[int]) -> dict[int, tuple[int | None, datetime]]:
        """{deal id: (the deal it was made from, its creation time)}."""
        if not deal_ids:
            return {}
        rows = await self.session.execute(
            select(Deal.id, Deal.parent_deal_id, Deal.created_at).where(Deal.id.in_(list(deal_ids)))
        )
        return {int(i): (p, at) for i, p, at in rows}

    async def past_date_in_stage(
        self, stage_id: int, field: str, now: datetime, limit: int = 500
    ) -> Sequence[Deal]:
        """Deals at the stage whose date `field` (production_at, delivery_at) has passed."""
        column = getattr(Deal, field)
        rows = await self.session.scalars(
            select(Deal)
            .where(Deal.stage_id == stage_id, column.is_not(None), column < now)
            .order_by(Deal.id)
            .limit(limit)
        )
        return rows.all()

    async def crew_jobs(self, start: datetime, end: datetime) -> list[tuple[int, str, int]]:
        """(installer id, status, jobs) of installation jobs due in [start, end), cancelled
        and declined left out."""
        rows = await self.session.execute(
            select(Task.assignee_id, Task.status, func.count())
            .where(
                Task.kind == TaskKind.INSTALL.value,
                Task.assignee_id.is_not(None),
                Task.status.not_in([TaskStatus.CANCELLED.value, TaskStatus.DECLINED.value]),
                Task.due_at >= start,
                Task.due_at < end,
            )
            .group_by(Task.assignee_id, Task.status)
        )
        return [(int(a), str(s), int(n)) for a, s, n in rows if a is not None]

    async def claims_with_crews(
        self, claims_pipeline_id: int, start: datetime, end: datetime
    ) -> list[tuple[int, int]]:
        """(claim id, installer id) for claims made in [start, end): every installer who
        finished a job on the order the claim is about (once each)."""
        claim = (
            select(Deal.id, Deal.parent_deal_id)
            .where(
                Deal.pipeline_id == claims_pipeline_id,
                Deal.parent_deal_id.is_not(None),
                Deal.created_at >= start,
                Deal.created_at < end,
            )
            .subquery()
        )
        rows = await self.session.execute(
            select(claim.c.id, Task.assignee_id)
            .join(Task, Task.deal_id == claim.c.parent_deal_id)
            .where(
                Task.kind == TaskKind.INSTALL.value,
                Task.status == TaskStatus.DONE.value,
                Task.assignee_id.is_not(None),
            )
            .distinct()
        )
        return [(int(c), int(a)) for c, a in rows]
