"""Employees: who works here, by Telegram id and by role."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from storage.models import Employee
from storage.repositories.base import Repo


class EmployeeRepo(Repo):
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
