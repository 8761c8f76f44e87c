"""The notifier view: an outbox delivery (the payloads the services enqueue) as a Telegram
message — text (HTML) and keyboard in the recipient's language.

Task reminders are drawn with the task card's own pieces (handlers.tasks.views: detail
lines, measurer, assignment, deferred-demand, done/snooze and "open deal" buttons), money
and dates with handlers.ui.fmt, digests with handlers.funnel.views. bot/notifier.py sends
what `render` returns. A pure function, so tests look at text and keyboard directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, tzinfo
from html import escape
from typing import Any

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from handlers.funnel.views import digest_lines
from handlers.tasks.views import (
    assign_rows,
    declined_line,
    deferred_rows,
    detail_lines,
    done_snooze_rows,
    measure_buttons,
    open_deal_button,
)
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
from handlers.ui.i18n import lang_of, t
from services.outbox.queue import Delivery, Kind, OutboxItem
from services.work.tasks import is_overdue, map_url
from storage.enums import TaskStatus

MAX_TEXT = 4096
TITLE_WIDTH = 120
Buttons = list[list[InlineKeyboardButton]]


def _btn(text: str, cb: Any = None, url: str | None = None) -> InlineKeyboardButton:
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


def _short(text: Any, width: int = TITLE_WIDTH) -> str:
    value = str(text or "")
    return escape(value if len(value) <= width else value[: width - 1] + "…")


def _title(p: Mapping[str, Any], lang: str) -> str:
    title = p.get("title_en") if lang == "en" and p.get("title_en") else p.get("title")
    return _short(title)


def _task_kind(p: Mapping[str, Any], lang: str) -> str:
    kind = str(p.get("task_kind") or "custom")
    return t(f"tasks.kind.{kind}", lang)


def _open_deal(item: OutboxItem, lang: str) -> InlineKeyboardButton:
    assert item.deal_id is not None
    return open_deal_button(item.deal_id, lang)


def _text(p: Mapping[str, Any], key: str) -> str | None:
    value = p.get(key)
    return str(value) if value else None


def _essentials(p: Mapping[str, Any], lang: str, tz: tzinfo) -> list[str]:
    """The task card's detail lines (handlers.tasks.views.detail_lines) from the payload."""
    address = _text(p, "address")
    return detail_lines(
        lang,
        when=fmt.when_short(p["measurement_at"], tz) if p.get("measurement_at") else None,
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


def _late_line(item: OutboxItem, lang: str, tz: tzinfo) -> list[str]:
    if not item.late:
        return []
    return [t("reminder.sent_late", lang, when=fmt.when_short(item.due_at, tz))]


def _overdue_line(p: Mapping[str, Any], now: datetime, lang: str, tz: tzinfo) -> list[str]:
    due = p.get("due_at")
    if not due:
        return []
    due_at = datetime.fromisoformat(due)
    if is_overdue(due_at, now):
        return [
            t(
                "reminder.overdue",
                lang,
                when=fmt.when_short(due, tz),
                delay=delay_text(now - due_at, lang),
            )
        ]
    return [t("reminder.due_at", lang, when=fmt.when_short(due, tz))]


def _task_buttons(item: OutboxItem, lang: str) -> Buttons:
    """Done / Snooze 1 h / Snooze tomorrow / Open deal (or the flow's own buttons)."""
    p = item.payload
    tid = item.task_id
    kind = p.get("task_kind")
    rows: Buttons = []
    if tid is None:
        return [[_open_deal(item, lang)]] if item.deal_id else []
    if kind == "deferred_contact":
        rows = deferred_rows(tid, lang)
    elif kind == "measure":
        return _measure_buttons(item, lang)
    elif kind == "assign_measurer":
        rows.append([_btn(t("tasks.btn.open", lang), TaskCb(action=TaskAction.OPEN, task_id=tid))])
        return rows
    else:
        rows = done_snooze_rows(tid, lang)
    if item.deal_id:
        rows.append([_open_deal(item, lang)])
    return rows


def _assign_card(item: OutboxItem, lang: str, tz: tzinfo) -> tuple[list[str], Buttons]:
    p = item.payload
    lines = [t("tasks.assign.header", lang), f"<b>{_short(p.get('deal_title'))}</b>"]
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


def _measure_card(item: OutboxItem, lang: str, tz: tzinfo) -> tuple[list[str], Buttons]:
    p = item.payload
    lines = [t("tasks.measure.header", lang), f"<b>{_short(p.get('deal_title'))}</b>"]
    lines += _essentials(p, lang, tz)
    if p.get("comment"):
        lines.append(t("tasks.card.head_comment", lang, comment=escape(str(p["comment"]))))
    return lines, _measure_buttons(item, lang)


def _single(item: OutboxItem, lang: str, tz: tzinfo, now: datetime) -> tuple[list[str], Buttons]:
    """One item as a message of its own: full text and its buttons."""
    p = item.payload
    kind = item.kind
    lines: list[str]
    rows: Buttons = []
    if kind == Kind.TASK_NEW and p.get("task_kind") == "assign_measurer":
        lines, rows = _assign_card(item, lang, tz)
    elif kind == Kind.TASK_NEW and p.get("task_kind") == "measure":
        lines, rows = _measure_card(item, lang, tz)
    elif kind in (Kind.TASK_NEW, Kind.TASK_DUE):
        head = "tasks.new.given" if kind == Kind.TASK_NEW else "reminder.due.header"
        lines = [
            t(head, lang, who=escape(str(p.get("created_by") or "")), kind=_task_kind(p, lang))
        ]
        lines.append(f"<b>{_title(p, lang)}</b>")
        if p.get("deal_title") and p.get("deal_title") != p.get("title"):
            lines.append(t("reminder.deal", lang, deal=_short(p["deal_title"])))
        if p.get("task_kind") == "measure":
            lines += _essentials(p, lang, tz)
        lines += _overdue_line(p, now, lang, tz)
        if p.get("comment"):
            lines.append(t("tasks.card.comment", lang, comment=escape(str(p["comment"]))))
        rows = _task_buttons(item, lang)
    elif kind == Kind.TASK_ESCALATED:
        lines = [
            t("tasks.escalated.header", lang),
            f"<b>{_title(p, lang)}</b>",
            t(
                "tasks.escalated.who",
                lang,
                who=escape(str(p.get("assignee") or t(f"role.{p.get('assignee_role')}", lang))),
            ),
        ]
        if p.get("deal_title"):
            lines.append(t("reminder.deal", lang, deal=_short(p["deal_title"])))
        lines += _overdue_line(p, now, lang, tz)
        rows = [[_open_deal(item, lang)]] if item.deal_id else []
    elif kind == Kind.TASK_DECLINED:
        lines = [
            t(
                "tasks.declined",
                lang,
                who=escape(str(p.get("declined_by"))),
                reason=escape(str(p.get("reason"))),
            ),
            f"<b>{_short(p.get('deal_title'))}</b>",
        ]
        lines += _essentials(p, lang, tz)
    elif kind == Kind.MEASURE_DONE:
        lines = [
            t(
                "tasks.measure_done",
                lang,
                deal=_short(p.get("deal_title")),
                who=escape(str(p.get("measurer"))),
            ),
            t(
                "tasks.measure_done.files",
                lang,
                photos=int(p.get("photos") or 0),
                files=int(p.get("files") or 0),
            ),
        ]
        if p.get("comment"):
            lines.append(t("tasks.card.comment", lang, comment=escape(str(p["comment"]))))
        rows = [[_open_deal(item, lang)]] if item.deal_id else []
    elif kind == Kind.DEAL_REASSIGNED:
        key = "reminder.reassigned.new" if p.get("role") == "new" else "reminder.reassigned.old"
        lines = [
            t(
                key,
                lang,
                by=escape(str(p.get("by") or "")),
                deal=_short(p.get("deal_title")),
                old=escape(str(p.get("from") or "—")),
                new=escape(str(p.get("to") or "")),
            )
        ]
        rows = [[_open_deal(item, lang)]] if item.deal_id and p.get("role") == "new" else []
    elif kind in (Kind.INSTALLMENT_UPCOMING, Kind.INSTALLMENT_OVERDUE, Kind.INSTALLMENT_PAID):
        lines = [_installment_line(item, lang)]
        rows = _installment_buttons(item, lang)
    elif kind == Kind.SUMMARY_MORNING:
        lines, rows = _summary(item, lang)
    elif kind in (Kind.DIGEST_DAILY, Kind.DIGEST_WEEKLY):
        lines = digest_lines(p, lang, tz)
        rows = [[_btn(t("menu.funnel", lang), MenuCb(action=MenuAction.FUNNEL))]]
    elif kind == Kind.DEAL_ROTTING:
        lines, rows = _rotting(item, lang)
    elif kind == Kind.ADMIN_UNREACHABLE:
        who = str(p.get("name") or "")
        if p.get("username"):
            who += f" (@{p['username']})"
        lines = [t("tasks.unreachable", lang, name=escape(who))]
    else:
        lines = [escape(str(p.get("title") or kind))]
    return lines + _late_line(item, lang, tz), rows


def _installment_line(item: OutboxItem, lang: str) -> str:
    p = item.payload
    deal = _short(p.get("deal_title"))
    if item.kind == Kind.INSTALLMENT_UPCOMING:
        return t(
            "installments.upcoming",
            lang,
            n=p.get("n"),
            count=p.get("count"),
            amount=fmt.money(p.get("amount"), lang),
            date=fmt.day(p.get("due_date")),
            deal=deal,
        )
    if item.kind == Kind.INSTALLMENT_OVERDUE:
        return t(
            "installments.overdue",
            lang,
            n=p.get("n"),
            amount=fmt.money(p.get("amount"), lang),
            date=fmt.day(p.get("due_date")),
            days=p.get("days"),
            deal=deal,
            manager=escape(str(p.get("manager") or "—")),
        )
    return t("installments.paid", lang, deal=deal, amount=fmt.money(p.get("total"), lang))


def _installment_buttons(item: OutboxItem, lang: str) -> Buttons:
    if item.deal_id is None:
        return []
    rows: Buttons = []
    if item.kind != Kind.INSTALLMENT_PAID:
        rows.append(
            [
                _btn(
                    t("installments.btn.pay", lang),
                    InstallmentCb(action=InstallmentAction.PAY, deal_id=item.deal_id),
                )
            ]
        )
    rows.append([_open_deal(item, lang)])
    return rows


def _rotting(item: OutboxItem, lang: str) -> tuple[list[str], Buttons]:
    """A stale deal (services/work/rotting.py) with what to do about it right here: the
    card's own callbacks (the services check rights and the version as on the card)."""
    p = item.payload
    assert item.deal_id is not None
    stage = p.get("stage_en") if lang == "en" and p.get("stage_en") else p.get("stage")
    lines = [
        t("rot.header", lang, days=p.get("days"), stage=escape(str(stage)), limit=p.get("limit")),
        f"<b>{_short(p.get('title'))}</b> · {fmt.compact_money(p.get('amount'), lang)}",
    ]
    deal_id, v = item.deal_id, int(p.get("v") or 0)
    rows: Buttons = []
    next_stage = p.get("next_en") if lang == "en" and p.get("next_en") else p.get("next")
    if next_stage:
        cb = DealCb(action=DealAction.NEXT, deal_id=deal_id, v=v)
        rows.append([_btn(f"{fmt.short(str(next_stage), 22)} ▶", cb)])
    rows.append(
        [
            _btn(
                t("deal.btn.next_contact", lang),
                DealCb(action=DealAction.NEXT_CONTACT, deal_id=deal_id, v=v),
            ),
            _btn(t("deal.btn.lose", lang), DealCb(action=DealAction.LOSE, deal_id=deal_id, v=v)),
        ]
    )
    rows.append([_open_deal(item, lang)])
    return lines, rows


def _summary(item: OutboxItem, lang: str) -> tuple[list[str], Buttons]:
    p = item.payload
    lines = [t("tasks.summary.header", lang, date=fmt.day(p.get("date")))]
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
        for _deal_id, title, days in stale:
            lines.append(t("tasks.summary.stale_item", lang, title=_short(title, 60), days=days))
        for deal_id, title, _days in stale[:5]:
            rows.append(
                [
                    _btn(
                        f"📂 {str(title)[:40]}",
                        DealCb(action=DealAction.OPEN, deal_id=int(deal_id)),
                    )
                ]
            )
    rows.append([_btn(t("tasks.summary.btn.tasks", lang), MenuCb(action=MenuAction.TASKS))])
    return lines, rows


def _compact(
    item: OutboxItem, n: int, lang: str, tz: tzinfo, now: datetime
) -> tuple[str, list[InlineKeyboardButton]]:
    """One numbered line (and a row of short buttons) for a merged message."""
    p = item.payload
    buttons: list[InlineKeyboardButton] = []
    if item.kind in (Kind.INSTALLMENT_UPCOMING, Kind.INSTALLMENT_OVERDUE, Kind.INSTALLMENT_PAID):
        text = _installment_line(item, lang)
        if item.deal_id is not None and item.kind != Kind.INSTALLMENT_PAID:
            buttons.append(
                _btn(f"{n}. 💳", InstallmentCb(action=InstallmentAction.PAY, deal_id=item.deal_id))
            )
    elif item.kind in (Kind.TASK_DUE, Kind.TASK_ESCALATED):
        prefix = (
            t("tasks.escalated.short", lang, who=escape(str(p.get("assignee") or "")))
            if item.kind == Kind.TASK_ESCALATED
            else "⏰"
        )
        parts = [f"{prefix} <b>{_title(p, lang)}</b>"]
        if p.get("deal_title") and p.get("deal_title") != p.get("title"):
            parts.append(_short(p["deal_title"], 60))
        parts += _overdue_line(p, now, lang, tz)
        text = " · ".join(parts)
        tid = item.task_id
        if item.kind == Kind.TASK_DUE and tid is not None:
            if p.get("task_kind") in ("follow_up", "custom", "call_back", "collect_payment", None):
                buttons.append(_btn(f"{n}. ✅", TaskCb(action=TaskAction.DONE, task_id=tid)))
                buttons.append(
                    _btn(f"{n}. ⏰", TaskCb(action=TaskAction.SNOOZE, task_id=tid, arg=0))
                )
            else:
                buttons.append(_btn(f"{n}. ▶️", TaskCb(action=TaskAction.OPEN, task_id=tid)))
    else:
        lines, _ = _single(item, lang, tz, now)
        text = " · ".join(line for line in lines if line)
    if item.deal_id is not None and item.kind not in (Kind.TASK_DECLINED,):
        buttons.append(_btn(f"{n}. 📂", DealCb(action=DealAction.OPEN, deal_id=item.deal_id)))
    if item.late:
        text += " " + t("reminder.late_mark", lang)
    return f"{n}. {text}", buttons


def render(delivery: Delivery, tz: tzinfo) -> tuple[str, InlineKeyboardMarkup | None]:
    """Text (HTML) and keyboard of one delivery, in the recipient's language."""
    lang = lang_of(delivery.language)
    items = delivery.items
    if len(items) == 1:
        lines, rows = _single(items[0], lang, tz, delivery.now)
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
