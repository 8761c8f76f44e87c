"""Charts drawn in a helper process, so the bot never keeps matplotlib resident.

Matplotlib and its fonts take ~100 MB of the process that imports it, and keep it: drawn
in the bot itself, the first /funnel picture made the bot 1.75x a bare aiogram bot. Here a
single worker process (``spawn``: a clean interpreter, not a fork of the bot with its
threads and connections) is started on the first picture and kept for the next ones; the
report DTOs go to it pickled and the PNG bytes come back. One worker: pictures are drawn
one at a time, the rest wait their turn (a tap never waits for them: the event loop only
awaits the future). A worker that died is replaced once per picture; if that fails too,
the error is the caller's as any other.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import tzinfo

from services.reports.screens import ReportScreen

_pool: ProcessPoolExecutor | None = None


def _executor() -> ProcessPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    return _pool


def _draw(screen: ReportScreen, lang: str, tz: tzinfo) -> bytes:
    """In the worker: the picture of one /funnel screen (see charts.draw)."""
    from handlers.funnel import charts

    return charts.draw(screen, lang, tz)


async def chart(screen: ReportScreen, lang: str, tz: tzinfo) -> bytes:
    """The PNG of a /funnel screen, drawn in the worker process."""
    global _pool
    loop = asyncio.get_running_loop()
    for attempt in (1, 2):
        try:
            return await loop.run_in_executor(_executor(), _draw, screen, lang, tz)
        except BrokenProcessPool:
            _pool = None
            if attempt == 2:
                raise
    raise AssertionError("unreachable")
