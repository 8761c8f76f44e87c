"""Voronka's own copies of the files people send (services/files.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base


class StoredFile(Base):
    """A file seen on the timeline (an `activities` row with a Telegram file id) and its
    copy on disk: ``<FILES_DIR>/<sha256[:2]>/<sha256>``. `key` is Telegram's
    file_unique_id (the same file under every file id and bot), else the file id. Rows are
    queued by the keeper (bot/files.py) from the activities after `activity_id`, fetched
    with getFile in the background and retried with a backoff."""

    __tablename__ = "stored_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(256), unique=True)
    file_id: Mapped[str] = mapped_column(String(256))
    media_type: Mapped[str] = mapped_column(String(16))
    activity_id: Mapped[int] = mapped_column(Integer, index=True)  # the first row it came from
    state: Mapped[str] = mapped_column(String(12), default="pending")  # stored, too_big, failed
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    size: Mapped[int | None] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_try_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    stored_at: Mapped[datetime | None]


Index("ix_stored_files_due", StoredFile.state, StoredFile.next_try_at)
