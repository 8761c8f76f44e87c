"""Repositories: every select and update, one module per aggregate. They never commit.

``uow.repo`` is a :class:`Repositories`: one attribute per area (``uow.repo.deals.page``,
``uow.repo.tasks.mine``...), plus ``get``/``add`` for plain loads and inserts.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Base
from storage.repositories.analytics import AnalyticsRepo
from storage.repositories.base import M, Repo
from storage.repositories.business import BusinessRepo
from storage.repositories.clients import ContactRepo
from storage.repositories.deals import DealRepo, HistoryRepo
from storage.repositories.employees import EmployeeRepo
from storage.repositories.imports import ImportRepo
from storage.repositories.installments import InstallmentRepo
from storage.repositories.intake import IntakeRepo
from storage.repositories.leads import LeadRepo
from storage.repositories.outbox import OutboxRepo
from storage.repositories.pipelines import CatalogRepo, PipelineRepo
from storage.repositories.system import SystemRepo
from storage.repositories.tasks import TaskRepo
from storage.repositories.team import TeamRepo
from storage.repositories.timeline import TimelineRepo

__all__ = ["Repo", "Repositories"]


class Repositories:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.employees = EmployeeRepo(session)
        self.team = TeamRepo(session)
        self.pipelines = PipelineRepo(session)
        self.catalog = CatalogRepo(session)
        self.leads = LeadRepo(session)
        self.contacts = ContactRepo(session)
        self.deals = DealRepo(session)
        self.history = HistoryRepo(session)
        self.tasks = TaskRepo(session)
        self.installments = InstallmentRepo(session)
        self.outbox = OutboxRepo(session)
        self.analytics = AnalyticsRepo(session)
        self.imports = ImportRepo(session)
        self.intake = IntakeRepo(session)
        self.system = SystemRepo(session)
        self.timeline = TimelineRepo(session)
        self.business = BusinessRepo(session)

    async def get(self, model: type[M], ident: Any) -> M | None:
        return await self.session.get(model, ident)

    def add(self, obj: Base) -> None:
        self.session.add(obj)
