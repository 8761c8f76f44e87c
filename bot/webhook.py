"""Webhook mode (`voronka webhook`): one aiohttp server for Telegram, a health check and the
other HTTP endpoints (handlers/http, handlers/webapp: mounted by handlers.routers.mount_http).

Routes:

``POST <WEBHOOK_PATH>``  Telegram updates. The ``X-Telegram-Bot-Api-Secret-Token`` header must
    equal ``WEBHOOK_SECRET`` (compared in constant time) or the answer is 401 and nothing is
    read. The update is processed to the end (``Dispatcher.feed_update``) *before* the
    answer: 200 means its effect is committed; an exception that escapes the dispatcher is a
    500, and so is a crash (no answer at all), so Telegram delivers the update again. The
    update id is committed together with the effect (bot/middlewares.py), so a redelivery
    of an update that was applied has no second effect. Database or Redis outages are let
    through the error router (``_redeliver_on_outage``) so they become 500s, not apologies.
    While shutting down: 503 (Telegram retries; the other worker may take it).
``GET /healthz``  200 ``{"ok": true, "database": "ok", ["redis": "ok",] "in_flight": n}`` when
    the database (and Redis, when used) answer; 503 with ``"error"`` in place of ``"ok"``, or
    ``{"ok": false, "status": "shutting_down"}`` during a shutdown (the proxy stops sending).
``POST /api/leads``  the site form (handlers/http/intake.py: its answers are listed there).
``/app/``  the Mini App, when WEB_APP_URL is set (handlers/webapp/api.py).

Graceful shutdown: the listening socket closes first, then ``on_shutdown`` refuses new work
(503) and waits (up to ``shutdown_grace`` seconds) for every update and intake request in
flight to finish; they run in tasks of their own, so a client that hangs up does not cancel
one halfway.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiogram import Bot, Dispatcher
from aiogram.filters import ExceptionTypeFilter
from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage
from aiogram.fsm.storage.memory import SimpleEventIsolation
from aiogram.methods import TelegramMethod
from aiogram.types import ErrorEvent, Update
from aiohttp import web
from pydantic import ValidationError as PydanticValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import text
from sqlalchemy.exc import InterfaceError, OperationalError

from bot.settings import MissingSetting, Settings
from handlers.http.intake import IntakeState
from services.intake import api as intake
from storage.uow import UnitOfWorkFactory

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
HEALTH_PATH = "/healthz"
HEALTH_TIMEOUT = 5.0

T = TypeVar("T")


# --- shared state ----------------------------------------------------------------------------


@dataclass
class WebhookState:
    settings: Settings
    dispatcher: Dispatcher
    bot: Bot
    uow_factory: UnitOfWorkFactory
    secret: bytes
    redis: Any = None  # a redis.asyncio.Redis to ping in /healthz
    shutdown_grace: float = 30.0
    closing: bool = False
    in_flight: set[asyncio.Task[Any]] = field(default_factory=set)

    def track(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run `coro` in its own task, remembered until it ends (the shutdown waits)."""
        task = asyncio.get_running_loop().create_task(coro)
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)
        return task

    async def drain(self) -> None:
        self.closing = True
        pending = set(self.in_flight)
        if not pending:
            return
        log.info("shutting down: waiting for %d request(s) in flight", len(pending))
        _, still = await asyncio.wait(pending, timeout=self.shutdown_grace)
        if still:
            log.warning(
                "shutdown: %d request(s) still running after %.0fs",
                len(still),
                self.shutdown_grace,
            )


STATE = web.AppKey("voronka_webhook", WebhookState)


def _error(
    status: int, error: str, headers: dict[str, str] | None = None, **extra: Any
) -> web.Response:
    return web.json_response({"error": error, **extra}, status=status, headers=headers)


# --- Telegram updates ------------------------------------------------------------------------


async def _process(state: WebhookState, update: Update) -> None:
    response = await state.dispatcher.feed_update(state.bot, update)
    if isinstance(response, TelegramMethod):
        # A handler returned a method instead of awaiting it: call it now, before we answer
        # (answering with the method in the body would ack an effect not yet made).
        await state.bot(response)


