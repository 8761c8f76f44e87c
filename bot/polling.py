"""Long polling that confirms an update to Telegram only after its effect is committed.

aiogram's own polling (``Dispatcher.start_polling``) hands each update to a task and asks
``getUpdates`` for the next ones at once, with ``offset`` past everything it fetched: an
update still being handled is already confirmed, so a restart or a crash loses it, and a
SIGTERM closes the bot session under running handlers. Here:

- ``getUpdates`` is called with ``offset`` = the lowest update id that is not done yet (or
  one past the highest fetched when all are done). Telegram confirms only the updates
  below ``offset``, i.e. finished ones; an update in flight is delivered again after a
  crash, and the update-id record (bot/middlewares.py, ``processed_updates``, committed
  with the effect) makes a second delivery of an applied update a no-op.
- Updates of one chat are handled one after another, in update-id order (one worker per
  chat); different chats run at the same time. An update fetched again while it is in
  flight (the offset stays below it) is not taken twice.
- While some update holds the offset back, ``getUpdates`` answers at once with what it
  already gave us; instead of spinning, the loop then waits for an update to finish (or
  ``busy_interval`` seconds) before it asks again. At most ``limit`` (100) updates past
  the oldest unfinished one can be in flight: a slow handler slows its window, nothing
  more.
- An infrastructure outage (database, Redis: ``bot.webhook.OUTAGES``, let through the
  error router by ``install_outage_passthrough``) is retried with a backoff, the chat's
  later updates waiting behind it; any other exception escaping the dispatcher is logged
  and the update counts as done (one broken update must not stop the bot).
- Network or server errors of ``getUpdates`` itself: aiogram's backoff (1 s growing to 5 s,
  with jitter), as in ``Dispatcher._listen_updates``.
- Stop (SIGTERM/SIGINT, or ``stop`` set): no new ``getUpdates``, the one waiting is
  abandoned (what it would have returned is not confirmed, so it comes again); updates in
  flight are finished (up to ``shutdown_grace`` seconds; a second signal stops waiting);
  the finished ones are confirmed with one last ``getUpdates(offset, limit=1, timeout=0)``;
  only then does the caller close the bot session.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections import deque
from contextlib import AsyncExitStack, suppress
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.dispatcher.dispatcher import DEFAULT_BACKOFF_CONFIG
from aiogram.dispatcher.middlewares.user_context import UserContextMiddleware
from aiogram.methods import GetUpdates, TelegramMethod
from aiogram.types import Update
from aiogram.utils.backoff import Backoff, BackoffConfig

from bot.app import build_dispatcher, check_telegram, make_bot, make_storage, prepare
from bot.settings import Settings
from bot.webhook import OUTAGES, heartbeat, housekeeping, install_outage_passthrough

log = logging.getLogger(__name__)

ChatKey = tuple[str, int]


def chat_key(update: Update) -> ChatKey:
    """Updates with the same key are handled in order: the chat, else the user, else the
    update alone (no ordering to keep)."""
    try:
        context = UserContextMiddleware.resolve_event_context(update)
    except Exception:  # an update type this aiogram does not know
        return ("update", update.update_id)
    if context.chat is not None:
        return ("chat", context.chat.id)
    if context.user is not None:
        return ("user", context.user.id)
    return ("update", update.update_id)


class Poller:
    """One bot's polling loop (``run``); see the module docstring for the guarantees."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        bot: Bot,
        *,
        polling_timeout: int = 10,
        limit: int = 100,
        allowed_updates: list[str] | None = None,
        backoff_config: BackoffConfig = DEFAULT_BACKOFF_CONFIG,
        busy_interval: float = 0.5,
        shutdown_grace: float = 30.0,
    ) -> None:
        self.dispatcher = dispatcher
        self.bot = bot
        self.polling_timeout = polling_timeout
        self.limit = limit
        self.allowed_updates = allowed_updates
        self.backoff_config = backoff_config
        self.busy_interval = busy_interval
        self.shutdown_grace = shutdown_grace
        self._pending: set[int] = set()  # fetched, not done
        self._done: set[int] = set()  # done, not yet below the confirmed offset
        self._max_seen: int | None = None
        self._confirmed: int | None = None  # the offset Telegram last received
        self._queues: dict[ChatKey, deque[Update]] = {}
        self._workers: dict[ChatKey, asyncio.Task[None]] = {}
        self._progress = asyncio.Event()
        self._stopping = asyncio.Event()
        self._hurry = asyncio.Event()

    # --- bookkeeping -----------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def offset(self) -> int | None:
        """Every update below this one is done: the ``offset`` to send."""
        if self._pending:
            return min(self._pending)
        return None if self._max_seen is None else self._max_seen + 1

    def _take(self, update: Update) -> bool:
        uid = update.update_id
        if uid in self._pending or uid in self._done:
            return False  # still in flight (the offset is held below it), or done
        if self._confirmed is not None and uid < self._confirmed:
            return False  # confirmed already; a server that repeats itself
        self._pending.add(uid)
        if self._max_seen is None or uid > self._max_seen:
            self._max_seen = uid
        key = chat_key(update)
        self._queues.setdefault(key, deque()).append(update)
        if key not in self._workers:
            task = asyncio.get_running_loop().create_task(self._chat_worker(key))
            self._workers[key] = task
        return True

    def _finished(self, update_id: int) -> None:
        self._pending.discard(update_id)
        self._done.add(update_id)
        self._progress.set()

    def _confirm_sent(self, offset: int | None) -> None:
        if offset is None:
            return
        self._confirmed = offset
        self._done = {uid for uid in self._done if uid >= offset}

    # --- handling ----------------------------------------------------------------------

    async def _chat_worker(self, key: ChatKey) -> None:
        queue = self._queues[key]
        try:
            while queue:
                update = queue[0]
                if not await self._handle(update):
                    return  # stopping during an outage: this update and the rest stay
                queue.popleft()
                self._finished(update.update_id)
        finally:
            self._workers.pop(key, None)
            if not queue or self._stopping.is_set():
                self._queues.pop(key, None)

    async def _handle(self, update: Update) -> bool:
        """True when the update is done (applied, refused or broken), False when it was
        left for the next delivery (an outage outlasted the shutdown)."""
        backoff = Backoff(config=self.backoff_config)
        while True:
            try:
                response = await self.dispatcher.feed_update(self.bot, update)
                if isinstance(response, TelegramMethod):
                    await self.dispatcher.silent_call_request(self.bot, response)
                return True
            except OUTAGES as exc:
                if self._stopping.is_set():
                    log.warning(
                        "update %s not applied (%s: %s); Telegram will deliver it again",
                        update.update_id,
                        type(exc).__name__,
                        exc,
                    )
                    return False
                delay = backoff.next_delay
                log.warning(
                    "update %s: %s: %s; retrying in %.1f s",
                    update.update_id,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                await self._sleep(next(backoff), self._stopping)
            except Exception:
                log.exception("update %s failed", update.update_id)
                return True

    # --- fetching ----------------------------------------------------------------------

    async def _sleep(self, seconds: float, *until: asyncio.Event) -> None:
        """Sleep, cut short when any of `until` is set."""
        waiters = [asyncio.ensure_future(event.wait()) for event in until]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _fetch(self, offset: int | None, wait: int) -> list[Update] | None:
        """getUpdates, or None when stopped meanwhile (the request is abandoned)."""
        method = GetUpdates(
            offset=offset, limit=self.limit, timeout=wait, allowed_updates=self.allowed_updates
        )
        kwargs: dict[str, Any] = {}
        if self.bot.session.timeout:
            kwargs["request_timeout"] = int(self.bot.session.timeout + wait)
        request = asyncio.ensure_future(self.bot(method, **kwargs))
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({request, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not request.done():
            request.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await request
            return None
        return list(request.result())

    async def _poll(self) -> None:
        backoff = Backoff(config=self.backoff_config)
        failed = False
        while not self._stopping.is_set():
            offset = self.offset()
            busy = bool(self._pending)
            self._progress.clear()
            try:
                updates = await self._fetch(offset, 0 if busy else self.polling_timeout)
            except Exception as exc:  # network, 5xx, 409...: as aiogram does, back off
                failed = True
                log.error("Failed to fetch updates - %s: %s", type(exc).__name__, exc)
                log.warning(
                    "Sleep for %f seconds and try again... (tryings = %d)",
                    backoff.next_delay,
                    backoff.counter,
                )
                await self._sleep(next(backoff), self._stopping)
                continue
            if updates is None:
                break
            if failed:
                log.info("Connection established (tryings = %d)", backoff.counter)
                backoff.reset()
                failed = False
            self._confirm_sent(offset)
            fresh = [u for u in updates if self._take(u)]
            if not fresh and busy:
                # Telegram answered at once with updates we are still handling: wait for
                # one of them to finish rather than ask again straight away.
                await self._sleep(self.busy_interval, self._progress, self._stopping)

    async def _drain(self) -> None:
        workers: set[asyncio.Future[Any]] = set(self._workers.values())
        if not workers:
            return
        log.info("polling stopped: finishing %d update(s) in flight", len(self._pending))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.shutdown_grace
        hurry: asyncio.Future[Any] = asyncio.ensure_future(self._hurry.wait())
        try:
            while workers and not hurry.done() and loop.time() < deadline:
                _, workers = await asyncio.wait(
                    {*workers, hurry},
                    timeout=deadline - loop.time(),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                workers.discard(hurry)
        finally:
            hurry.cancel()
        if workers:
            log.warning(
                "shutdown: %d update(s) still running; they are not confirmed and come again",
                len(self._pending),
            )
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def _confirm_done(self) -> None:
        """Tell Telegram what finished since the last getUpdates (best effort)."""
        offset = self.offset()
        if offset is None or offset == self._confirmed:
            return
        try:
            await self.bot(GetUpdates(offset=offset, limit=1, timeout=0), request_timeout=10)
            self._confirm_sent(offset)
        except Exception as exc:  # the next start gets them again; the record skips them
            log.warning("could not confirm updates below %s: %s", offset, exc)

    # --- running -------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop fetching; a second call also stops waiting for the updates in flight."""
        if self._stopping.is_set():
            self._hurry.set()
        self._stopping.set()

    async def run(self, *, handle_signals: bool = True) -> None:
        """Poll until ``stop()`` (or SIGTERM/SIGINT), finish, confirm; the caller closes
        the bot session afterwards."""
        loop = asyncio.get_running_loop()
        signals: list[signal.Signals] = []
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                with suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, self._on_signal, sig)
                    signals.append(sig)
        try:
            log.info("Start polling")
            await self._poll()
            await self._drain()
            await self._confirm_done()
            log.info("Polling stopped")
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        log.warning("Received %s signal", sig.name)
        self.stop()


# --- `voronka run` ------------------------------------------------------------------------


async def run_polling(
    settings: Settings,
    *,
    migrated: bool = False,
    poller_options: dict[str, Any] | None = None,
) -> None:
    """`voronka run`: getMe first (a refused token or no network stops here, before the
    scheduler or anything else started), the commands menus that changed, the scheduler,
    then bot/polling.py until SIGTERM/SIGINT; the bot session closes after the updates in
    flight are finished and confirmed."""
    from bot.files import add_file_job
    from bot.notifier import BotNotifier
    from bot.scheduler import build_scheduler
    from handlers.ui.commands import set_commands

    engine, uow_factory = await prepare(settings, migrated=migrated)
    async with AsyncExitStack() as stack:  # closed in reverse: scheduler, bot, database
        stack.push_async_callback(engine.dispose)
        bot = make_bot(settings)
        stack.push_async_callback(bot.session.close)
        me = await check_telegram(bot, settings)
        storage = await make_storage(settings)
        # No events isolation: the poller itself runs one chat's updates one at a time.
        dp = build_dispatcher(settings, uow_factory, storage=storage)
        install_outage_passthrough(dp)
        stack.push_async_callback(dp.emit_shutdown, bot=bot)  # closes the FSM storage
        await dp.emit_startup(bot=bot)
        if settings.web_app_url:  # the Mini App needs an HTTP server even when polling
            from bot.webapp import start_server

            web_runner = await start_server(settings, uow_factory, bot, storage)
            stack.push_async_callback(web_runner.cleanup)
        await set_commands(bot, uow_factory, settings.web_app_url)
        notifier = BotNotifier(bot, settings.timezone)
        scheduler = build_scheduler(uow_factory, notifier, uow_factory.clock, settings)
        add_file_job(scheduler, bot, uow_factory, settings)
        scheduler.start()
        stack.callback(scheduler.shutdown, wait=False)
        chores = asyncio.get_running_loop().create_task(housekeeping(uow_factory))
        stack.callback(chores.cancel)
        await heartbeat(stack, uow_factory)
        poller = Poller(
            dp, bot, allowed_updates=dp.resolve_used_update_types(), **(poller_options or {})
        )
        log.info("Voronka is polling as @%s", me.username)
        await poller.run()
