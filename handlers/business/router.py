"""Telegram Business updates: a manager's connection (recorded, the manager told what
Voronka will do, or that it stopped), clients' messages in the connected chats, their edits
and deletions (services/intake/business.py decides what is recorded where).

These updates come from the client (or the manager's account), not from a staff member
tapping the bot: no Staff filter, and the service checks the connection on every update.
"""

from __future__ import annotations

import logging
from contextlib import suppress

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.types import BusinessConnection, BusinessMessagesDeleted, InlineKeyboardMarkup, Message

from handlers.ui.callbacks import LeadAction, LeadCb
from handlers.ui.i18n import lang_of, t
from handlers.ui.keyboards import button
from services.intake import business
from services.intake.business import BusinessResult, ConnectionIn, MessageIn, Outcome
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)


def message_in(message: Message) -> MessageIn:
    """A business message as plain values (the largest photo size; media as file ids)."""
    media: tuple[str | None, str | None, str | None] = (None, None, None)
    if message.photo:
        p = message.photo[-1]
        media = ("photo", p.file_id, p.file_unique_id)
    else:
        for kind in ("video", "document", "voice", "audio", "animation", "video_note", "sticker"):
            item = getattr(message, kind, None)
            if item is not None:
                media = (kind, item.file_id, item.file_unique_id)
                break
    user = message.from_user
    contact = message.contact
    return MessageIn(
        connection_id=message.business_connection_id or "",
        chat_id=message.chat.id,
        message_id=message.message_id,
        from_id=user.id if user else None,
        first_name=(user.first_name if user else "") or "",
        last_name=user.last_name if user else None,
        username=user.username if user else None,
        text=message.text,
        media_type=media[0],
        file_id=media[1],
        file_unique_id=media[2],
        caption=message.caption,
        shared_phone=contact.phone_number if contact else None,
        shared_user_id=contact.user_id if contact else None,
    )


async def _tell(
    bot: Bot | None, chat_id: int | None, text: str, markup: InlineKeyboardMarkup | None = None
) -> None:
    """A note to the manager; a manager who never opened the bot cannot be written to."""
    if bot is None or chat_id is None:
        return
    with suppress(TelegramAPIError):
        await bot.send_message(chat_id, text, reply_markup=markup)


async def on_connection(event: BusinessConnection, uow: UnitOfWork, bot: Bot) -> None:
    rights = event.rights
    can_reply = (
        bool(rights.can_reply)
        if rights is not None and rights.can_reply is not None
        else (bool(event.can_reply))
    )
    result = await business.connection_update(
        uow,
        ConnectionIn(
            id=event.id,
            user_id=event.user.id,
            user_chat_id=event.user_chat_id,
            can_reply=can_reply,
            enabled=event.is_enabled,
        ),
    )
    if result.outcome == Outcome.IGNORED:
        return
    lang = result.language or lang_of(event.user.language_code)
    if result.outcome == Outcome.NOT_STAFF:
        text = t("business.not_staff", lang)
    elif result.outcome == Outcome.ROLE_OFF:
        text = t("business.role_off", lang)
    elif result.outcome == Outcome.DISABLED:
        text = t("business.disconnected", lang)
    else:
        text = t("business.connected", lang)
        text += "\n\n" + t(
            "business.connected.reply_on" if result.can_reply else "business.connected.reply_off",
            lang,
        )
        if not result.capture:
            text += "\n\n" + t("business.capture_off", lang)
    await _tell(bot, result.employee_chat_id, text)


async def _after_message(result: BusinessResult, bot: Bot | None) -> None:
    if result.outcome != Outcome.NEW_LEAD or result.lead_id is None:
        return
    lang = result.language or "ru"
    markup = InlineKeyboardMarkup(
        inline_keyboard=[
            [
                button(
                    t("business.open_lead", lang),
                    LeadCb(action=LeadAction.OPEN, lead_id=result.lead_id),
                )
            ]
        ]
    )
    text = t("business.new_lead", lang, name=result.client or "")
    await _tell(bot, result.employee_chat_id, text, markup)


async def on_message(message: Message, uow: UnitOfWork, bot: Bot) -> None:
    result = await business.client_message(uow, message_in(message))
    await _after_message(result, bot)


async def on_edited(message: Message, uow: UnitOfWork) -> None:
    await business.edited_message(uow, message_in(message))


async def on_deleted(event: BusinessMessagesDeleted, uow: UnitOfWork) -> None:
    await business.deleted_messages(
        uow, event.business_connection_id, event.chat.id, list(event.message_ids)
    )


def setup() -> Router:
    router = Router(name="business")
    router.business_connection.register(on_connection)
    router.business_message.register(on_message)
    router.edited_business_message.register(on_edited)
    router.deleted_business_messages.register(on_deleted)
    return router
