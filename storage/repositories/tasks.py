"""Queries of the tasks / reminders / installments area. They never commit.

Used as ``TaskQueries(uow.session)`` and ``InstallmentQueries(uow.session)`` by services.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.enums import StageKind, TaskKind, TaskStatus
from storage.models import (
    Activity,
    Deal,
    InstallmentDue,
    InstallmentPlan,
    Payment,
    Pipeline,
    Stage,
    Task,
)

OPEN_TASK_STATES = (TaskStatus.OPEN.value, TaskStatus.ACCEPTED.value, TaskStatus.IN_PROGRESS.value)
NOT_CANCELLED = (
    TaskStatus.OPEN.value,
    TaskStatus.ACCEPTED.value,
    TaskStatus.IN_PROGRESS.value,
    TaskStatus.DONE.value,
)


class TaskQueries:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def mine(
        self,
        employee_id: int,
        roles: Sequence[str],
        *,
        due_before: datetime | None = None,
        due_from: datetime | None = None,
        include_undated: bool = False,
        limit: int = 50,
    ) -> Sequence[Task]:
        """Open tasks assigned to the person or to one of their roles (nobody picked yet)."""
        whose = or_(
            Task.assignee_id == employee_id,
            and_(Task.assignee_id.is_(None), Task.assignee_role.in_(list(roles) or [""])),
        )
        conds = [whose, Task.status.in_(OPEN_TASK_STATES)]
        window = []
        if due_before is not None:
            window.append(Task.due_at < due_before)
        if due_from is not None:
            window.append(Task.due_at >= due_from)
        if window:
            dated = and_(*window)
            conds.append(or_(dated, Task.due_at.is_(None)) if include_undated else dated)
        stmt = (
            select(Task)
            .where(*conds)
            .order_by(Task.due_at.is_(None), Task.due_at, Task.id)
            .limit(limit)
        )
        return (await self.session.scalars(stmt)).all()

    async def measurer_loads(
        self, measurer_ids: Sequence[int], start: datetime, end: datetime
    ) -> dict[int, int]:
        """Measurements per measurer in [start, end) (declined and cancelled don't count)."""
        if not measurer_ids:
            return {}
        rows = await self.session.execute(
            select(Task.assignee_id, func.count())
            .where(
                Task.kind == TaskKind.MEASURE.value,
                Task.assignee_id.in_(list(measurer_ids)),
                Task.status.in_(NOT_CANCELLED),
                Task.due_at >= start,
                Task.due_at < end,
            )
            .group_by(Task.assignee_id)
        )
        return {int(aid): int(n) for aid, n in rows if aid is not None}

    async def overdue_unescalated(self, cutoff: datetime, limit: int = 500) -> Sequence[Task]:
        stmt = (
            select(Task)
            .where(
                Task.status.in_(OPEN_TASK_STATES),
                Task.due_at.is_not(None),
                Task.due_at <= cutoff,
                Task.escalated_at.is_(None),
            )
            .order_by(Task.due_at, Task.id)
            .limit(limit)
        )
        return (await self.session.scalars(stmt)).all()

    async def last_declined_measure(self, deal_id: int) -> Task | None:
        return await self.session.scalar(
            select(Task)
            .where(
                Task.deal_id == deal_id,
                Task.kind == TaskKind.MEASURE.value,
                Task.status == TaskStatus.DECLINED.value,
            )
            .order_by(Task.done_at.desc(), Task.id.desc())
            .limit(1)
        )

    async def last_note(self, deal_id: int, kind: str) -> Activity | None:
        return await self.session.scalar(
            select(Activity)
            .where(Activity.deal_id == deal_id, Activity.kind == kind)
            .order_by(Activity.at.desc(), Activity.id.desc())
            .limit(1)
        )

    async def open_counts(
        self, assignee_ids: Sequence[int], due_before: datetime, now: datetime
    ) -> dict[int, tuple[int, int]]:
        """{assignee: (open tasks due before `due_before`, of which overdue at `now`)}."""
        if not assignee_ids:
            return {}
        overdue = func.sum(case((Task.due_at < now, 1), else_=0))
        rows = await self.session.execute(
            select(Task.assignee_id, func.count(), overdue)
            .where(
                Task.assignee_id.in_(list(assignee_ids)),
                Task.status.in_(OPEN_TASK_STATES),
                Task.due_at < due_before,
            )
            .group_by(Task.assignee_id)
        )
        return {int(aid): (int(n), int(late or 0)) for aid, n, late in rows if aid is not None}

    async def stale_deals(
        self,
        manager_ids: Sequence[int],
        cutoff: datetime,
        excluded_roles: Sequence[str],
        limit: int = 2000,
    ) -> Sequence[tuple[int, int, str, datetime]]:
        """(manager_id, deal_id, title, last_activity_at) of open deals in an active stage
        with no activity since `cutoff`, oldest first."""
        if not manager_ids:
            return []
        rows = await self.session.execute(
            select(Deal.manager_id, Deal.id, Deal.title, Deal.last_activity_at)
            .join(Stage, Stage.id == Deal.stage_id)
            .join(Pipeline, Pipeline.id == Deal.pipeline_id)
            .where(
                Deal.manager_id.in_(list(manager_ids)),
                Deal.closed_at.is_(None),
                Stage.kind == StageKind.ACTIVE.value,
                Pipeline.role.not_in(list(excluded_roles)),
                Deal.last_activity_at < cutoff,
            )
            .order_by(Deal.last_activity_at, Deal.id)
            .limit(limit)
        )
        return [(int(m), int(d), str(t), at) for m, d, t, at in rows if m is not None]

    async def deals_due_in_stage(
        self, stage_id: int, now: datetime, limit: int = 500
    ) -> Sequence[Deal]:
        stmt = (
            select(Deal)
            .where(
                Deal.stage_id == stage_id,
                Deal.next_contact_at.is_not(None),
                Deal.next_contact_at <= now,
            )
            .order_by(Deal.next_contact_at, Deal.id)
            .limit(limit)
        )
        return (await self.session.scalars(stmt)).all()


class InstallmentQueries:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def plan_for_deal(self, deal_id: int) -> InstallmentPlan | None:
        return await self.session.scalar(
            select(InstallmentPlan).where(InstallmentPlan.deal_id == deal_id)
        )

    async def plan_from_source(self, source_deal_id: int) -> InstallmentPlan | None:
        return await self.session.scalar(
            select(InstallmentPlan).where(InstallmentPlan.source_deal_id == source_deal_id)
        )

    async def dues(self, plan_id: int) -> list[InstallmentDue]:
        rows = await self.session.scalars(
            select(InstallmentDue)
            .where(InstallmentDue.plan_id == plan_id)
            .order_by(InstallmentDue.due_date, InstallmentDue.n)
        )
        return list(rows.all())

    async def payments(self, plan_id: int) -> list[Payment]:
        rows = await self.session.scalars(
            select(Payment).where(Payment.plan_id == plan_id).order_by(Payment.at, Payment.id)
        )
        return list(rows.all())

    async def newly_overdue(
        self, last_due_date: date, limit: int = 500
    ) -> Sequence[tuple[InstallmentDue, InstallmentPlan, Deal]]:
        """Unpaid dues whose date is on or before `last_due_date`, not yet reported, on open
        deals."""
        rows = await self.session.execute(
            select(InstallmentDue, InstallmentPlan, Deal)
            .join(InstallmentPlan, InstallmentPlan.id == InstallmentDue.plan_id)
            .join(Deal, Deal.id == InstallmentPlan.deal_id)
            .where(
                InstallmentDue.paid < InstallmentDue.amount,
                InstallmentDue.due_date <= last_due_date,
                InstallmentDue.overdue_notified_at.is_(None),
                Deal.closed_at.is_(None),
            )
            .order_by(InstallmentDue.due_date, InstallmentDue.id)
            .limit(limit)
        )
        return [(d, p, deal) for d, p, deal in rows]

    async def receivables(
        self, today: date, manager_id: int | None
    ) -> Sequence[tuple[int, str, int | None, int, int, int, date | None, date | None]]:
        """Per open installment deal: (deal_id, title, manager_id, total, paid, overdue,
        first overdue date, next due date). Aggregated in the database."""
        unpaid = InstallmentDue.amount - InstallmentDue.paid
        is_overdue = and_(
            InstallmentDue.due_date < today, InstallmentDue.paid < InstallmentDue.amount
        )
        is_open = and_(
            InstallmentDue.due_date >= today, InstallmentDue.paid < InstallmentDue.amount
        )
        overdue_sum = func.coalesce(func.sum(case((is_overdue, unpaid), else_=0)), 0)
        stmt = (
            select(
                Deal.id,
                Deal.title,
                Deal.manager_id,
                InstallmentPlan.total,
                func.coalesce(func.sum(InstallmentDue.paid), 0),
                overdue_sum,
                func.min(case((is_overdue, InstallmentDue.due_date), else_=None)),
                func.min(case((is_open, InstallmentDue.due_date), else_=None)),
            )
            .join(InstallmentPlan, InstallmentPlan.deal_id == Deal.id)
            .join(InstallmentDue, InstallmentDue.plan_id == InstallmentPlan.id)
            .where(Deal.closed_at.is_(None))
            .group_by(Deal.id, Deal.title, Deal.manager_id, InstallmentPlan.total)
            .order_by(Deal.id)
        )
        if manager_id is not None:
            stmt = stmt.where(Deal.manager_id == manager_id)
        rows = await self.session.execute(stmt)
        return [
            (
                int(did),
                str(title),
                mid,
                int(total),
                int(paid),
                int(over),
                _as_date(first_over),
                _as_date(next_due),
            )
            for did, title, mid, total, paid, over, first_over, next_due in rows
        ]


def _as_date(value: object) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])
