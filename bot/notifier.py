"""The aiogram side of the reminder engine: render an outbox delivery and send it.

`BotNotifier.deliver` is what services.outbox.Sweeper calls (the `Notifier` protocol): it
renders the items in the recipient's language (handlers/i18n, .po files) with their buttons
and sends one message, mapping aiogram's errors to the outbox's:

    TelegramRetryAfter (429)                 -> DeliveryRetryAfter(retry_after)
    TelegramForbiddenError (403), "chat not found" -> DeliveryForbidden
    TelegramServerError (5xx), TelegramNetworkError, other API errors -> DeliveryTransient
    TelegramBadRequest (400, e.g. text too long) -> DeliveryRejected

Rendering is the notifier view, handlers.notify.render (a pure function: one view per
outbox kind, drawn with the same pieces as the bot's cards).
"""

from __future__ import annotations

from datetime import tzinfo
from zoneinfo import ZoneInfo

from aiogram import Bot
from aiogram.enums import ParseMode
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import LinkPreviewOptions

from handlers.notify import render
from services.outbox.queue import (
    Delivery,
    DeliveryForbidden,
    DeliveryRejected,
    DeliveryRetryAfter,
    DeliveryTransient,
)

__all__ = ["BotNotifier", "render"]


class BotNotifier:
    """Sends outbox deliveries through an aiogram Bot (`tz`: the company's timezone)."""

    def __init__(self, bot: Bot, tz: str | tzinfo = "Europe/Moscow") -> None:
        self.bot = bot
        self.tz: tzinfo = ZoneInfo(tz) if isinstance(tz, str) else tz

    async def deliver(self, delivery: Delivery) -> None:
        text, markup = render(delivery, self.tz)
        try:
            await self.bot.send_message(
                chat_id=delivery.chat_id,
                text=text,
                reply_markup=markup,
                parse_mode=ParseMode.HTML,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        except TelegramRetryAfter as exc:
            raise DeliveryRetryAfter(exc.retry_after) from exc
        except TelegramForbiddenError as exc:
            raise DeliveryForbidden(exc.message) from exc
        except (TelegramServerError, TelegramNetworkError) as exc:
            raise DeliveryTransient(exc.message) from exc
        except TelegramBadRequest as exc:
            if "chat not found" in exc.message.lower():
                raise DeliveryForbidden(exc.message) from exc
            raise DeliveryRejected(exc.message) from exc
        except TelegramAPIError as exc:  # unauthorized, conflict...: keep the rows, retry
            raise DeliveryTransient(exc.message) from exc
