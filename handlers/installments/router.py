"""Installments on the phone: "Won with installments" on a deal (an equal split or typed
lines), recording a payment ("amount [date]"), and /receivables.

Every handler: read the callback/state -> one service call -> render. The ids in callback
data are client input: the services load the deal and check the actor's right to it and
the card's version. Errors go to the error router (handlers/errors.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message

from handlers.installments import views as view
from handlers.ui import deal_card, screen
from handlers.ui.callbacks import DealAction, DealCb, InstallmentAction, InstallmentCb
from handlers.ui.context import Ctx
from handlers.ui.filters import staff_router
from services import dates
from services.common import check_version
from services.errors import DealClosed, ValidationError
from services.work import installments
from services.work.installments import EqualSplit, PlanSpec

_DATE_TOKEN = re.compile(r"^(\d{1,2}[./]\d{1,2}([./]\d{2,4})?|\d{4}-\d{1,2}-\d{1,2}|\w+)$")


class InstallmentInput(StatesGroup):
    """Stored as "TaskInput:<name>" as before the tasks area was split (FSM data in Redis
    outlives a deploy)."""

    plan_first_due = State(group_name="TaskInput")  # the first due date of an equal split
    plan_lines = State(group_name="TaskInput")  # typed "date amount" lines
    payment = State(group_name="TaskInput")  # "amount [date]"


def _deal_cb(cb: InstallmentCb) -> DealCb:
    return DealCb(action=DealAction.OPEN, deal_id=cb.deal_id, v=cb.v)


async def win_menu(query: CallbackQuery, callback_data: InstallmentCb, ctx: Ctx) -> None:
    cb, ask = _deal_cb(callback_data), "installments.ask.count"
    await deal_card.sub_menu(query, ctx, cb, lambda card: view.plan_menu(card, ctx.lang), ask)


# an equal split's count asks for the first due date, typed lines ask for the lines
PLAN_ASKS: dict[InstallmentAction, tuple[State, str]] = {
    InstallmentAction.COUNT: (InstallmentInput.plan_first_due, "installments.ask.first_due"),
    InstallmentAction.LINES: (InstallmentInput.plan_lines, "installments.ask.lines"),
}


async def plan_ask(query: CallbackQuery, callback_data: InstallmentCb, ctx: Ctx) -> None:
    step, prompt = PLAN_ASKS[callback_data.action]
    count = {"count": callback_data.arg} if callback_data.action == InstallmentAction.COUNT else {}
    await deal_card.ask_for_card(query, ctx, step, _deal_cb(callback_data), prompt, data=count)


async def _win(
    message: Message, ctx: Ctx, ask_key: str, plan_of: Callable[[dict[str, Any]], PlanSpec]
) -> None:
    data = await ctx.state.get_data()
    cb = DealCb.unpack(data["cb"])
    try:
        summary = await installments.win_with_installments(
            ctx.uow, ctx.actor, cb.deal_id, plan_of(data), cb.v or None, tz=ctx.zone
        )
    except ValidationError as exc:
        await screen.refused(message, ctx, exc, ask_key)
        return
    await ctx.state.clear()
    notice = ctx.t("installments.won", source=summary.source_deal_id)
    await screen.edit_or_send(
        message,
        data.get("card_msg"),
        view.installment_text(summary, ctx.lang, notice),
        view.installment_keyboard(summary, ctx.lang),
    )


async def plan_first_due(message: Message, ctx: Ctx) -> None:
    def plan_of(data: dict[str, Any]) -> PlanSpec:
        first = dates.parse_day(message.text or "", ctx.clock, ctx.zone)
        return EqualSplit(count=int(data.get("count") or 0), first_due=first)

    await _win(message, ctx, "installments.ask.first_due", plan_of)


async def plan_lines(message: Message, ctx: Ctx) -> None:
    def plan_of(data: dict[str, Any]) -> PlanSpec:
        return installments.parse_plan_lines(message.text or "", ctx.clock, ctx.zone)

    await _win(message, ctx, "installments.ask.lines", plan_of)


async def pay_ask(query: CallbackQuery, callback_data: InstallmentCb, ctx: Ctx) -> None:
    summary = await installments.plan_summary(ctx.uow, ctx.actor, callback_data.deal_id, ctx.zone)
    # A prompt from a stale card (a payment recorded since, the plan paid off) is refused
    # here, at the tap, with the fresh card -- not after the amount is typed.
    if summary.deal_id == callback_data.deal_id:
        check_version("deal", summary.version, callback_data.v or None)
    if summary.closed:
        raise DealClosed(summary.stage_code)
    await screen.ask(
        query,
        ctx,
        InstallmentInput.payment,
        view.payment_prompt(summary, ctx.lang),
        data={"deal_id": callback_data.deal_id, "v": callback_data.v},
    )


def split_payment(text: str) -> tuple[str, str | None]:
    """ "15 000" -> ("15 000", None); "15 000 20.01" -> ("15 000", "20.01")."""
    parts = text.strip().rsplit(maxsplit=1)
    if len(parts) == 2 and _DATE_TOKEN.match(parts[1]) and not parts[1].isdigit():
        return parts[0], parts[1]
    return text.strip(), None


async def pay_input(message: Message, ctx: Ctx) -> None:
    data = await ctx.state.get_data()
    amount, day = split_payment(message.text or "")
    try:
        paid_on = dates.parse_paid_on(day, ctx.clock, ctx.zone) if day else None
        summary = await installments.record_payment(
            ctx.uow,
            ctx.actor,
            int(data["deal_id"]),
            amount,
            paid_on,
            data.get("v") or None,
            tz=ctx.zone,
        )
    except ValidationError as exc:
        await screen.refused(message, ctx, exc, "installments.ask.payment_short")
        return
    await ctx.state.clear()
    notice = ctx.t("installments.recorded")
    await message.answer(
        view.installment_text(summary, ctx.lang, notice),
        reply_markup=view.installment_keyboard(summary, ctx.lang),
    )


async def receivables(message: Message, ctx: Ctx) -> None:
    report = await installments.receivables(ctx.uow, ctx.actor, ctx.zone)
    text, markup = view.receivables(report, ctx.lang)
    await message.answer(text, reply_markup=markup)


def setup() -> Router:
    """A fresh router for one Dispatcher (its handlers in dispatch order)."""
    router = staff_router("installments")
    router.callback_query.register(
        win_menu, InstallmentCb.filter(F.action == InstallmentAction.WIN)
    )
    router.callback_query.register(
        plan_ask,
        InstallmentCb.filter(F.action.in_({InstallmentAction.COUNT, InstallmentAction.LINES})),
    )
    router.message.register(plan_first_due, InstallmentInput.plan_first_due, F.text)
    router.message.register(plan_lines, InstallmentInput.plan_lines, F.text)
    router.callback_query.register(pay_ask, InstallmentCb.filter(F.action == InstallmentAction.PAY))
    router.message.register(pay_input, InstallmentInput.payment, F.text)
    router.message.register(receivables, Command("receivables"))
    return router
