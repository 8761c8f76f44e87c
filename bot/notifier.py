"""The aiogram side of the reminder engine: render an outbox delivery and send it.

`BotNotifier.deliver` is what services.outbox.Sweeper calls (the `Notifier` protocol): it
renders the items in the recipient's language (handlers/i18n, .po files) with their buttons
and sends one message, mapping aiogram's errors to the outbox's:

    TelegramRetryAfter (429)                 -> DeliveryRetryAfter(retry_after)
    TelegramForbiddenError (403), "chat not found" -> DeliveryForbidden
    TelegramServerError (5xx), TelegramNetworkError, other API errors -> DeliveryTransient
    TelegramBadRequest (400, e.g. text too long) -> DeliveryRejected

Rendering is a pure function (`render`) so tests can look at text and keyboard directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, tzinfo
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from aiogram import Bot
from aiogram.enums import ParseMode
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions

from handlers.funnel.views import digest_lines
from handlers.ui.callbacks import (
    SNOOZE_CHOICES,
    AssignCb,
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
from services.outbox.queue import (
    Delivery,
    DeliveryForbidden,
    DeliveryRejected,
    DeliveryRetryAfter,
    DeliveryTransient,
    Kind,
    OutboxItem,
)
from services.validation import format_amount
from services.work.tasks import map_url

MAX_TEXT = 4096
TITLE_WIDTH = 120
Buttons = list[list[InlineKeyboardButton]]


class BotNotifier:
    """Sends outbox deliveries through an aiogram Bot (`tz`: the company's timezone)."""

    def __init__(self, bot: Bot, tz: str | tzinfo = "Europe/Moscow") -> None:
        self.bot = bot
        self.tz: tzinfo = ZoneInfo(tz) if isinstance(tz, str) else tz

    async def deliver(self, delivery: Delivery) -> None:
        text, markup = render(delivery, self.tz)
        try:
            await self.bot.send_message(
                chat_id=delivery.chat_id,
                text=text,
                reply_markup=markup,
                parse_mode=ParseMode.HTML,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        except TelegramRetryAfter as exc:
            raise DeliveryRetryAfter(exc.retry_after) from exc
        except TelegramForbiddenError as exc:
            raise DeliveryForbidden(exc.message) from exc
        except (TelegramServerError, TelegramNetworkError) as exc:
            raise DeliveryTransient(exc.message) from exc
        except TelegramBadRequest as exc:
            if "chat not found" in exc.message.lower():
                raise DeliveryForbidden(exc.message) from exc
            raise DeliveryRejected(exc.message) from exc
        except TelegramAPIError as exc:  # unauthorized, conflict...: keep the rows, retry
            raise DeliveryTransient(exc.message) from exc


# --- rendering ----------------------------------------------------------------------------


def _btn(text: str, cb: Any = None, url: str | None = None) -> InlineKeyboardButton:
    if url is not None:
        return InlineKeyboardButton(text=text, url=url)
    return InlineKeyboardButton(text=text, callback_data=cb.pack())


def _when(value: str | None, tz: tzinfo) -> str:
    if not value:
        return "—"
    return datetime.fromisoformat(value).astimezone(tz).strftime("%d.%m %H:%M")


def _day(value: str | None) -> str:
    if not value:
        return "—"
    return datetime.fromisoformat(value).strftime("%d.%m.%Y")


def _money(minor: Any, lang: str) -> str:
    return t("common.money", lang, amount=format_amount(int(minor))) if minor is not None else "—"


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


def _open_deal(item: OutboxItem, lang: str, label: str | None = None) -> InlineKeyboardButton:
    assert item.deal_id is not None
    return _btn(
        label or t("reminder.btn.open_deal", lang),
        DealCb(action=DealAction.OPEN, deal_id=item.deal_id),
    )


def _essentials(p: Mapping[str, Any], lang: str, tz: tzinfo) -> list[str]:
    lines = []
    if p.get("measurement_at"):
        lines.append(t("tasks.card.when", lang, when=_when(p["measurement_at"], tz)))
    if p.get("address"):
        lines.append(t("tasks.card.address", lang, address=escape(str(p["address"]))))
    if p.get("client_name"):
        lines.append(t("tasks.card.client", lang, name=escape(str(p["client_name"]))))
    if p.get("phone"):
        lines.append(t("tasks.card.phone", lang, phone=escape(str(p["phone"]))))
    if p.get("need"):
        lines.append(t("tasks.card.need", lang, need=escape(str(p["need"]))))
    if p.get("manager_name"):
        lines.append(t("tasks.card.manager", lang, name=escape(str(p["manager_name"]))))
    if p.get("manager_comment"):
        lines.append(t("tasks.card.comment", lang, comment=escape(str(p["manager_comment"]))))
    return lines


def _late_line(item: OutboxItem, lang: str, tz: tzinfo) -> list[str]:
    if not item.late:
        return []
    return [t("reminder.sent_late", lang, when=item.due_at.astimezone(tz).strftime("%d.%m %H:%M"))]


def _overdue_line(p: Mapping[str, Any], now: datetime, lang: str, tz: tzinfo) -> list[str]:
    due = p.get("due_at")
    if not due:
        return []
    due_at = datetime.fromisoformat(due)
    if due_at < now - timedelta(minutes=1):
        return [
            t("reminder.overdue", lang, when=_when(due, tz), delay=delay_text(now - due_at, lang))
        ]
    return [t("reminder.due_at", lang, when=_when(due, tz))]


def _task_buttons(item: OutboxItem, lang: str) -> Buttons:
    """Done / Snooze 1 h / Snooze tomorrow / Open deal (or the flow's own buttons)."""
    p = item.payload
    tid = item.task_id
    kind = p.get("task_kind")
    rows: Buttons = []
    if tid is None:
        return [[_open_deal(item, lang)]] if item.deal_id else []
    if kind == "deferred_contact":
        rows.append(
            [
                _btn(
                    t("tasks.btn.back_to_sales", lang),
                    TaskCb(action=TaskAction.BACK_TO_SALES, task_id=tid),
                ),
                _btn(t("tasks.btn.lost", lang), TaskCb(action=TaskAction.LOST, task_id=tid)),
            ]
        )
        rows.append(
            [
                _btn(
                    t("tasks.btn.defer_again", lang),
                    TaskCb(action=TaskAction.DEFER_AGAIN, task_id=tid),
                )
            ]
        )
    elif kind == "measure":
        return _measure_buttons(item, lang)
    elif kind == "assign_measurer":
        rows.append([_btn(t("tasks.btn.open", lang), TaskCb(action=TaskAction.OPEN, task_id=tid))])
        return rows
    else:
        rows.append(
            [_btn(t("reminder.btn.done", lang), TaskCb(action=TaskAction.DONE, task_id=tid))]
        )
        rows.append(
            [
                _btn(
                    t(f"reminder.btn.snooze_{choice.value}", lang),
                    TaskCb(action=TaskAction.SNOOZE, task_id=tid, arg=i),
                )
                for i, choice in enumerate(SNOOZE_CHOICES)
            ]
        )
    if item.deal_id:
        rows.append([_open_deal(item, lang)])
    return rows


def _measure_buttons(item: OutboxItem, lang: str) -> Buttons:
    tid = item.task_id
    assert tid is not None
    rows: Buttons = [
        [
            _btn(t("tasks.btn.accept", lang), TaskCb(action=TaskAction.ACCEPT, task_id=tid)),
            _btn(t("tasks.btn.decline", lang), TaskCb(action=TaskAction.DECLINE, task_id=tid)),
        ],
        [
            _btn(t("tasks.btn.on_my_way", lang), TaskCb(action=TaskAction.ON_MY_WAY, task_id=tid)),
            _btn(t("tasks.btn.finish", lang), TaskCb(action=TaskAction.FINISH, task_id=tid)),
        ],
    ]
    address = item.payload.get("address")
    if address:
        rows.append([_btn(t("tasks.btn.map", lang), url=map_url(str(address)))])
    return rows


def _assign_card(item: OutboxItem, lang: str, tz: tzinfo) -> tuple[list[str], Buttons]:
    p = item.payload
    lines = [t("tasks.assign.header", lang), f"<b>{_short(p.get('deal_title'))}</b>"]
    lines += _essentials(p, lang, tz)
    if p.get("declined_by"):
        lines.append(
            t(
                "tasks.card.declined",
                lang,
                name=escape(str(p["declined_by"])),
                reason=escape(str(p.get("decline_reason") or "")),
            )
        )
    measurers = p.get("measurers") or []
    lines.append("")
    lines.append(t("tasks.assign.choose", lang) if measurers else t("tasks.assign.nobody", lang))
    rows: Buttons = []
    assert item.task_id is not None
    for mid, name, load in measurers:
        rows.append(
            [
                _btn(
                    t("tasks.assign.measurer", lang, name=str(name), load=int(load)),
                    AssignCb(task_id=item.task_id, measurer_id=int(mid)),
                )
            ]
        )
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
    elif kind in (Kind.INSTALLMENT_UPCOMING, Kind.INSTALLMENT_OVERDUE, Kind.INSTALLMENT_PAID):
        lines = [_installment_line(item, lang)]
        rows = _installment_buttons(item, lang)
    elif kind == Kind.SUMMARY_MORNING:
        lines, rows = _summary(item, lang)
    elif kind in (Kind.DIGEST_DAILY, Kind.DIGEST_WEEKLY):
        lines = digest_lines(p, lang, tz)
        rows = [[_btn(t("menu.funnel", lang), MenuCb(action=MenuAction.FUNNEL))]]
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
            amount=_money(p.get("amount"), lang),
            date=_day(p.get("due_date")),
            deal=deal,
        )
    if item.kind == Kind.INSTALLMENT_OVERDUE:
        return t(
            "installments.overdue",
            lang,
            n=p.get("n"),
            amount=_money(p.get("amount"), lang),
            date=_day(p.get("due_date")),
            days=p.get("days"),
            deal=deal,
            manager=escape(str(p.get("manager") or "—")),
        )
    return t("installments.paid", lang, deal=deal, amount=_money(p.get("total"), lang))


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


def _summary(item: OutboxItem, lang: str) -> tuple[list[str], Buttons]:
    p = item.payload
    lines = [t("tasks.summary.header", lang, date=_day(p.get("date")))]
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
