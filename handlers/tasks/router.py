"""Tasks on the phone: /tasks, the head's measurer choice, the measurer's card (Accept, Can't
make it, On my way, Done with photos/documents), reminder buttons (Done, Snooze), deferred
demand's task, "Next contact" on a deal, manual tasks, installments and /receivables.

Every handler: read the callback/state -> one service call -> render. The ids in callback
data are client input: the services load the task/deal and check the actor's right to it
(a measurer tapping another measurer's task, or "Open deal", is refused). Errors go to the
error router (handlers/ui/errors.py).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import datetime, tzinfo
from html import escape
from typing import Any, cast

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer

from handlers.deals import router as deal_ui
from handlers.errors import error_text
from handlers.tasks import views as view
from handlers.ui import screen
from handlers.ui.callbacks import (
    NEXT_CONTACT_CHOICES,
    SNOOZE_CHOICES,
    AssignCb,
    DealAction,
    DealCb,
    InstallmentAction,
    InstallmentCb,
    MenuAction,
    MenuCb,
    NewTaskAction,
    NewTaskCb,
    NextContactCb,
    TaskAction,
    TaskCb,
    TaskListCb,
    TaskListScope,
)
from handlers.ui.filters import Staff
from handlers.ui.fmt import money
from handlers.ui.fmt import when as fmt_when
from handlers.ui.i18n import t
from handlers.ui.keyboards import button
from services import dates
from services.common import check_version
from services.dto import DealCard
from services.errors import RuleViolation, ValidationError
from services.permissions import Action, Actor, can, require
from services.sales import deals
from services.work import followups, installments, measurement, tasks
from services.work.installments import EqualSplit, InstallmentSummary, PlanSpec
from services.work.measurement import AttachmentIn
from services.work.tasks import Scope, TaskCard
from storage.uow import UnitOfWork

SCOPES: dict[TaskListScope, Scope] = {
    TaskListScope.TODAY: "today",
    TaskListScope.UPCOMING: "upcoming",
}
_DATE_TOKEN = re.compile(r"^(\d{1,2}[./]\d{1,2}([./]\d{2,4})?|\d{4}-\d{1,2}-\d{1,2}|\w+)$")


class TaskInput(StatesGroup):
    decline = State()  # the reason of "Can't make it"
    upload = State()  # the measurer's photos/documents/comment, until "Finish"
    next_contact = State()  # a typed next-contact date (deal card)
    defer_again = State()  # a typed date for deferred demand's "Defer again"
    new_title = State()  # manual task: what
    new_when = State()  # manual task: when (typed, or a quick button)
    plan_first_due = State()  # installments: the first due date of an equal split
    plan_lines = State()  # installments: typed "date amount" lines
    payment = State()  # installments: "amount [date]"


async def _edit(
    message: Message, where: list[int] | None, text: str, markup: InlineKeyboardMarkup | None
) -> None:
    """Update the message we came from (a card) if we know it, else send a new one."""
    if where and message.bot is not None:
        await message.bot.edit_message_text(
            text=text, chat_id=where[0], message_id=where[1], reply_markup=markup
        )
    else:
        await message.answer(text, reply_markup=markup)


async def _show_task(
    query: CallbackQuery, card: TaskCard, lang: str, tz: tzinfo, notice: str | None = None
) -> None:
    msg = screen.message_of(query)
    if msg is not None:
        await msg.edit_text(
            view.task_text(card, lang, tz, notice), reply_markup=view.task_keyboard(card, lang)
        )


async def _drop_buttons(query: CallbackQuery, task_id: int) -> None:
    msg = screen.message_of(query)
    if msg is not None and msg.reply_markup is not None:
        await msg.edit_reply_markup(reply_markup=view.without_task(msg.reply_markup, task_id))


# --- /tasks -----------------------------------------------------------------------------------


async def _list(
    uow: UnitOfWork, actor: Actor, lang: str, tz: tzinfo, scope: TaskListScope
) -> tuple[str, InlineKeyboardMarkup]:
    items = await tasks.list_my_tasks(uow, actor, SCOPES[scope], str(tz))
    return view.task_list(items, scope, lang, tz)


async def tasks_command(
    message: Message, uow: UnitOfWork, actor: Actor, lang: str, tz: tzinfo
) -> None:
    text, markup = await _list(uow, actor, lang, tz, TaskListScope.TODAY)
    await message.answer(text, reply_markup=markup)


async def tasks_menu(
    query: CallbackQuery, uow: UnitOfWork, actor: Actor, lang: str, tz: tzinfo
) -> None:
    text, markup = await _list(uow, actor, lang, tz, TaskListScope.TODAY)
    msg = screen.message_of(query)
    if msg is not None:
        await msg.answer(text, reply_markup=markup)


async def tasks_page(
    query: CallbackQuery,
    callback_data: TaskListCb,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    tz: tzinfo,
) -> None:
    text, markup = await _list(uow, actor, lang, tz, callback_data.scope)
    msg = screen.message_of(query)
    if msg is not None:
        await msg.edit_text(text, reply_markup=markup)


async def open_task(
    query: CallbackQuery,
    callback_data: TaskCb,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    tz: tzinfo,
    state: FSMContext,
) -> None:
    await state.clear()
    card = await tasks.task_card(uow, actor, callback_data.task_id)
    msg = screen.message_of(query)
    if msg is not None:
        await msg.answer(
            view.task_text(card, lang, tz), reply_markup=view.task_keyboard(card, lang)
        )


# --- the measurement chain ----------------------------------------------------------------


async def assign(
    query: CallbackQuery,
    callback_data: AssignCb,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    tz: tzinfo,
) -> None:
    card = await measurement.assign_measurer(
        uow, actor, callback_data.task_id, callback_data.measurer_id
    )
    notice = t("tasks.assign.done", lang, name=card.measurer_name or "")
    msg = screen.message_of(query)
    if msg is not None:  # the head sees what the measurer got, without its buttons
        await msg.edit_text(view.task_text(card, lang, tz, notice), reply_markup=None)


MeasureStep = Callable[[UnitOfWork, Actor, int], Awaitable[TaskCard]]
STEPS: dict[TaskAction, MeasureStep] = {
    TaskAction.ACCEPT: lambda uow, a, tid: measurement.accept(uow, a, tid),
    TaskAction.ON_MY_WAY: lambda uow, a, tid: measurement.on_my_way(uow, a, tid),
}


async def measure_step(
    query: CallbackQuery,
    callback_data: TaskCb,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    tz: tzinfo,
) -> None:
    card = await STEPS[callback_data.action](uow, actor, callback_data.task_id)
    await _show_task(query, card, lang, tz)


async def decline_ask(
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
        TaskInput.decline,
        t("tasks.ask.decline_reason", lang),
        lang,
        data={"task_id": callback_data.task_id},
    )


async def decline_input(
    message: Message, uow: UnitOfWork, actor: Actor, lang: str, state: FSMContext
) -> None:
    data = await state.get_data()
    try:
        await measurement.decline(uow, actor, int(data["task_id"]), message.text or "")
    except ValidationError as exc:
        await message.answer(error_text(exc, lang) + "\n" + t("tasks.ask.decline_reason", lang))
        return
    await state.clear()
    reply = t("tasks.declined.sent", lang)
    await _edit(message, data.get("card_msg"), reply, None)


# Albums arrive as several updates at once: one read-modify-write of the FSM data at a time
# per person (within this process).
_upload_locks: dict[int, asyncio.Lock] = {}


def _finish_button(task_id: int, lang: str) -> InlineKeyboardMarkup:
    cb = TaskCb(action=TaskAction.UPLOAD_END, task_id=task_id)
    return InlineKeyboardMarkup(inline_keyboard=[[button(t("tasks.btn.upload_end", lang), cb)]])


async def upload_start(
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
        TaskInput.upload,
        t("tasks.ask.upload", lang),
        lang,
        data={"task_id": callback_data.task_id, "files": [], "comment": []},
        markup=_finish_button(callback_data.task_id, lang),
    )


def _file_of(message: Message) -> list[Any] | None:
    """(kind, file_id, file_unique_id, caption) of a photo/document/video message."""
    if message.photo:
        p = message.photo[-1]  # the largest size
        return ["photo", p.file_id, p.file_unique_id, message.caption]
    if message.document:
        d = message.document
        return ["document", d.file_id, d.file_unique_id, message.caption]
    if message.video:
        v = message.video
        return ["video", v.file_id, v.file_unique_id, message.caption]
    return None


async def upload_input(message: Message, lang: str, state: FSMContext) -> None:
    item = _file_of(message)
    if item is None and not message.text:
        await message.answer(error_text(ValidationError("attachments", "unknown_kind"), lang))
        return
    key = message.from_user.id if message.from_user else message.chat.id
    lock = _upload_locks.setdefault(key, asyncio.Lock())
    async with lock:
        data = await state.get_data()
        files: list[Any] = list(data.get("files") or [])
        comment: list[str] = list(data.get("comment") or [])
        if item is not None:
            files.append(item)
        else:
            comment.append(message.text or "")
        await state.update_data(files=files, comment=comment)
    await message.answer(
        t("tasks.upload.got", lang, files=len(files), comment=len(comment)),
        reply_markup=_finish_button(int(data["task_id"]), lang),
    )


async def upload_end(
    query: CallbackQuery,
    callback_data: TaskCb,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    tz: tzinfo,
    state: FSMContext,
) -> None:
    data = await state.get_data()
    mine = data.get("task_id") == callback_data.task_id
    files = [AttachmentIn(*f) for f in data.get("files") or []] if mine else []
    comment = "\n".join(data.get("comment") or []) if mine else ""
    card = await measurement.complete_measurement(
        uow, actor, callback_data.task_id, files, comment or None
    )
    await state.clear()
    notice = t("tasks.upload.done", lang, count=card.attachments)
    msg = screen.message_of(query)
    if msg is not None:
        await msg.edit_text(view.task_text(card, lang, tz, notice), reply_markup=None)
    where = data.get("card_msg") if mine else None
    if where and msg is not None and msg.bot is not None and where[1] != msg.message_id:
        await msg.bot.edit_message_reply_markup(
            chat_id=where[0], message_id=where[1], reply_markup=None
        )


# --- reminder buttons ---------------------------------------------------------------------


async def done(
    query: CallbackQuery,
    callback_data: TaskCb,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    callback_answer: CallbackAnswer,
) -> None:
    await tasks.done(uow, actor, callback_data.task_id)
    callback_answer.text = t("tasks.done", lang)
    await _drop_buttons(query, callback_data.task_id)


async def snooze(
    query: CallbackQuery,
    callback_data: TaskCb,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    tz: tzinfo,
    callback_answer: CallbackAnswer,
) -> None:
    if not 0 <= callback_data.arg < len(SNOOZE_CHOICES):
        raise ValidationError("when", "unknown_choice")
    info = await tasks.snooze_quick(
        uow, actor, callback_data.task_id, SNOOZE_CHOICES[callback_data.arg], str(tz)
    )
    callback_answer.text = t("tasks.snoozed", lang, when=fmt_when(info.due_at, tz))
    await _drop_buttons(query, callback_data.task_id)


# --- deferred demand's task ---------------------------------------------------------------


async def _card_here(query: CallbackQuery, card: DealCard, lang: str, tz: tzinfo) -> None:
    """The deal card in place of the task message (the task is done)."""
    await deal_ui.show(query, card, lang, tz)


async def deferred_back(
    query: CallbackQuery,
    callback_data: TaskCb,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    tz: tzinfo,
) -> None:
    card = await followups.deferred_back_to_sales(uow, actor, callback_data.task_id)
    await _card_here(query, card, lang, tz)


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
        await _card_here(query, card, lang, tz)
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
        await _card_here(query, card, lang, tz)
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
        TaskInput.defer_again,
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
    await deal_ui.replace_card(message, data.get("card_msg"), card, lang, tz)


# --- "Next contact" on a deal card --------------------------------------------------------


async def next_contact_menu(
    query: CallbackQuery,
    callback_data: DealCb,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    tz: tzinfo,
) -> None:
    card = await deal_ui.fresh(uow, actor, callback_data)
    await deal_ui.show(
        query,
        card,
        lang,
        tz,
        notice=t("tasks.next_contact.ask", lang),
        markup=view.next_contact(card, lang),
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
        await deal_ui.fresh(uow, actor, cb)
        await deal_ui.ask_for_card(
            query, state, TaskInput.next_contact, cb, t("tasks.ask.when", lang), lang
        )
        return
    if arg > len(NEXT_CONTACT_CHOICES):
        raise ValidationError("when", "unknown_choice")
    card = await followups.set_next_contact_quick(
        uow, actor, deal_id, NEXT_CONTACT_CHOICES[arg], str(tz), v or None
    )
    notice = t("tasks.next_contact.set", lang, when=fmt_when(card.next_contact_at, tz))
    await deal_ui.show(query, card, lang, tz, notice=notice)


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

    await deal_ui.typed(message, state, lang, tz, "tasks.ask.when", apply)


# --- manual tasks -------------------------------------------------------------------------


async def _ask_title(message: Message, lang: str, state: FSMContext) -> None:
    await state.set_state(TaskInput.new_title)
    await state.set_data({})
    await message.answer(t("tasks.new.ask_title", lang) + "\n" + t("common.cancel_hint", lang))


async def _ask_when(message: Message, lang: str, state: FSMContext, title: str) -> None:
    await state.set_state(TaskInput.new_when)
    await state.set_data({"title": title})
    await message.answer(
        t("tasks.new.ask_when", lang) + "\n" + t("tasks.ask.when", lang),
        reply_markup=view.new_task_when(lang),
    )


async def task_command(message: Message, actor: Actor, lang: str, state: FSMContext) -> None:
    require(actor, Action.TASK_CREATE)  # measurers: refused
    text = (message.text or "").split(maxsplit=1)[1:]
    if text:
        await _ask_when(message, lang, state, text[0])
    else:
        await _ask_title(message, lang, state)


async def task_title(message: Message, lang: str, state: FSMContext) -> None:
    await _ask_when(message, lang, state, message.text or "")


async def _due_chosen(
    message: Message,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    tz: tzinfo,
    state: FSMContext,
    due: datetime,
) -> None:
    """A leader picks whose task it is; anyone else gets it created for themselves."""
    data = await state.get_data()
    if can(actor, Action.TASK_CREATE_FOR_OTHERS):
        people = await deals.assignable_managers(uow, actor)
        await state.update_data(due=due.isoformat(), people={str(i): n for i, n in people})
        await message.answer(
            t("tasks.new.ask_for", lang), reply_markup=view.new_task_for(people, actor.id, lang)
        )
        return
    info = await tasks.create_manual_task(uow, actor, data.get("title") or "", due)
    await state.clear()
    await message.answer(_created(info, lang, tz, actor.name))


def _created(info: tasks.TaskInfo, lang: str, tz: tzinfo, who: str) -> str:
    return t(
        "tasks.new.created",
        lang,
        title=escape(info.title),
        when=fmt_when(info.due_at, tz),
        who=escape(who),
    )


async def task_when_typed(
    message: Message,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    tz: tzinfo,
    state: FSMContext,
    clock: Any,
) -> None:
    try:
        due = dates.parse_when(message.text or "", clock, str(tz))
    except ValidationError as exc:
        await message.answer(error_text(exc, lang) + "\n" + t("tasks.ask.when", lang))
        return
    await _due_chosen(message, uow, actor, lang, tz, state, due)


async def task_when_quick(
    query: CallbackQuery,
    callback_data: NewTaskCb,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    tz: tzinfo,
    state: FSMContext,
    clock: Any,
) -> None:
    if not 0 <= callback_data.arg < len(NEXT_CONTACT_CHOICES):
        raise ValidationError("when", "unknown_choice")
    due = dates.quick(NEXT_CONTACT_CHOICES[callback_data.arg], clock, str(tz))
    msg = screen.message_of(query)
    if msg is not None:
        await _due_chosen(msg, uow, actor, lang, tz, state, due)


async def task_for(
    query: CallbackQuery,
    callback_data: NewTaskCb,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    tz: tzinfo,
    state: FSMContext,
) -> None:
    data = await state.get_data()
    if not data.get("due"):
        raise ValidationError("when", "not_a_datetime")
    assignee = callback_data.arg or None
    info = await tasks.create_manual_task(
        uow, actor, data.get("title") or "", datetime.fromisoformat(data["due"]), assignee
    )
    await state.clear()
    who = actor.name if assignee is None else (data.get("people") or {}).get(str(assignee), "")
    msg = screen.message_of(query)
    if msg is not None:
        await msg.edit_text(_created(info, lang, tz, who), reply_markup=None)


async def task_cancel(query: CallbackQuery, lang: str, state: FSMContext) -> None:
    await state.clear()
    msg = screen.message_of(query)
    if msg is not None:
        await msg.edit_text(t("common.cancelled", lang), reply_markup=None)


# --- installments -------------------------------------------------------------------------


def _deal_cb(cb: InstallmentCb) -> DealCb:
    return DealCb(action=DealAction.OPEN, deal_id=cb.deal_id, v=cb.v)


async def win_menu(
    query: CallbackQuery,
    callback_data: InstallmentCb,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    tz: tzinfo,
) -> None:
    card = await deal_ui.fresh(uow, actor, _deal_cb(callback_data))
    await deal_ui.show(
        query,
        card,
        lang,
        tz,
        notice=t("installments.ask.count", lang),
        markup=view.plan_menu(card, lang),
    )


async def plan_ask(
    query: CallbackQuery,
    callback_data: InstallmentCb,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    state: FSMContext,
) -> None:
    cb = _deal_cb(callback_data)
    await deal_ui.fresh(uow, actor, cb)
    if callback_data.action == InstallmentAction.COUNT:
        await deal_ui.ask_for_card(
            query, state, TaskInput.plan_first_due, cb, t("installments.ask.first_due", lang), lang
        )
        await state.update_data(count=callback_data.arg)
    else:
        await deal_ui.ask_for_card(
            query, state, TaskInput.plan_lines, cb, t("installments.ask.lines", lang), lang
        )


async def _win(
    message: Message,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    tz: tzinfo,
    state: FSMContext,
    ask_key: str,
    plan_of: Callable[[dict[str, Any]], PlanSpec],
) -> None:
    data = await state.get_data()
    cb = DealCb.unpack(data["cb"])
    try:
        summary = await installments.win_with_installments(
            uow, actor, cb.deal_id, plan_of(data), cb.v or None, tz=str(tz)
        )
    except ValidationError as exc:
        await message.answer(error_text(exc, lang) + "\n" + t(ask_key, lang))
        return
    await state.clear()
    notice = t("installments.won", lang, source=summary.source_deal_id)
    await _edit(
        message,
        data.get("card_msg"),
        view.installment_text(summary, lang, notice),
        view.installment_keyboard(summary, lang),
    )


async def plan_first_due(
    message: Message,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    tz: tzinfo,
    state: FSMContext,
    clock: Any,
) -> None:
    def plan_of(data: dict[str, Any]) -> PlanSpec:
        first = dates.parse_day(message.text or "", clock, str(tz))
        return EqualSplit(count=int(data.get("count") or 0), first_due=first)

    await _win(message, uow, actor, lang, tz, state, "installments.ask.first_due", plan_of)


async def plan_lines(
    message: Message,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    tz: tzinfo,
    state: FSMContext,
    clock: Any,
) -> None:
    def plan_of(data: dict[str, Any]) -> PlanSpec:
        return installments.parse_plan_lines(message.text or "", clock, str(tz))

    await _win(message, uow, actor, lang, tz, state, "installments.ask.lines", plan_of)


def _payment_prompt(s: InstallmentSummary, lang: str) -> str:
    nxt = s.next_due
    text = t("installments.ask.payment", lang, remaining=money(s.remaining, lang))
    if nxt is not None:
        text += "\n" + t(
            "installments.next",
            lang,
            amount=money(nxt.remaining, lang),
            date=nxt.due_date.strftime("%d.%m.%Y"),
        )
    return text


async def pay_ask(
    query: CallbackQuery,
    callback_data: InstallmentCb,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    tz: tzinfo,
    state: FSMContext,
) -> None:
    summary = await installments.plan_summary(uow, actor, callback_data.deal_id, str(tz))
    # A prompt from a stale card (a payment recorded since, the plan paid off) is refused
    # here, at the tap, with the fresh card -- not after the amount is typed.
    if summary.deal_id == callback_data.deal_id:
        check_version("deal", summary.version, callback_data.v or None)
    if summary.closed:
        raise RuleViolation("deal_closed", stage=summary.stage_code)
    await screen.ask(
        query,
        state,
        TaskInput.payment,
        _payment_prompt(summary, lang),
        lang,
        data={"deal_id": callback_data.deal_id, "v": callback_data.v},
    )


def split_payment(text: str) -> tuple[str, str | None]:
    """ "15 000" -> ("15 000", None); "15 000 20.01" -> ("15 000", "20.01")."""
    parts = text.strip().rsplit(maxsplit=1)
    if len(parts) == 2 and _DATE_TOKEN.match(parts[1]) and not parts[1].isdigit():
        return parts[0], parts[1]
    return text.strip(), None


async def pay_input(
    message: Message,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    tz: tzinfo,
    state: FSMContext,
    clock: Any,
) -> None:
    data = await state.get_data()
    amount, day = split_payment(message.text or "")
    try:
        paid_on = dates.parse_paid_on(day, clock, str(tz)) if day else None
        summary = await installments.record_payment(
            uow, actor, int(data["deal_id"]), amount, paid_on, data.get("v") or None, tz=str(tz)
        )
    except ValidationError as exc:
        await message.answer(
            error_text(exc, lang) + "\n" + t("installments.ask.payment_short", lang)
        )
        return
    await state.clear()
    notice = t("installments.recorded", lang)
    await message.answer(
        view.installment_text(summary, lang, notice),
        reply_markup=view.installment_keyboard(summary, lang),
    )


async def receivables(
    message: Message, uow: UnitOfWork, actor: Actor, lang: str, tz: tzinfo
) -> None:
    report = await installments.receivables(uow, actor, str(tz))
    text, markup = view.receivables(report, lang)
    await message.answer(text, reply_markup=markup)


def setup() -> Router:
    """A fresh router for one Dispatcher (its handlers in dispatch order)."""
    router = Router(name="tasks")
    router.message.filter(Staff())
    router.callback_query.filter(Staff())
    router.message.register(tasks_command, Command("tasks"))
    router.callback_query.register(tasks_menu, MenuCb.filter(F.action == MenuAction.TASKS))
    router.callback_query.register(tasks_page, TaskListCb.filter())
    router.callback_query.register(open_task, TaskCb.filter(F.action == TaskAction.OPEN))
    router.callback_query.register(assign, AssignCb.filter())
    router.callback_query.register(measure_step, TaskCb.filter(F.action.in_(set(STEPS))))
    router.callback_query.register(decline_ask, TaskCb.filter(F.action == TaskAction.DECLINE))
    router.message.register(decline_input, TaskInput.decline, F.text)
    router.callback_query.register(upload_start, TaskCb.filter(F.action == TaskAction.FINISH))
    router.message.register(upload_input, TaskInput.upload)
    router.callback_query.register(upload_end, TaskCb.filter(F.action == TaskAction.UPLOAD_END))
    router.callback_query.register(done, TaskCb.filter(F.action == TaskAction.DONE))
    router.callback_query.register(snooze, TaskCb.filter(F.action == TaskAction.SNOOZE))
    router.callback_query.register(
        deferred_back, TaskCb.filter(F.action == TaskAction.BACK_TO_SALES)
    )
    router.callback_query.register(deferred_lost, TaskCb.filter(F.action == TaskAction.LOST))
    router.callback_query.register(
        deferred_again, TaskCb.filter(F.action == TaskAction.DEFER_AGAIN)
    )
    router.callback_query.register(deferred_type, TaskCb.filter(F.action == TaskAction.DEFER_TYPE))
    router.message.register(deferred_date_input, TaskInput.defer_again, F.text)
    router.callback_query.register(
        next_contact_menu, DealCb.filter(F.action == DealAction.NEXT_CONTACT)
    )
    router.callback_query.register(next_contact_pick, NextContactCb.filter())
    router.message.register(next_contact_input, TaskInput.next_contact, F.text)
    router.message.register(task_command, Command("task"))
    router.message.register(task_title, TaskInput.new_title, F.text)
    router.message.register(task_when_typed, TaskInput.new_when, F.text)
    router.callback_query.register(
        task_when_quick, NewTaskCb.filter(F.action == NewTaskAction.WHEN), TaskInput.new_when
    )
    router.callback_query.register(
        task_for, NewTaskCb.filter(F.action == NewTaskAction.FOR), TaskInput.new_when
    )
    router.callback_query.register(
        task_cancel, NewTaskCb.filter(F.action == NewTaskAction.CANCEL), TaskInput.new_when
    )
    router.callback_query.register(
        win_menu, InstallmentCb.filter(F.action == InstallmentAction.WIN)
    )
    router.callback_query.register(
        plan_ask,
        InstallmentCb.filter(F.action.in_({InstallmentAction.COUNT, InstallmentAction.LINES})),
    )
    router.message.register(plan_first_due, TaskInput.plan_first_due, F.text)
    router.message.register(plan_lines, TaskInput.plan_lines, F.text)
    router.callback_query.register(pay_ask, InstallmentCb.filter(F.action == InstallmentAction.PAY))
    router.message.register(pay_input, TaskInput.payment, F.text)
    router.message.register(receivables, Command("receivables"))
    return router
