"""A webhook worker for tests: the real dispatcher and the real aiohttp app (bot/webhook.py)
served on 127.0.0.1 by aiohttp's TestServer, driven over HTTP by a ClientSession. The bot
talks to a RecordingSession, so nothing reaches Telegram."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage
from aiogram.types import CallbackQuery, Chat, Message, Update, User
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from bot.app import build_dispatcher
from bot.settings import Settings
from bot.webhook import (
    HEALTH_PATH,
    SECRET_HEADER,
    STATE,
    SweepKicker,
    WebhookState,
    build_app,
    install_outage_passthrough,
)
from handlers.http.intake import INTAKE_PATH
from services.intake import api as intake
from storage.uow import UnitOfWorkFactory
from tests.tg import BOT_ID, RecordingSession, make_bot, make_settings

SECRET = "test-webhook-secret_0123456789"
SITE_TOKEN = "site-token-0123456789abcdef"
EMAIL_TOKEN = "email-token-0123456789abcdef"
TOKENS = f"site:{SITE_TOKEN},email-info:{EMAIL_TOKEN}"


def webhook_settings(db_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "webhook_secret": SECRET,
        "webhook_base_url": "https://crm.example.test",
        "intake_tokens": TOKENS,
    }
    values.update(overrides)
    return make_settings(db_url, **values)


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]


@dataclass
class Worker:
    name: str
    settings: Settings
    uow_factory: UnitOfWorkFactory
    session: RecordingSession
    bot: Bot
    dp: Dispatcher
    app: web.Application
    server: TestServer
    http: ClientSession
    kicker: SweepKicker | None = None
    stopped: bool = False

    @property
    def state(self) -> WebhookState:
        return self.app[STATE]

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    async def _reply(self, method: str, path: str, **kwargs: Any) -> Reply:
        async with self.http.request(method, self.url(path), **kwargs) as resp:
            raw = await resp.read()
            try:
                body: Any = await resp.json(content_type=None) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            return Reply(resp.status, body, dict(resp.headers))

    async def post_update(self, update: Update | Any, secret: str | None = SECRET) -> Reply:
        """POST an Update (or any JSON value, to test refusals) to the webhook path."""
        payload = as_json(update) if isinstance(update, Update) else update
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        return await self._reply("POST", self.settings.webhook_path, json=payload, headers=headers)

    async def health(self) -> Reply:
        return await self._reply("GET", HEALTH_PATH)

    async def post_lead(
        self,
        fields: dict[str, Any] | None = None,
        *,
        token: str | None = SITE_TOKEN,
        key: str | None = None,
        form: bool = False,
        data: bytes | str | None = None,
        content_type: str | None = None,
    ) -> Reply:
        headers: dict[str, str] = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if key is not None:
            headers["Idempotency-Key"] = key
        kwargs: dict[str, Any] = {"headers": headers}
        if data is not None:
            headers["Content-Type"] = content_type or "application/json"
            kwargs["data"] = data
        elif form:
            kwargs["data"] = {k: str(v) for k, v in (fields or {}).items()}
        else:
            kwargs["json"] = fields or {}
        return await self._reply("POST", INTAKE_PATH, **kwargs)

    async def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        await self.http.close()
        await self.server.close()
        if self.kicker is not None:
            await self.kicker.close()


async def start_worker(
    settings: Settings,
    uow_factory: UnitOfWorkFactory,
    *,
    name: str = "worker",
    storage: BaseStorage | None = None,
    isolation: BaseEventIsolation | None = None,
    limiter: intake.RateLimiter | None = None,
    kicker: SweepKicker | Callable[[Bot, UnitOfWorkFactory], SweepKicker] | None = None,
    redis: Any = None,
    setup: Callable[[Dispatcher], None] | None = None,
    shutdown_grace: float = 30.0,
) -> Worker:
    session = RecordingSession()
    bot = make_bot(session)
    if kicker is not None and not isinstance(kicker, SweepKicker):
        kicker = kicker(bot, uow_factory)  # a sweep that sends through this worker's bot
    extra: dict[str, Any] = {}
    if isolation is not None:
        extra["events_isolation"] = isolation
    dp = build_dispatcher(settings, uow_factory, uow_factory.clock, storage=storage, **extra)
    install_outage_passthrough(dp)
    if setup is not None:
        setup(dp)
    app = build_app(
        settings,
        dp,
        bot,
        uow_factory,
        limiter=limiter,
        kick=kicker.kick if kicker else None,
        redis=redis,
        shutdown_grace=shutdown_grace,
    )
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    http = ClientSession()
    return Worker(name, settings, uow_factory, session, bot, dp, app, server, http, kicker)


# --- updates -------------------------------------------------------------------------------


def as_json(update: Update) -> dict[str, Any]:
    """The update as Telegram posts it (aliases such as "from", no nulls)."""
    data: dict[str, Any] = update.model_dump(mode="json", by_alias=True, exclude_none=True)
    return data


@dataclass
class Updates:
    """Builds updates with fresh ids, as one Telegram account would send them."""

    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(700_001))
    messages: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def message(self, user: User, text: str) -> Update:
        msg = Message(
            message_id=next(self.messages),
            date=datetime.now(UTC),
            chat=Chat(id=user.id, type="private"),
            from_user=user,
            text=text,
        )
        return Update(update_id=next(self.ids), message=msg)

    def tap(self, user: User, data: str, message_id: int = 1, text: str = "card") -> Update:
        msg = Message(
            message_id=message_id,
            date=datetime.now(UTC),
            chat=Chat(id=user.id, type="private"),
            from_user=User(id=BOT_ID, is_bot=True, first_name="Voronka"),
            text=text,
        )
        query = CallbackQuery(
            id=str(next(self.ids)), from_user=user, chat_instance="ci", data=data, message=msg
        )
        return Update(update_id=next(self.ids), callback_query=query)
