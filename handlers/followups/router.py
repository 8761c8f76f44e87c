"""Follow-ups on the phone: the deal card's "Next contact" (a quick choice or a typed date)
and deferred demand's task (Back to sales, Lost with a reason, Defer again).

Every handler: read the callback/state -> one service call -> the deal card
(handlers/ui/deal_card.py). The ids in callback data are client input: the services load
the task/deal and check the actor's right to it. Errors go to the error router.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from aiogram import F, Router
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message

from handlers.followups import views as view
from handlers.ui import deal_card, task_card, when
from handlers.ui.callbacks import (
    NEXT_CONTACT_CHOICES,
    DealAction,
    DealCb,
    NextContactCb,
    TaskAction,
    TaskCb,
)
from handlers.ui.context import Ctx
from handlers.ui.filters import staff_router
from handlers.ui.fmt import when as fmt_when
from services import dates
from services.errors import ValidationError
from services.sales import deals
from services.work import followups


class FollowupInput(StatesGroup):
    """Stored as "TaskInput:<name>" as before the tasks area was split (FSM data in Redis
    outlives a deploy)."""

    next_contact = State(group_name="TaskInput")  # a typed next-contact date (deal card)
    defer_again = State(group_name="TaskInput")  # a typed date for "Defer again"


# --- deferred demand's task ---------------------------------------------------------------


async def deferred_back(query: CallbackQuery, callback_data: TaskCb, ctx: Ctx) -> None:
    card = await followups.deferred_back_to_sales(ctx.uow, ctx.actor, callback_data.task_id)
    await deal_card.show(query, ctx, card)


async def deferred_lost(query: CallbackQuery, callback_data: TaskCb, ctx: Ctx) -> None:
    task_id = callback_data.task_id
    if callback_data.arg:
        # deals.lose takes a reason's code or its id (from a button); the id passes through.
        reason = cast(str, callback_data.arg)
        card = await followups.deferred_lost(ctx.uow, ctx.actor, task_id, reason)
        await deal_card.show(query, ctx, card)
        return
    items = [
        (rid, ("⏸ " if cond else "") + label)
        for rid, label, cond in await deals.loss_reasons(ctx.uow, ctx.lang)
    ]
    await task_card.sub_menu(query, ctx, task_id, view.reasons(task_id, items))


async def deferred_again(query: CallbackQuery, callback_data: TaskCb, ctx: Ctx) -> None:
    arg, task_id = callback_data.arg, callback_data.task_id
    if arg:
        if arg > len(NEXT_CONTACT_CHOICES):
            raise ValidationError("when", "unknown_choice")
        at = dates.quick(NEXT_CONTACT_CHOICES[arg - 1], ctx.clock, ctx.zone)
        card = await followups.defer_again(ctx.uow, ctx.actor, task_id, at)
        await deal_card.show(query, ctx, card)
        return
    await task_card.sub_menu(query, ctx, task_id, view.defer_again(task_id, ctx.lang))


async def deferred_type(query: CallbackQuery, callback_data: TaskCb, ctx: Ctx) -> None:
    step = FollowupInput.defer_again
    await task_card.ask_for_task(query, ctx, step, callback_data.task_id, "tasks.ask.when")


async def _defer_again_at(message: Message, ctx: Ctx, data: dict[str, Any], at: datetime) -> None:
    card = await followups.defer_again(ctx.uow, ctx.actor, int(data["task_id"]), at)
    await ctx.state.clear()
    await deal_card.replace_card(message, ctx, data.get("card_msg"), card)


when.use(FollowupInput.defer_again, "tasks.ask.when", "edit.field.next_contact_at", _defer_again_at)


# --- "Next contact" on a deal card --------------------------------------------------------


async def next_contact_menu(query: CallbackQuery, callback_data: DealCb, ctx: Ctx) -> None:
    ask = "tasks.next_contact.ask"
    await deal_card.sub_menu(
        query, ctx, callback_data, lambda c: view.next_contact(c, ctx.lang), ask
    )


async def next_contact_pick(query: CallbackQuery, callback_data: NextContactCb, ctx: Ctx) -> None:
    arg, deal_id, v = callback_data.arg, callback_data.deal_id, callback_data.v
    if arg == len(NEXT_CONTACT_CHOICES):  # type a date
        cb = DealCb(action=DealAction.NEXT_CONTACT, deal_id=deal_id, v=v)
        step = FollowupInput.next_contact
        await deal_card.ask_for_card(query, ctx, step, cb, "tasks.ask.when")
        return
    if arg > len(NEXT_CONTACT_CHOICES):
        raise ValidationError("when", "unknown_choice")
    card = await followups.set_next_contact_quick(
        ctx.uow, ctx.actor, deal_id, NEXT_CONTACT_CHOICES[arg], ctx.zone, v or None
    )
    when = fmt_when(card.next_contact_at, ctx.tz, ctx.lang)
    await deal_card.show(query, ctx, card, notice=ctx.t("tasks.next_contact.set", when=when))


async def _next_contact_at(message: Message, ctx: Ctx, data: dict[str, Any], at: datetime) -> None:
    cb = DealCb.unpack(data["cb"])
    card = await followups.set_next_contact(ctx.uow, ctx.actor, cb.deal_id, at, cb.v or None)
    await ctx.state.clear()
    await deal_card.replace_card(message, ctx, data.get("card_msg"), card)


when.use(
    FollowupInput.next_contact, "tasks.ask.when", "edit.field.next_contact_at", _next_contact_at
)


def setup() -> Router:
    """A fresh router for one Dispatcher (its handlers in dispatch order)."""
    router = staff_router("followups")
    router.callback_query.register(
        deferred_back, TaskCb.filter(F.action == TaskAction.BACK_TO_SALES)
    )
    router.callback_query.register(deferred_lost, TaskCb.filter(F.action == TaskAction.LOST))
    router.callback_query.register(
        deferred_again, TaskCb.filter(F.action == TaskAction.DEFER_AGAIN)
    )
    router.callback_query.register(deferred_type, TaskCb.filter(F.action == TaskAction.DEFER_TYPE))
    router.message.register(when.typed_for, FollowupInput.defer_again, F.text)
    router.callback_query.register(
        next_contact_menu, DealCb.filter(F.action == DealAction.NEXT_CONTACT)
    )
    router.callback_query.register(next_contact_pick, NextContactCb.filter())
    router.message.register(when.typed_for, FollowupInput.next_contact, F.text)
    return router
