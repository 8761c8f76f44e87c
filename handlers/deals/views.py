"""The deal card's sub-menus (stages, loss reasons, deferral, reassignment, history, files) and
the deal lists: texts (HTML) and keyboards from service DTOs. Lines stay short for a phone.
The card itself is handlers/ui/deal_card.py (other areas and the error router draw it too)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import tzinfo
from html import escape

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from handlers.ui import fmt, timeline
from handlers.ui.callbacks import DealAction, DealCb, ListCb, TimelineSubject
from handlers.ui.deal_card import back_to_card, card_cb, list_button
from handlers.ui.i18n import t
from handlers.ui.keyboards import button
from services.clients.invites import InviteInfo
from services.dto import DealCard, DealListItem, FileItem, Page, StageInfo, TimelinePage
from services.work.measurement import SLOT_HOURS, SlotDay

# Quick next-contact choices for Defer (services.dates.QuickChoice values; index = arg).
DEFER_CHOICES = ("tm", "3d", "nw", "1m")


# --- texts ----------------------------------------------------------------------------------


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


# --- keyboards ------------------------------------------------------------------------------


def stages(card: DealCard, lang: str) -> InlineKeyboardMarkup:
    rows = [
        [
            button(
                ("• " if s.id == card.stage.id else "") + s.label(lang),
                card_cb(card, DealAction.TO_STAGE, s.id),
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
        kb.add(button(label, card_cb(card, DealAction.REASON, reason_id)))
    kb.adjust(2)
    kb.row(*back_to_card(card, lang))
    return kb.as_markup()


def defer_choices(card: DealCard, lang: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for i, key in enumerate(DEFER_CHOICES):
        kb.add(button(t(f"when.{key}", lang), card_cb(card, DealAction.DEFER_QUICK, i)))
    kb.adjust(2)
    kb.row(button(t("when.type", lang), card_cb(card, DealAction.DEFER_TYPE)))
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
            [button(t("deal.files.more", lang), card_cb(card, DealAction.FILES, page.page + 1))]
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
            kb.add(button(name, card_cb(card, DealAction.REASSIGN_TO, emp_id)))
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


def measurement_slots(
    days: Sequence[SlotDay], cb: DealCb, lang: str
) -> tuple[str, InlineKeyboardMarkup]:
    """The measurement date's quick buttons: a row per working day, a button per slot
    time; above them, each measurer's load that day."""
    lines = [t("edit.slots.head", lang)]
    rows = []
    for d in days:
        loads = " · ".join(f"{escape(m.name)} {m.load}" for m in d.loads)
        lines.append(
            f"{fmt.said_day(d.day, lang)}: {loads}" if loads else fmt.said_day(d.day, lang)
        )
        weekday = fmt.said_day(d.day, lang).split(",")[0]
        rows.append(
            [
                button(
                    f"{weekday} {fmt.time_of(hour, lang)}",
                    DealCb(
                        action=DealAction.FIELD_QUICK,
                        deal_id=cb.deal_id,
                        v=cb.v,
                        arg=d.offset * 10 + i,
                    ),
                )
                for i, hour in enumerate(SLOT_HOURS)
            ]
        )
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


# --- the client's invite (issue 25) ---------------------------------------------------------


def client_invite_text(invite: InviteInfo, link: str, lang: str, tz: tzinfo) -> str:
    """The photo's caption under the QR code: whose link, the link, until when."""
    return t(
        "client.invite.link",
        lang,
        name=escape(invite.contact_name),
        link=escape(link),
        expires=fmt.when(invite.expires_at, tz, lang),
    )


def qr_png(text: str) -> bytes:
    """A QR code of `text` as PNG: black on white, a quiet zone of four modules, large
    enough to print on a contract (segno, pure Python; loaded on first use)."""
    import segno

    out = io.BytesIO()
    segno.make(text, error="m", micro=False).save(out, kind="png", scale=10, border=4)
    return out.getvalue()
