"""Texts (HTML) and keyboards of /tasks and of a manual task (/task): the list, the quick
"when" choices, whose task it is; and a reminder's keyboard once one of its tasks is handled.

The task card itself is handlers/ui/task_card.py (the measurement chain and the notifier
draw it too). Lines stay short: these are read on a phone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from handlers.ui.callbacks import (
    NEXT_CONTACT_CHOICES,
    AssignCb,
    NewTaskAction,
    NewTaskCb,
    TaskAction,
    TaskCb,
    TaskListCb,
    TaskListScope,
)
from handlers.ui.fmt import short, when_short
from handlers.ui.i18n import t
from handlers.ui.keyboards import button
from handlers.ui.task_card import title
from services.tasks import TaskInfo

MAX_LISTED = 20


def task_list(
    items: Sequence[TaskInfo], scope: TaskListScope, lang: str, tz: tzinfo
) -> tuple[str, InlineKeyboardMarkup]:
    head = "tasks.list.today" if scope == TaskListScope.TODAY else "tasks.list.upcoming"
    text = t(head, lang)
    if not items:
        text += "\n" + t("tasks.list.empty", lang)
    rows = []
    for info in items[:MAX_LISTED]:
        mark = "🔴 " if info.overdue else ""
        label = f"{mark}{when_short(info.due_at, tz, lang)} · {short(title(info, lang), 30)}"
        rows.append([button(label, TaskCb(action=TaskAction.OPEN, task_id=info.id))])
    other = TaskListScope.UPCOMING if scope == TaskListScope.TODAY else TaskListScope.TODAY
    nav = [
        button(
            t(
                "tasks.list.btn.upcoming"
                if other == TaskListScope.UPCOMING
                else "tasks.list.btn.today",
                lang,
            ),
            TaskListCb(scope=other),
        )
    ]
    rows.append(nav)
    return text, InlineKeyboardMarkup(inline_keyboard=rows)


# --- a manual task -------------------------------------------------------------------------


def new_task_when(lang: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for i, choice in enumerate(NEXT_CONTACT_CHOICES):
        kb.add(
            button(
                t(f"tasks.when.{choice.value}", lang), NewTaskCb(action=NewTaskAction.WHEN, arg=i)
            )
        )
    kb.adjust(2)
    return kb.as_markup()


def new_task_for(people: Sequence[tuple[int, str]], me: int, lang: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.add(button(t("tasks.new.for_me", lang), NewTaskCb(action=NewTaskAction.FOR, arg=0)))
    for emp_id, name in people:
        if emp_id != me:
            kb.add(button(short(name, 24), NewTaskCb(action=NewTaskAction.FOR, arg=emp_id)))
    kb.adjust(2)
    kb.row(button(t("common.cancel", lang), NewTaskCb(action=NewTaskAction.CANCEL)))
    return kb.as_markup()


# --- a handled reminder ----------------------------------------------------------------------


def without_task(markup: InlineKeyboardMarkup | None, task_id: int) -> InlineKeyboardMarkup | None:
    """The message's keyboard minus the buttons of one (now handled) task: a merged reminder
    keeps the other tasks' buttons."""
    if markup is None:
        return None
    rows = [row for row in markup.inline_keyboard if not _row_of(row, task_id)]
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


def _is_for(data: str | None, task_id: int) -> bool:
    if not data:
        return False
    for cls in (TaskCb, AssignCb):
        if data.startswith(cls.__prefix__ + ":"):
            try:
                return cls.unpack(data).task_id == task_id
            except (TypeError, ValueError):
                return False
    return False


def _row_of(row: Sequence[InlineKeyboardButton], task_id: int) -> bool:
    """A row with this task's buttons (in a merged reminder, its "Open deal" goes too)."""
    return any(_is_for(b.callback_data, task_id) for b in row)
