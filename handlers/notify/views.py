"""One view per outbox kind: an item's payload (what the services enqueued) as the lines and
the buttons of a message of its own, in the recipient's language.

Task reminders are drawn with the task card's own pieces (handlers/ui/task_card.py: detail
lines, measurer, assignment, deferred-demand and done/snooze buttons), "Open deal" with the
deal card's (handlers/ui/deal_card.py), digests with handlers/funnel/views.py, money and
dates with handlers/ui/fmt.py. `VIEWS` maps each kind to its view; handlers/notify/message.py
puts one or several items into a message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, tzinfo
from html import escape
from typing import Any

from aiogram.types import InlineKeyboardButton

from handlers.funnel.views import digest_lines
from handlers.ui import fmt
from handlers.ui.callbacks import (
    DealAction,
    DealCb,
    InstallmentAction,
    InstallmentCb,
    MenuAction,
    MenuCb,
    TaskAction,
    TaskCb,
)
from handlers.ui.deal_card import open_button
from handlers.ui.i18n import t
from handlers.ui.task_card import (
    assign_rows,
    declined_line,
    deferred_rows,
    detail_lines,
    done_snooze_rows,
    measure_buttons,
)
from services.outbox.queue import Kind, OutboxItem
from services.tasks import is_overdue, map_url
from storage.enums import TaskStatus

TITLE_WIDTH = 120
Buttons = list[list[InlineKeyboardButton]]
Drawn = tuple[list[str], Buttons]
View = Callable[[OutboxItem, str, tzinfo, datetime], Drawn]


def btn(text: str, cb: Any = None, url: str | None = None) -> InlineKeyboardButton:
    if url is not None:
        return InlineKeyboardButton(text=text, url=url)
    return InlineKeyboardButton(text=text, callback_data=cb.pack())


def delay_text(delta: timedelta, lang: str) -> str:
    """5 min / 2 h 10 min / 3 d 4 h."""
    minutes = max(int(delta.total_seconds() // 60), 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return t("reminder.delay.d", lang, d=days, h=hours)
    if hours:
        return t("reminder.delay.h", lang, h=hours, m=mins)
    return t("reminder.delay.m", lang, m=mins)


def cut(text: Any, width: int = TITLE_WIDTH) -> str:
    """A payload's text, escaped and cut to `width` characters."""
    value = str(text or "")
    return escape(value if len(value) <= width else value[: width - 1] + "…")


def title(p: Mapping[str, Any], lang: str) -> str:
    value = p.get("title_en") if lang == "en" and p.get("title_en") else p.get("title")
    return cut(value)


def _task_kind(p: Mapping[str, Any], lang: str) -> str:
    kind = str(p.get("task_kind") or "custom")
    return t(f"tasks.kind.{kind}", lang)


def _open_deal(item: OutboxItem, lang: str) -> InlineKeyboardButton:
    assert item.deal_id is not None
    return open_button(item.deal_id, lang)


def _open_deal_row(item: OutboxItem, lang: str) -> Buttons:
    return [[_open_deal(item, lang)]] if item.deal_id else []


def _text(p: Mapping[str, Any], key: str) -> str | None:
    value = p.get(key)
    return str(value) if value else None


def _essentials(p: Mapping[str, Any], lang: str, tz: tzinfo) -> list[str]:
    """The task card's detail lines (handlers.ui.task_card.detail_lines) from the payload."""
    address = _text(p, "address")
    return detail_lines(
        lang,
        when=fmt.when_short(p["measurement_at"], tz, lang) if p.get("measurement_at") else None,
        address=escape(address) if address else None,
        client=_text(p, "client_name"),
        phone=_text(p, "phone"),
        need=_text(p, "need"),
        manager=_text(p, "manager_name"),
        comment=_text(p, "manager_comment"),
    )


def _measure_buttons(item: OutboxItem, lang: str) -> Buttons:
    assert item.task_id is not None
    address = item.payload.get("address")
    url = map_url(str(address)) if address else None
    return measure_buttons(item.task_id, TaskStatus.OPEN, url, lang)


def late_line(item: OutboxItem, lang: str, tz: tzinfo) -> list[str]:
    """Sent later than it was due (the bot was down): say when it was due."""
    if not item.late:
        return []
    return [t("reminder.sent_late", lang, when=fmt.when_short(item.due_at, tz, lang))]


