"""Router filters."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Filter
from aiogram.types import TelegramObject

from services.permissions import Actor


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
