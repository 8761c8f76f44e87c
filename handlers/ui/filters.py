"""Router filters."""

from __future__ import annotations

from aiogram.filters import Filter
from aiogram.types import TelegramObject

from services.permissions import Actor


class Staff(Filter):
    """Passes only for an invited, active employee (the ContextMiddleware loads `actor`)."""

    async def __call__(self, event: TelegramObject, actor: Actor | None = None) -> bool:
        return actor is not None
