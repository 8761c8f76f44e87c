"""Clients' own Telegram accounts (issue 25): links to contacts and the invite links."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select

from storage.enums import ActivityKind
from storage.models import Activity, ClientInvite, ClientLink
from storage.repositories.base import Repo


class ClientLinkRepo(Repo):
    async def of_telegram(self, telegram_id: int) -> Sequence[ClientLink]:
        """Every contact linked to this Telegram account (empty: not a client)."""
        rows = await self.session.scalars(
            select(ClientLink).where(ClientLink.telegram_id == telegram_id).order_by(ClientLink.id)
        )
        return rows.all()

    async def of_contact(self, contact_id: int) -> ClientLink | None:
        return await self.session.scalar(
            select(ClientLink).where(ClientLink.contact_id == contact_id)
        )

    async def invite_by_hash(self, token_hash: str) -> ClientInvite | None:
        return await self.session.scalar(
            select(ClientInvite).where(ClientInvite.token_hash == token_hash)
        )

    async def claim_invite(self, invite_id: int, at: datetime, telegram_id: int) -> bool:
        """Mark the invite used by `telegram_id`, if nobody used it yet (one-time even when
        two people open the link at once). False: it was used already."""
        return await self.claim_unused(
            ClientInvite, invite_id, used_at=at, used_by_telegram_id=telegram_id
        )

    # --- part B: the client's answers (issue 25) ---------------------------------------------

    async def answers(self, deal_id: int) -> Sequence[Activity]:
        """The client's answers on a deal (timeline ``client_in`` rows), oldest first."""
        rows = await self.session.scalars(
            select(Activity)
            .where(Activity.deal_id == deal_id, Activity.kind == ActivityKind.CLIENT_IN.value)
            .order_by(Activity.at, Activity.id)
        )
        return rows.all()
