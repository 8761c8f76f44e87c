"""/plan: a leader (or an admin) sets a month's sales plan (issue 26): the month (this or
next), whose (a manager or the company), then the sales and the money typed on one line
("5 1.5M"), said back with ✅ / ✏️ before it is saved. The service checks the right at
every step (services/sales/plans.py); the numbers are shown in /funnel's Plan view."""

from __future__ import annotations

from datetime import date
from html import escape

from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer

from handlers.ui import fmt, screen
from handlers.ui.callbacks import PlanAction, PlanCb
from handlers.ui.context import Ctx
from handlers.ui.error_text import error_text
from handlers.ui.i18n import tn
from handlers.ui.keyboards import button
from services.errors import ValidationError
from services.permissions import Action, require
from services.sales import plans


class PlanInput(StatesGroup):
    numbers = State()  # "sales money" for the month and the person in the FSM data


def _month(value: int) -> date:
    return date(value // 100, value % 100, 1) if 1 <= value % 100 <= 12 else date(1, 1, 1)


def _code(month: date) -> int:
    return month.year * 100 + month.month


async def plan_command(message: Message, ctx: Ctx) -> None:
    """/plan: which month."""
    require(ctx.actor, Action.PLAN_SET)
    months = plans.months_offered(ctx.uow, ctx.zone)
    markup = InlineKeyboardMarkup(
        inline_keyboard=[
            [
                button(fmt.month(m, ctx.lang), PlanCb(action=PlanAction.MONTH, month=_code(m)))
                for m in months
            ]
        ]
    )
    await message.answer(ctx.t("plan.ask.month"), reply_markup=markup)


def _offered(ctx: Ctx, value: int) -> date:
    """The month a button names, if it is one /plan offers (this or next); a forged or
    stale one is refused."""
    month = _month(value)
    if month not in plans.months_offered(ctx.uow, ctx.zone):
        raise ValidationError("when", "expired")
    return month


async def plan_month(query: CallbackQuery, callback_data: PlanCb, ctx: Ctx) -> None:
    """A month picked: the company or a manager."""
    people = await plans.plan_people(ctx.uow, ctx.actor)
    _offered(ctx, callback_data.month)
    month = callback_data.month
    cells = [button(ctx.t("funnel.plan.company"), PlanCb(action=PlanAction.WHO, month=month))]
    cells += [
        button(name, PlanCb(action=PlanAction.WHO, month=month, who=pid)) for pid, name in people
    ]
    rows = [cells[i : i + 2] for i in range(0, len(cells), 2)]
    text = ctx.t("plan.ask.who", month=fmt.month(_month(month), ctx.lang))
    await screen.edit(query, text, InlineKeyboardMarkup(inline_keyboard=rows))


async def _who(ctx: Ctx, who: int) -> str:
    names = dict(await plans.plan_people(ctx.uow, ctx.actor))  # checks the right first
    if not who:
        return ctx.t("funnel.plan.company")
    if who not in names:
        raise ValidationError("sales_plan", "employee")
    return names[who]


async def plan_who(query: CallbackQuery, callback_data: PlanCb, ctx: Ctx) -> None:
    """Whose plan picked: type the sales and the money."""
    name = await _who(ctx, callback_data.who)
    month = fmt.month(_offered(ctx, callback_data.month), ctx.lang)
    prompt = ctx.t("plan.ask.numbers", who=escape(name), month=month)
    data = {"month": callback_data.month, "who": callback_data.who, "prompt": prompt}
    await screen.ask(query, ctx, PlanInput.numbers, prompt, data=data)


async def plan_typed(message: Message, ctx: Ctx) -> None:
    """The numbers typed: said back (nothing is saved yet), or what was wrong."""
    data = await ctx.state.get_data()
    month, who = _month(int(data["month"])), int(data["who"])
    try:
        sales, money = plans.split_typed(message.text or "")
        plan = await plans.check_plan(
            ctx.uow, ctx.actor, month, who or None, sales, money, tz=ctx.zone
        )
    except ValidationError as exc:
        await message.answer(screen.again(error_text(exc, ctx.lang), str(data["prompt"])))
        return
    await ctx.state.update_data(sales=sales, money=money)  # checked again at ✅
    cb = PlanCb(action=PlanAction.SAVE, month=_code(month), who=who)
    markup = InlineKeyboardMarkup(
        inline_keyboard=[
            [
                button(ctx.t("edit.btn.ok"), cb),
                button(
                    ctx.t("edit.btn.change"), cb.model_copy(update={"action": PlanAction.CHANGE})
                ),
            ]
        ]
    )
    await message.answer(_said(ctx, plan, "plan.confirm"), reply_markup=markup)


def _said(ctx: Ctx, plan: plans.PlanInput, key: str) -> str:
    who = escape(plan.name) if plan.name is not None else ctx.t("funnel.plan.company")
    sales = tn("funnel.plan.pace.sales", plan.sales_count, ctx.lang, count=plan.sales_count)
    return ctx.t(
        key,
        who=who,
        month=fmt.month(plan.month, ctx.lang),
        sales=sales,
        money=fmt.money(plan.amount, ctx.lang),
    )


async def plan_save(
    query: CallbackQuery, callback_data: PlanCb, ctx: Ctx, callback_answer: CallbackAnswer
) -> None:
    """✅: saved (a toast says so), the question answered."""
    data = await ctx.state.get_data()
    if (
        data.get("month") != callback_data.month
        or data.get("who") != callback_data.who
        or "sales" not in data
    ):
        raise ValidationError("when", "expired")
    plan = await plans.set_plan(
        ctx.uow,
        ctx.actor,
        _month(callback_data.month),
        callback_data.who or None,
        str(data["sales"]),
        str(data["money"]),
        tz=ctx.zone,
    )
    await ctx.state.clear()
    done = _said(ctx, plan, "plan.saved")
    callback_answer.text = ctx.t("plan.saved.toast")
    await screen.edit(query, done)


async def plan_change(query: CallbackQuery, callback_data: PlanCb, ctx: Ctx) -> None:
    """✏️: the question again."""
    data = await ctx.state.get_data()
    if data.get("month") != callback_data.month or data.get("who") != callback_data.who:
        raise ValidationError("when", "expired")
    msg = screen.message_of(query)
    if msg is not None:
        await msg.answer(str(data["prompt"]))
