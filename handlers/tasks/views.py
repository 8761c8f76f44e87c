"""Texts (HTML) and keyboards of tasks, reminders' follow-ups, installments and /receivables.

Built from service DTOs only (services.tasks.TaskCard/TaskInfo, services.installments.*).
Everything a person typed is escaped. Lines stay short: these are read on a phone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from html import escape

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from handlers.ui.callbacks import (
    NEXT_CONTACT_CHOICES,
    SNOOZE_CHOICES,
    AssignCb,
    DealAction,
    DealCb,
    InstallmentAction,
    InstallmentCb,
    NewTaskAction,
    NewTaskCb,
    NextContactCb,
    TaskAction,
    TaskCb,
    TaskListCb,
    TaskListScope,
)
from handlers.ui.i18n import t
from handlers.ui.keyboards import back_to_card, button
from handlers.ui.render import money, short, when
from services.dto import DealCard
from services.work.installments import InstallmentSummary, Receivables
from services.work.tasks import TaskCard, TaskInfo
from storage.enums import TaskKind, TaskStatus

LINE = 40  # /receivables: characters a line at most
OPEN = (TaskStatus.OPEN, TaskStatus.ACCEPTED, TaskStatus.IN_PROGRESS)
PLAN_COUNTS = (2, 3, 4, 6, 12)
MAX_LISTED = 20


def _title(info: TaskInfo, lang: str) -> str:
    return info.title_en if lang == "en" and info.title_en else info.title


def _hm(value: datetime | None, tz: tzinfo) -> str:
    return value.astimezone(tz).strftime("%d.%m %H:%M") if value else "—"


# --- the task card --------------------------------------------------------------------------


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
    lines.append(f"<b>{escape(_title(info, lang))}</b> · #{info.id}")
    if info.deal_title and info.deal_title != info.title:
        lines.append(t("reminder.deal", lang, deal=escape(info.deal_title)))
    if card.measurement_at:
        lines.append(t("tasks.card.when", lang, when=when(card.measurement_at, tz)))
    if card.address:
        address = escape(card.address)
        if card.map_url:
            address = f'<a href="{escape(card.map_url)}">{address}</a>'
        lines.append(t("tasks.card.address", lang, address=address))
    if card.client_name:
        lines.append(t("tasks.card.client", lang, name=escape(card.client_name)))
    if card.phone:
        lines.append(t("tasks.card.phone", lang, phone=escape(card.phone)))
    if card.need:
        lines.append(t("tasks.card.need", lang, need=escape(card.need)))
    if card.manager_name and info.kind in (TaskKind.MEASURE, TaskKind.ASSIGN_MEASURER):
        lines.append(t("tasks.card.manager", lang, name=escape(card.manager_name)))
    if card.manager_comment and info.kind in (TaskKind.MEASURE, TaskKind.ASSIGN_MEASURER):
        lines.append(t("tasks.card.comment", lang, comment=escape(card.manager_comment)))
    if info.comment:
        key = "tasks.card.head_comment" if info.kind == TaskKind.MEASURE else "tasks.card.comment"
        lines.append(t(key, lang, comment=escape(info.comment)))
    if card.declined_by:
        lines.append(
            t(
                "tasks.card.declined",
                lang,
                name=escape(card.declined_by),
                reason=escape(card.decline_reason or ""),
            )
        )
    if info.kind not in (TaskKind.MEASURE, TaskKind.ASSIGN_MEASURER) and info.due_at:
        key = "tasks.card.overdue" if info.overdue else "reminder.due_at"
        lines.append(t(key, lang, when=when(info.due_at, tz)))
    lines.append(t("tasks.card.status", lang, status=t(f"tasks.status.{info.status}", lang)))
    if card.attachments:
        lines.append(t("tasks.card.files", lang, count=card.attachments))
    if info.kind == TaskKind.ASSIGN_MEASURER and info.status in OPEN:
        lines += ["", t("tasks.assign.choose" if card.measurers else "tasks.assign.nobody", lang)]
    return "\n".join(lines)


def _cb(info: TaskInfo, action: TaskAction, arg: int = 0) -> TaskCb:
    return TaskCb(action=action, task_id=info.id, arg=arg)


def measure_rows(card: TaskCard, lang: str) -> list[list[InlineKeyboardButton]]:
    info = card.task
    accept = button(t("tasks.btn.accept", lang), _cb(info, TaskAction.ACCEPT))
    decline = button(t("tasks.btn.decline", lang), _cb(info, TaskAction.DECLINE))
    way = button(t("tasks.btn.on_my_way", lang), _cb(info, TaskAction.ON_MY_WAY))
    finish = button(t("tasks.btn.finish", lang), _cb(info, TaskAction.FINISH))
    rows: list[list[InlineKeyboardButton]]
    if info.status == TaskStatus.OPEN:
        rows = [[accept, decline], [way, finish]]
    elif info.status == TaskStatus.ACCEPTED:
        rows = [[way, finish], [decline]]
    else:
        rows = [[finish], [decline]]
    if card.map_url:
        rows.append([InlineKeyboardButton(text=t("tasks.btn.map", lang), url=card.map_url)])
    return rows


def task_keyboard(card: TaskCard, lang: str) -> InlineKeyboardMarkup | None:
    info = card.task
    if info.status not in OPEN:
        return None
    rows: list[list[InlineKeyboardButton]] = []
    if info.kind == TaskKind.MEASURE:
        rows = measure_rows(card, lang)
    elif info.kind == TaskKind.ASSIGN_MEASURER:
        rows = [
            [
                button(
                    t("tasks.assign.measurer", lang, name=m.name, load=m.load),
                    AssignCb(task_id=info.id, measurer_id=m.id),
                )
            ]
            for m in card.measurers
        ]
    elif info.kind == TaskKind.DEFERRED_CONTACT:
        rows = deferred_rows(info.id, lang)
    else:
        rows.append([button(t("reminder.btn.done", lang), _cb(info, TaskAction.DONE))])
        rows.append(
            [
                button(
                    t(f"reminder.btn.snooze_{choice.value}", lang),
                    _cb(info, TaskAction.SNOOZE, i),
                )
                for i, choice in enumerate(SNOOZE_CHOICES)
            ]
        )
    if info.deal_id and info.kind not in (TaskKind.MEASURE, TaskKind.ASSIGN_MEASURER):
        rows.append(
            [
                button(
                    t("reminder.btn.open_deal", lang),
                    DealCb(action=DealAction.OPEN, deal_id=info.deal_id),
                )
            ]
        )
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


# --- sub-menus ------------------------------------------------------------------------------


def reasons(task_id: int, items: Sequence[tuple[int, str]]) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for reason_id, label in items:
        kb.add(button(label, TaskCb(action=TaskAction.LOST, task_id=task_id, arg=reason_id)))
    kb.adjust(2)
    return kb.as_markup()


def defer_again(task_id: int, lang: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for i, choice in enumerate(NEXT_CONTACT_CHOICES):
        kb.add(
            button(
                t(f"tasks.when.{choice.value}", lang),
                TaskCb(action=TaskAction.DEFER_AGAIN, task_id=task_id, arg=i + 1),
            )
        )
    kb.adjust(2)
    kb.row(
        button(
            t("tasks.next_contact.type", lang),
            TaskCb(action=TaskAction.DEFER_TYPE, task_id=task_id),
        )
    )
    return kb.as_markup()


def next_contact(card: DealCard, lang: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for i, choice in enumerate(NEXT_CONTACT_CHOICES):
        kb.add(
            button(
                t(f"tasks.when.{choice.value}", lang),
                NextContactCb(deal_id=card.id, arg=i, v=card.version),
            )
        )
    kb.adjust(2)
    kb.row(
        button(
            t("tasks.next_contact.type", lang),
            NextContactCb(deal_id=card.id, arg=len(NEXT_CONTACT_CHOICES), v=card.version),
        )
    )
    kb.row(*back_to_card(card, lang))
    return kb.as_markup()


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


def plan_menu(card: DealCard, lang: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for n in PLAN_COUNTS:
        kb.add(
            button(
                t("installments.btn.count", lang, n=n),
                InstallmentCb(
                    action=InstallmentAction.COUNT, deal_id=card.id, v=card.version, arg=n
                ),
            )
        )
    kb.adjust(3)
    kb.row(
        button(
            t("installments.btn.lines", lang),
            InstallmentCb(action=InstallmentAction.LINES, deal_id=card.id, v=card.version),
        )
    )
    kb.row(*back_to_card(card, lang))
    return kb.as_markup()


# --- lists ----------------------------------------------------------------------------------


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
        label = f"{mark}{_hm(info.due_at, tz)} · {short(_title(info, lang), 30)}"
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


# --- installments ---------------------------------------------------------------------------


def installment_text(s: InstallmentSummary, lang: str, notice: str | None = None) -> str:
    lines = [escape(notice), ""] if notice else []
    lines.append(f"💳 <b>{escape(s.title)}</b> · #{s.deal_id}")
    lines.append(
        t(
            "installments.summary",
            lang,
            paid=money(s.paid, lang),
            total=money(s.total, lang),
            remaining=money(s.remaining, lang),
        )
    )
    if s.overdue_amount:
        lines.append(t("installments.summary.overdue", lang, amount=money(s.overdue_amount, lang)))
    for d in s.dues:
        mark = " ✅" if d.remaining == 0 else (" 🔴" if d.overdue else "")
        if 0 < d.paid < d.amount:
            mark = " " + t("installments.due.partial", lang, paid=money(d.paid, lang))
        lines.append(
            t(
                "installments.due_line",
                lang,
                n=d.n,
                date=d.due_date.strftime("%d.%m.%Y"),
                amount=money(d.amount, lang),
                mark=mark,
            )
        )
    return "\n".join(lines)


def installment_keyboard(s: InstallmentSummary, lang: str) -> InlineKeyboardMarkup:
    rows = []
    if not s.closed:
        rows.append(
            [
                button(
                    t("installments.btn.pay", lang),
                    InstallmentCb(action=InstallmentAction.PAY, deal_id=s.deal_id, v=s.version),
                )
            ]
        )
    rows.append(
        [
            button(
                t("reminder.btn.open_deal", lang), DealCb(action=DealAction.OPEN, deal_id=s.deal_id)
            )
        ]
    )
    return InlineKeyboardMarkup(inline_keyboard=rows)


def _fit(text: str) -> str:
    return text if len(text) <= LINE else text[: LINE - 1] + "…"


def receivables(r: Receivables, lang: str) -> tuple[str, InlineKeyboardMarkup | None]:
    """/receivables: totals, then each open plan in a few short lines (≤ 40 characters)."""
    lines = [_fit(t("receivables.title", lang))]
    if not r.rows:
        lines.append(_fit(t("installments.receivables.empty", lang)))
        return "\n".join(lines), None
    lines.append(_fit(t("receivables.total", lang, amount=money(r.total_remaining, lang))))
    lines.append(_fit(t("receivables.overdue", lang, amount=money(r.total_overdue, lang))))
    rows = []
    for i, row in enumerate(r.rows[:MAX_LISTED], start=1):
        lines.append("")
        lines.append(escape(_fit(f"{i}. {row.title}")))
        lines.append(_fit(t("receivables.row.left", lang, amount=money(row.remaining, lang))))
        if row.overdue:
            lines.append(_fit(t("receivables.row.overdue", lang, amount=money(row.overdue, lang))))
        if row.next_due:
            lines.append(
                _fit(t("receivables.row.next", lang, date=row.next_due.strftime("%d.%m.%Y")))
            )
        rows.append(
            [
                button(
                    f"{i}. {short(row.title, 30)}",
                    DealCb(action=DealAction.OPEN, deal_id=row.deal_id),
                )
            ]
        )
    if len(r.rows) > MAX_LISTED:
        lines += ["", _fit(t("receivables.more", lang, n=len(r.rows) - MAX_LISTED))]
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)
