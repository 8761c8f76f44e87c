"""Texts of cards and lists (HTML), from service DTOs. Lines stay short for a phone."""

from __future__ import annotations

from datetime import datetime, tzinfo
from html import escape

from handlers.ui.i18n import t
from services.dto import DealCard, DealListItem, HistoryEntry, LeadCard, Page
from services.validation import format_amount


def when(value: datetime | None, tz: tzinfo) -> str:
    return value.astimezone(tz).strftime("%d.%m.%Y %H:%M") if value else "—"


def money(minor: int | None, lang: str) -> str:
    return t("common.money", lang, amount=format_amount(minor)) if minor is not None else "—"


def progress(card: DealCard) -> str:
    """▰▰▱▱▱ over the pipeline's active flow (frozen/closed stages show no bar)."""
    flow = [s for s in card.pipeline.stages if s.kind == "active"]
    if card.stage.kind != "active" or not flow:
        return ""
    pos = next((i for i, s in enumerate(flow) if s.id == card.stage.id), 0)
    return "▰" * (pos + 1) + "▱" * (len(flow) - pos - 1) + f" {pos + 1}/{len(flow)}"


def deal_card(card: DealCard, lang: str, tz: tzinfo, notice: str | None = None) -> str:
    lines = []
    if notice:
        lines += [f"<i>{escape(notice)}</i>", ""]
    lines.append(f"💼 <b>{escape(card.title)}</b> · #{card.id}")
    client = " · ".join(escape(x) for x in (card.contact_name, card.company_name) if x)
    if client:
        lines.append(f"👤 {client}")
    if card.phone:
        lines.append(f"📞 {card.phone}")
    if card.email:
        lines.append(f"✉️ {escape(card.email)}")
    lines.append(f"💰 {money(card.amount, lang)}")
    lines.append(f"🧭 {escape(card.pipeline.label(lang))}: <b>{escape(card.stage.label(lang))}</b>")
    bar = progress(card)
    if bar:
        lines.append(bar)
    if card.loss_reason:
        reason = card.loss_reason_en if lang == "en" and card.loss_reason_en else card.loss_reason
        lines.append(t("deal.card.reason", lang, reason=escape(reason)))
    if card.manager_name:
        lines.append(t("deal.card.manager", lang, name=escape(card.manager_name)))
    if card.measurement_at or card.address:
        lines.append(
            t(
                "deal.card.measurement",
                lang,
                when=when(card.measurement_at, tz),
                address=escape(card.address or "—"),
            )
        )
    if card.next_contact_at:
        lines.append(t("deal.card.next_contact", lang, when=when(card.next_contact_at, tz)))
    if card.need:
        lines.append(f"🔎 {escape(card.need[:300])}")
    if card.notes:
        lines.append("")
        for note in card.notes:
            author = f"{escape(note.author)}: " if note.author else ""
            lines.append(f"📝 <i>{when(note.at, tz)}</i> {author}{escape(note.text[:200])}")
    return "\n".join(lines)


def lead_card(card: LeadCard, lang: str, tz: tzinfo) -> str:
    lines = [f"🧲 <b>{escape(card.name)}</b> · {t('lead.label', lang)} #{card.id}"]
    lines.append(t("lead.card.source", lang, source=t(f"source.{card.source}", lang)))
    if card.phone:
        lines.append(f"📞 {card.phone}")
    if card.email:
        lines.append(f"✉️ {escape(card.email)}")
    if card.is_legal_entity and card.company_name:
        lines.append(f"🏢 {escape(card.company_name)}")
    if card.need:
        lines.append(f"🔎 {escape(card.need[:300])}")
    lines.append(f"💰 {money(card.amount, lang)}")
    lines.append(f"🧭 <b>{escape(card.stage.label(lang))}</b>")
    if card.manager_name:
        lines.append(t("deal.card.manager", lang, name=escape(card.manager_name)))
    if card.loss_reason:
        lines.append(t("deal.card.reason", lang, reason=escape(card.loss_reason)))
    if card.qualification:
        lines.append("")
        lines.append(t("lead.card.qualification", lang))
        for _code, text, text_en, required, yes in card.qualification:
            label = text_en if lang == "en" and text_en else text
            mark = "✅" if yes else "⬜"
            star = " *" if required else ""
            lines.append(f"{mark} {escape(label)}{star}")
    return "\n".join(lines)


def history(page: Page[HistoryEntry], lang: str, tz: tzinfo, title: str) -> str:
    lines = [
        t("deal.history.title", lang, title=escape(title), page=page.page + 1, pages=page.pages)
    ]
    for e in page.items:
        to = e.to_stage_en if lang == "en" and e.to_stage_en else e.to_stage
        line = f"<i>{when(e.at, tz)}</i> → <b>{escape(to)}</b>"
        if e.actor:
            line += f" · {escape(e.actor)}"
        lines.append(line)
        if e.reason:
            lines.append(f"   {escape(e.reason)}")
        if e.comment:
            lines.append(f"   <i>{escape(e.comment[:200])}</i>")
    return "\n".join(lines)


def deal_list(page: Page[DealListItem], lang: str, heading: str) -> str:
    if not page.items:
        return f"{heading}\n\n{t('deals.list.empty', lang)}"
    lines = [
        t(
            "deals.list.title",
            lang,
            heading=heading,
            page=page.page + 1,
            pages=page.pages,
            total=page.total,
        )
    ]
    return "\n".join(lines)


def short(text: str, width: int = 28) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def list_button(item: DealListItem, lang: str) -> str:
    stage = item.stage_en if lang == "en" and item.stage_en else item.stage
    return short(f"{item.title} · {stage}", 60)
