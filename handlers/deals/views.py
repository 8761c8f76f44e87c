"""The deal card, its sub-menus (stages, loss reasons, deferral, reassignment, history) and the
deal lists: texts (HTML) and keyboards from service DTOs. Lines stay short for a phone."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo
from html import escape

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from handlers.ui import fmt, timeline
from handlers.ui.callbacks import (
    DealAction,
    DealCb,
    InstallmentAction,
    InstallmentCb,
    ListCb,
    TimelineSubject,
)
from handlers.ui.i18n import t
from handlers.ui.keyboards import button
from services.dto import DealCard, DealListItem, FileItem, Page, StageInfo, TimelinePage

# Quick next-contact choices for Defer (services.dates.QuickChoice values; index = arg).
DEFER_CHOICES = ("tm", "3d", "nw", "1m")


# --- texts ----------------------------------------------------------------------------------


def progress(card: DealCard) -> str:
    """▰▰▱▱▱ over the pipeline's active flow (frozen/closed stages show no bar)."""
    flow = [s for s in card.pipeline.stages if s.kind == "active"]
    if card.stage.kind != "active" or not flow:
        return ""
    pos = next((i for i, s in enumerate(flow) if s.id == card.stage.id), 0)
    return "▰" * (pos + 1) + "▱" * (len(flow) - pos - 1) + f" {pos + 1}/{len(flow)}"


def card_text(card: DealCard, lang: str, tz: tzinfo, notice: str | None = None) -> str:
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
    lines.append(f"💰 {fmt.money(card.amount, lang)}")
    lines.append(f"🧭 {escape(card.pipeline.label(lang))}: <b>{escape(card.stage.label(lang))}</b>")
    bar = progress(card)
    if bar:
        lines.append(bar)
    if card.stale_days is not None:
        lines.append(t("deal.card.stale", lang, days=card.stale_days))
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
                when=fmt.when(card.measurement_at, tz),
                address=escape(card.address or "—"),
            )
        )
    if card.next_contact_at:
        lines.append(t("deal.card.next_contact", lang, when=fmt.when(card.next_contact_at, tz)))
    if card.need:
        lines.append(f"🔎 {escape(card.need[:300])}")
    lines.append(
        t(
            "deal.card.counts",
            lang,
            files=card.files,
            messages=card.messages,
            tasks=card.open_tasks,
        )
    )
    if card.notes:
        lines.append("")
        lines += [timeline.line(e, lang, tz, width=160) for e in card.notes]
    return "\n".join(lines)


def list_text(page: Page[DealListItem], lang: str, heading: str) -> str:
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


def list_button(item: DealListItem, lang: str) -> str:
    stage = item.stage_en if lang == "en" and item.stage_en else item.stage
    mark = "🔴 " if item.stale_days is not None else ""
    return fmt.short(f"{mark}{item.title} · {stage}", 60)


# --- keyboards ------------------------------------------------------------------------------


def _cb(card: DealCard, action: DealAction, arg: int = 0) -> DealCb:
    return DealCb(action=action, deal_id=card.id, v=card.version, arg=arg)


def card_keyboard(card: DealCard, lang: str) -> InlineKeyboardMarkup:
    rows: list[list[InlineKeyboardButton]] = []
    moving = card.may_move
    if moving and not card.closed:
        nav = []
        if card.prev_stage is not None:
            nav.append(
                button(
                    f"◀ {fmt.short(card.prev_stage.label(lang), 18)}", _cb(card, DealAction.BACK)
                )
            )
        if card.next_stage is not None:
            nav.append(
                button(
                    f"{fmt.short(card.next_stage.label(lang), 22)} ▶", _cb(card, DealAction.NEXT)
                )
            )
        if nav:
            rows.append(nav)
        rows += _installment_rows(card, lang)
        if card.can_choose_stage:
            rows.append([button(t("deal.btn.choose", lang), _cb(card, DealAction.CHOOSE))])
        extra = []
        if card.can_reopen:
            extra.append(button(t("deal.btn.reopen", lang), _cb(card, DealAction.REOPEN)))
        if card.can_return_to_sales:
            extra.append(button(t("deal.btn.return", lang), _cb(card, DealAction.RETURN)))
        if extra:
            rows.append(extra)
        rows.append(
            [
                button(t("deal.btn.lose", lang), _cb(card, DealAction.LOSE)),
                button(t("deal.btn.defer", lang), _cb(card, DealAction.DEFER)),
            ]
        )
        if card.may_edit:
            rows.append(
                [button(t("deal.btn.next_contact", lang), _cb(card, DealAction.NEXT_CONTACT))]
            )
    elif moving and card.can_reopen:
        rows.append([button(t("deal.btn.reopen", lang), _cb(card, DealAction.REOPEN))])
    row = [button(t("deal.btn.history", lang), _cb(card, DealAction.HISTORY))]
    if card.files:
        row.append(button(t("deal.btn.files", lang), _cb(card, DealAction.FILES)))
    if card.may_edit:
        row.insert(0, button(t("deal.btn.note", lang), _cb(card, DealAction.NOTE)))
        rows.append(row)
        row = [button(t("deal.btn.call", lang), _cb(card, DealAction.CALL))]
        if card.messages and card.may_reply:
            row.append(button(t("deal.btn.reply", lang), _cb(card, DealAction.REPLY)))
            row.append(button(t("deal.btn.exclude_chat", lang), _cb(card, DealAction.EXCLUDE_CHAT)))
    rows.append(row)
    if card.may_reassign:
        rows.append([button(t("deal.btn.reassign", lang), _cb(card, DealAction.REASSIGN))])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def _installment_rows(card: DealCard, lang: str) -> list[list[InlineKeyboardButton]]:
    """At the last active stage: "Won with installments" beside the plain move to Won; on an
    Installment control deal: "Record a payment" (handlers/installments/router.py)."""
    if card.pipeline.role == "installments":
        cb = InstallmentCb(action=InstallmentAction.PAY, deal_id=card.id, v=card.version)
        return [[button(t("installments.btn.pay", lang), cb)]]
    if card.next_stage is not None and card.next_stage.kind == "won":
        cb = InstallmentCb(action=InstallmentAction.WIN, deal_id=card.id, v=card.version)
        return [[button(t("installments.btn.win", lang), cb)]]
    return []


