"""The new-lead wizard's prompts and the lead card's loss-reason menu (the card itself is
handlers/ui/lead_card.py: the error router redraws it too).

Texts come from t() (handlers/locales/*/leads.po); everything a person typed is escaped
(the bot speaks HTML). The wizard's state is a plain dict kept in the FSM storage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, ReplyKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from handlers.ui import fmt
from handlers.ui.callbacks import (
    LeadAction,
    WizardAction,
    WizardCb,
)
from handlers.ui.i18n import t
from handlers.ui.keyboards import button
from handlers.ui.lead_card import lead_cb
from services import validation
from services.dto import LeadCard
from services.errors import ValidationError
from storage.enums import LeadSource

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup
Data = Mapping[str, Any]

SOURCES: tuple[LeadSource, ...] = tuple(LeadSource)
"""WizardCb(SOURCE).value is an index into this tuple."""
# import is a file upload; Telegram leads come from the managers' business chats
OFFERED_SOURCES = tuple(s for s in SOURCES if s not in (LeadSource.IMPORT, LeadSource.TELEGRAM))


def _wb(text: str, action: WizardAction, value: int = 0) -> InlineKeyboardButton:
    return button(text, WizardCb(action=action, value=value))


def nav(lang: str) -> list[InlineKeyboardButton]:
    return [
        _wb(t("common.back", lang), WizardAction.BACK),
        _wb(t("common.cancel", lang), WizardAction.CANCEL),
    ]


def contact_value(data: Data) -> str | None:
    return data.get("phone") or data.get("email")


def amount_text(data: Data, lang: str) -> str:
    raw = data.get("amount")
    if not raw:
        return "—"
    try:
        return fmt.money(validation.amount(raw), lang)
    except ValidationError:  # validated when typed; a tampered store shows it as is
        return escape(str(raw))


def _current(value: str | None, lang: str) -> str:
    return "\n" + t("lead.wizard.current", lang, value=value) if value else ""


def _markup(rows: list[list[InlineKeyboardButton]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=rows)


def _keep_row(data: Data, step: str, lang: str) -> list[list[InlineKeyboardButton]]:
    if data.get(step):
        return [[_wb(t("lead.wizard.keep", lang), WizardAction.KEEP)]]
    return []


def contact_line(data: Data, lang: str) -> str:
    """What the wizard holds from the phone step (said when that step's keyboard goes)."""
    if data.get("email"):
        return f"✉️ {escape(data['email'])}"
    return f"📞 {fmt.phone(data.get('phone'))}"


def prompt(step: str, data: Data, lang: str) -> tuple[str, Markup]:
    """The question of one wizard step and its keyboard."""
    if step == "source":
        text = t("lead.wizard.ask_source", lang)
        if data.get("auto"):
            text = (
                t(
                    "lead.wizard.from_contact",
                    lang,
                    name=escape(data.get("name") or "—"),
                    contact=escape(contact_value(data) or "—"),
                )
                + "\n\n"
                + text
            )
        kb = InlineKeyboardBuilder()
        for source in OFFERED_SOURCES:
            mark = "• " if data.get("source") == source else ""
            label = mark + t(f"source.{source}", lang)
            kb.add(_wb(label, WizardAction.SOURCE, SOURCES.index(source)))
        kb.adjust(2)
        kb.row(*nav(lang))
        return text, kb.as_markup()
    if step == "name":
        # a company's client is its contact person: asked as such, with the company's name
        if data.get("legal"):
            company = escape(data.get("company") or "—")
            text = t("lead.wizard.ask_contact_person", lang, company=company)
        else:
            text = t("lead.wizard.ask_name", lang)
        text += _current(escape(data.get("name") or ""), lang)
        return text, _markup([*_keep_row(data, "name", lang), nav(lang)])
    if step == "phone":
        value = contact_value(data)
        text = t("lead.wizard.ask_phone", lang) + _current(escape(value or ""), lang)
        keep = [[_wb(t("lead.wizard.keep", lang), WizardAction.KEEP)]] if value else []
        return text, _markup([*keep, nav(lang)])
    if step == "legal":
        legal = data.get("legal")
        person = ("• " if legal is False else "") + t("lead.wizard.person", lang)
        company = ("• " if legal else "") + t("lead.wizard.legal", lang)
        return t("lead.wizard.ask_legal", lang), _markup(
            [
                [_wb(person, WizardAction.LEGAL, 0), _wb(company, WizardAction.LEGAL, 1)],
                nav(lang),
            ]
        )
    if step == "company":
        text = t("lead.wizard.ask_company", lang) + _current(
            escape(data.get("company") or ""), lang
        )
        return text, _markup([*_keep_row(data, "company", lang), nav(lang)])
    if step in ("need", "amount"):
        shown = escape(fmt.short(data.get("need") or "", 300)) if step == "need" else None
        if step == "amount" and data.get("amount"):
            shown = amount_text(data, lang)
        text = t(f"lead.wizard.ask_{step}", lang) + _current(shown, lang)
        row = [_wb(t("common.skip", lang), WizardAction.SKIP)]
        if data.get(step):
            row.insert(0, _wb(t("lead.wizard.keep", lang), WizardAction.KEEP))
        return text, _markup([row, nav(lang)])
    if step == "confirm":
        return summary(data, lang), _markup(
            [[_wb(t("lead.wizard.create", lang), WizardAction.CONFIRM)], nav(lang)]
        )
    if step == "duplicate":
        return duplicates(data, lang)
    raise ValueError(f"unknown wizard step {step!r}")


def summary(data: Data, lang: str) -> str:
    lines = [t("lead.wizard.confirm", lang), ""]
    if data.get("legal"):
        lines.append(f"🏢 <b>{escape(data.get('company') or '—')}</b>")
        lines.append(t("lead.card.contact_person", lang, name=escape(data.get("name") or "—")))
    else:
        lines.append(f"👤 <b>{escape(data.get('name') or '—')}</b>")
    source = data.get("source") or LeadSource.MANUAL
    lines.append(t("lead.card.source", lang, source=t(f"source.{source}", lang)))
    if data.get("phone"):
        lines.append(f"📞 {fmt.phone(data['phone'])}")
    if data.get("email"):
        lines.append(f"✉️ {escape(data['email'])}")
    if data.get("need"):
        lines.append(f"🔎 {escape(fmt.short(data['need'], 300))}")
    lines.append(f"💰 {amount_text(data, lang)}")
    return "\n".join(lines)


def duplicates(data: Data, lang: str) -> tuple[str, InlineKeyboardMarkup]:
    """The existing leads/deals of this phone or email, offered instead of a new lead."""
    shown = escape(data["email"]) if data.get("email") else fmt.phone(data.get("phone"))
    lines = [t("lead.dup.title", lang, contact=shown), ""]
    rows: list[list[InlineKeyboardButton]] = []
    for kind, ident, name, stage in data.get("dups") or []:
        lines.append(
            t(
                f"lead.dup.{kind}",
                lang,
                id=ident,
                name=escape(fmt.short(name, 60)),
                stage=escape(stage),
            )
        )
        action = WizardAction.OPEN_LEAD if kind == "lead" else WizardAction.OPEN_DEAL
        rows.append([_wb(t(f"lead.dup.open_{kind}", lang, id=ident), action, ident)])
    lines += ["", t("lead.dup.hint", lang)]
    rows.append([_wb(t("lead.dup.force", lang), WizardAction.FORCE)])
    rows.append(nav(lang))
    return "\n".join(lines), _markup(rows)


# --- the lead card's sub-menu (the card itself: handlers/ui/lead_card.py) ---------------


def reasons(
    card: LeadCard, items: Sequence[tuple[int, str, bool]], lang: str
) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for reason_id, label, _conditional in items:
        kb.add(button(fmt.short(label, 30), lead_cb(card, LeadAction.REASON, reason_id)))
    kb.adjust(2)
    kb.row(button(t("common.back", lang), lead_cb(card, LeadAction.OPEN)))
    return kb.as_markup()
