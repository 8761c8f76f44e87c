"""What a leaders' digest counts in a window ``[since, until)``: new leads, deals that entered
won or refusal stages (with their reasons), overdue tasks. ``uow.repo.digests``; the digest
itself is services/reports/digests.py.

``manager_id`` None means everyone; otherwise only that manager's leads, deals and tasks.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select

from storage.enums import StageKind
from storage.models import Deal, Lead, LossReason, Stage, StageHistory, Task
from storage.repositories.base import Repo
from storage.repositories.tasks import OPEN_TASK_STATES

# A deal that entered a stage: id, title, amount, manager id, the stage's kind, the reason.
MoveRow = tuple[int, str, int | None, int | None, str, LossReason | None]
# An overdue task: id, title, assignee id, due at.
OverdueRow = tuple[int, str, int | None, datetime | None]


def _mine(column: Any, manager_id: int | None) -> list[ColumnElement[bool]]:
    return [] if manager_id is None else [column == manager_id]


class DigestRepo(Repo):
    async def _count(self, where: Sequence[ColumnElement[bool]]) -> int:
        return int(await self.session.scalar(select(func.count()).where(*where)) or 0)

    @staticmethod
    def _new_leads(
        since: datetime, until: datetime, manager_id: int | None
    ) -> list[ColumnElement[bool]]:
        return [
            Lead.created_at >= since,
            Lead.created_at < until,
            *_mine(Lead.manager_id, manager_id),
        ]

    async def lead_count(self, since: datetime, until: datetime, manager_id: int | None) -> int:
        """Leads that came in in the window."""
        return await self._count(self._new_leads(since, until, manager_id))

    async def first_leads(
        self, since: datetime, until: datetime, manager_id: int | None, limit: int
    ) -> list[tuple[int, str, str]]:
        """The window's first leads: (id, name, source)."""
        rows = await self.session.execute(
            select(Lead.id, Lead.name, Lead.source)
            .where(*self._new_leads(since, until, manager_id))
            .order_by(Lead.created_at, Lead.id)
            .limit(limit)
        )
        return [(int(i), str(n), str(s)) for i, n, s in rows]

    async def moves(
        self,
        since: datetime,
        until: datetime,
        kinds: Sequence[str],
        manager_id: int | None,
        limit: int,
    ) -> tuple[int, int, list[MoveRow]]:
        """Deals that entered a stage of these kinds in the window: how many, their money,
        and the biggest `limit` of them. A deal's copy in Installment control (it has a
        parent deal) is not a sale of its own: its payoff is not counted as a win."""
        h = StageHistory
        where = [
            h.deal_id.is_not(None),
            h.at >= since,
            h.at < until,
            Stage.kind.in_([str(k) for k in kinds]),
            *_mine(Deal.manager_id, manager_id),
        ]
        if StageKind.WON in kinds:
            where.append(Deal.parent_deal_id.is_(None))
        joined = (
            select(func.count(), func.coalesce(func.sum(Deal.amount), 0))
            .select_from(h)
            .join(Stage, Stage.id == h.to_stage_id)
            .join(Deal, Deal.id == h.deal_id)
            .where(*where)
        )
        count, amount = (await self.session.execute(joined)).one()
        rows = await self.session.execute(
            select(Deal.id, Deal.title, Deal.amount, Deal.manager_id, Stage.kind, LossReason)
            .select_from(h)
            .join(Stage, Stage.id == h.to_stage_id)
            .join(Deal, Deal.id == h.deal_id)
            .outerjoin(LossReason, LossReason.id == h.reason_id)
            .where(*where)
            .order_by(func.coalesce(Deal.amount, 0).desc(), h.at, h.id)
            .limit(limit)
        )
        items: list[MoveRow] = [
            (int(deal_id), str(title), money, manager, str(kind), reason)
            for deal_id, title, money, manager, kind, reason in rows
        ]
        return int(count or 0), int(amount or 0), items

    async def refusal_reasons(
        self, since: datetime, until: datetime, manager_id: int | None
    ) -> list[tuple[int | None, int, int]]:
        """Refusals (lost, or parked in conditional refusal) in the window per reason:
        (reason id or None, how many, their money)."""
        h = StageHistory
        rows = await self.session.execute(
            select(h.reason_id, func.count(), func.coalesce(func.sum(Deal.amount), 0))
            .select_from(h)
            .join(Stage, Stage.id == h.to_stage_id)
            .join(Deal, Deal.id == h.deal_id)
            .where(
                h.deal_id.is_not(None),
                h.at >= since,
                h.at < until,
                Stage.kind.in_([StageKind.LOST.value, StageKind.FROZEN.value]),
                *_mine(Deal.manager_id, manager_id),
            )
            .group_by(h.reason_id)
        )
        return [(reason_id, int(n), int(amount or 0)) for reason_id, n, amount in rows]

    async def overdue_tasks(
        self, since: datetime, until: datetime, manager_id: int | None, limit: int
    ) -> tuple[int, int, list[OverdueRow]]:
        """Open tasks due before `until`: how many, how many of them fell due in the window,
        and the `limit` oldest (assigned to the manager, when one is given)."""
        where = [
            Task.status.in_(OPEN_TASK_STATES),
            Task.due_at < until,
            *_mine(Task.assignee_id, manager_id),
        ]
        total = await self._count(where)
        new = await self._count([*where, Task.due_at >= since])
        rows = await self.session.execute(
            select(Task.id, Task.title, Task.assignee_id, Task.due_at)
            .where(*where)
            .order_by(Task.due_at, Task.id)
            .limit(limit)
        )
        return total, new, [(int(i), str(t), a, d) for i, t, a, d in rows]
