"""Voronka keeps its own copy of every file people send (photos, documents, voice, Business
chat media): a Telegram file id belongs to the bot, and a revoked token, a deleted bot or a
move to a new one would lose every photo on every deal.

Nothing of this runs in a tap: the services that record a file write its timeline row as
before (services/timeline.py). The keeper (bot/files.py, a scheduler job) then
- `queue_new`: finds the timeline rows with a file past its watermark (the newest activity
  a `stored_files` row came from) and queues each distinct file once (keyed by Telegram's
  file_unique_id);
- `due`: takes the queued files whose time came; it downloads each (getFile, within the Bot
  API's 20 MB) into ``<FILES_DIR>/<sha256[:2]>/<sha256>`` and reports `stored`, `too_big`
  or `failed` (tried again after 1, 5, 30 minutes, 2 and 12 hours; given up after
  `MAX_ATTEMPTS`).
When Telegram refuses a file id (another bot's, a deleted file),
`services.sales.timeline.stored_copy` names the copy on disk, and the front-end uploads
it instead (handlers/deals/router.py, 📎 Files).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from storage.models import StoredFile
from storage.uow import UnitOfWork

BOT_API_LIMIT = 20 * 1024 * 1024  # getFile serves files up to 20 MB
MAX_ATTEMPTS = 6
BACKOFF = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=12),
)


@dataclass(frozen=True)
class Todo:
    id: int
    file_id: str
    media_type: str


def content_path(directory: Path, sha256: str) -> Path:
    return directory / sha256[:2] / sha256


async def queue_new(uow: UnitOfWork, limit: int = 500) -> int:
    """Queue the files of new timeline rows; how many new files were queued (commits)."""
    after = await uow.repo.files.watermark()
    added = 0
    for item in await uow.repo.files.new_files(after, limit):
        added += await uow.repo.files.add_pending(item)
    await uow.commit()
    return added


async def due(uow: UnitOfWork, limit: int = 20) -> list[Todo]:
    rows = await uow.repo.files.due(uow.clock.now(), limit)
    return [Todo(r.id, r.file_id, r.media_type) for r in rows]


async def _row(uow: UnitOfWork, file_id: int) -> StoredFile:
    row = await uow.repo.get(StoredFile, file_id)
    if row is None:
        raise LookupError(f"stored_files {file_id}")
    return row


async def stored(uow: UnitOfWork, file_id: int, sha256: str, size: int) -> None:
    row = await _row(uow, file_id)
    row.state, row.sha256, row.size = "stored", sha256, size
    row.stored_at, row.last_error, row.next_try_at = uow.clock.now(), None, None
    row.attempts += 1
    await uow.commit()


async def too_big(uow: UnitOfWork, file_id: int, size: int) -> None:
    row = await _row(uow, file_id)
    row.state, row.size, row.last_error = "too_big", size, "over the Bot API's 20 MB"
    row.attempts += 1
    await uow.commit()


async def failed(uow: UnitOfWork, file_id: int, error: str) -> None:
    """Try again later (the backoff), or give up after `MAX_ATTEMPTS`."""
    row = await _row(uow, file_id)
    row.attempts += 1
    row.last_error = error[:500]
    if row.attempts >= MAX_ATTEMPTS:
        row.state, row.next_try_at = "failed", None
    else:
        row.next_try_at = uow.clock.now() + BACKOFF[min(row.attempts, len(BACKOFF)) - 1]
    await uow.commit()
