"""The one error router: domain errors become a short reply or a callback alert in the
user's language; a stale deal card is refreshed with a note. Anything else is logged and
answered with an apology (the update is not lost silently)."""

from __future__ import annotations

import logging
from datetime import tzinfo
from typing import Any

from aiogram import Router
from aiogram.filters import ExceptionTypeFilter
from aiogram.types import ErrorEvent, InlineKeyboardMarkup, Message

from handlers.ui import deal_card, lead_card
from handlers.ui.callbacks import DealCb, InstallmentCb, LeadCb
from handlers.ui.error_text import error_text
from handlers.ui.i18n import DEFAULT_LANG, t
from services.errors import DomainError, StaleVersion
from services.permissions import Actor
from storage.uow import DuplicateUpdate, UnitOfWorkFactory

log = logging.getLogger(__name__)


async def domain_error(
    event: ErrorEvent,
    lang: str = DEFAULT_LANG,
    actor: Actor | None = None,
    uow_factory: UnitOfWorkFactory | None = None,
    tz: tzinfo | None = None,
) -> None:
    exc = event.exception
    assert isinstance(exc, DomainError)
    text = error_text(exc, lang)
    query = event.update.callback_query
    if query is not None:
        if isinstance(exc, StaleVersion) and actor and uow_factory and tz:
            await _refresh_card(query.data or "", query.message, actor, lang, tz, uow_factory)
            key = "lead.changed" if exc.params.get("entity") == "lead" else "error.stale_version"
            text = "⚠️ " + t(key, lang)
        await query.answer(text[:200], show_alert=True)
        return
    message = event.update.message
    if message is not None:
        await message.answer(text)


async def _refresh_card(
    data: str, message: Any, actor: Actor, lang: str, tz: tzinfo, uow_factory: UnitOfWorkFactory
) -> None:
    """The card the person tapped was out of date: show the current one in its place.

    Runs after the update's unit of work is closed, so a fresh one can read (on SQLite the
    failed attempt's write lock is gone by now)."""
    if not isinstance(message, Message):
        return
    prefix = data.split(":", 1)[0]
    markup: InlineKeyboardMarkup | None
    try:
        async with uow_factory() as uow:
            if prefix in (DealCb.__prefix__, InstallmentCb.__prefix__):
                cb = DealCb if prefix == DealCb.__prefix__ else InstallmentCb
                notice = t("deal.changed_elsewhere", lang)
                text, markup = await deal_card.drawn(
                    uow, actor, cb.unpack(data).deal_id, lang, tz, notice
                )
            elif prefix == LeadCb.__prefix__:
                notice = t("lead.changed_elsewhere", lang)
                text, markup = await lead_card.drawn(
                    uow, actor, LeadCb.unpack(data).lead_id, lang, tz, notice
                )
            else:
                return
    except (DomainError, ValueError, TypeError):
        return
    await message.edit_text(text, reply_markup=markup)


async def duplicate_update(event: ErrorEvent) -> None:
    """A second delivery of an update raced the first and lost: it did nothing; stay quiet."""
    log.info("update %s: duplicate delivery ignored", event.update.update_id)


BUSINESS_UPDATES = (
    "business_connection",
    "business_message",
    "edited_business_message",
    "deleted_business_messages",
)


def is_business(event: ErrorEvent) -> bool:
    return any(getattr(event.update, kind, None) is not None for kind in BUSINESS_UPDATES)


async def business_update_failed(event: ErrorEvent) -> None:
    """A Business update came from a client, not from someone who can read an apology, and
    its effect was not committed (so its id is not recorded as applied): say so at ERROR and
    let the exception escape, so the webhook answers 500 and Telegram delivers it again."""
    log.error(
        "business update %s could not be recorded; left for a retry",
        event.update.update_id,
        exc_info=event.exception,
    )
    raise event.exception


async def unexpected_error(event: ErrorEvent, lang: str = DEFAULT_LANG) -> None:
    log.exception("update %s failed", event.update.update_id, exc_info=event.exception)
    text = t("error.unexpected", lang)
    query = event.update.callback_query
    if query is not None:
        await query.answer(text, show_alert=True)
    elif event.update.message is not None:
        await event.update.message.answer(text)


def setup() -> Router:
    """A fresh router for one Dispatcher (its handlers in dispatch order)."""
    router = Router(name="errors")
    router.error.register(duplicate_update, ExceptionTypeFilter(DuplicateUpdate))
    router.error.register(business_update_failed, is_business)
    router.error.register(domain_error, ExceptionTypeFilter(DomainError))
    router.error.register(unexpected_error)
    return router
