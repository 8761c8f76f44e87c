"""Tasks on the phone: /tasks (today, upcoming), a task's card, the Done and Snooze buttons
of reminders, and manual tasks (/task: what, when, whose).

The measurement chain, follow-ups (next contact, deferred demand) and installments have
areas of their own (handlers/measurement, handlers/followups, handlers/installments).
Every handler: read the callback/state -> one service call -> render. The ids in callback
data are client input: the services load the task and check the actor's right to it.
Errors go to the error router (handlers/errors.py).
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from html import escape
from typing import Any

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer

from handlers.tasks import views as view
from handlers.ui import screen, task_card
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
from handlers.ui.error_text import error_text
from handlers.ui.filters import Staff
from handlers.ui.fmt import when as fmt_when
from handlers.ui.i18n import t
from services import dates, tasks
from services.errors import ValidationError
from services.permissions import Action, Actor, can, require
from services.sales import deals
from services.tasks import Scope
from storage.uow import UnitOfWork

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
            task_card.task_text(card, lang, tz), reply_markup=task_card.task_keyboard(card, lang)
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
    callback_answer.text = t("tasks.snoozed", lang, when=fmt_when(info.due_at, tz, lang))
    await _drop_buttons(query, callback_data.task_id)


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
        when=fmt_when(info.due_at, tz, lang),
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


def setup() -> Router:
    """A fresh router for one Dispatcher (its handlers in dispatch order)."""
    router = Router(name="tasks")
    router.message.filter(Staff())
    router.callback_query.filter(Staff())
    router.message.register(tasks_command, Command("tasks"))
    router.callback_query.register(tasks_menu, MenuCb.filter(F.action == MenuAction.TASKS))
    router.callback_query.register(tasks_page, TaskListCb.filter())
    router.callback_query.register(open_task, TaskCb.filter(F.action == TaskAction.OPEN))
    router.callback_query.register(done, TaskCb.filter(F.action == TaskAction.DONE))
    router.callback_query.register(snooze, TaskCb.filter(F.action == TaskAction.SNOOZE))
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
    return router
