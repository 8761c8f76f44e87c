"""What a client reads (issue 25): their orders and one order's status and payment schedule,
from services/clients/views.py DTOs. Only what the DTO carries, which is only what a client
may see; in the client's language (a stage with no English client name reads as a plain
"in progress" to an English client, never in Russian)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from html import escape
from typing import Any

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from handlers.ui import fmt
from handlers.ui.callbacks import ClientAction, ClientCb
from handlers.ui.i18n import t
from handlers.ui.keyboards import button
from services.clients.views import ClientDeal, ClientSchedule, ClientStatus
from services.dto import label
from services.outbox.clients import CLIENT_MOMENTS


class _Value:
    """A deal's field in a client's text: a moment said in words ("Fri, December 11, 10:00
    AM"; ":day", or a moment at midnight, the day alone), anything else as it is (escaped);
    nothing: the dash."""

    def __init__(self, value: Any, moment: bool, lang: str, tz: tzinfo, now: datetime) -> None:
        self.value, self.moment, self.lang, self.tz, self.now = value, moment, lang, tz, now

    def __format__(self, spec: str) -> str:
        value = self.value
        if value is None or value == "":
            return fmt.NONE
        if not self.moment:
            return escape(str(value))
        if isinstance(value, str):  # an outbox payload carries moments as ISO strings
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                return fmt.NONE
        year = self.now.astimezone(self.tz).year
        local = value.astimezone(self.tz)
        if spec == "day" or (local.hour, local.minute) == (0, 0):
            return fmt.day_month(value, self.tz, self.lang, year)
        return fmt.said(value, self.tz, self.lang, self.now)


class _Fields(Mapping[str, _Value]):
    def __init__(self, values: Mapping[str, Any], lang: str, tz: tzinfo, now: datetime) -> None:
        self._items = {k: _Value(v, k in CLIENT_MOMENTS, lang, tz, now) for k, v in values.items()}
        self._none = _Value(None, False, lang, tz, now)

    def __getitem__(self, key: str) -> _Value:
        return self._items.get(key, self._none)

    def __iter__(self) -> Any:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


def fill(template: str, values: Mapping[str, Any], lang: str, tz: tzinfo, now: datetime) -> str:
    """A client's text from the pipelines file (a stage's `[client]` name or message) with
    the deal's fields (services/outbox/clients.CLIENT_FIELDS), as HTML; a field the deal
    does not have reads as a dash."""
    return escape(template, quote=False).format_map(_Fields(values, lang, tz, now))


def status(s: ClientStatus, lang: str, tz: tzinfo, now: datetime) -> str:
    """The stage in the client's words (HTML)."""
    template = label(lang, s.name or "", s.name_en, strict=True)
    if not template:
        return t(f"client.state.{s.state}", lang)
    return fill(template, s.values, lang, tz, now)


def _title(deal: ClientDeal, lang: str) -> str:
    return t("client.order.no", lang, id=deal.deal_id)


def _schedule_lines(sched: ClientSchedule, lang: str, tz: tzinfo, now: datetime) -> list[str]:
    year = now.astimezone(tz).year
    lines = [t("client.schedule.title", lang)]
    for d in sched.dues:
        mark = "✅" if d.remaining <= 0 else ("❗" if d.overdue else "▫️")
        when = fmt.day_month(d.due_date, tz, lang, year)
        line = t(
            "client.schedule.due", lang, mark=mark, date=when, amount=fmt.money(d.amount, lang)
        )
        if 0 < d.paid < d.amount:
            line += " · " + t("client.schedule.part_paid", lang, paid=fmt.money(d.paid, lang))
        lines.append(line)
    lines.append(
        t(
            "client.schedule.total",
            lang,
            paid=fmt.money(sched.paid, lang),
            total=fmt.money(sched.total, lang),
        )
    )
    nxt = sched.next_due
    if sched.overdue:
        lines.append(t("client.schedule.overdue", lang, amount=fmt.money(sched.overdue, lang)))
    elif nxt is not None:
        lines.append(
            t(
                "client.schedule.next",
                lang,
                date=fmt.day_month(nxt.due_date, tz, lang, year),
                amount=fmt.money(nxt.remaining, lang),
            )
        )
    return lines


def deal_text(deal: ClientDeal, lang: str, tz: tzinfo, now: datetime) -> str:
    """One order: its status, address, amount, manager's first name, payment schedule."""
    lines = [f"📦 <b>{_title(deal, lang)}</b>", status(deal.status, lang, tz, now)]
    if deal.address:
        lines.append(f"📍 {escape(deal.address)}")
    if deal.amount:
        lines.append(t("client.order.amount", lang, amount=fmt.money(deal.amount, lang)))
    if deal.manager:
        lines.append(t("client.order.manager", lang, name=escape(deal.manager)))
    for sched in deal.schedules:
        lines += ["", *_schedule_lines(sched, lang, tz, now)]
    return "\n".join(lines)


def orders_text(
    deals: Sequence[ClientDeal], first_name: str | None, lang: str, tz: tzinfo, now: datetime
) -> str:
    """The list: each order's number and status (its details behind its button)."""
    head = (
        t("client.hello", lang, name=escape(first_name))
        if first_name
        else t("client.orders.title", lang)
    )
    if not deals:
        return f"{head}\n\n{t('client.orders.empty', lang)}"
    lines = [head, ""]
    for deal in deals:
        lines.append(f"📦 <b>{_title(deal, lang)}</b> · {status(deal.status, lang, tz, now)}")
    return "\n".join(lines)


def orders_keyboard(deals: Sequence[ClientDeal], lang: str) -> InlineKeyboardMarkup:
    rows: list[list[InlineKeyboardButton]] = [
        [button(f"📦 {_title(d, lang)}", ClientCb(action=ClientAction.DEAL, deal_id=d.deal_id))]
        for d in deals
    ]
    rows.append([button(t("client.btn.orders", lang), ClientCb(action=ClientAction.ORDERS))])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def deal_keyboard(deal: ClientDeal, lang: str) -> InlineKeyboardMarkup:
    back = button(t("client.btn.orders", lang), ClientCb(action=ClientAction.ORDERS))
    return InlineKeyboardMarkup(inline_keyboard=[[back]])
