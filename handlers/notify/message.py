"""An outbox delivery as one Telegram message: a single item drawn by its kind's view
(handlers/notify/views.py), several merged into numbered lines with short buttons."""

from __future__ import annotations

from datetime import datetime, tzinfo
from html import escape

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from handlers.notify.views import VIEWS, btn, cut, overdue_line, single, title
from handlers.ui.callbacks import (
    DealAction,
    DealCb,
    InstallmentAction,
    InstallmentCb,
    TaskAction,
    TaskCb,
)
from handlers.ui.i18n import lang_of, t
from services.outbox.payloads import TaskEscalated, TaskLine
from services.outbox.queue import Delivery, Kind, OutboxItem

MAX_TEXT = 4096
INSTALLMENTS = (Kind.INSTALLMENT_UPCOMING, Kind.INSTALLMENT_OVERDUE, Kind.INSTALLMENT_PAID)
# Task kinds a merged reminder answers with Done and Snooze (the others: open the task).
SIMPLE_TASKS = ("follow_up", "custom", "call_back", "collect_payment")


def _compact(
    item: OutboxItem, n: int, lang: str, tz: tzinfo, now: datetime
) -> tuple[str, list[InlineKeyboardButton]]:
    """One numbered line (and a row of short buttons) for a merged message."""
    p = item.payload
    buttons: list[InlineKeyboardButton] = []
    if item.kind in INSTALLMENTS:
        text = VIEWS[item.kind](item, lang, tz, now)[0][0]
        if item.deal_id is not None and item.kind != Kind.INSTALLMENT_PAID:
            buttons.append(
                btn(f"{n}. 💳", InstallmentCb(action=InstallmentAction.PAY, deal_id=item.deal_id))
            )
    elif item.kind in (Kind.TASK_DUE, Kind.TASK_ESCALATED) and isinstance(p, TaskLine):
        prefix = (
            t("tasks.escalated.short", lang, who=escape(p.assignee or ""))
            if isinstance(p, TaskEscalated)
            else "⏰"
        )
        parts = [f"{prefix} <b>{title(p, lang)}</b>"]
        if p.deal_title and p.deal_title != p.title:
            parts.append(cut(p.deal_title, 60))
        parts += overdue_line(p, now, lang, tz)
        text = " · ".join(parts)
        tid = item.task_id
        if item.kind == Kind.TASK_DUE and tid is not None:
            if p.task_kind in SIMPLE_TASKS:
                buttons.append(btn(f"{n}. ✅", TaskCb(action=TaskAction.DONE, task_id=tid)))
                buttons.append(
                    btn(f"{n}. ⏰", TaskCb(action=TaskAction.SNOOZE, task_id=tid, arg=0))
                )
            else:
                buttons.append(btn(f"{n}. ▶️", TaskCb(action=TaskAction.OPEN, task_id=tid)))
    else:
        lines, _ = single(item, lang, tz, now)
        text = " · ".join(line for line in lines if line)
    if item.deal_id is not None and item.kind not in (Kind.TASK_DECLINED,):
        buttons.append(btn(f"{n}. 📂", DealCb(action=DealAction.OPEN, deal_id=item.deal_id)))
    if item.late:
        text += " " + t("reminder.late_mark", lang)
    return f"{n}. {text}", buttons


def render(delivery: Delivery, tz: tzinfo) -> tuple[str, InlineKeyboardMarkup | None]:
    """Text (HTML) and keyboard of one delivery, in the recipient's language."""
    lang = lang_of(delivery.language)
    items = delivery.items
    if len(items) == 1:
        lines, rows = single(items[0], lang, tz, delivery.now)
        text = "\n".join(lines)
    else:
        lines = [t("reminder.header.many", lang, count=len(items))]
        rows = []
        for n, item in enumerate(items, start=1):
            line, buttons = _compact(item, n, lang, tz, delivery.now)
            lines.append(line)
            if buttons:
                rows.append(buttons)
        text = "\n\n".join([lines[0], *lines[1:]])
    if len(text) > MAX_TEXT:
        text = text[: MAX_TEXT - 1] + "…"
    return text, InlineKeyboardMarkup(inline_keyboard=rows) if rows else None
