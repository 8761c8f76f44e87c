"""✏️ Edit on the deal and lead cards: pick a field, type the new value, the card redrawn.

Every handler: the callback / typed text -> one service call (services/sales/edit.py, which
checks the actor's right, the card's version and the value by the rules of entry) -> the
card redrawn where it is. A typed date is said back first (handlers/ui/when.py) and saved on
the ✅ tap, confirmed with a toast. A refused value says why and asks again: nothing saved.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from aiogram import F, Router
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer

from handlers.edit import views as view
from handlers.ui import deal_card, lead_card, screen, task_card, when
from handlers.ui.callbacks import (
    DealAction,
    DealCb,
    LeadAction,
    LeadCb,
    TaskAction,
    TaskCb,
    WhenCb,
)
from handlers.ui.context import Ctx
from handlers.ui.error_text import error_text
from handlers.ui.filters import staff_router
from services import tasks
from services.common import check_version
from services.dto import DealCard
from services.errors import PermissionDenied, ValidationError
from services.permissions import Action
from services.sales import edit, leads

C = TypeVar("C")


class EditInput(StatesGroup):
    deal = State()  # a deal field's new value (data: cb, field, card_msg; a date: day, value)
    lead = State()
    task = State()  # a task's new due time (data: task_id, subject, card_msg; day, value)


def _may_edit(card: DealCard) -> None:
    if not card.may_edit:
        raise PermissionDenied(str(Action.DEAL_EDIT))


async def _keep_card_msg(ctx: Ctx, query: CallbackQuery, subject: str, ident: int) -> Any:
    """Where the card is: kept from the step before when "✏️ Change" was tapped under a
    said-back date (that message is not the card), else the tapped message."""
    data = await ctx.state.get_data()
    if data.get("subject") == [subject, ident] and data.get("card_msg"):
        return data["card_msg"]
    return screen.where(query)


async def _saved(message: Message, ctx: Ctx, call: Awaitable[C]) -> C | None:
    """A typed value saved (the step over), or refused: why, and the step stays (None)."""
    try:
        card = await call
    except ValidationError as exc:
        await message.answer(error_text(exc, ctx.lang))
        return None
    await ctx.state.clear()
    return card


# --- the deal card --------------------------------------------------------------------------


async def deal_menu(query: CallbackQuery, callback_data: DealCb, ctx: Ctx) -> None:
    """✏️: the fields in place of the card's buttons."""

    def markup(card: DealCard) -> Any:
        _may_edit(card)
        return view.deal_fields(card, ctx.lang)

    await deal_card.sub_menu(query, ctx, callback_data, markup, "edit.pick")


async def deal_ask(query: CallbackQuery, callback_data: DealCb, ctx: Ctx) -> None:
    """A field tapped: ask its new value (the card's version is checked at the tap)."""
    field = edit.field_of(edit.DEAL_FIELDS, callback_data.arg)
    card = await deal_card.fresh(ctx, callback_data)
    _may_edit(card)
    card_msg = await _keep_card_msg(ctx, query, "deal", card.id)
    prompt = view.prompt(field, view.deal_value(card, field), ctx)
    data = {"cb": callback_data.pack(), "field": field, "card_msg": card_msg}
    data["subject"] = ["deal", card.id]
    await screen.ask(query, ctx, EditInput.deal, prompt, data=data)


async def deal_typed(message: Message, ctx: Ctx) -> None:
    data = await ctx.state.get_data()
    cb = DealCb.unpack(data["cb"])
    field = data["field"]
    if field in edit.DATE_FIELDS or field in edit.DAY_FIELDS:
        index = edit.DEAL_FIELDS.index(field)
        ok = DealCb(action=DealAction.EDIT_OK, deal_id=cb.deal_id, v=cb.v, arg=index)
        if field in edit.DAY_FIELDS:  # a day, said back as a day
            await when.typed_day(message, ctx, view.label(field, ctx.lang), ok, cb)
        else:
            await when.typed(message, ctx, view.label(field, ctx.lang), ok, cb)
        return
    card = await _saved(
        message,
        ctx,
        edit.edit_deal(ctx.uow, ctx.actor, cb.deal_id, field, message.text or "", cb.v),
    )
    if card is None:
        return
    notice = view.saved(field, view.deal_value(card, field), ctx)
    await deal_card.replace_card(message, ctx, data.get("card_msg"), card, notice=notice)


async def deal_confirmed(
    query: CallbackQuery, callback_data: DealCb, ctx: Ctx, callback_answer: CallbackAnswer
) -> None:
    """✅ under a said-back date: saved, confirmed with a toast, the card redrawn."""
    field = edit.field_of(edit.DEAL_FIELDS, callback_data.arg)
    data = await ctx.state.get_data()
    if data.get("field") != field or data.get("subject") != ["deal", callback_data.deal_id]:
        raise ValidationError("when", "expired")
    at = await when.confirmed(ctx)
    card = await edit.edit_deal(
        ctx.uow, ctx.actor, callback_data.deal_id, field, at, callback_data.v
    )
    await ctx.state.clear()
    said = view.field_said(field, at, ctx) if field in edit.DAY_FIELDS else when.said(ctx, at)
    done = ctx.t("edit.confirmed", field=view.label(field, ctx.lang), when=said)
    callback_answer.text = done
    await screen.edit(query, done)  # the question answered, without its buttons
    msg = screen.message_of(query)
    if msg is not None:
        text = deal_card.card_text(card, ctx.lang, ctx.tz)
        await screen.edit_or_send(
            msg, data.get("card_msg"), text, deal_card.card_keyboard(card, ctx.lang)
        )