def overdue_line(p: Mapping[str, Any], now: datetime, lang: str, tz: tzinfo) -> list[str]:
    due = p.get("due_at")
    if not due:
        return []
    due_at = datetime.fromisoformat(due)
    if is_overdue(due_at, now):
        return [
            t(
                "reminder.overdue",
                lang,
                when=fmt.when_short(due, tz, lang),
                delay=delay_text(now - due_at, lang),
            )
        ]
    return [t("reminder.due_at", lang, when=fmt.when_short(due, tz, lang))]


def _task_buttons(item: OutboxItem, lang: str) -> Buttons:
    """Done / Snooze 1 h / Snooze tomorrow / Open deal (or the flow's own buttons)."""
    p = item.payload
    tid = item.task_id
    kind = p.get("task_kind")
    rows: Buttons = []
    if tid is None:
        return _open_deal_row(item, lang)
    if kind == "deferred_contact":
        rows = deferred_rows(tid, lang)
    elif kind == "measure":
        return _measure_buttons(item, lang)
    elif kind == "assign_measurer":
        rows.append([btn(t("tasks.btn.open", lang), TaskCb(action=TaskAction.OPEN, task_id=tid))])
        return rows
    else:
        rows = done_snooze_rows(tid, lang)
    if item.deal_id:
        rows.append([_open_deal(item, lang)])
    return rows


def _assign_card(item: OutboxItem, lang: str, tz: tzinfo) -> Drawn:
    p = item.payload
    lines = [t("tasks.assign.header", lang), f"<b>{cut(p.get('deal_title'))}</b>"]
    lines += _essentials(p, lang, tz)
    if p.get("declined_by"):
        lines.append(declined_line(str(p["declined_by"]), _text(p, "decline_reason"), lang))
    measurers = p.get("measurers") or []
    lines.append("")
    lines.append(t("tasks.assign.choose", lang) if measurers else t("tasks.assign.nobody", lang))
    assert item.task_id is not None
    people = ((int(mid), str(name), int(load)) for mid, name, load in measurers)
    rows = assign_rows(item.task_id, people, lang)
    return lines, rows


def _measure_card(item: OutboxItem, lang: str, tz: tzinfo) -> Drawn:
    p = item.payload
    lines = [t("tasks.measure.header", lang), f"<b>{cut(p.get('deal_title'))}</b>"]
    lines += _essentials(p, lang, tz)
    if p.get("comment"):
        lines.append(t("tasks.card.head_comment", lang, comment=escape(str(p["comment"]))))
    return lines, _measure_buttons(item, lang)


def _task(item: OutboxItem, head: str, lang: str, tz: tzinfo, now: datetime) -> Drawn:
    """A task given to someone, or due: its title, deal, when, comment and buttons."""
    p = item.payload
    lines = [t(head, lang, who=escape(str(p.get("created_by") or "")), kind=_task_kind(p, lang))]
    lines.append(f"<b>{title(p, lang)}</b>")
    if p.get("deal_title") and p.get("deal_title") != p.get("title"):
        lines.append(t("reminder.deal", lang, deal=cut(p["deal_title"])))
    if p.get("task_kind") == "measure":
        lines += _essentials(p, lang, tz)
    lines += overdue_line(p, now, lang, tz)
    if p.get("comment"):
        lines.append(t("tasks.card.comment", lang, comment=escape(str(p["comment"]))))
    return lines, _task_buttons(item, lang)


# --- one view per kind ----------------------------------------------------------------------


def task_new(item: OutboxItem, lang: str, tz: tzinfo, now: datetime) -> Drawn:
    """A task card for its assignee: the head's choice of a measurer, a measurement, or a
    task someone gave."""
    kind = item.payload.get("task_kind")
    if kind == "assign_measurer":
        return _assign_card(item, lang, tz)
    if kind == "measure":
        return _measure_card(item, lang, tz)
    return _task(item, "tasks.new.given", lang, tz, now)


def task_due(item: OutboxItem, lang: str, tz: tzinfo, now: datetime) -> Drawn:
    return _task(item, "reminder.due.header", lang, tz, now)


