"""Follow-ups on the phone: the deal card's "Next contact" (a quick choice or a typed date)
and deferred demand's task (Back to sales, Lost with a reason, Defer again).

Every handler: read the callback/state -> one service call -> the deal card
(handlers/ui/deal_card.py). The ids in callback data are client input: the services load
the task/deal and check the actor's right to it. Errors go to the error router.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import Any, cast

from aiogram import F, Router
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message

from handlers.followups import views as view
from handlers.ui import deal_card, screen
from handlers.ui.callbacks import (
    NEXT_CONTACT_CHOICES,
    DealAction,
    DealCb,
    NextContactCb,
    TaskAction,
    TaskCb,
)
from handlers.ui.error_text import error_text
from handlers.ui.filters import Staff
from handlers.ui.fmt import when as fmt_when
from handlers.ui.i18n import t
from services import dates, tasks
from services.dto import DealCard
from services.errors import ValidationError
from services.permissions import Actor
from services.sales import deals
from services.work import followups
from storage.uow import UnitOfWork


class FollowupInput(StatesGroup):
    """Stored as "TaskInput:<name>" as before the tasks area was split (FSM data in Redis
    outlives a deploy)."""

    next_contact = State(group_name="TaskInput")  # a typed next-contact date (deal card)
    defer_again = State(group_name="TaskInput")  # a typed date for "Defer again"


# --- deferred demand's task ---------------------------------------------------------------


async def deferred_back(
    query: CallbackQuery,
    callback_data: TaskCb,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    tz: tzinfo,
) -> None:
    card = await followups.deferred_back_to_sales(uow, actor, callback_data.task_id)
    await deal_card.show(query, card, lang, tz)


async def deferred_lost(
    query: CallbackQuery,
    callback_data: TaskCb,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    tz: tzinfo,
) -> None:
    if callback_data.arg:
        # deals.lose takes a reason's code or its id (from a button); the id passes through.
        reason = cast(str, callback_data.arg)
        card = await followups.deferred_lost(uow, actor, callback_data.task_id, reason)
        await deal_card.show(query, card, lang, tz)
        return
    await tasks.task_card(uow, actor, callback_data.task_id)  # someone else's: refused
    items = [
        (rid, ("⏸ " if cond else "") + label)
        for rid, label, cond in await deals.loss_reasons(uow, lang)
    ]
    msg = screen.message_of(query)
    if msg is not None:
        await msg.edit_reply_markup(reply_markup=view.reasons(callback_data.task_id, items))


async def deferred_again(
    query: CallbackQuery,
    callback_data: TaskCb,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    tz: tzinfo,
    clock: Any,
) -> None:
    arg = callback_data.arg
    if arg:
        if arg > len(NEXT_CONTACT_CHOICES):
            raise ValidationError("when", "unknown_choice")
        at = dates.quick(NEXT_CONTACT_CHOICES[arg - 1], clock, str(tz))
        card = await followups.defer_again(uow, actor, callback_data.task_id, at)
        await deal_card.show(query, card, lang, tz)
        return
    await tasks.task_card(uow, actor, callback_data.task_id)  # someone else's: refused
    msg = screen.message_of(query)
    if msg is not None:
        await msg.edit_reply_markup(reply_markup=view.defer_again(callback_data.task_id, lang))


async def deferred_type(
    query: CallbackQuery,
    callback_data: TaskCb,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    state: FSMContext,
) -> None:
    await tasks.task_card(uow, actor, callback_data.task_id)  # someone else's: refused
    await screen.ask(
        query,
        state,
        FollowupInput.defer_again,
        t("tasks.ask.when", lang),
        lang,
        data={"task_id": callback_data.task_id},
    )


async def deferred_date_input(
    message: Message,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    tz: tzinfo,
    state: FSMContext,
    clock: Any,
) -> None:
    data = await state.get_data()
    try:
        at = dates.parse_when(message.text or "", clock, str(tz))
        card = await followups.defer_again(uow, actor, int(data["task_id"]), at)
    except ValidationError as exc:
        await message.answer(error_text(exc, lang) + "\n" + t("tasks.ask.when", lang))
        return
    await state.clear()
    await deal_card.replace_card(message, data.get("card_msg"), card, lang, tz)


# --- "Next contact" on a deal card --------------------------------------------------------


async def next_contact_menu(
    query: CallbackQuery,
    callback_data: DealCb,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    tz: tzinfo,
) -> None:
    ask = t("tasks.next_contact.ask", lang)
    await deal_card.sub_menu(
        query, uow, actor, callback_data, lang, tz, lambda c: view.next_contact(c, lang), ask
    )


async def next_contact_pick(
    query: CallbackQuery,
    callback_data: NextContactCb,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    tz: tzinfo,
    state: FSMContext,
) -> None:
    arg, deal_id, v = callback_data.arg, callback_data.deal_id, callback_data.v
    if arg == len(NEXT_CONTACT_CHOICES):  # type a date
        cb = DealCb(action=DealAction.NEXT_CONTACT, deal_id=deal_id, v=v)
        await deal_card.fresh(uow, actor, cb)
        await deal_card.ask_for_card(
            query, state, FollowupInput.next_contact, cb, t("tasks.ask.when", lang), lang
        )
        return
    if arg > len(NEXT_CONTACT_CHOICES):
        raise ValidationError("when", "unknown_choice")
    card = await followups.set_next_contact_quick(
        uow, actor, deal_id, NEXT_CONTACT_CHOICES[arg], str(tz), v or None
    )
    notice = t("tasks.next_contact.set", lang, when=fmt_when(card.next_contact_at, tz, lang))
    await deal_card.show(query, card, lang, tz, notice=notice)


async def next_contact_input(
    message: Message,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    tz: tzinfo,
    state: FSMContext,
    clock: Any,
) -> None:
    async def apply(cb: DealCb, text: str) -> DealCard:
        at = dates.parse_when(text, clock, str(tz))
        return await followups.set_next_contact(uow, actor, cb.deal_id, at, cb.v or None)

    await deal_card.typed(message, state, lang, tz, "tasks.ask.when", apply)


def setup() -> Router:
    """A fresh router for one Dispatcher (its handlers in dispatch order)."""
    router = Router(name="followups")
    router.message.filter(Staff())
    router.callback_query.filter(Staff())
    router.callback_query.register(
        deferred_back, TaskCb.filter(F.action == TaskAction.BACK_TO_SALES)
    )
    router.callback_query.register(deferred_lost, TaskCb.filter(F.action == TaskAction.LOST))
    router.callback_query.register(
        deferred_again, TaskCb.filter(F.action == TaskAction.DEFER_AGAIN)
    )
    router.callback_query.register(deferred_type, TaskCb.filter(F.action == TaskAction.DEFER_TYPE))
    router.message.register(deferred_date_input, FollowupInput.defer_again, F.text)
    router.callback_query.register(
        next_contact_menu, DealCb.filter(F.action == DealAction.NEXT_CONTACT)
    )
    router.callback_query.register(next_contact_pick, NextContactCb.filter())
    router.message.register(next_contact_input, FollowupInput.next_contact, F.text)
    return router
