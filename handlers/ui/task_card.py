"""The task card: its text and keyboard for every kind of task (a measurement, the head's
choice of a measurer, deferred demand, a follow-up…), and the pieces reminders reuse.

Drawn here because three places show it: the tasks area (/tasks, a task opened), the
measurement chain (each step redraws the card) and the notifier (handlers/notify: a new or
due task as a message). Built from service DTOs (services.tasks.TaskCard/TaskInfo);
everything a person typed is escaped. Lines stay short: these are read on a phone.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import tzinfo
from html import escape
from typing import Any

from aiogram.fsm.state import State
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup

from handlers.ui import fmt, screen
from handlers.ui.callbacks import (
    SNOOZE_CHOICES,
    AssignCb,
    JobAction,
    JobCb,
    TaskAction,
    TaskCb,
)
from handlers.ui.context import Ctx
from handlers.ui.deal_card import open_button
from handlers.ui.fmt import when
from handlers.ui.i18n import t
from handlers.ui.keyboards import button
from services import tasks
from services.dto import label
from services.tasks import TaskCard, TaskInfo
from storage.enums import TaskKind, TaskStatus

OPEN = (TaskStatus.OPEN, TaskStatus.ACCEPTED, TaskStatus.IN_PROGRESS)
# Installation jobs: their card and buttons are the installation area's (one "Open" here).
JOB_KINDS = (TaskKind.ASSIGN_CREW, TaskKind.INSTALL, TaskKind.QUALITY_CHECK)


def title(info: TaskInfo, lang: str) -> str:
    return label(lang, info.title, info.title_en)


def task_text(card: TaskCard, lang: str, tz: tzinfo, notice: str | None = None) -> str:
    info = card.task
    lines: list[str] = []
    if notice:
        lines += [escape(notice), ""]
    if info.kind == TaskKind.MEASURE:
        lines.append(t("tasks.measure.header", lang))
    elif info.kind == TaskKind.ASSIGN_MEASURER:
        lines.append(t("tasks.assign.header", lang))
    else:
        lines.append(t("tasks.card.header", lang, kind=t(f"tasks.kind.{info.kind}", lang)))
    lines.append(f"<b>{escape(title(info, lang))}</b> · {t('tasks.card.no', lang, id=info.id)}")
    if info.deal_title and info.deal_title != info.title:
        deal = escape(info.deal_title)
        if info.deal_id:  # a deal's number, told apart from the task's
            deal = t("deal.no", lang, id=info.deal_id) + f" · {deal}"
        lines.append(t("reminder.deal", lang, deal=deal))
    address = None
    if card.address:
        address = escape(card.address)
        if card.map_url:
            address = f'<a href="{escape(card.map_url)}">{address}</a>'
    field_work = info.kind in (TaskKind.MEASURE, TaskKind.ASSIGN_MEASURER)
    lines += detail_lines(
        lang,
        when=when(card.measurement_at, tz, lang) if card.measurement_at else None,
        address=address,
        client=card.client_name,
        phone=card.phone,
        need=card.need,
        need_key="tasks.card.need" if field_work else "tasks.card.need_other",
        manager=card.manager_name if field_work else None,
        comment=card.manager_comment if field_work else None,
    )
    if info.comment:
        key = "tasks.card.head_comment" if info.kind == TaskKind.MEASURE else "tasks.card.comment"
        lines.append(t(key, lang, comment=escape(info.comment)))
    if card.declined_by:
        lines.append(declined_line(card.declined_by, card.decline_reason, lang))
    if info.kind not in (TaskKind.MEASURE, TaskKind.ASSIGN_MEASURER) and info.due_at:
        key = (
            "tasks.card.overdue"
            if info.overdue
            else "tasks.card.due_now"
            if info.due_now
            else "reminder.due_at"
        )
        lines.append(t(key, lang, when=when(info.due_at, tz, lang)))
    lines.append(t("tasks.card.status", lang, status=t(f"tasks.status.{info.status}", lang)))
    if card.attachments:
        lines.append(t("tasks.card.files", lang, count=card.attachments))
    if info.kind == TaskKind.ASSIGN_MEASURER and info.status in OPEN:
        lines += ["", t("tasks.assign.choose" if card.measurers else "tasks.assign.nobody", lang)]
    return "\n".join(lines)


def detail_lines(
    lang: str,
    *,
    when: str | None = None,
    address: str | None = None,
    client: str | None = None,
    phone: str | None = None,
    need: str | None = None,
    manager: str | None = None,
    comment: str | None = None,
    need_key: str = "tasks.card.need",
    when_key: str = "tasks.card.when",
) -> list[str]:
    """The lines a measurer needs, in this order (a task card and its reminders): when,
    address (`when` and `address` come ready, the address may be a link), the client, phone,
    the need, the manager and the manager's comment (escaped here)."""
    lines = []
    if when:
        lines.append(t(when_key, lang, when=when))
    if address:
        lines.append(t("tasks.card.address", lang, address=address))
    if client:
        lines.append(t("tasks.card.client", lang, name=escape(client)))
    if phone:
        lines.append(t("tasks.card.phone", lang, phone=escape(fmt.phone(phone))))
    if need:
        lines.append(t(need_key, lang, need=escape(need)))
    if manager:
        lines.append(t("tasks.card.manager", lang, name=escape(manager)))
    if comment:
        lines.append(t("tasks.card.comment", lang, comment=escape(comment)))
    return lines