async def telegram_update(request: web.Request) -> web.Response:
    state = request.app[STATE]
    given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "replace")
    if not hmac.compare_digest(given, state.secret):
        return _error(401, "unauthorized")
    if state.closing:
        return _error(503, "shutting_down", {"Retry-After": "1"})
    try:
        payload = json.loads(await request.read())
        if not isinstance(payload, dict):
            raise ValueError("not an object")
        update = Update.model_validate(payload, context={"bot": state.bot})
    except (ValueError, PydanticValidationError) as exc:  # JSONDecodeError is a ValueError
        return _error(400, "bad_update", detail=str(exc)[:200])
    task = state.track(_process(state, update))
    try:
        await asyncio.shield(task)  # a client that hangs up does not cancel the update
    except Exception:
        log.exception("update %s failed; Telegram will deliver it again", update.update_id)
        return _error(500, "update_failed")
    return web.json_response({"ok": True})


# Infrastructure failures: the update did nothing and may well work later, so the answer
# must be a 500 (Telegram redelivers) rather than the error router's apology and a 200.
# (redis-py's connection errors are not builtins' ConnectionError.)
OUTAGES: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    ConnectionError,
    TimeoutError,
    RedisConnectionError,
    RedisTimeoutError,
)


async def _redeliver_on_outage(event: ErrorEvent) -> None:
    raise event.exception


def install_outage_passthrough(dp: Dispatcher) -> None:
    """Make outages escape feed_update (→ 500 → redelivery). The Dispatcher's own error
    handlers run before those of its routers (the error router answers everything else)."""
    dp.errors.register(_redeliver_on_outage, ExceptionTypeFilter(*OUTAGES))


# --- health ------------------------------------------------------------------------------


async def healthz(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if state.closing:
        return web.json_response({"ok": False, "status": "shutting_down"}, status=503)
    body: dict[str, Any] = {}
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT), state.uow_factory() as uow:
            await uow.session.execute(text("SELECT 1"))
        body["database"] = "ok"
    except Exception as exc:
        log.warning("health check: database: %s", exc)
        body["database"] = "error"
    if state.redis is not None:
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT):
                await state.redis.ping()
            body["redis"] = "ok"
        except Exception as exc:
            log.warning("health check: redis: %s", exc)
            body["redis"] = "error"
    ok = all(v == "ok" for v in body.values())
    body = {"ok": ok, **body, "in_flight": len(state.in_flight)}
    return web.json_response(body, status=200 if ok else 503)


# --- the app -----------------------------------------------------------------------------


def build_app(
    settings: Settings,
    dispatcher: Dispatcher,
    bot: Bot,
    uow_factory: UnitOfWorkFactory,
    *,
    limiter: intake.RateLimiter | None = None,
    kick: Callable[[], None] | None = None,
    redis: Any = None,
    shutdown_grace: float = 30.0,
    webapp: Any = None,
) -> web.Application:
    """The aiohttp application (routes in the module docstring).

    `limiter` defaults to an in-process one (INTAKE_RATE_LIMIT per source per minute); pass
    an `intake.RedisRateLimiter` to share the count between workers. `kick` is called after
    an intake request queued a notification (start a sweep now). `redis` is pinged by
    /healthz. `webapp` (a handlers.webapp.api.WebAppState): the Mini App under /app/.
    """
    if settings.webhook_secret is None:
        raise MissingSetting("WEBHOOK_SECRET")
    tokens = intake.TokenRegistry.from_setting(
        settings.intake_tokens.get_secret_value() if settings.intake_tokens else None
    )
    state = WebhookState(
        settings=settings,
        dispatcher=dispatcher,
        bot=bot,
        uow_factory=uow_factory,
        secret=settings.webhook_secret.get_secret_value().encode(),
        redis=redis,
        shutdown_grace=shutdown_grace,
    )
    site_form = IntakeState(
        uow_factory=uow_factory,
        tokens=tokens,
        limiter=limiter or intake.MemoryRateLimiter(settings.intake_rate_limit, uow_factory.clock),
        gate=state,
        manager_telegram_ids=settings.intake_manager_ids,
        kick=kick,
    )
    app = web.Application()
    app[STATE] = state
    app.router.add_post(settings.webhook_path, telegram_update)
    app.router.add_get(HEALTH_PATH, healthz)
    from handlers.routers import mount_http  # with the routers, when the app is built

    mount_http(app, intake_state=site_form, webapp=webapp)

    async def on_shutdown(_app: web.Application) -> None:
        await state.drain()

    app.on_shutdown.append(on_shutdown)
    return app


