"""Router filters."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Filter
from aiogram.types import TelegramObject

from services.permissions import Actor, ClientActor


class Staff(Filter):
    """Passes only for an invited, active employee (the ContextMiddleware loads `actor`)."""

    async def __call__(self, event: TelegramObject, actor: Actor | None = None) -> bool:
        return actor is not None


def staff_router(name: str) -> Router:
    """A fresh router whose messages and callbacks reach its handlers only from staff (the
    handlers take `ctx: Ctx`, which the ContextMiddleware builds for staff only)."""
    router = Router(name=name)
    router.message.filter(Staff())
    router.callback_query.filter(Staff())
    return router


class Client(Filter):
    """Passes only for a linked client who is not staff (the ContextMiddleware loads
    `client` for people who are not employees; issue 25)."""

    async def __call__(self, event: TelegramObject, client: ClientActor | None = None) -> bool:
        return client is not None


def client_router(name: str) -> Router:
    """A fresh router whose messages and callbacks reach its handlers only from linked
    clients (the handlers take `client: ClientActor`)."""
    router = Router(name=name)
    router.message.filter(Client())
    router.callback_query.filter(Client())
    return router
