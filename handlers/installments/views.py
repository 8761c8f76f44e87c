"""Texts (HTML) and keyboards of installments: the plan choice under a deal being won, a
plan's summary with its dues, the payment prompt, and /receivables.

Built from service DTOs (services.work.installments.*). Lines stay short: read on a phone.
"""

from __future__ import annotations

from html import escape

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from handlers.ui import fmt
from handlers.ui.callbacks import DealAction, DealCb, InstallmentAction, InstallmentCb
from handlers.ui.deal_card import back_to_card, open_button
from handlers.ui.fmt import money, short
from handlers.ui.i18n import t
from handlers.ui.keyboards import button
from services.dto import DealCard
from services.work.installments import InstallmentSummary, Receivables

LINE = 40  # /receivables: characters a line at most
PLAN_COUNTS = (2, 3, 4, 6, 12)
MAX_LISTED = 20


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
                date=fmt.day(d.due_date, lang),
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
    rows.append([open_button(s.deal_id, lang)])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def payment_prompt(s: InstallmentSummary, lang: str) -> str:
    """ "Amount [date]?" with what is left, and the next due."""
    nxt = s.next_due
    text = t("installments.ask.payment", lang, remaining=money(s.remaining, lang))
    if nxt is not None:
        text += "\n" + t(
            "installments.next",
            lang,
            amount=money(nxt.remaining, lang),
            date=fmt.day(nxt.due_date, lang),
        )
    return text


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
            lines.append(_fit(t("receivables.row.next", lang, date=fmt.day(row.next_due, lang))))
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
