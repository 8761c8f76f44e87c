"""Texts and keyboards of follow-ups: the deal card's "Next contact" choices and deferred
demand's task ("Defer again" choices, the loss reasons of "Lost")."""

from __future__ import annotations

from collections.abc import Sequence

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


def defer_again(task_id: int, lang: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for i, choice in enumerate(NEXT_CONTACT_CHOICES):
        kb.add(
            button(
                t(f"tasks.when.{choice.value}", lang),
                TaskCb(action=TaskAction.DEFER_AGAIN, task_id=task_id, arg=i + 1),
            )
        )
    kb.adjust(2)
    kb.row(
        button(
            t("tasks.next_contact.type", lang),
            TaskCb(action=TaskAction.DEFER_TYPE, task_id=task_id),
        )
    )
    return kb.as_markup()


def next_contact(card: DealCard, lang: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for i, choice in enumerate(NEXT_CONTACT_CHOICES):
        kb.add(
            button(
                t(f"tasks.when.{choice.value}", lang),
                NextContactCb(deal_id=card.id, arg=i, v=card.version),
            )
        )
    kb.adjust(2)
    kb.row(
        button(
            t("tasks.next_contact.type", lang),
            NextContactCb(deal_id=card.id, arg=len(NEXT_CONTACT_CHOICES), v=card.version),
        )
    )
    kb.row(*back_to_card(card, lang))
    return kb.as_markup()
