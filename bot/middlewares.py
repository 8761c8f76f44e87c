"""Outer middlewares: throttle, actor + language loader, unit of work per update."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update, User

from handlers.ui.i18n import lang_of, t
from services.outbox import queue as outbox
from services.team import employees
from storage.uow import UnitOfWorkFactory

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class ThrottleMiddleware(BaseMiddleware):
    """Per-user token bucket: bursts of `burst` updates, then one per `seconds`.

    A double tap passes (the service answers "already moved"); a flood does not.
    """

    def __init__(
        self, seconds: float, burst: int = 5, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.seconds = seconds
        self.burst = burst
        self.monotonic = monotonic
        self._buckets: dict[int, tuple[float, float]] = {}

    def allow(self, user_id: int) -> bool:
        if self.seconds <= 0:
            return True
        now = self.monotonic()
        tokens, last = self._buckets.get(user_id, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) / self.seconds)
        if tokens < 1:
            self._buckets[user_id] = (tokens, now)
            return False
        self._buckets[user_id] = (tokens - 1, now)
        if len(self._buckets) > 10_000:  # forget idle users
            self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 60}
        return True

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        if user is None or self.allow(user.id):
            return await handler(event, data)
        if isinstance(event, Update) and event.callback_query is not None:
            lang = lang_of(user.language_code)
            await event.callback_query.answer(t("common.too_fast", lang))
        return None


class ContextMiddleware(BaseMiddleware):
    """Loads the acting employee (None when uninvited or deactivated) and the language,
    and opens the update's unit of work (`uow`); services commit it once."""

    def __init__(self, uow_factory: UnitOfWorkFactory) -> None:
        self.uow_factory = uow_factory

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        update_id = event.update_id if isinstance(event, Update) else None
        actor = None
        # One statement, outside any transaction (no lock is held while a handler talks to
        # Telegram before it calls a service): was this update applied already, and are the
        # cached staff and configuration current? The actor then comes from that cache.
        async with self.uow_factory.peek() as uow:
            if await uow.peek_update(update_id):
                log.info("update %s was already applied; skipped", update_id)
                return None
            if user is not None:
                actor = await employees.actor_for(uow, user.id)
        if actor is not None and user is not None and employees.has_placeholder_name(actor):
            # A first admin from ADMIN_IDS writes for the first time: their Telegram name.
            async with self.uow_factory() as uow:
                actor = await employees.name_from_profile(uow, actor, user.full_name, user.username)
        if actor is not None and actor.unreachable:
            # They unblocked the bot and wrote again: deliver what failed meanwhile.
            async with self.uow_factory() as uow:
                await outbox.mark_reachable(uow, actor.id)
        data["actor"] = actor
        data["lang"] = (actor.language if actor and actor.language else None) or lang_of(
            user.language_code if user else None
        )
        async with self.uow_factory() as uow:
            uow.trust_cache()  # checked above, for this update
            if update_id is not None:
                uow.bind_update(update_id)
            data["uow"] = uow
            return await handler(event, data)
