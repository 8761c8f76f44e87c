"""Team access: invites and refused access attempts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select

from storage.models import AccessAttempt, Invite
from storage.repositories.base import Repo


class TeamRepo(Repo):
    async def invite_by_token(self, token: str) -> Invite | None:
        return await self.session.scalar(select(Invite).where(Invite.token == token))

    async def claim_invite(self, invite_id: int, at: datetime, employee_id: int) -> bool:
        """Mark the invite used by `employee_id`, if nobody used it yet (one-time even when
        two people open the link at once). False: it was used already."""
        return await self.claim_unused(Invite, invite_id, used_at=at, used_by_id=employee_id)

    async def last_attempt(self, telegram_id: int) -> AccessAttempt | None:
        return await self.session.scalar(
            select(AccessAttempt)
            .where(AccessAttempt.telegram_id == telegram_id)
            .order_by(AccessAttempt.at.desc())
            .limit(1)
        )

    async def recent_attempts(self, limit: int) -> Sequence[AccessAttempt]:
        rows = await self.session.scalars(
            select(AccessAttempt).order_by(AccessAttempt.at.desc()).limit(limit)
        )
        return rows.all()
