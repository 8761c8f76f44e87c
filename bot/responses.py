"""Keep aiogram's parsed-response models alive for the life of the process.

aiogram parses every Bot API answer with ``Response[method.__returning__]``, a pydantic generic
model built on first use and kept by pydantic in a cache of *weak* references. Nothing else
holds it, so the garbage collector drops it between calls and the next call builds it again:
measured on a stage move, a model rebuilt on every third press, 13 ms each -- half of the
tap's CPU. This request middleware (aiogram's public session-middleware hook) takes a strong
reference to each method's response model the first time the method is called; afterwards a
call costs one dict lookup.
"""

from __future__ import annotations

from typing import Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType

_KEPT: dict[type[Any], Any] = {}


class KeepResponseModels(BaseRequestMiddleware):
    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Any:
        kind = type(method)
        if kind not in _KEPT:
            _KEPT[kind] = Response[method.__returning__]  # type: ignore[name-defined]
        return await make_request(bot, method)


def keep_response_models(bot: Bot) -> Bot:
    """Install the middleware on `bot`'s session (once) and return the bot."""
    manager = bot.session.middleware
    if not any(isinstance(m, KeepResponseModels) for m in manager):
        manager(KeepResponseModels())
    return bot
