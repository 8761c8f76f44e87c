"""Tasks on the phone: /tasks (today, upcoming), a task's card, the Done and Snooze buttons
of reminders, and manual tasks (/task: what, when, whose).

The measurement chain, follow-ups (next contact, deferred demand) and installments have
areas of their own (handlers/measurement, handlers/followups, handlers/installments).
Every handler: read the callback/state -> one service call -> render. The ids in callback
data are client input: the services load the task and check the actor's right to it.
Errors go to the error router (handlers/errors.py).
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer

from handlers.tasks import views as view
from handlers.ui import screen, task_card, when
from handlers.ui.callbacks import (
    NEXT_CONTACT_CHOICES,
    SNOOZE_CHOICES,
    MenuAction,
    MenuCb,
    NewTaskAction,
    NewTaskCb,
    TaskAction,
    TaskCb,
    TaskListCb,
    TaskListScope,
)
from handlers.ui.context import Ctx
from handlers.ui.filters import staff_router
from handlers.ui.fmt import when as fmt_when
from services import dates, tasks
from services.errors import ValidationError
from services.permissions import Action, can, require
from services.sales import deals
from services.tasks import Scope

SCOPES: dict[TaskListScope, Scope] = {
    TaskListScope.TODAY: "today",
    TaskListScope.UPCOMING: "upcoming",
}


class TaskInput(StatesGroup):
    """A manual task's steps. (The other areas' typed steps keep this group's name in their
    stored state: "TaskInput:<name>".)"""

    new_title = State()  # manual task: what
    new_when = State()  # manual task: when (typed, or a quick button)


async def _drop_buttons(query: CallbackQuery, task_id: int) -> None:
    msg = screen.message_of(query)
    if msg is not None and msg.reply_markup is not None:
        await msg.edit_reply_markup(reply_markup=view.without_task(msg.reply_markup, task_id))


# --- /tasks -----------------------------------------------------------------------------------


async def _list(ctx: Ctx, scope: TaskListScope) -> tuple[str, InlineKeyboardMarkup]:
    items = await tasks.list_my_tasks(ctx.uow, ctx.actor, SCOPES[scope], ctx.zone)
    return view.task_list(items, scope, ctx.lang, ctx.tz)


async def tasks_command(message: Message, ctx: Ctx) -> None:
    text, markup = await _list(ctx, TaskListScope.TODAY)
    await message.answer(text, reply_markup=markup)


async def tasks_menu(query: CallbackQuery, ctx: Ctx) -> None:
    text, markup = await _list(ctx, TaskListScope.TODAY)
    msg = screen.message_of(query)
    if msg is not None:
        await msg.answer(text, reply_markup=markup)


async def tasks_page(query: CallbackQuery, callback_data: TaskListCb, ctx: Ctx) -> None:
    text, markup = await _list(ctx, callback_data.scope)
    msg = screen.message_of(query)
    if msg is not None:
        await msg.edit_text(text, reply_markup=markup)


async def open_task(query: CallbackQuery, callback_data: TaskCb, ctx: Ctx) -> None:
    await ctx.state.clear()
    card = await tasks.task_card(ctx.uow, ctx.actor, callback_data.task_id)
    msg = screen.message_of(query)
    if msg is not None:
        await msg.answer(
            task_card.task_text(card, ctx.lang, ctx.tz),
            reply_markup=task_card.task_keyboard(card, ctx.lang),
        )


# --- reminder buttons ---------------------------------------------------------------------


async def done(
    query: CallbackQuery, callback_data: TaskCb, ctx: Ctx, callback_answer: CallbackAnswer
) -> None:
    await tasks.done(ctx.uow, ctx.actor, callback_data.task_id)
    callback_answer.text = ctx.t("tasks.done")
    await _drop_buttons(query, callback_data.task_id)


async def snooze(
    query: CallbackQuery, callback_data: TaskCb, ctx: Ctx, callback_answer: CallbackAnswer
) -> None:
    if not 0 <= callback_data.arg < len(SNOOZE_CHOICES):
        raise ValidationError("when", "unknown_choice")
    info = await tasks.snooze_quick(
        ctx.uow, ctx.actor, callback_data.task_id, SNOOZE_CHOICES[callback_data.arg], ctx.zone
    )
    callback_answer.text = ctx.t("tasks.snoozed", when=fmt_when(info.due_at, ctx.tz, ctx.lang))
    await _drop_buttons(query, callback_data.task_id)


# --- manual tasks -------------------------------------------------------------------------


async def _ask_title(message: Message, ctx: Ctx) -> None:
    await ctx.state.set_state(TaskInput.new_title)
    await ctx.state.set_data({})
    await message.answer(ctx.t("tasks.new.ask_title") + "\n" + ctx.t("common.cancel_hint"))


async def _ask_when(message: Message, ctx: Ctx, title: str) -> None:
    await ctx.state.set_state(TaskInput.new_when)
    await ctx.state.set_data({"title": title})
    await message.answer(
        ctx.t("tasks.new.ask_when"),  # one question: "by when?" with its examples
        reply_markup=view.new_task_when(ctx.lang),
    )


async def task_command(message: Message, ctx: Ctx) -> None:
    require(ctx.actor, Action.TASK_CREATE)  # measurers: refused
    text = (message.text or "").split(maxsplit=1)[1:]
    if text:
        await _ask_when(message, ctx, text[0])
    else:
        await _ask_title(message, ctx)


async def task_title(message: Message, ctx: Ctx) -> None:
    await _ask_when(message, ctx, message.text or "")


async def _due_chosen(message: Message, ctx: Ctx, due: datetime) -> None:
    """A leader picks whose task it is; anyone else gets it created for themselves."""
    uow, actor, state = ctx.uow, ctx.actor, ctx.state
    data = await state.get_data()
    if can(actor, Action.TASK_CREATE_FOR_OTHERS):
        people = await deals.assignable_managers(uow, actor)
        await state.update_data(due=due.isoformat(), people={str(i): n for i, n in people})
        await message.answer(
            ctx.t("tasks.new.ask_for"), reply_markup=view.new_task_for(people, actor.id, ctx.lang)
        )
        return
    info = await tasks.create_manual_task(uow, actor, data.get("title") or "", due)
    await state.clear()
    await message.answer(_created(info, ctx, actor.name))


def _created(info: tasks.TaskInfo, ctx: Ctx, who: str) -> str:
    return ctx.t(
        "tasks.new.created",
        title=escape(info.title),
        when=fmt_when(info.due_at, ctx.tz, ctx.lang),
        who=escape(who),
    )


async def _due_typed(message: Message, ctx: Ctx, data: dict[str, Any], at: datetime) -> None:
    await _due_chosen(message, ctx, at)


when.use(TaskInput.new_when, "tasks.ask.when", "edit.field.due_at", _due_typed)


async def task_when_quick(query: CallbackQuery, callback_data: NewTaskCb, ctx: Ctx) -> None:
    if not 0 <= callback_data.arg < len(NEXT_CONTACT_CHOICES):
        raise ValidationError("when", "unknown_choice")
    due = dates.quick(NEXT_CONTACT_CHOICES[callback_data.arg], ctx.clock, ctx.zone)
    msg = screen.message_of(query)
    if msg is not None:
        await _due_chosen(msg, ctx, due)


async def task_for(query: CallbackQuery, callback_data: NewTaskCb, ctx: Ctx) -> None:
    data = await ctx.state.get_data()
    if not data.get("due"):
        raise ValidationError("when", "not_a_datetime")
    assignee = callback_data.arg or None
    due = datetime.fromisoformat(data["due"])
    info = await tasks.create_manual_task(
        ctx.uow, ctx.actor, data.get("title") or "", due, assignee
    )
    await ctx.state.clear()
    people = data.get("people") or {}
    who = ctx.actor.name if assignee is None else people.get(str(assignee), "")
    msg = screen.message_of(query)
    if msg is not None:
        await msg.edit_text(_created(info, ctx, who), reply_markup=None)


async def task_cancel(query: CallbackQuery, ctx: Ctx) -> None:
    await ctx.state.clear()
    msg = screen.message_of(query)
    if msg is not None:
        await msg.edit_text(ctx.t("common.cancelled"), reply_markup=None)


def setup() -> Router:
    """A fresh router for one Dispatcher (its handlers in dispatch order)."""
    router = staff_router("tasks")
    router.message.register(tasks_command, Command("tasks"))
    router.callback_query.register(tasks_menu, MenuCb.filter(F.action == MenuAction.TASKS))
    router.callback_query.register(tasks_page, TaskListCb.filter())
    router.callback_query.register(open_task, TaskCb.filter(F.action == TaskAction.OPEN))
    router.callback_query.register(done, TaskCb.filter(F.action == TaskAction.DONE))
    router.callback_query.register(snooze, TaskCb.filter(F.action == TaskAction.SNOOZE))
    router.message.register(task_command, Command("task"))
    router.message.register(task_title, TaskInput.new_title, F.text)
    router.message.register(when.typed_for, TaskInput.new_when, F.text)
    router.callback_query.register(
        task_when_quick, NewTaskCb.filter(F.action == NewTaskAction.WHEN), TaskInput.new_when
    )
    router.callback_query.register(
        task_for, NewTaskCb.filter(F.action == NewTaskAction.FOR), TaskInput.new_when
    )
    router.callback_query.register(
        task_cancel, NewTaskCb.filter(F.action == NewTaskAction.CANCEL), TaskInput.new_when
    )
    return router
