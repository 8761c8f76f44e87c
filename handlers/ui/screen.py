"""The screen helper: ask for typed input, and show a card in the message it belongs to.

A card (deal, task, lead…) lives in a message the person tapped. A sub-step that needs typed
text (a date, a note, a reason, an amount) sets an FSM state, keeps what it needs in the FSM
data — with ``card_msg``, where the tapped card is — and sends the prompt with the Cancel
hint. When the text arrives the card is updated in place (`edit_or_send`), or sent anew if
the bot does not know where it is.
"""

from __future__ import annotations

from typing import Any

from aiogram.fsm.state import State
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardMarkup,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

from handlers.ui.context import Ctx
from handlers.ui.error_text import error_text
from handlers.ui.i18n import t
from services.errors import DomainError

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove
Where = list[int]  # [chat_id, message_id]: JSON-friendly, it is kept in the FSM data


def message_of(query: CallbackQuery) -> Message | None:
    """The tapped message (None when Telegram no longer gives it)."""
    return query.message if isinstance(query.message, Message) else None


def where(query: CallbackQuery) -> Where | None:
    msg = message_of(query)
    return [msg.chat.id, msg.message_id] if msg else None


def with_hint(prompt: str, lang: str) -> str:
    return prompt + "\n" + t("common.cancel_hint", lang)


def again(error: str, prompt: str) -> str:
    """A refused value: what was wrong, and the question again."""
    return error + "\n" + prompt


async def refused(message: Message, ctx: Ctx, exc: DomainError, ask_key: str) -> None:
    """A typed value was refused (nothing saved): what was wrong, and `ask_key` again."""
    await message.answer(again(error_text(exc, ctx.lang), ctx.t(ask_key)))


async def ask(
    target: CallbackQuery | Message,
    ctx: Ctx,
    step: State,
    prompt: str,
    *,
    data: dict[str, Any] | None = None,
    markup: Markup | None = None,
    hint: bool = True,
    edit: bool = False,
) -> None:
    """Ask for typed input: set the FSM state `step`, store `data` (asked from a tapped card,
    also ``card_msg``: where the card is), and send the prompt (with the Cancel hint unless
    `hint` is False). `edit`: replace the tapped message (an inline keyboard only) instead."""
    context = dict(data or {})
    if isinstance(target, CallbackQuery):
        context.setdefault("card_msg", where(target))
        msg = message_of(target)
    else:
        msg = target
    await ctx.state.set_state(step)
    await ctx.state.set_data(context)
    if msg is None:
        return
    text = with_hint(prompt, ctx.lang) if hint else prompt
    if edit and (markup is None or isinstance(markup, InlineKeyboardMarkup)):
        await msg.edit_text(text, reply_markup=markup)
    else:
        await msg.answer(text, reply_markup=markup)


async def edit(query: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    """Redraw the tapped message in place."""
    msg = message_of(query)
    if msg is not None:
        await msg.edit_text(text, reply_markup=markup)


async def edit_or_send(
    message: Message, card_msg: Where | None, text: str, markup: InlineKeyboardMarkup | None
) -> bool:
    """Update the card we came from if we know it (True), else send it as a new message."""
    if card_msg and message.bot is not None:
        await message.bot.edit_message_text(
            text=text, chat_id=card_msg[0], message_id=card_msg[1], reply_markup=markup
        )
        return True
    await message.answer(text, reply_markup=markup)
    return False
