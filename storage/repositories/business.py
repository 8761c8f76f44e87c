"""Telegram Business: connections, client chats, and finding who a client is."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from storage.models import BusinessChat, BusinessConnection, Contact, Deal, Lead
from storage.repositories.base import Repo


class BusinessRepo(Repo):
    async def connection(self, connection_id: str) -> BusinessConnection | None:
        return await self.session.get(BusinessConnection, connection_id)

    async def chat(self, employee_id: int, chat_id: int) -> BusinessChat | None:
        return await self.session.scalar(
            select(BusinessChat).where(
                BusinessChat.employee_id == employee_id, BusinessChat.chat_id == chat_id
            )
        )

    async def chats_of_deal(self, deal_id: int) -> Sequence[BusinessChat]:
        rows = await self.session.scalars(
            select(BusinessChat)
            .where(BusinessChat.deal_id == deal_id)
            .order_by(BusinessChat.last_client_message_at.desc(), BusinessChat.id.desc())
        )
        return rows.all()

    async def contact_by_telegram(self, telegram_id: int) -> Contact | None:
        return await self.session.scalar(
            select(Contact).where(Contact.telegram_id == telegram_id).order_by(Contact.id).limit(1)
        )

    async def open_deal_of_contact(self, contact_id: int) -> Deal | None:
        """The contact's newest open deal."""
        return await self.session.scalar(
            select(Deal)
            .where(Deal.contact_id == contact_id, Deal.closed_at.is_(None))
            .order_by(Deal.updated_at.desc(), Deal.id.desc())
            .limit(1)
        )

    async def deal_of_contact(self, contact_id: int) -> Deal | None:
        """The contact's newest open deal, else their newest deal."""
        return await self.session.scalar(
            select(Deal)
            .where(Deal.contact_id == contact_id)
            .order_by(Deal.closed_at.is_(None).desc(), Deal.updated_at.desc(), Deal.id.desc())
            .limit(1)
        )

    async def lead(self, lead_id: int) -> Lead | None:
        return await self.session.get(Lead, lead_id)