# --- sweeping soon after an intake -------------------------------------------------------


class SweepKicker:
    """Runs a sweep soon after `kick()`; kicks that arrive during a sweep coalesce into one
    more sweep. The sweep is multi-worker safe (SKIP LOCKED), so it may overlap the
    scheduler's interval job."""

    def __init__(self, sweep: Callable[[], Awaitable[Any]]) -> None:
        self._sweep = sweep
        self._again = False
        self._task: asyncio.Task[None] | None = None

    def kick(self) -> None:
        self._again = True
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while self._again:
            self._again = False
            try:
                await self._sweep()
            except Exception:
                log.exception("sweep after an intake failed (the interval job will retry)")

    async def wait(self) -> None:
        """Until the current sweeps are over (tests, shutdown)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def close(self) -> None:
        self._again = False
        await self.wait()


# --- running -----------------------------------------------------------------------------


def webhook_url(settings: Settings) -> str:
    if not settings.webhook_base_url or not settings.webhook_base_url.strip():
        raise MissingSetting("WEBHOOK_BASE_URL")
    return settings.webhook_base_url.strip().rstrip("/") + settings.webhook_path


def make_isolation(storage: BaseStorage) -> BaseEventIsolation:
    """Updates of one chat never run at the same time: across workers (a Redis lock) when
    the FSM lives in Redis, within this process otherwise."""
    create = getattr(storage, "create_isolation", None)  # RedisStorage
    if create is not None:
        isolation: BaseEventIsolation = create()
        return isolation
    return SimpleEventIsolation()


SWEEP_JOB_ID = "outbox.sweep"  # bot/scheduler.py's interval job


def _make_kicker(scheduler: Any, uow_factory: UnitOfWorkFactory, bot: Bot, tz: str) -> SweepKicker:
    """A kicker on the scheduler's own sweep job (same sweeper, same Telegram rate limiter),
    or on a Sweeper of our own when there is no such job."""
    job = scheduler.get_job(SWEEP_JOB_ID) if scheduler is not None else None
    if job is not None:
        return SweepKicker(job.func)
    from bot.notifier import BotNotifier
    from services.outbox.queue import Sweeper

    return SweepKicker(Sweeper(uow_factory, BotNotifier(bot, tz), uow_factory.clock).sweep_once)


async def housekeeping(uow_factory: UnitOfWorkFactory, every: float = 3600.0) -> None:
    """Forget old update ids and idempotency keys (each worker; deleting twice is harmless)."""
    from services import updates

    while True:
        try:
            async with uow_factory() as uow:
                await updates.forget_older_than(uow)
            async with uow_factory() as uow:
                await intake.purge_idempotency_keys(uow)
        except Exception:
            log.exception("housekeeping failed")
        await asyncio.sleep(every)


async def heartbeat(stack: AsyncExitStack, uow_factory: UnitOfWorkFactory) -> None:
    """Beat every `backups.BEAT_SECONDS` while the bot runs (`voronka restore` refuses
    meanwhile, services/backups.py); the beat is taken back when `stack` closes. The first
    beat is written before this returns, so the bot counts as running before it takes its
    first update."""
    from services import backups

    name = backups.beat_name()

    async def beat_once() -> None:
        try:
            async with uow_factory() as uow:
                await backups.beat(uow, name)
        except Exception as exc:  # an outage: the next beat tries again
            log.warning("heartbeat failed: %s", exc)

    async def beating() -> None:
        while True:
            await asyncio.sleep(backups.BEAT_SECONDS)
            await beat_once()

    async def stop() -> None:
        task.cancel()
        try:
            async with uow_factory() as uow:
                await backups.stop_beating(uow, name)
        except Exception as exc:
            log.warning("could not remove the heartbeat: %s", exc)

    await beat_once()
    task = asyncio.get_running_loop().create_task(beating())
    stack.push_async_callback(stop)


async def run_webhook(
    settings: Settings,
    *,
    migrated: bool = False,
    bot: Bot | None = None,
    stop: asyncio.Event | None = None,
    started: Callable[[web.AppRunner], Awaitable[None] | None] | None = None,
) -> None:
    """Serve Telegram's webhook, the intake API and /healthz on WEBHOOK_HOST:WEBHOOK_PORT
    until SIGTERM/SIGINT (or `stop` is set), then shut down gracefully.

    Registers the webhook (WEBHOOK_BASE_URL + WEBHOOK_PATH, with WEBHOOK_SECRET) at start and
    never deletes it: the other workers keep serving while this one restarts.
    """
    from bot.app import build_dispatcher, check_telegram, make_bot, make_storage, prepare
    from bot.files import add_file_job
    from bot.notifier import BotNotifier
    from bot.scheduler import build_scheduler
    from handlers.ui.commands import set_commands

    url = webhook_url(settings)
    if settings.webhook_secret is None:
        raise MissingSetting("WEBHOOK_SECRET")
    if not url.startswith("https://") and not settings.telegram_api_url:
        log.warning("WEBHOOK_BASE_URL is not https: Telegram only calls https webhooks")

    async with AsyncExitStack() as stack:  # closed in reverse: listener first, database last
        engine, uow_factory = await prepare(settings, migrated=migrated)
        stack.push_async_callback(engine.dispose)
        bot = bot or make_bot(settings)
        stack.push_async_callback(bot.session.close)
        await check_telegram(bot, settings)  # before the scheduler: a bad token stops here
        storage = await make_storage(settings)
        dp = build_dispatcher(
            settings, uow_factory, storage=storage, events_isolation=make_isolation(storage)
        )
        stack.push_async_callback(dp.emit_shutdown, bot=bot)  # closes the FSM storage
        install_outage_passthrough(dp)
        redis = getattr(storage, "redis", None)
        limiter: intake.RateLimiter
        if redis is not None:
            limiter = intake.RedisRateLimiter(redis, settings.intake_rate_limit, uow_factory.clock)
        else:
            limiter = intake.MemoryRateLimiter(settings.intake_rate_limit, uow_factory.clock)

        scheduler = build_scheduler(
            uow_factory, BotNotifier(bot, settings.timezone), uow_factory.clock, settings
        )
        add_file_job(scheduler, bot, uow_factory, settings)
        scheduler.start()
        stack.callback(scheduler.shutdown, wait=False)
        kicker = _make_kicker(scheduler, uow_factory, bot, settings.timezone)
        stack.push_async_callback(kicker.close)

        webapp = None
        if settings.web_app_url:
            from bot.webapp import webapp_state

            webapp = webapp_state(settings, uow_factory, bot, storage)
        app = build_app(
            settings,
            dp,
            bot,
            uow_factory,
            limiter=limiter,
            kick=kicker.kick,
            redis=redis,
            webapp=webapp,
        )
        # After on_shutdown has drained the updates in flight, little is left to wait for.
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=10.0)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)  # stop listening, drain, close
        await web.TCPSite(runner, settings.webhook_host, settings.webhook_port).start()

        await dp.emit_startup(bot=bot)
        await set_commands(bot, uow_factory, settings.web_app_url)
        await bot.set_webhook(
            url,
            secret_token=settings.webhook_secret.get_secret_value(),
            allowed_updates=dp.resolve_used_update_types(),
        )
        chores = asyncio.get_running_loop().create_task(housekeeping(uow_factory))
        stack.callback(chores.cancel)
        await heartbeat(stack, uow_factory)
        log.info("Voronka webhook on %s:%s (%s)", settings.webhook_host, settings.webhook_port, url)
        if started is not None:
            outcome = started(runner)
            if outcome is not None:
                await outcome
        await _until_stopped(stop)
        log.info("stopping: finishing the updates in flight")


async def _until_stopped(stop: asyncio.Event | None) -> None:
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
