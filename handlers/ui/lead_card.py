"""The lead card: its text and keyboard, drawn here for the leads area and for the error
router (which redraws a stale card with a note)."""

from __future__ import annotations

from datetime import tzinfo
from html import escape

from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from handlers.ui import fmt, screen
from handlers.ui.callbacks import (
    DealAction,
    DealCb,
    LeadAction,
    LeadCb,
    TimelineCb,
    TimelineSubject,
)
from handlers.ui.context import Ctx
from handlers.ui.i18n import t
from handlers.ui.keyboards import button
from services.dto import LeadCard, label
from services.permissions import Actor
from services.sales import leads
from storage.enums import LeadStatus
from storage.uow import UnitOfWork

Menu = tuple[str, InlineKeyboardMarkup]


def _card_body(card: LeadCard, lang: str) -> str:
    company = card.company_name if card.is_legal_entity else None
    head = company or card.name  # a company's lead is the company's, with its contact person
    lines = [f"🧲 <b>{escape(head)}</b> · {t('lead.label', lang)} #{card.id}"]
    if company and card.name and card.name != company:
        lines.append(t("lead.card.contact_person", lang, name=escape(card.name)))
    lines.append(t("lead.card.source", lang, source=t(f"source.{card.source}", lang)))
    if card.phone:
        lines.append(f"📞 {fmt.phone(card.phone)}")
    if card.email:
        lines.append(f"✉️ {escape(card.email)}")
    if card.need:
        lines.append(f"🔎 {escape(card.need[:300])}")
    lines.append(f"💰 {fmt.money(card.amount, lang)}")
    lines.append(f"🧭 <b>{escape(card.stage.label(lang))}</b>")
    if card.manager_name:
        lines.append(t("deal.card.manager", lang, name=escape(card.manager_name)))
    if card.loss_reason:
        reason = label(lang, card.loss_reason, card.loss_reason_en)
        if card.loss_comment:
            reason += f": {card.loss_comment}"
        lines.append(t("deal.card.reason", lang, reason=escape(reason)))
    if card.qualification:
        lines.append("")
        lines.append(t("lead.card.qualification", lang))
        if card.status in (LeadStatus.NEW, LeadStatus.QUALIFYING):
            return "\n".join(lines)  # the questions are the buttons below: not listed twice
        for _code, text, text_en, required, yes in card.qualification:
            mark = "✅" if yes else "⬜"
            star = " *" if required else ""
            lines.append(f"{mark} {escape(label(lang, text, text_en))}{star}")
    return "\n".join(lines)


def card_text(card: LeadCard, lang: str, tz: tzinfo, notice: str | None = None) -> str:
    text = _card_body(card, lang)
    return f"<i>{escape(notice)}</i>\n\n{text}" if notice else text


def lead_cb(card: LeadCard, action: LeadAction, arg: int = 0) -> LeadCb:
    """A tap on this card (its version: a stale card is refused)."""
    return LeadCb(action=action, lead_id=card.id, v=card.version, arg=arg)


def _history(card: LeadCard, lang: str) -> list[InlineKeyboardButton]:
    """📜 History: the lead's timeline (handlers/deals/router.py `timeline_page`)."""
    cb = TimelineCb(subject=TimelineSubject.LEAD, subject_id=card.id)
    return [button(t("deal.btn.history", lang), cb)]


def card_keyboard(card: LeadCard, lang: str) -> InlineKeyboardMarkup | None:
    """The card's keyboard."""
    if card.status == LeadStatus.CONVERTED and card.deal_id:
        open_deal = button(
            t("lead.btn.open_deal", lang, id=card.deal_id),
            DealCb(action=DealAction.OPEN, deal_id=card.deal_id),
        )
        return InlineKeyboardMarkup(inline_keyboard=[[open_deal], _history(card, lang)])
    if card.status not in (LeadStatus.NEW, LeadStatus.QUALIFYING):
        return InlineKeyboardMarkup(inline_keyboard=[_history(card, lang)])
    rows = []
    for i, (_code, text, text_en, required, yes) in enumerate(card.qualification):
        star = " *" if required else ""
        mark = "✅" if yes else "⬜"
        name = label(lang, text, text_en)  # whole: a question is not cut
        rows.append([button(f"{mark} {name}{star}", lead_cb(card, LeadAction.TOGGLE, i))])
    rows.append(  # a call or a note logged: the lead's first touch (issue 26)
        [
            button(t("deal.btn.call", lang), lead_cb(card, LeadAction.CALL)),
            button(t("deal.btn.note", lang), lead_cb(card, LeadAction.NOTE)),
        ]
    )
    rows.append(
        [
            button(t("lead.btn.convert", lang), lead_cb(card, LeadAction.CONVERT)),
            button(t("lead.btn.disqualify", lang), lead_cb(card, LeadAction.DISQUALIFY)),
        ]
    )
    rows.append(
        [*_history(card, lang), button(t("edit.btn", lang), lead_cb(card, LeadAction.EDIT))]
    )
    return InlineKeyboardMarkup(inline_keyboard=rows)


async def drawn(
    uow: UnitOfWork, actor: Actor, lead_id: int, lang: str, tz: tzinfo, notice: str | None = None
) -> tuple[str, InlineKeyboardMarkup | None]:
    """The lead's current card, loaded (the actor's right checked) and drawn."""
    card = await leads.get_lead(uow, actor, lead_id)
    return card_text(card, lang, tz, notice), card_keyboard(card, lang)


async def send(message: Message, ctx: Ctx, card: LeadCard) -> None:
    """The card as a message of its own."""
    await message.answer(
        card_text(card, ctx.lang, ctx.tz), reply_markup=card_keyboard(card, ctx.lang)
    )


async def show(query: CallbackQuery, ctx: Ctx, card: LeadCard, menu: Menu | None = None) -> None:
    """Edit the card message in place; `menu` (a question, its buttons) in place of the
    card's buttons."""
    notice, markup = menu or (None, card_keyboard(card, ctx.lang))
    await screen.edit(query, card_text(card, ctx.lang, ctx.tz, notice), markup)
