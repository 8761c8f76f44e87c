"""Repositories: typed queries over one session. They never commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    AccessAttempt,
    Activity,
    Base,
    Contact,
    Deal,
    Employee,
    Invite,
    Lead,
    LossReason,
    Pipeline,
    ProcessedUpdate,
    QualificationQuestion,
    Stage,
    StageHistory,
    Task,
)

M = TypeVar("M", bound=Base)


class _Repo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session


class EmployeeRepo(_Repo):
    async def by_telegram_id(self, telegram_id: int) -> Employee | None:
        return await self.session.scalar(
            select(Employee).where(Employee.telegram_id == telegram_id)
        )

    async def active(self) -> Sequence[Employee]:
        rows = await self.session.scalars(
            select(Employee).where(Employee.active.is_(True)).order_by(Employee.name)
        )
        return rows.all()

    async def all(self) -> Sequence[Employee]:
        rows = await self.session.scalars(select(Employee).order_by(Employee.id))
        return rows.all()

    async def with_role(self, role: str) -> list[Employee]:
        # roles is a JSON list: filter in Python, staff lists are small.
        return [e for e in await self.active() if role in e.roles]


class PipelineRepo(_Repo):
    async def all(self, *, include_archived: bool = False) -> Sequence[Pipeline]:
        stmt = select(Pipeline).order_by(Pipeline.position, Pipeline.id)
        if not include_archived:
            stmt = stmt.where(Pipeline.archived.is_(False))
        return (await self.session.scalars(stmt)).all()

    async def by_code(self, code: str) -> Pipeline | None:
        return await self.session.scalar(select(Pipeline).where(Pipeline.code == code))

    async def by_role(self, role: str) -> Pipeline | None:
        return await self.session.scalar(
            select(Pipeline)
            .where(Pipeline.role == role, Pipeline.archived.is_(False))
            .order_by(Pipeline.position)
            .limit(1)
        )

    async def stages(self, pipeline_id: int, *, include_archived: bool = False) -> Sequence[Stage]:
        stmt = select(Stage).where(Stage.pipeline_id == pipeline_id).order_by(Stage.position)
        if not include_archived:
            stmt = stmt.where(Stage.archived.is_(False))
        return (await self.session.scalars(stmt)).all()

    async def stage_by_code(self, pipeline_id: int, code: str) -> Stage | None:
        return await self.session.scalar(
            select(Stage).where(Stage.pipeline_id == pipeline_id, Stage.code == code)
        )

    async def occupancy(self, stage_ids: Sequence[int]) -> dict[int, int]:
        """How many deals and leads sit in each of these stages now."""
        counts: dict[int, int] = {}
        for model in (Deal, Lead):
            rows = await self.session.execute(
                select(model.stage_id, func.count())
                .where(model.stage_id.in_(stage_ids))
                .group_by(model.stage_id)
            )
            for stage_id, n in rows.all():
                counts[stage_id] = counts.get(stage_id, 0) + n
        return counts


class CatalogRepo(_Repo):
    async def loss_reasons(self, *, include_inactive: bool = False) -> Sequence[LossReason]:
        stmt = select(LossReason).order_by(LossReason.position, LossReason.id)
        if not include_inactive:
            stmt = stmt.where(LossReason.active.is_(True))
        return (await self.session.scalars(stmt)).all()

    async def loss_reason_by_code(self, code: str) -> LossReason | None:
        return await self.session.scalar(select(LossReason).where(LossReason.code == code))

    async def questions(self, *, include_inactive: bool = False) -> Sequence[QualificationQuestion]:
        stmt = select(QualificationQuestion).order_by(QualificationQuestion.position)
        if not include_inactive:
            stmt = stmt.where(QualificationQuestion.active.is_(True))
        return (await self.session.scalars(stmt)).all()

    async def question_by_code(self, code: str) -> QualificationQuestion | None:
        return await self.session.scalar(
            select(QualificationQuestion).where(QualificationQuestion.code == code)
        )


class LeadRepo(_Repo):
    async def duplicates(self, phone: str | None, email: str | None) -> Sequence[Lead]:
        conds = []
        if phone:
            conds.append(Lead.phone == phone)
        if email:
            conds.append(func.lower(Lead.email) == email.lower())
        if not conds:
            return []
        rows = await self.session.scalars(select(Lead).where(or_(*conds)).order_by(Lead.id))
        return rows.all()


class ContactRepo(_Repo):
    async def duplicates(self, phone: str | None, email: str | None) -> Sequence[Contact]:
        conds = []
        if phone:
            conds.append(Contact.phone == phone)
        if email:
            conds.append(func.lower(Contact.email) == email.lower())
        if not conds:
            return []
        rows = await self.session.scalars(select(Contact).where(or_(*conds)).order_by(Contact.id))
        return rows.all()


class DealRepo(_Repo):
    async def page(
        self,
        *,
        manager_id: int | None,
        pipeline_id: int | None,
        stage_id: int | None,
        open_only: bool,
        offset: int,
        limit: int,
    ) -> tuple[Sequence[Deal], int]:
        conds: list[Any] = []
        if manager_id is not None:
            conds.append(Deal.manager_id == manager_id)
        if pipeline_id is not None:
            conds.append(Deal.pipeline_id == pipeline_id)
        if stage_id is not None:
            conds.append(Deal.stage_id == stage_id)
        if open_only:
            conds.append(Deal.closed_at.is_(None))
        total = await self.session.scalar(select(func.count()).select_from(Deal).where(*conds))
        rows = await self.session.scalars(
            select(Deal)
            .where(*conds)
            .order_by(Deal.updated_at.desc(), Deal.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return rows.all(), int(total or 0)

    async def search(self, needle: str, manager_id: int | None, limit: int) -> Sequence[Deal]:
        escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = select(Deal).where(Deal.search_text.like(f"%{escaped}%", escape="\\"))
        if manager_id is not None:
            stmt = stmt.where(Deal.manager_id == manager_id)
        rows = await self.session.scalars(
            stmt.order_by(Deal.closed_at.is_not(None), Deal.updated_at.desc()).limit(limit)
        )
        return rows.all()

    async def by_contact_ids(self, contact_ids: Sequence[int]) -> Sequence[Deal]:
        if not contact_ids:
            return []
        rows = await self.session.scalars(
            select(Deal).where(Deal.contact_id.in_(contact_ids)).order_by(Deal.id)
        )
        return rows.all()


class HistoryRepo(_Repo):
    async def for_deal(self, deal_id: int) -> Sequence[StageHistory]:
        rows = await self.session.scalars(
            select(StageHistory)
            .where(StageHistory.deal_id == deal_id)
            .order_by(StageHistory.at, StageHistory.id)
        )
        return rows.all()

    async def for_lead(self, lead_id: int) -> Sequence[StageHistory]:
        rows = await self.session.scalars(
            select(StageHistory)
            .where(StageHistory.lead_id == lead_id)
            .order_by(StageHistory.at, StageHistory.id)
        )
        return rows.all()

    async def activities(self, deal_id: int, limit: int = 5) -> Sequence[Activity]:
        rows = await self.session.scalars(
            select(Activity)
            .where(Activity.deal_id == deal_id)
            .order_by(Activity.at.desc(), Activity.id.desc())
            .limit(limit)
        )
        return rows.all()


class TeamRepo(_Repo):
    async def invite_by_token(self, token: str) -> Invite | None:
        return await self.session.scalar(select(Invite).where(Invite.token == token))

    async def last_attempt(self, telegram_id: int) -> AccessAttempt | None:
        return await self.session.scalar(
            select(AccessAttempt)
            .where(AccessAttempt.telegram_id == telegram_id)
            .order_by(AccessAttempt.at.desc())
            .limit(1)
        )

    async def recent_attempts(self, limit: int) -> Sequence[AccessAttempt]:
        rows = await self.session.scalars(
            select(AccessAttempt).order_by(AccessAttempt.at.desc()).limit(limit)
        )
        return rows.all()


OPEN_TASK_STATES = ("open", "accepted", "in_progress")


class TaskRepo(_Repo):
    async def open_for_deal(self, deal_id: int, kind: str | None = None) -> list[Task]:
        stmt = select(Task).where(Task.deal_id == deal_id, Task.status.in_(OPEN_TASK_STATES))
        if kind is not None:
            stmt = stmt.where(Task.kind == kind)
        return list((await self.session.scalars(stmt.order_by(Task.id))).all())


class UpdateRepo(_Repo):
    async def seen(self, update_id: int) -> bool:
        return await self.session.get(ProcessedUpdate, update_id) is not None

    async def delete_before(self, when: datetime) -> int:
        result = await self.session.execute(
            delete(ProcessedUpdate).where(ProcessedUpdate.at < when)
        )
        return int(getattr(result, "rowcount", 0) or 0)


class Repositories:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.employees = EmployeeRepo(session)
        self.pipelines = PipelineRepo(session)
        self.catalog = CatalogRepo(session)
        self.leads = LeadRepo(session)
        self.contacts = ContactRepo(session)
        self.deals = DealRepo(session)
        self.history = HistoryRepo(session)
        self.tasks = TaskRepo(session)
        self.team = TeamRepo(session)
        self.updates = UpdateRepo(session)

    async def get(self, model: type[M], ident: Any) -> M | None:
        return await self.session.get(model, ident)

    def add(self, obj: Base) -> None:
        self.session.add(obj)