def declined_line(name: str, reason: str | None, lang: str) -> str:
    return t("tasks.card.declined", lang, name=escape(name), reason=escape(reason or ""))


def measure_rows(card: TaskCard, lang: str) -> list[list[InlineKeyboardButton]]:
    return measure_buttons(card.task.id, TaskStatus(card.task.status), card.map_url, lang)


def measure_buttons(
    task_id: int, status: TaskStatus, map_url: str | None, lang: str
) -> list[list[InlineKeyboardButton]]:
    """The measurer's buttons for the task's status (a new task: all four), and the map."""

    def tap(action: TaskAction) -> TaskCb:
        return TaskCb(action=action, task_id=task_id)

    accept = button(t("tasks.btn.accept", lang), tap(TaskAction.ACCEPT))
    decline = button(t("tasks.btn.decline", lang), tap(TaskAction.DECLINE))
    way = button(t("tasks.btn.on_my_way", lang), tap(TaskAction.ON_MY_WAY))
    finish = button(t("tasks.btn.finish", lang), tap(TaskAction.FINISH))
    rows: list[list[InlineKeyboardButton]]
    if status == TaskStatus.OPEN:
        rows = [[accept, decline], [way, finish]]
    elif status == TaskStatus.ACCEPTED:
        rows = [[way, finish], [decline]]
    else:
        rows = [[finish], [decline]]
    if map_url:
        rows.append([InlineKeyboardButton(text=t("tasks.btn.map", lang), url=map_url)])
    return rows


def assign_rows(
    task_id: int, measurers: Iterable[tuple[int, str, int]], lang: str
) -> list[list[InlineKeyboardButton]]:
    """The head's choice of a measurer: one button per measurer (name and current load)."""
    return [
        [
            button(
                t("tasks.assign.measurer", lang, name=name, load=load),
                AssignCb(task_id=task_id, measurer_id=mid),
            )
        ]
        for mid, name, load in measurers
    ]


def done_snooze_rows(task_id: int, lang: str) -> list[list[InlineKeyboardButton]]:
    """Done, and a row of Snooze choices."""
    return [
        [button(t("reminder.btn.done", lang), TaskCb(action=TaskAction.DONE, task_id=task_id))],
        [
            button(
                t(f"reminder.btn.snooze_{choice.value}", lang),
                TaskCb(action=TaskAction.SNOOZE, task_id=task_id, arg=i),
            )
            for i, choice in enumerate(SNOOZE_CHOICES)
        ]
        + [button(t("edit.btn.due", lang), TaskCb(action=TaskAction.DUE, task_id=task_id))],
    ]


def task_keyboard(card: TaskCard, lang: str) -> InlineKeyboardMarkup | None:
    info = card.task
    if info.status not in OPEN:
        return None
    rows: list[list[InlineKeyboardButton]] = []
    if info.kind == TaskKind.MEASURE:
        rows = measure_rows(card, lang)
    elif info.kind == TaskKind.ASSIGN_MEASURER:
        rows = assign_rows(info.id, ((m.id, m.name, m.load) for m in card.measurers), lang)
    elif info.kind == TaskKind.DEFERRED_CONTACT:
        rows = deferred_rows(info.id, lang)
    elif info.kind in JOB_KINDS:  # drawn in full by handlers/installation
        cb = JobCb(action=JobAction.OPEN, task_id=info.id)
        return InlineKeyboardMarkup(inline_keyboard=[[button(t("job.btn.open", lang), cb)]])
    else:
        rows = done_snooze_rows(info.id, lang)
    if info.deal_id and info.kind not in (TaskKind.MEASURE, TaskKind.ASSIGN_MEASURER):
        rows.append([open_button(info.deal_id, lang)])
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


def deferred_rows(task_id: int, lang: str) -> list[list[InlineKeyboardButton]]:
    return [
        [
            button(
                t("tasks.btn.back_to_sales", lang),
                TaskCb(action=TaskAction.BACK_TO_SALES, task_id=task_id),
            ),
            button(t("tasks.btn.lost", lang), TaskCb(action=TaskAction.LOST, task_id=task_id)),
        ],
        [
            button(
                t("tasks.btn.defer_again", lang),
                TaskCb(action=TaskAction.DEFER_AGAIN, task_id=task_id),
            )
        ],
    ]


async def show(query: CallbackQuery, ctx: Ctx, card: TaskCard, notice: str | None = None) -> None:
    """Redraw the tapped task card in place."""
    text = task_text(card, ctx.lang, ctx.tz, notice)
    await screen.edit(query, text, task_keyboard(card, ctx.lang))


async def ask_for_task(
    query: CallbackQuery, ctx: Ctx, step: State, task_id: int, prompt: str, **kw: Any
) -> None:
    """Ask for a value typed for this task (the text `prompt` is a key; the task id is kept
    in the FSM data with `kw["data"]`); someone else's task is refused at the tap."""
    await tasks.task_card(ctx.uow, ctx.actor, task_id)
    data = {"task_id": task_id, **kw.pop("data", {})}
    await screen.ask(query, ctx, step, ctx.t(prompt), data=data, **kw)


async def sub_menu(
    query: CallbackQuery, ctx: Ctx, task_id: int, markup: InlineKeyboardMarkup
) -> None:
    """Choices in place of the tapped message's buttons; someone else's task is refused."""
    await tasks.task_card(ctx.uow, ctx.actor, task_id)
    msg = screen.message_of(query)
    if msg is not None:
        await msg.edit_reply_markup(reply_markup=markup)