def back_to_card(card: DealCard, lang: str) -> list[InlineKeyboardButton]:
    return [button(t("common.back", lang), _cb(card, DealAction.OPEN))]


def stages(card: DealCard, lang: str) -> InlineKeyboardMarkup:
    rows = [
        [
            button(
                ("• " if s.id == card.stage.id else "") + s.label(lang),
                _cb(card, DealAction.TO_STAGE, s.id),
            )
        ]
        for s in card.pipeline.stages
        if s.kind in ("active", "won") and s.id != card.stage.id
    ]
    rows.append(back_to_card(card, lang))
    return InlineKeyboardMarkup(inline_keyboard=rows)


def reasons(card: DealCard, items: Sequence[tuple[int, str]], lang: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for reason_id, label in items:
        kb.add(button(label, _cb(card, DealAction.REASON, reason_id)))
    kb.adjust(2)
    kb.row(*back_to_card(card, lang))
    return kb.as_markup()


def defer_choices(card: DealCard, lang: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for i, key in enumerate(DEFER_CHOICES):
        kb.add(button(t(f"when.{key}", lang), _cb(card, DealAction.DEFER_QUICK, i)))
    kb.adjust(2)
    kb.row(button(t("when.type", lang), _cb(card, DealAction.DEFER_TYPE)))
    kb.row(*back_to_card(card, lang))
    return kb.as_markup()


def history_markup(card: DealCard, page: TimelinePage, lang: str) -> InlineKeyboardMarkup:
    """The deal's history screen: filter buttons, older / newest, back to the card."""
    return timeline.page_keyboard(
        page, TimelineSubject.DEAL, card.id, lang, back_to_card(card, lang)
    )


def files_markup(card: DealCard, page: Page[FileItem], lang: str) -> InlineKeyboardMarkup:
    """Under a page of files: the next page (if any) and back to the card."""
    rows = []
    if page.page + 1 < page.pages:
        rows.append(
            [button(t("deal.files.more", lang), _cb(card, DealAction.FILES, page.page + 1))]
        )
    rows.append(back_to_card(card, lang))
    return InlineKeyboardMarkup(inline_keyboard=rows)


def files_text(card: DealCard, page: Page[FileItem], lang: str, per_page: int) -> str:
    first = page.page * per_page + 1
    return t(
        "deal.files.page",
        lang,
        title=escape(card.title),
        first=first,
        last=first + len(page.items) - 1,
        total=page.total,
    )


def managers(card: DealCard, people: Sequence[tuple[int, str]], lang: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for emp_id, name in people:
        if emp_id != card.manager_id:
            kb.add(button(name, _cb(card, DealAction.REASSIGN_TO, emp_id)))
    kb.adjust(2)
    kb.row(*back_to_card(card, lang))
    return kb.as_markup()


def list_keyboard(
    page: Page[DealListItem],
    lang: str,
    pipeline_id: int,
    stage_id: int,
    filters: Sequence[tuple[int, str]],
) -> InlineKeyboardMarkup:
    rows = [
        [button(list_button(item, lang), DealCb(action=DealAction.OPEN, deal_id=item.id))]
        for item in page.items
    ]
    nav = []
    if page.page > 0:
        nav.append(
            button("◀", ListCb(page=page.page - 1, pipeline_id=pipeline_id, stage_id=stage_id))
        )
    if page.page + 1 < page.pages:
        nav.append(
            button("▶", ListCb(page=page.page + 1, pipeline_id=pipeline_id, stage_id=stage_id))
        )
    if nav:
        rows.append(nav)
    if filters:
        kb = InlineKeyboardBuilder()
        for pid, label in filters:
            mark = "• " if pid == pipeline_id else ""
            kb.add(button(mark + fmt.short(label, 20), ListCb(page=0, pipeline_id=pid)))
        kb.adjust(2)
        rows.extend(kb.export())
    return InlineKeyboardMarkup(inline_keyboard=rows)


def stage_filter(
    stages_: Sequence[StageInfo], lang: str, pipeline_id: int, stage_id: int
) -> list[list[InlineKeyboardButton]]:
    kb = InlineKeyboardBuilder()
    for s in stages_:
        if s.kind == "active":
            mark = "• " if s.id == stage_id else ""
            kb.add(
                button(
                    mark + fmt.short(s.label(lang), 18),
                    ListCb(page=0, pipeline_id=pipeline_id, stage_id=s.id),
                )
            )
    kb.adjust(2)
    return kb.export()
