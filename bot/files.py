"""The file keeper: Voronka's own copy of every file on the timeline (services/files.py).

A scheduler job (every REMINDER_SWEEP_SECONDS, off with STORE_FILES=false): queue the files
of new timeline rows, then fetch the queued ones one by one with getFile and a download
(within the Bot API's 20 MB) into ``<FILES_DIR>/<sha256[:2]>/<sha256>``: written under a
temporary name and renamed, so a file under its hash is always whole. A person's tap never
waits for any of it; a failure is retried with a backoff, the rest go on.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiogram import Bot
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.interval import IntervalTrigger

from services import files
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)


class FileKeeper:
    def __init__(self, bot: Bot, uow_factory: Callable[[], UnitOfWork], directory: Path) -> None:
        self.bot = bot
        self.uow_factory = uow_factory
        self.directory = directory

    async def run(self) -> int:
        """One round: queue new files, fetch those due; how many were stored."""
        async with self.uow_factory() as uow:
            await files.queue_new(uow)
        async with self.uow_factory() as uow:
            todo = await files.due(uow)
        done = 0
        for item in todo:
            done += await self._fetch(item)
        return done

    async def _fetch(self, item: files.Todo) -> int:
        try:
            info = await self.bot.get_file(item.file_id)
            if info.file_size is not None and info.file_size > files.BOT_API_LIMIT:
                async with self.uow_factory() as uow:
                    await files.too_big(uow, item.id, info.file_size)
                return 0
            if not info.file_path:
                raise RuntimeError("getFile gave no file_path")
            buffer = io.BytesIO()
            await self.bot.download_file(info.file_path, destination=buffer, timeout=120)
            data = buffer.getvalue()
            sha256 = hashlib.sha256(data).hexdigest()
            await asyncio.to_thread(self._write, sha256, data)
        except Exception as exc:  # Telegram refused, network, disk: later, with a backoff
            log.warning("could not store file %s: %s", item.file_id, exc)
            async with self.uow_factory() as uow:
                await files.failed(uow, item.id, f"{type(exc).__name__}: {exc}")
            return 0
        async with self.uow_factory() as uow:
            await files.stored(uow, item.id, sha256, len(data))
        return 1

    def _write(self, sha256: str, data: bytes) -> None:
        path = files.content_path(self.directory, sha256)
        if path.is_file():  # the same content came before: content-addressed, kept once
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{sha256}.{os.getpid()}.partial")
        partial.write_bytes(data)
        os.replace(partial, path)


def add_file_job(
    scheduler: BaseScheduler, bot: Bot, uow_factory: Callable[[], UnitOfWork], settings: Any
) -> FileKeeper | None:
    """The keeper's job on `scheduler` (None when STORE_FILES is off)."""
    if not settings.store_files:
        return None
    keeper = FileKeeper(bot, uow_factory, Path(settings.files_dir))

    async def run() -> None:
        try:
            stored = await keeper.run()
        except Exception:  # an outage: the next round tries again
            log.exception("file keeper failed")
            return
        if stored:
            log.info("files: %d stored under %s", stored, keeper.directory)

    scheduler.add_job(
        run,
        IntervalTrigger(seconds=float(settings.reminder_sweep_seconds)),
        id="files.keep",
        max_instances=1,
        coalesce=True,
        replace_existing=True,
        misfire_grace_time=60,
    )
    return keeper
