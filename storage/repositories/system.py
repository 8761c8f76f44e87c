"""Bookkeeping: processed Telegram updates and last runs of scheduled jobs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete

from storage.models import ProcessedUpdate
from storage.repositories.base import Repo


class SystemRepo(Repo):
    async def seen(self, update_id: int) -> bool:
        return await self.session.get(ProcessedUpdate, update_id) is not None

    async def delete_before(self, when: datetime) -> int:
        result = await self.session.execute(
            delete(ProcessedUpdate).where(ProcessedUpdate.at < when)
        )
        return int(getattr(result, "rowcount", 0) or 0)
