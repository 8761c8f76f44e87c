"""Tasks: open work per deal and per person, measurer loads, escalation, follow-up
scans. ``uow.repo.tasks``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, case, func, or_, select

from storage.enums import OPEN_TASK_STATUSES, StageKind, TaskKind, TaskStatus
from storage.models import Activity, Deal, Pipeline, Stage, Task
from storage.repositories.base import Repo

OPEN_TASK_STATES = tuple(s.value for s in OPEN_TASK_STATUSES)  # storage.enums defines "open"
NOT_CANCELLED = (
    TaskStatus.OPEN.value,
    TaskStatus.ACCEPTED.value,
    TaskStatus.IN_PROGRESS.value,
    TaskStatus.DONE.value,
)


class TaskRepo(Repo):
    async def open_for_deal(self, deal_id: int, kind: str | None = None) -> list[Task]:
        stmt = select(Task).where(Task.deal_id == deal_id, Task.status.in_(OPEN_TASK_STATES))
        if kind is not None:
            stmt = stmt.where(Task.kind == kind)
        return list((await self.session.scalars(stmt.order_by(Task.id))).all())

    async def of_deal(self, deal_id: int, kind: str) -> list[Task]:
        """Every task of `kind` on the deal, open or not, oldest first."""
        stmt = select(Task).where(Task.deal_id == deal_id, Task.kind == kind).order_by(Task.id)
        return list((await self.session.scalars(stmt)).all())

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
        self,
        measurer_ids: Sequence[int],
        start: datetime,
        end: datetime,
        kind: str = TaskKind.MEASURE.value,
    ) -> dict[int, int]:
        """Field jobs of `kind` (measurements, installations) per person in [start, end)
        (declined and cancelled don't count)."""
        if not measurer_ids:
            return {}
        rows = await self.session.execute(
            select(Task.assignee_id, func.count())
            .where(
                Task.kind == kind,
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

    async def attachment_count(self, task_id: int) -> int:
        """Files attached through this task (a measurement's photos and documents)."""
        n = await self.session.scalar(
            select(func.count())
            .select_from(Activity)
            .where(Activity.task_id == task_id, Activity.media_type.is_not(None))
        )
        return int(n or 0)

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
