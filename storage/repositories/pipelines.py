"""Pipelines as data: pipelines and their stages, and the catalogs that go with them
(loss reasons, lead qualification questions)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select

from storage.models import Deal, Lead, LossReason, Pipeline, QualificationQuestion, Stage
from storage.repositories.base import Repo


class PipelineRepo(Repo):
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

    async def rotting_stages(self) -> Sequence[Stage]:
        """Live active stages with a stale limit (``rot_after_days``)."""
        rows = await self.session.scalars(
            select(Stage).where(
                Stage.rot_after_days.is_not(None),
                Stage.archived.is_(False),
                Stage.kind == "active",
            )
        )
        return list(rows)

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


class CatalogRepo(Repo):
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
