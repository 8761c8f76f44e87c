"""Wiring: build_dispatcher() is shared by `voronka run` and the tests."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from zoneinfo import ZoneInfo

from aiogram import BaseMiddleware, Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.dispatcher.dispatcher import DEFAULT_BACKOFF_CONFIG
from aiogram.enums import ParseMode
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.fsm.storage.base import BaseStorage
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.types import CallbackQuery, TelegramObject, User
from aiogram.utils.backoff import Backoff, BackoffConfig
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.token import TokenValidationError

from bot.middlewares import ContextMiddleware, ThrottleMiddleware, TrackedStorage
from bot.responses import keep_response_models
from bot.settings import Settings
from services.clock import Clock, SystemClock
from services.intake.api import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from storage.uow import UnitOfWorkFactory

log = logging.getLogger(__name__)


class AnswerCallbacks(BaseMiddleware):
    """Every callback gets an answer (no spinning clock on the button).

    Handlers set `callback_answer.text` / `.show_alert` (or `.disabled = True` when they
    answer themselves). An exception is *not* answered here: it goes to the error router,
    which answers with the reason.
    """

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        if not isinstance(event, CallbackQuery):
            return await handler(event, data)
        answer = data["callback_answer"] = CallbackAnswer(answered=False)
        result = await handler(event, data)
        if not answer.disabled:
            await event.answer(text=answer.text, show_alert=answer.show_alert)
        return result


def build_dispatcher(
    settings: Settings,
    uow_factory: UnitOfWorkFactory,
    clock: Clock | None = None,
    *,
    storage: BaseStorage | None = None,
    **extra: Any,
) -> Dispatcher:
    """Routers, middlewares and shared objects (as Dispatcher kwargs for handlers)."""
    from handlers.routers import routers  # imported here: nothing is built at import time

    clock = clock or uow_factory.clock
    extra.setdefault("client_request_limiter", client_request_limiter(storage, clock))
    dp = Dispatcher(
        storage=TrackedStorage(storage or MemoryStorage()),
        settings=settings,
        uow_factory=uow_factory,
        clock=clock,
        tz=ZoneInfo(settings.timezone),
        web_app_url=settings.web_app_url,
        files_dir=settings.files_dir if settings.store_files else None,
        **extra,
    )
    dp.update.outer_middleware(ThrottleMiddleware(settings.throttle_seconds))
    dp.update.outer_middleware(ContextMiddleware(uow_factory))
    dp.callback_query.middleware(AnswerCallbacks())
    dp.include_routers(*routers())
    return dp


# Strangers' requests (CLIENT_REQUESTS): one per person in this many seconds.
CLIENT_REQUEST_WINDOW = 3600


def client_request_limiter(storage: BaseStorage | None, clock: Clock) -> RateLimiter:
    """One request per person per window (handlers/clients): counted in Redis when the FSM
    storage is Redis (every worker shares it), else in this process."""
    redis = getattr(storage, "redis", None)
    if redis is not None:
        return RedisRateLimiter(
            redis, 1, clock, window=CLIENT_REQUEST_WINDOW, prefix="voronka:client:request"
        )
    return MemoryRateLimiter(1, clock, window=CLIENT_REQUEST_WINDOW)


class StartupError(Exception):
    """The bot cannot start for a reason the operator fixes (a refused token, no network):
    `voronka` prints the message as one line and exits non-zero."""


def make_bot(settings: Settings, session: Any = None) -> Bot:
    if session is None and settings.telegram_api_url:
        session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_url))
    try:
        bot = Bot(
            token=settings.require_token(),
            session=session,
            default=DefaultBotProperties(parse_mode=ParseMode.HTML, link_preview_is_disabled=True),
        )
    except TokenValidationError as exc:
        raise StartupError(
            "BOT_TOKEN is not a bot token (expected <digits>:<letters> as @BotFather gives it)"
        ) from exc
    return keep_response_models(bot)


async def check_telegram(
    bot: Bot,
    settings: Settings,
    *,
    attempts: int = 3,
    backoff_config: BackoffConfig = DEFAULT_BACKOFF_CONFIG,
) -> User:
    """getMe, before anything else talks to Telegram: a refused token is a StartupError
    at once; network and server errors are retried (`attempts` in all, aiogram's backoff),
    then a StartupError."""
    server = settings.telegram_api_url or "https://api.telegram.org"
    backoff = Backoff(config=backoff_config)
    problem = ""
    for attempt in range(1, attempts + 1):
        try:
            return await bot.me()
        except (TelegramUnauthorizedError, TelegramNotFound) as exc:
            raise StartupError(
                f"Telegram ({server}) refused BOT_TOKEN ({exc.message.strip()}): "
                "put the token @BotFather gave you in .env"
            ) from exc
        except (TelegramNetworkError, TelegramServerError) as exc:
            problem = f"{type(exc).__name__}: {exc.message.strip()}"
        except TelegramAPIError as exc:
            raise StartupError(f"Telegram ({server}) answered getMe with: {exc.message}") from exc
        if attempt < attempts:
            log.info("getMe failed (%s); trying again in %.1f s", problem, backoff.next_delay)
            await backoff.asleep()
    raise StartupError(
        f"cannot reach Telegram at {server} ({problem}; {attempts} attempts): "
        "check the network or TELEGRAM_API_URL"
    )


async def make_storage(settings: Settings) -> BaseStorage:
    """FSM storage: Redis when REDIS_URL is set (survives restarts, shared by workers),
    memory otherwise (a restart mid-wizard loses what was typed)."""
    if settings.redis_url:
        from aiogram.fsm.storage.redis import RedisStorage

        return RedisStorage.from_url(settings.redis_url)
    return MemoryStorage()


async def prepare(
    settings: Settings, clock: Clock | None = None, *, migrated: bool = False
) -> tuple[Any, UnitOfWorkFactory]:
    """Migrate and sync pipelines (unless the caller just did), ensure the admins from
    ADMIN_IDS; returns (engine, uow_factory)."""
    from services.sales.pipeline_config import load_config
    from services.sales.pipelines import sync_config
    from services.team.employees import ensure_admins
    from storage.db import create_engine, create_session_factory
    from storage.migrate import upgrade

    if not migrated:
        await upgrade(settings.database_url)
    engine = create_engine(
        settings.database_url, sqlite_driver=settings.sqlite_driver, pool=settings.db_pool()
    )
    from bot.scheduler import company_policy

    uow_factory = UnitOfWorkFactory(
        create_session_factory(engine), clock or SystemClock(), policy=company_policy(settings)
    )
    if not migrated:
        async with uow_factory() as uow:
            await sync_config(uow, load_config(settings.pipelines_file))
    async with uow_factory() as uow:
        await ensure_admins(uow, settings.admin_ids)
    return engine, uow_factory
