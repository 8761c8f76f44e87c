"""Installments: plans, their dues and payments; overdue dues and receivables.
``uow.repo.installments``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import and_, case, func, select

from storage.models import Deal, InstallmentDue, InstallmentPlan, Payment
from storage.repositories.base import Repo


class InstallmentRepo(Repo):
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
