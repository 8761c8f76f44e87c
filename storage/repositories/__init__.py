"""Repositories: every select and update, one module per aggregate. They never commit.

``uow.repo`` is a :class:`Repositories`: one attribute per area (``uow.repo.deals.page``,
``uow.repo.tasks.mine``...), plus ``get``/``add`` for plain loads and inserts.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Base
from storage.repositories.analytics import AnalyticsRepo
from storage.repositories.base import M, Repo
from storage.repositories.board import BoardRepo
from storage.repositories.business import BusinessRepo
from storage.repositories.client_links import ClientLinkRepo
from storage.repositories.clients import ContactRepo
from storage.repositories.deals import DealRepo, HistoryRepo
from storage.repositories.digests import DigestRepo
from storage.repositories.employees import EmployeeRepo
from storage.repositories.export import ExportRepo
from storage.repositories.files import StoredFileRepo
from storage.repositories.fulfilment import FulfilmentRepo
from storage.repositories.imports import ImportRepo
from storage.repositories.installments import InstallmentRepo
from storage.repositories.intake import IntakeRepo
from storage.repositories.leads import LeadRepo
from storage.repositories.outbox import OutboxRepo
from storage.repositories.pipelines import CatalogRepo, PipelineRepo
from storage.repositories.plans import PlanRepo
from storage.repositories.response import ResponseRepo
from storage.repositories.system import SystemRepo
from storage.repositories.tasks import TaskRepo
from storage.repositories.team import TeamRepo
from storage.repositories.timeline import TimelineRepo

__all__ = ["Repo", "Repositories"]


class Repositories:
    """Each area's repository is made on first use (most units of work touch one or two)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @cached_property
    def employees(self) -> EmployeeRepo:
        return EmployeeRepo(self.session)

    @cached_property
    def team(self) -> TeamRepo:
        return TeamRepo(self.session)

    @cached_property
    def pipelines(self) -> PipelineRepo:
        return PipelineRepo(self.session)

    @cached_property
    def catalog(self) -> CatalogRepo:
        return CatalogRepo(self.session)

    @cached_property
    def leads(self) -> LeadRepo:
        return LeadRepo(self.session)

    @cached_property
    def contacts(self) -> ContactRepo:
        return ContactRepo(self.session)

    @cached_property
    def client_links(self) -> ClientLinkRepo:
        return ClientLinkRepo(self.session)

    @cached_property
    def deals(self) -> DealRepo:
        return DealRepo(self.session)

    @cached_property
    def history(self) -> HistoryRepo:
        return HistoryRepo(self.session)

    @cached_property
    def files(self) -> StoredFileRepo:
        return StoredFileRepo(self.session)

    @cached_property
    def tasks(self) -> TaskRepo:
        return TaskRepo(self.session)

    @cached_property
    def installments(self) -> InstallmentRepo:
        return InstallmentRepo(self.session)

    @cached_property
    def outbox(self) -> OutboxRepo:
        return OutboxRepo(self.session)

    @cached_property
    def analytics(self) -> AnalyticsRepo:
        return AnalyticsRepo(self.session)

    @cached_property
    def plans(self) -> PlanRepo:
        return PlanRepo(self.session)

    @cached_property
    def digests(self) -> DigestRepo:
        return DigestRepo(self.session)

    @cached_property
    def export(self) -> ExportRepo:
        return ExportRepo(self.session)

    @cached_property
    def imports(self) -> ImportRepo:
        return ImportRepo(self.session)

    @cached_property
    def intake(self) -> IntakeRepo:
        return IntakeRepo(self.session)

    @cached_property
    def response(self) -> ResponseRepo:
        return ResponseRepo(self.session)

    @cached_property
    def system(self) -> SystemRepo:
        return SystemRepo(self.session)

    @cached_property
    def board(self) -> BoardRepo:
        return BoardRepo(self.session)

    @cached_property
    def timeline(self) -> TimelineRepo:
        return TimelineRepo(self.session)

    @cached_property
    def business(self) -> BusinessRepo:
        return BusinessRepo(self.session)

    @cached_property
    def fulfilment(self) -> FulfilmentRepo:
        return FulfilmentRepo(self.session)

    async def get(self, model: type[M], ident: Any) -> M | None:
        return await self.session.get(model, ident)

    def add(self, obj: Base) -> None:
        self.session.add(obj)
