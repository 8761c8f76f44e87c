"""Texts and keyboards of follow-ups: the deal card's "Next contact" choices and deferred
demand's task ("Defer again" choices, the loss reasons of "Lost")."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from handlers.ui.callbacks import NEXT_CONTACT_CHOICES, NextContactCb, TaskAction, TaskCb
from handlers.ui.deal_card import back_to_card
from handlers.ui.i18n import t
from handlers.ui.keyboards import button
from services.dto import DealCard


def reasons(task_id: int, items: Sequence[tuple[int, str]]) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for reason_id, label in items:
        kb.add(button(label, TaskCb(action=TaskAction.LOST, task_id=task_id, arg=reason_id)))
    kb.adjust(2)
    return kb.as_markup()


def _when_choices(
    lang: str, choice: Callable[[int], CallbackData], typed: CallbackData
) -> InlineKeyboardBuilder:
    """The quick "when" choices (`choice(i)`: the i-th one's callback), two a row, then
    "Type a date"."""
    kb = InlineKeyboardBuilder()
    for i, when in enumerate(NEXT_CONTACT_CHOICES):
        kb.add(button(t(f"tasks.when.{when.value}", lang), choice(i)))
    kb.adjust(2)
    kb.row(button(t("tasks.next_contact.type", lang), typed))
    return kb


def defer_again(task_id: int, lang: str) -> InlineKeyboardMarkup:
    """Deferred demand's "Defer again": its choices count from 1 (0: show the choices)."""
    kb = _when_choices(
        lang,
        lambda i: TaskCb(action=TaskAction.DEFER_AGAIN, task_id=task_id, arg=i + 1),
        TaskCb(action=TaskAction.DEFER_TYPE, task_id=task_id),
    )
    return kb.as_markup()


def next_contact(card: DealCard, lang: str) -> InlineKeyboardMarkup:
    """The deal card's "Next contact" (its last choice, after the quick ones: type a date)."""
    kb = _when_choices(
        lang,
        lambda i: NextContactCb(deal_id=card.id, arg=i, v=card.version),
        NextContactCb(deal_id=card.id, arg=len(NEXT_CONTACT_CHOICES), v=card.version),
    )
    kb.row(*back_to_card(card, lang))
    return kb.as_markup()