def task_escalated(item: OutboxItem, lang: str, tz: tzinfo, now: datetime) -> Drawn:
    p = item.payload
    who = p.get("assignee") or t(f"role.{p.get('assignee_role')}", lang)
    lines = [
        t("tasks.escalated.header", lang),
        f"<b>{title(p, lang)}</b>",
        t("tasks.escalated.who", lang, who=escape(str(who))),
    ]
    if p.get("deal_title"):
        lines.append(t("reminder.deal", lang, deal=cut(p["deal_title"])))
    lines += overdue_line(p, now, lang, tz)
    return lines, _open_deal_row(item, lang)


def task_declined(item: OutboxItem, lang: str, tz: tzinfo, now: datetime) -> Drawn:
    p = item.payload
    who, reason = escape(str(p.get("declined_by"))), escape(str(p.get("reason")))
    lines = [
        t("tasks.declined", lang, who=who, reason=reason),
        f"<b>{cut(p.get('deal_title'))}</b>",
    ]
    return lines + _essentials(p, lang, tz), []


def measure_done(item: OutboxItem, lang: str, tz: tzinfo, now: datetime) -> Drawn:
    p = item.payload
    who = escape(str(p.get("measurer")))
    photos, files = int(p.get("photos") or 0), int(p.get("files") or 0)
    lines = [
        t("tasks.measure_done", lang, deal=cut(p.get("deal_title")), who=who),
        t("tasks.measure_done.files", lang, photos=photos, files=files),
    ]
    if p.get("comment"):
        lines.append(t("tasks.card.comment", lang, comment=escape(str(p["comment"]))))
    return lines, _open_deal_row(item, lang)


def deal_reassigned(item: OutboxItem, lang: str, tz: tzinfo, now: datetime) -> Drawn:
    p = item.payload
    new = p.get("role") == "new"
    line = t(
        "reminder.reassigned.new" if new else "reminder.reassigned.old",
        lang,
        by=escape(str(p.get("by") or "")),
        deal=cut(p.get("deal_title")),
        old=escape(str(p.get("from") or "—")),
        new=escape(str(p.get("to") or "")),
    )
    return [line], _open_deal_row(item, lang) if new else []


def _installment_buttons(item: OutboxItem, lang: str, pay: bool = True) -> Buttons:
    if item.deal_id is None:
        return []
    rows: Buttons = []
    if pay:
        cb = InstallmentCb(action=InstallmentAction.PAY, deal_id=item.deal_id)
        rows.append([btn(t("installments.btn.pay", lang), cb)])
    rows.append([_open_deal(item, lang)])
    return rows


def installment_upcoming(item: OutboxItem, lang: str, tz: tzinfo, now: datetime) -> Drawn:
    p = item.payload
    line = t(
        "installments.upcoming",
        lang,
        n=p.get("n"),
        count=p.get("count"),
        amount=fmt.money(p.get("amount"), lang),
        date=fmt.day(p.get("due_date"), lang),
        deal=cut(p.get("deal_title")),
    )
    return [line], _installment_buttons(item, lang)


def installment_overdue(item: OutboxItem, lang: str, tz: tzinfo, now: datetime) -> Drawn:
    p = item.payload
    line = t(
        "installments.overdue",
        lang,
        n=p.get("n"),
        amount=fmt.money(p.get("amount"), lang),
        date=fmt.day(p.get("due_date"), lang),
        days=p.get("days"),
        deal=cut(p.get("deal_title")),
        manager=escape(str(p.get("manager") or "—")),
    )
    return [line], _installment_buttons(item, lang)


def installment_paid(item: OutboxItem, lang: str, tz: tzinfo, now: datetime) -> Drawn:
    p = item.payload
    amount = fmt.money(p.get("total"), lang)
    line = t("installments.paid", lang, deal=cut(p.get("deal_title")), amount=amount)
    return [line], _installment_buttons(item, lang, pay=False)


