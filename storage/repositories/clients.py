"""Clients: companies and their contacts."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from storage.models import Contact
from storage.repositories.base import Repo, same_phone_or_email


class ContactRepo(Repo):
    async def duplicates(self, phone: str | None, email: str | None) -> Sequence[Contact]:
        match = same_phone_or_email(Contact.phone, Contact.email, phone, email)
        if match is None:
            return []
        rows = await self.session.scalars(select(Contact).where(match).order_by(Contact.id))
        return rows.all()
