"""Texts (HTML) and keyboards of tasks, reminders' follow-ups, installments and /receivables.

Built from service DTOs only (services.tasks.TaskCard/TaskInfo, services.installments.*).
Everything a person typed is escaped. Lines stay short: these are read on a phone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import tzinfo
from html import escape

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from handlers.deals.views import back_to_card
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
from handlers.ui.fmt import money, short, when, when_short
from handlers.ui.i18n import t
from handlers.ui.keyboards import button
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
    address = None
    if card.address:
        address = escape(card.address)
        if card.map_url:
            address = f'<a href="{escape(card.map_url)}">{address}</a>'
    field_work = info.kind in (TaskKind.MEASURE, TaskKind.ASSIGN_MEASURER)
    lines += detail_lines(
        lang,
        when=when(card.measurement_at, tz) if card.measurement_at else None,
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
        lines.append(t(key, lang, when=when(info.due_at, tz)))
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
) -> list[str]:
    """The lines a measurer needs, in this order (a task card and its reminders): when,
    address (`when` and `address` come ready, the address may be a link), the client, phone,
    the need, the manager and the manager's comment (escaped here)."""
    lines = []
    if when:
        lines.append(t("tasks.card.when", lang, when=when))
    if address:
        lines.append(t("tasks.card.address", lang, address=address))
    if client:
        lines.append(t("tasks.card.client", lang, name=escape(client)))
    if phone:
        lines.append(t("tasks.card.phone", lang, phone=escape(phone)))
    if need:
        lines.append(t(need_key, lang, need=escape(need)))
    if manager:
        lines.append(t("tasks.card.manager", lang, name=escape(manager)))
    if comment:
        lines.append(t("tasks.card.comment", lang, comment=escape(comment)))
    return lines


def declined_line(name: str, reason: str | None, lang: str) -> str:
    return t("tasks.card.declined", lang, name=escape(name), reason=escape(reason or ""))


def _cb(info: TaskInfo, action: TaskAction, arg: int = 0) -> TaskCb:
    return TaskCb(action=action, task_id=info.id, arg=arg)


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
        ],
    ]


def open_deal_button(deal_id: int, lang: str, label: str | None = None) -> InlineKeyboardButton:
    return button(
        label or t("reminder.btn.open_deal", lang),
        DealCb(action=DealAction.OPEN, deal_id=deal_id),
    )


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
    else:
        rows = done_snooze_rows(info.id, lang)
    if info.deal_id and info.kind not in (TaskKind.MEASURE, TaskKind.ASSIGN_MEASURER):
        rows.append([open_deal_button(info.deal_id, lang)])
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
        label = f"{mark}{when_short(info.due_at, tz)} · {short(_title(info, lang), 30)}"
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