# --- the lead card --------------------------------------------------------------------------


async def lead_menu(query: CallbackQuery, callback_data: LeadCb, ctx: Ctx) -> None:
    card = await leads.get_lead(ctx.uow, ctx.actor, callback_data.lead_id)
    check_version("lead", card.version, callback_data.v or None)
    await lead_card.show(query, ctx, card, (ctx.t("edit.pick"), view.lead_fields(card, ctx.lang)))


async def lead_ask(query: CallbackQuery, callback_data: LeadCb, ctx: Ctx) -> None:
    field = edit.field_of(edit.LEAD_FIELDS, callback_data.arg)
    card = await leads.get_lead(ctx.uow, ctx.actor, callback_data.lead_id)
    check_version("lead", card.version, callback_data.v or None)
    prompt = view.prompt(field, view.lead_value(card, field), ctx)
    data = {"cb": callback_data.pack(), "field": field, "subject": ["lead", card.id]}
    await screen.ask(query, ctx, EditInput.lead, prompt, data=data)


async def lead_typed(message: Message, ctx: Ctx) -> None:
    data = await ctx.state.get_data()
    cb = LeadCb.unpack(data["cb"])
    field = data["field"]
    card = await _saved(
        message,
        ctx,
        edit.edit_lead(ctx.uow, ctx.actor, cb.lead_id, field, message.text or "", cb.v),
    )
    if card is None:
        return
    notice = view.saved(field, view.lead_value(card, field), ctx)
    text = lead_card.card_text(card, ctx.lang, ctx.tz, notice)
    markup = lead_card.card_keyboard(card, ctx.lang)
    await screen.edit_or_send(message, data.get("card_msg"), text, markup)


# --- the task card: its due time ----------------------------------------------------------


async def task_due_ask(query: CallbackQuery, callback_data: TaskCb, ctx: Ctx) -> None:
    """✏️ Due: ask the new due time (someone else's task is refused at the tap)."""
    ident = callback_data.task_id
    card_msg = await _keep_card_msg(ctx, query, "task", ident)
    data = {"subject": ["task", ident], "card_msg": card_msg}
    await task_card.ask_for_task(query, ctx, EditInput.task, ident, "edit.ask.due", data=data)


async def task_due_typed(message: Message, ctx: Ctx) -> None:
    ident = (await ctx.state.get_data())["task_id"]
    ok = TaskCb(action=TaskAction.DUE_OK, task_id=ident)
    change = TaskCb(action=TaskAction.DUE, task_id=ident)
    await when.typed(message, ctx, view.label("due_at", ctx.lang), ok, change)


async def task_due_confirmed(
    query: CallbackQuery, callback_data: TaskCb, ctx: Ctx, callback_answer: CallbackAnswer
) -> None:
    """✅ under the said-back due time: the task moved (tasks.snooze: its reminder with it)."""
    data = await ctx.state.get_data()
    if data.get("subject") != ["task", callback_data.task_id]:
        raise ValidationError("when", "expired")
    at = await when.confirmed(ctx)
    await tasks.snooze(ctx.uow, ctx.actor, callback_data.task_id, at)
    await ctx.state.clear()
    done = ctx.t("edit.confirmed", field=view.label("due_at", ctx.lang), when=when.said(ctx, at))
    callback_answer.text = done
    await screen.edit(query, done)
    msg = screen.message_of(query)
    if msg is not None and data.get("card_msg"):
        card = await tasks.task_card(ctx.uow, ctx.actor, callback_data.task_id)
        text = task_card.task_text(card, ctx.lang, ctx.tz)
        await screen.edit_or_send(
            msg, data["card_msg"], text, task_card.task_keyboard(card, ctx.lang)
        )


def setup() -> Router:
    """A fresh router for one Dispatcher."""
    router = staff_router("edit")
    router.callback_query.register(deal_menu, DealCb.filter(F.action == DealAction.EDIT))
    router.callback_query.register(deal_ask, DealCb.filter(F.action == DealAction.EDIT_FIELD))
    router.callback_query.register(deal_confirmed, DealCb.filter(F.action == DealAction.EDIT_OK))
    router.message.register(deal_typed, EditInput.deal, F.text)
    router.callback_query.register(lead_menu, LeadCb.filter(F.action == LeadAction.EDIT))
    router.callback_query.register(lead_ask, LeadCb.filter(F.action == LeadAction.EDIT_FIELD))
    router.message.register(lead_typed, EditInput.lead, F.text)
    router.callback_query.register(task_due_ask, TaskCb.filter(F.action == TaskAction.DUE))
    router.callback_query.register(task_due_confirmed, TaskCb.filter(F.action == TaskAction.DUE_OK))
    router.message.register(task_due_typed, EditInput.task, F.text)
    router.callback_query.register(when.tapped, WhenCb.filter())  # every area's said-back date
    return router
