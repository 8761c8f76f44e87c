"""Inline keyboards built from service DTOs and the actor's roles."""

from __future__ import annotations

from collections.abc import Sequence

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from handlers.ui.callbacks import (
    DealAction,
    DealCb,
    InstallmentAction,
    InstallmentCb,
    Lang,
    LangCb,
    ListCb,
    MenuAction,
    MenuCb,
)
from handlers.ui.i18n import t
from handlers.ui.render import list_button, short
from services.dto import DealCard, DealListItem, Page, StageInfo
from services.permissions import Actor
from storage.enums import Role

# Quick next-contact choices for Defer (services.dates.QuickChoice values; index = arg).
DEFER_CHOICES = ("tm", "3d", "nw", "1m")


def button(text: str, cb: object) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=cb.pack())  # type: ignore[attr-defined]


def main_menu(actor: Actor, lang: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    sales = actor.has(Role.MANAGER, Role.LEADER, Role.ADMIN)
    if sales:
        kb.add(button(t("menu.new_lead", lang), MenuCb(action=MenuAction.NEW_LEAD)))
        kb.add(button(t("menu.my_deals", lang), MenuCb(action=MenuAction.MY_DEALS)))
    kb.add(button(t("menu.tasks", lang), MenuCb(action=MenuAction.TASKS)))
    if sales:
        kb.add(button(t("menu.search", lang), MenuCb(action=MenuAction.SEARCH)))
        kb.add(button(t("menu.funnel", lang), MenuCb(action=MenuAction.FUNNEL)))
    if actor.has(Role.ADMIN):
        kb.add(button(t("menu.team", lang), MenuCb(action=MenuAction.TEAM)))
        kb.add(button(t("menu.invite", lang), MenuCb(action=MenuAction.INVITE)))
    kb.add(button(t("menu.lang", lang), MenuCb(action=MenuAction.LANG)))
    kb.adjust(2)
    return kb.as_markup()


def languages() -> InlineKeyboardMarkup:
    # Each language's name is shown in that language (lang.name.* is the same in every catalog).
    row = [button(t(f"lang.name.{code}", code), LangCb(lang=code)) for code in Lang]
    return InlineKeyboardMarkup(inline_keyboard=[row])


def _cb(card: DealCard, action: DealAction, arg: int = 0) -> DealCb:
    return DealCb(action=action, deal_id=card.id, v=card.version, arg=arg)


def deal_card(card: DealCard, lang: str) -> InlineKeyboardMarkup:
    rows: list[list[InlineKeyboardButton]] = []
    moving = card.may_move
    if moving and not card.closed:
        nav = []
        if card.prev_stage is not None:
            nav.append(
                button(f"◀ {short(card.prev_stage.label(lang), 18)}", _cb(card, DealAction.BACK))
            )
        if card.next_stage is not None:
            nav.append(
                button(f"{short(card.next_stage.label(lang), 22)} ▶", _cb(card, DealAction.NEXT))
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
    if card.may_edit:
        row.insert(0, button(t("deal.btn.note", lang), _cb(card, DealAction.NOTE)))
    rows.append(row)
    if card.may_reassign:
        rows.append([button(t("deal.btn.reassign", lang), _cb(card, DealAction.REASSIGN))])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def _installment_rows(card: DealCard, lang: str) -> list[list[InlineKeyboardButton]]:
    """At the last active stage: "Won with installments" beside the plain move to Won; on an
    Installment control deal: "Record a payment" (handlers/tasks/router.py)."""
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


def history_pager(card: DealCard, page: int, pages: int, lang: str) -> InlineKeyboardMarkup:
    nav = []
    if page > 0:
        nav.append(button("◀", _cb(card, DealAction.HISTORY, page - 1)))
    if page + 1 < pages:
        nav.append(button("▶", _cb(card, DealAction.HISTORY, page + 1)))
    rows = [nav] if nav else []
    rows.append(back_to_card(card, lang))
    return InlineKeyboardMarkup(inline_keyboard=rows)


def managers(card: DealCard, people: Sequence[tuple[int, str]], lang: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for emp_id, name in people:
        if emp_id != card.manager_id:
            kb.add(button(name, _cb(card, DealAction.REASSIGN_TO, emp_id)))
    kb.adjust(2)
    kb.row(*back_to_card(card, lang))
    return kb.as_markup()


def deal_list(
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
            kb.add(button(mark + short(label, 20), ListCb(page=0, pipeline_id=pid)))
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
                    mark + short(s.label(lang), 18),
                    ListCb(page=0, pipeline_id=pipeline_id, stage_id=s.id),
                )
            )
    kb.adjust(2)
    return kb.export()
