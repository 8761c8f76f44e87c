"""Leads: first requests from a channel."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from storage.models import Lead
from storage.repositories.base import Repo, same_phone_or_email


class LeadRepo(Repo):
    async def duplicates(self, phone: str | None, email: str | None) -> Sequence[Lead]:
        match = same_phone_or_email(Lead.phone, Lead.email, phone, email)
        if match is None:
            return []
        rows = await self.session.scalars(select(Lead).where(match).order_by(Lead.id))
        return rows.all()
