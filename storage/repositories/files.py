"""Voronka's copies of the files on the timeline (services/files.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple, cast

from sqlalchemy import Table, func, or_, select, update

from storage.enums import MESSAGE_KINDS
from storage.models import Activity, StoredFile
from storage.repositories.base import Repo


class NewFile(NamedTuple):
    activity_id: int
    file_id: str
    file_unique_id: str | None
    media_type: str


class StoredFileRepo(Repo):
    async def watermark(self) -> int:
        """The newest activity already looked at (0 when none)."""
        return int(await self.session.scalar(select(func.max(StoredFile.activity_id))) or 0)

    async def new_files(self, after: int, limit: int) -> list[NewFile]:
        """Timeline rows with a file, after activity `after`, oldest first."""
        rows = await self.session.execute(
            select(Activity.id, Activity.file_id, Activity.file_unique_id, Activity.media_type)
            .where(Activity.id > after, Activity.file_id.is_not(None))
            .order_by(Activity.id)
            .limit(limit)
        )
        return [NewFile(i, str(f), u, str(m)) for i, f, u, m in rows.all()]

    async def add_pending(self, item: NewFile) -> bool:
        """Queue the file once per key; a file seen again moves the watermark only."""
        key = item.file_unique_id or item.file_id
        added = await self.insert_or_ignore(
            cast(Table, StoredFile.__table__),
            {
                "key": key,
                "file_id": item.file_id,
                "media_type": item.media_type,
                "activity_id": item.activity_id,
                "state": "pending",
                "attempts": 0,
            },
            ["key"],
        )
        if not added:
            await self.session.execute(
                update(StoredFile)
                .where(StoredFile.key == key, StoredFile.activity_id < item.activity_id)
                .values(activity_id=item.activity_id)
            )
        return added

    async def due(self, now: datetime, limit: int) -> Sequence[StoredFile]:
        rows = await self.session.scalars(
            select(StoredFile)
            .where(
                StoredFile.state == "pending",
                or_(StoredFile.next_try_at.is_(None), StoredFile.next_try_at <= now),
            )
            .order_by(StoredFile.id)
            .limit(limit)
        )
        return rows.all()

    async def copy_of(self, deal_id: int, file_id: str, *, with_messages: bool) -> str | None:
        """The SHA-256 of the stored copy of a file on this deal's timeline, if there is one
        (`with_messages` False: not of a file a client sent in a chat)."""
        key = func.coalesce(Activity.file_unique_id, Activity.file_id)
        cond = [Activity.deal_id == deal_id, Activity.file_id == file_id]
        if not with_messages:
            cond.append(Activity.kind.not_in([k.value for k in MESSAGE_KINDS]))
        return await self.session.scalar(
            select(StoredFile.sha256)
            .join(Activity, StoredFile.key == key)
            .where(*cond, StoredFile.state == "stored")
            .limit(1)
        )
