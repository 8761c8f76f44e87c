"""Lead intake API: idempotency keys and the round-robin assignment cursor."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, select
from sqlalchemy.engine import CursorResult

from storage.models.intake import AssignmentCursor, IdempotencyKey
from storage.repositories.base import Repo


class IntakeRepo(Repo):
    async def idempotency_key(self, source: str, key: str) -> IdempotencyKey | None:
        return await self.session.get(IdempotencyKey, (source, key))

    async def purge_keys_before(self, when: datetime) -> int:
        """Delete idempotency keys created before `when`; returns how many."""
        result = cast(
            CursorResult[Any],
            await self.session.execute(
                delete(IdempotencyKey).where(IdempotencyKey.created_at < when)
            ),
        )
        return int(result.rowcount or 0)

    async def lock_cursor(self, name: str, now: datetime) -> AssignmentCursor:
        """The cursor row, created if missing, locked until the transaction ends."""
        values = {"name": name, "last_employee_id": None, "updated_at": now}
        await self.insert_or_ignore(cast(Table, AssignmentCursor.__table__), values)
        locked = (
            select(AssignmentCursor)
            .where(AssignmentCursor.name == name)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return (await self.session.scalars(locked)).one()