def summary_morning(item: OutboxItem, lang: str, tz: tzinfo, now: datetime) -> Drawn:
    p = item.payload
    lines = [t("tasks.summary.header", lang, date=fmt.day(p.get("date"), lang))]
    if p.get("tasks_today"):
        lines.append(
            t("tasks.summary.tasks", lang, count=p["tasks_today"], overdue=p.get("overdue") or 0)
        )
    rows: Buttons = []
    stale = p.get("stale") or []
    if stale:
        lines.append("")
        lines.append(
            t("tasks.summary.stale", lang, days=p.get("stale_days"), count=p.get("stale_total"))
        )
        for _deal_id, name, days in stale:
            lines.append(t("tasks.summary.stale_item", lang, title=cut(name, 60), days=days))
        for deal_id, name, _days in stale[:5]:
            cb = DealCb(action=DealAction.OPEN, deal_id=int(deal_id))
            rows.append([btn(f"📂 {str(name)[:40]}", cb)])
    rows.append([btn(t("tasks.summary.btn.tasks", lang), MenuCb(action=MenuAction.TASKS))])
    return lines, rows


def digest(item: OutboxItem, lang: str, tz: tzinfo, now: datetime) -> Drawn:
    """The daily or weekly digest (handlers/funnel/views.py `digest_lines`)."""
    rows = [[btn(t("menu.funnel", lang), MenuCb(action=MenuAction.FUNNEL))]]
    return digest_lines(item.payload, lang, tz), rows


def deal_rotting(item: OutboxItem, lang: str, tz: tzinfo, now: datetime) -> Drawn:
    """A stale deal (services/work/rotting.py) with what to do about it right here: the
    card's own callbacks (the services check rights and the version as on the card)."""
    p = item.payload
    assert item.deal_id is not None
    stage = p.get("stage_en") if lang == "en" and p.get("stage_en") else p.get("stage")
    lines = [
        t("rot.header", lang, days=p.get("days"), stage=escape(str(stage)), limit=p.get("limit")),
        f"<b>{cut(p.get('title'))}</b> · {fmt.compact_money(p.get('amount'), lang)}",
    ]
    deal_id, v = item.deal_id, int(p.get("v") or 0)
    rows: Buttons = []
    next_stage = p.get("next_en") if lang == "en" and p.get("next_en") else p.get("next")
    if next_stage:
        cb = DealCb(action=DealAction.NEXT, deal_id=deal_id, v=v)
        rows.append([btn(f"{fmt.short(str(next_stage), 22)} ▶", cb)])
    rows.append(
        [
            btn(
                t("deal.btn.next_contact", lang),
                DealCb(action=DealAction.NEXT_CONTACT, deal_id=deal_id, v=v),
            ),
            btn(t("deal.btn.lose", lang), DealCb(action=DealAction.LOSE, deal_id=deal_id, v=v)),
        ]
    )
    rows.append([_open_deal(item, lang)])
    return lines, rows


def admin_unreachable(item: OutboxItem, lang: str, tz: tzinfo, now: datetime) -> Drawn:
    p = item.payload
    who = str(p.get("name") or "")
    if p.get("username"):
        who += f" (@{p['username']})"
    return [t("tasks.unreachable", lang, name=escape(who))], []


def unknown(item: OutboxItem, lang: str, tz: tzinfo, now: datetime) -> Drawn:
    """A kind this build does not know (a newer worker enqueued it): its title, as is."""
    return [escape(str(item.payload.get("title") or item.kind))], []


VIEWS: dict[str, View] = {  # Kind -> its view (a Kind is its str value)
    Kind.TASK_NEW: task_new,
    Kind.TASK_DUE: task_due,
    Kind.TASK_ESCALATED: task_escalated,
    Kind.TASK_DECLINED: task_declined,
    Kind.MEASURE_DONE: measure_done,
    Kind.INSTALLMENT_UPCOMING: installment_upcoming,
    Kind.INSTALLMENT_OVERDUE: installment_overdue,
    Kind.INSTALLMENT_PAID: installment_paid,
    Kind.SUMMARY_MORNING: summary_morning,
    Kind.ADMIN_UNREACHABLE: admin_unreachable,
    Kind.DIGEST_DAILY: digest,
    Kind.DIGEST_WEEKLY: digest,
    Kind.DEAL_REASSIGNED: deal_reassigned,
    Kind.DEAL_ROTTING: deal_rotting,
}


def single(item: OutboxItem, lang: str, tz: tzinfo, now: datetime) -> Drawn:
    """One item as a message of its own: its view, and a line when it was sent late."""
    lines, rows = VIEWS.get(item.kind, unknown)(item, lang, tz, now)
    return lines + late_line(item, lang, tz), rows
