"""What the card edits draw: the field buttons, the question with the current value, the
note over the redrawn card."""

from __future__ import annotations

from html import unescape

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from handlers.ui import deal_card, lead_card, timeline
from handlers.ui.callbacks import DealAction, LeadAction
from handlers.ui.context import Ctx
from handlers.ui.i18n import t
from handlers.ui.keyboards import button
from services.dto import DealCard, LeadCard
from services.sales.edit import DATE_FIELDS, DAY_FIELDS, DEAL_FIELDS, LEAD_FIELDS


def label(field: str, lang: str) -> str:
    return t(f"edit.field.{field}", lang)


def _pairs(buttons: list[InlineKeyboardButton]) -> list[list[InlineKeyboardButton]]:
    return [buttons[i : i + 2] for i in range(0, len(buttons), 2)]


def deal_fields(card: DealCard, lang: str) -> InlineKeyboardMarkup:
    buttons = [
        button(label(f, lang), deal_card.card_cb(card, DealAction.EDIT_FIELD, i))
        for i, f in enumerate(DEAL_FIELDS)
    ]
    rows = _pairs(buttons) + [deal_card.back_to_card(card, lang)]
    return InlineKeyboardMarkup(inline_keyboard=rows)


def lead_fields(card: LeadCard, lang: str) -> InlineKeyboardMarkup:
    buttons = [
        button(label(f, lang), lead_card.lead_cb(card, LeadAction.EDIT_FIELD, i))
        for i, f in enumerate(LEAD_FIELDS)
    ]
    back = button(t("common.back", lang), lead_card.lead_cb(card, LeadAction.OPEN))
    return InlineKeyboardMarkup(inline_keyboard=[*_pairs(buttons), [back]])


def deal_value(card: DealCard, field: str) -> object:
    return getattr(card, field, None)


def lead_value(card: LeadCard, field: str) -> object:
    return getattr(card, field, None)


def field_said(field: str, value: object, ctx: Ctx) -> str:
    """A confirmed value as the toast says it (plain text)."""
    return unescape(timeline.field_value(field, value, ctx.lang, ctx.tz))


def prompt(field: str, current: object, ctx: Ctx) -> str:
    key = "edit.ask.day" if field in DAY_FIELDS else "edit.ask"
    key = "edit.ask.date" if field in DATE_FIELDS else key
    shown = timeline.field_value(field, current, ctx.lang, ctx.tz)
    return ctx.t(key, field=label(field, ctx.lang), current=shown)


def saved(field: str, value: object, ctx: Ctx) -> str:
    """The note over the redrawn card (plain text: the card escapes it)."""
    shown = unescape(timeline.field_value(field, value, ctx.lang, ctx.tz))
    return ctx.t("edit.saved", field=label(field, ctx.lang), value=shown)
