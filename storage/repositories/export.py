"""What ``/export`` reads: the deals in scope and their stage history, streamed a database
partition at a time (``yield_per``), and the small catalogs that name their ids.
``uow.repo.export``; the workbook is written by services/reports/export.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select

from storage.models import Company, Contact, Deal, Employee, LossReason, Pipeline, Stage
from storage.models import StageHistory as History
from storage.repositories.base import Repo


@dataclass(frozen=True)
class DealScope:
    """Which deals: in one pipeline, of one manager, created in ``[start, end)`` (None: any)."""

    pipeline_id: int | None = None
    manager_id: int | None = None
    created: tuple[datetime, datetime] | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if self.pipeline_id is not None:
            conditions.append(Deal.pipeline_id == self.pipeline_id)
        if self.manager_id is not None:
            conditions.append(Deal.manager_id == self.manager_id)
        if self.created is not None:
            start, end = self.created
            conditions += [Deal.created_at >= start, Deal.created_at < end]
        return conditions


@dataclass(frozen=True)
class ExportNames:
    """The small catalogs, loaded once (never a query per row); configured names come in
    both languages (name, name_en) for the service to pick the reader's."""

    pipelines: dict[int, tuple[str, str | None]]
    stages: dict[int, tuple[str, str | None, str]]  # id -> (name, name_en, kind)
    employees: dict[int, str]
    reasons: dict[int, tuple[str, str | None]]


class ExportRepo(Repo):
    async def deal_count(self, scope: DealScope) -> int:
        stmt = select(func.count()).select_from(Deal).where(*scope.conditions())
        return int(await self.session.scalar(stmt) or 0)

    async def change_count(self, scope: DealScope) -> int:
        """Stage changes of the deals in scope."""
        stmt = (
            select(func.count())
            .select_from(History)
            .join(Deal, Deal.id == History.deal_id)
            .where(*scope.conditions())
        )
        return int(await self.session.scalar(stmt) or 0)

    async def deal_rows(self, scope: DealScope, chunk: int) -> AsyncIterator[Sequence[Any]]:
        """The deals by id, `chunk` rows at a time: id, title, pipeline id, stage id, manager
        id, amount, created, closed, loss reason id, with installments, parent deal id, the
        contact's name and phone, the company's name."""
        stmt = (
            select(
                Deal.id,
                Deal.title,
                Deal.pipeline_id,
                Deal.stage_id,
                Deal.manager_id,
                Deal.amount,
                Deal.created_at,
                Deal.closed_at,
                Deal.loss_reason_id,
                Deal.with_installments,
                Deal.parent_deal_id,
                Contact.name,
                Contact.phone,
                Company.name,
            )
            .outerjoin(Contact, Contact.id == Deal.contact_id)
            .outerjoin(Company, Company.id == Deal.company_id)
            .where(*scope.conditions())
            .order_by(Deal.id)
        )
        stream = await self.session.stream(stmt.execution_options(yield_per=chunk))
        async for part in stream.partitions():
            yield part

    async def change_rows(self, scope: DealScope, chunk: int) -> AsyncIterator[Sequence[Any]]:
        """The deals' stage changes in order, `chunk` rows at a time: deal id, at, from stage
        id, to stage id, actor id, reason id, comment."""
        h = History
        stmt = (
            select(
                h.deal_id, h.at, h.from_stage_id, h.to_stage_id, h.actor_id, h.reason_id, h.comment
            )
            .join(Deal, Deal.id == h.deal_id)
            .where(*scope.conditions())
            .order_by(h.deal_id, h.at, h.id)
        )
        stream = await self.session.stream(stmt.execution_options(yield_per=chunk))
        async for part in stream.partitions():
            yield part

    async def names(self) -> ExportNames:
        session = self.session
        return ExportNames(
            pipelines={
                pid: (name, name_en)
                for pid, name, name_en in await session.execute(
                    select(Pipeline.id, Pipeline.name, Pipeline.name_en)
                )
            },
            stages={
                sid: (name, name_en, kind)
                for sid, name, name_en, kind in await session.execute(
                    select(Stage.id, Stage.name, Stage.name_en, Stage.kind)
                )
            },
            employees={
                eid: name for eid, name in await session.execute(select(Employee.id, Employee.name))
            },
            reasons={
                rid: (name, name_en)
                for rid, name, name_en in await session.execute(
                    select(LossReason.id, LossReason.name, LossReason.name_en)
                )
            },
        )
