"""Outer middlewares: throttle, actor + language loader, unit of work per update."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import Any

from aiogram import BaseMiddleware
from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, StorageKey
from aiogram.types import TelegramObject, Update, User

from handlers.ui.context import Ctx
from handlers.ui.i18n import lang_of, t
from services.clients import links as clients
from services.outbox import clients as client_messages
from services.outbox import queue as outbox
from services.team import employees
from storage.uow import DuplicateUpdate, UnitOfWorkFactory

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


# The FSM writes of the update being handled (set per update by ContextMiddleware).
_fsm_writes: ContextVar[list[StorageKey] | None] = ContextVar("fsm_writes", default=None)


class TrackedStorage(BaseStorage):
    """The FSM storage (memory or Redis), noting for the update being handled that it
    wrote the FSM. A wizard step that only moves the FSM (the name typed, now ask the
    phone) commits nothing, so its update id would not be recorded and a redelivery would
    be taken as the next step's answer; ContextMiddleware records it when this says so."""

    def __init__(self, inner: BaseStorage) -> None:
        self.inner = inner

    @staticmethod
    def _note(key: StorageKey) -> None:
        writes = _fsm_writes.get()
        if writes is not None:
            writes.append(key)

    async def set_state(self, key: StorageKey, state: str | State | None = None) -> None:
        self._note(key)
        await self.inner.set_state(key, state)

    async def get_state(self, key: StorageKey) -> str | None:
        return await self.inner.get_state(key)

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        self._note(key)
        await self.inner.set_data(key, data)

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        return await self.inner.get_data(key)

    async def update_data(self, key: StorageKey, data: Mapping[str, Any]) -> dict[str, Any]:
        self._note(key)
        return await self.inner.update_data(key, data)

    async def close(self) -> None:
        await self.inner.close()


class ContextMiddleware(BaseMiddleware):
    """Loads the acting employee (None when uninvited or deactivated), for anyone else the
    linked client (`client`: a ClientActor, or None for a stranger) and the language,
    and opens the update's unit of work (`uow`); services commit it once. For a known
    employee it also puts the update's `ctx` (handlers/ui/context.py) in the handler data:
    the unit of work, actor, language, the Dispatcher's `tz` and `clock`, and the FSM
    context (`state`, set by aiogram's FSM middleware, which runs before this one)."""

    def __init__(self, uow_factory: UnitOfWorkFactory) -> None:
        self.uow_factory = uow_factory

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        update_id = event.update_id if isinstance(event, Update) else None
        actor = None
        client = None
        # One statement, outside any transaction (no lock is held while a handler talks to
        # Telegram before it calls a service): was this update applied already, and are the
        # cached staff and configuration current? The actor then comes from that cache.
        async with self.uow_factory.peek() as uow:
            if await uow.peek_update(update_id):
                log.info("update %s was already applied; skipped", update_id)
                return None
            if user is not None:
                actor = await employees.actor_for(uow, user.id)
                if actor is None:  # a client (issue 25)? Never asked for staff.
                    client = await clients.client_for(uow, user.id)
        if actor is not None and user is not None and employees.has_placeholder_name(actor):
            # A first admin from ADMIN_IDS writes for the first time: their Telegram name.
            async with self.uow_factory() as uow:
                actor = await employees.name_from_profile(uow, actor, user.full_name, user.username)
        if actor is not None and actor.unreachable:
            # They unblocked the bot and wrote again: deliver what failed meanwhile.
            async with self.uow_factory() as uow:
                await outbox.mark_reachable(uow, actor.id)
        if client is not None and client.blocked and user is not None:
            # A client who had blocked the bot writes again: they may be written to.
            async with self.uow_factory() as uow:
                await client_messages.client_wrote(uow, user.id)
        data["actor"] = actor
        data["client"] = client
        data["lang"] = (
            actor.language if actor else client.language if client else None
        ) or lang_of(user.language_code if user else None)
        writes: list[StorageKey] = []
        token = _fsm_writes.set(writes)
        try:
            async with self.uow_factory() as uow:
                uow.trust_cache()  # checked above, for this update
                if update_id is not None:
                    uow.bind_update(update_id)
                data["uow"] = uow
                state = data.get("state")
                if actor is not None and state is not None:
                    data["ctx"] = Ctx(uow, actor, data["lang"], data["tz"], data["clock"], state)
                result = await handler(event, data)
                unrecorded = uow.update_pending  # no commit of this update's effect
        finally:
            _fsm_writes.reset(token)
        if writes and unrecorded and update_id is not None:
            # An FSM-only step: record the update id on its own (after the handler's unit
            # of work is closed: on SQLite it may hold the write lock). A tap that commits
            # never gets here, so the hot path pays nothing.
            async with self.uow_factory() as uow:
                uow.bind_update(update_id)
                try:
                    await uow.commit()
                except DuplicateUpdate:
                    log.info("update %s was applied by another delivery", update_id)
        return result
