"""The deal card: its text and keyboard, and the helpers that redraw it.

Several areas show a deal's card (deals, followups, installments, leads after conversion,
tasks' "Open deal"), the error router redraws a stale one and the Mini App redraws the one in
the person's chat; all of them draw it here, so no area imports another.

- `card_text` / `card_keyboard`: the card from its DTO; `back_to_card`: a sub-menu's way
  back; `list_button`: a deal in a list; `open_button`: "Open deal" under other messages.
- `fresh` / `show` / `sub_menu`: a sub-menu on the card, refused when the card is stale.
- `ask_for_card` / `typed` / `replace_card`: a value typed for the card, then the card.
- `send_card` / `refresh_in_chat`: a card of its own, remembered (handlers/ui/cards.py) so a
  change made elsewhere redraws it; `drawn`: the current card, loaded and drawn.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from datetime import tzinfo
from html import escape
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from handlers.ui import cards, fmt, screen, timeline
from handlers.ui.callbacks import ClaimCb, DealAction, DealCb, InstallmentAction, InstallmentCb
from handlers.ui.context import Ctx
from handlers.ui.i18n import t
from handlers.ui.keyboards import button
from services.common import check_version
from services.dto import DealCard, DealListItem, label
from services.errors import ValidationError
from services.permissions import Actor
from services.sales import deals
from services.sales.pipeline_config import MEASURER
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

Markup = InlineKeyboardMarkup | Awaitable[InlineKeyboardMarkup]


# --- text -----------------------------------------------------------------------------------


def progress(card: DealCard) -> str:
    """▰▰▱▱▱ over the pipeline's active flow (frozen/closed stages show no bar)."""
    flow = [s for s in card.pipeline.stages if s.kind == "active"]
    if card.stage.kind != "active" or not flow:
        return ""
    pos = next((i for i, s in enumerate(flow) if s.id == card.stage.id), 0)
    return "▰" * (pos + 1) + "▱" * (len(flow) - pos - 1) + f" {pos + 1}/{len(flow)}"


def headline(card: DealCard) -> str | None:
    """The deal's title when it says more than the lines below it: a converted lead's title
    is "<client>: <need>", which the card shows as its own lines (each fact once)."""
    rest = card.title
    for fact in (card.company_name, card.contact_name, card.need):
        if fact:
            rest = rest.replace(fact, "")
    return card.title if rest.strip(" :·,-—") else None


def order_lines(card: DealCard, lang: str, tz: tzinfo) -> list[str]:
    """An order's dates and items, and the deals linked to this one (issue 24)."""
    lines = []
    if card.production_at:
        lines.append(t("deal.card.production", lang, when=fmt.when(card.production_at, tz, lang)))
    if card.delivery_at:
        lines.append(t("deal.card.delivery", lang, when=fmt.when(card.delivery_at, tz, lang)))
    if card.expected_close_at:  # an open sale (issue 26): typed, else the stage's rule
        key = "deal.card.close" if card.expected_close_typed else "deal.card.close.rule"
        day = fmt.day_words(card.expected_close_at.astimezone(tz).date(), lang)
        lines.append(t(key, lang, day=day))
    if card.items:
        lines.append(t("deal.card.items", lang, items=escape("; ".join(card.items))))
    if card.owed:
        lines.append(t("deal.card.owed", lang, amount=fmt.money(card.owed, lang)))
    return lines


def card_text(card: DealCard, lang: str, tz: tzinfo, notice: str | None = None) -> str:
    lines = []
    if notice:
        lines += [f"<i>{escape(notice)}</i>", ""]
    # The headline: the title when it says more, else the client (each fact once).
    company, contact = card.company_name, card.contact_name
    title = headline(card) or company or contact or card.title
    lines.append(f"💼 <b>{escape(title)}</b> · {t('deal.no', lang, id=card.id)}")
    if company and company != title:
        lines.append(f"🏢 {escape(company)}")
    if contact and contact not in (company, title):
        lines.append(f"👤 {escape(contact)}")
    if card.phone:
        lines.append(f"📞 {fmt.phone(card.phone)}")
    if card.email:
        lines.append(f"✉️ {escape(card.email)}")
    lines.append(f"💰 {fmt.money(card.amount, lang)}")
    lines.append(f"🧭 {escape(card.pipeline.label(lang))}: <b>{escape(card.stage.label(lang))}</b>")
    bar = progress(card)
    if bar:
        lines.append(bar)
    if card.stale_days is not None:
        lines.append(t("deal.card.stale", lang, days=card.stale_days))
    if card.may_move and not card.closed and waits_for_measurer(card):
        lines.append(t("deal.card.waits_for_measurer", lang))
    if card.loss_reason:
        reason = label(lang, card.loss_reason, card.loss_reason_en)
        if card.loss_comment:
            reason += f": {card.loss_comment}"
        lines.append(t("deal.card.reason", lang, reason=escape(reason)))
    if card.manager_name:
        lines.append(t("deal.card.manager", lang, name=escape(card.manager_name)))
    if card.measurement_at or card.address:
        lines.append(
            t(
                "deal.card.measurement",
                lang,
                when=fmt.when(card.measurement_at, tz, lang),
                address=escape(card.address or "—"),
            )
        )
    if card.next_contact_at:
        lines.append(
            t("deal.card.next_contact", lang, when=fmt.when(card.next_contact_at, tz, lang))
        )
    if card.need:
        lines.append(f"🔎 {escape(card.need[:300])}")
    lines += order_lines(card, lang, tz)
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


def list_button(item: DealListItem, lang: str) -> str:
    stage = label(lang, item.stage, item.stage_en)
    mark = "🔴 " if item.stale_days is not None else ""
    return fmt.short(f"{mark}{item.title} · {stage}", 60)


def waits_for_measurer(card: DealCard) -> bool:
    """The next stage needs an assigned measurer and the deal has none: its button is not
    offered (the head of measurers' assignment moves the deal); the card says so."""
    nxt = card.next_stage
    return nxt is not None and MEASURER in nxt.required_fields and card.measurer_id is None


# --- keyboard -------------------------------------------------------------------------------


def card_cb(card: DealCard, action: DealAction, arg: int = 0) -> DealCb:
    """A tap on this card (its version: a stale card is refused)."""
    return DealCb(action=action, deal_id=card.id, v=card.version, arg=arg)


def card_keyboard(card: DealCard, lang: str) -> InlineKeyboardMarkup:
    rows: list[list[InlineKeyboardButton]] = []
    moving = card.may_move
    if moving and not card.closed:
        nav = []
        if card.prev_stage is not None:
            nav.append(
                button(
                    f"◀ {fmt.short(card.prev_stage.label(lang), 18)}",
                    card_cb(card, DealAction.BACK),
                )
            )
        if card.next_stage is not None and not waits_for_measurer(card):
            nav.append(
                button(
                    f"{fmt.short(card.next_stage.label(lang), 22)} ▶",
                    card_cb(card, DealAction.NEXT),
                )
            )
        if nav:
            rows.append(nav)
        rows += _installment_rows(card, lang)
        if card.can_choose_stage:
            rows.append([button(t("deal.btn.choose", lang), card_cb(card, DealAction.CHOOSE))])
        extra = []
        if card.can_reopen:
            extra.append(button(t("deal.btn.reopen", lang), card_cb(card, DealAction.REOPEN)))
        if card.can_return_to_sales:
            extra.append(button(t("deal.btn.return", lang), card_cb(card, DealAction.RETURN)))
        if extra:
            rows.append(extra)
        rows.append(
            [
                button(t("deal.btn.lose", lang), card_cb(card, DealAction.LOSE)),
                button(t("deal.btn.defer", lang), card_cb(card, DealAction.DEFER)),
            ]
        )
        if card.may_edit:
            rows.append(
                [button(t("deal.btn.next_contact", lang), card_cb(card, DealAction.NEXT_CONTACT))]
            )
    elif moving and card.can_reopen:
        rows.append([button(t("deal.btn.reopen", lang), card_cb(card, DealAction.REOPEN))])
    row = [button(t("deal.btn.history", lang), card_cb(card, DealAction.HISTORY))]
    if card.files:
        row.append(button(t("deal.btn.files", lang), card_cb(card, DealAction.FILES)))
    if card.may_edit:
        row.insert(0, button(t("deal.btn.note", lang), card_cb(card, DealAction.NOTE)))
        rows.append(row)
        edit_row = [button(t("edit.btn", lang), card_cb(card, DealAction.EDIT))]
        if card.contact_name is not None:  # the client's own Telegram (issue 25)
            edit_row.append(
                button(t("deal.btn.invite_client", lang), card_cb(card, DealAction.INVITE_CLIENT))
            )
        rows.append(edit_row)
        row = [button(t("deal.btn.call", lang), card_cb(card, DealAction.CALL))]
        if card.messages and card.may_reply:
            row.append(button(t("deal.btn.reply", lang), card_cb(card, DealAction.REPLY)))
            row.append(
                button(t("deal.btn.exclude_chat", lang), card_cb(card, DealAction.EXCLUDE_CHAT))
            )
    rows.append(row)
    if card.pipeline.role == "fulfilment" and card.stage.kind == "won" and card.may_edit:
        rows.append([button(t("deal.btn.claim", lang), ClaimCb(deal_id=card.id))])
    for link in card.links:  # the order of a sale, the sale of an order, a claim
        name = label(lang, link.pipeline, link.pipeline_en)
        rows.append([open_button(link.deal_id, lang, f"🔗 {name} #{link.deal_id}")])
    if card.may_reassign:
        rows.append([button(t("deal.btn.reassign", lang), card_cb(card, DealAction.REASSIGN))])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def _installment_rows(card: DealCard, lang: str) -> list[list[InlineKeyboardButton]]:
    """At the last active stage: "Won with installments" beside the plain move to Won; on an
    Installment control deal: "Record a payment" (handlers/installments/router.py)."""
    if card.pipeline.role == "installments" or card.owed:
        cb = InstallmentCb(action=InstallmentAction.PAY, deal_id=card.id, v=card.version)
        return [[button(t("installments.btn.pay", lang), cb)]]
    after_sale = card.pipeline.role in ("fulfilment", "claims")  # an order is not sold twice
    if not after_sale and card.next_stage is not None and card.next_stage.kind == "won":
        cb = InstallmentCb(action=InstallmentAction.WIN, deal_id=card.id, v=card.version)
        return [[button(t("installments.btn.win", lang), cb)]]
    return []


def back_to_card(card: DealCard, lang: str) -> list[InlineKeyboardButton]:
    """A sub-menu's last row: back to the card, in the same message."""
    return [button(t("common.back", lang), card_cb(card, DealAction.OPEN))]


def open_button(deal_id: int, lang: str, label: str | None = None) -> InlineKeyboardButton:
    """ "Open deal" under a task, a reminder or a payment: the card as a message of its own."""
    return button(
        label or t("reminder.btn.open_deal", lang),
        DealCb(action=DealAction.OPEN, deal_id=deal_id),
    )


# --- redrawing ------------------------------------------------------------------------------


async def fresh(ctx: Ctx, cb: DealCb) -> DealCard:
    """The card for a sub-menu; a stale one is refused like a move would be."""
    card = await deals.get_card(ctx.uow, ctx.actor, cb.deal_id)
    check_version("deal", card.version, cb.v or None)
    return card


async def show(
    query: CallbackQuery,
    ctx: Ctx,
    card: DealCard,
    notice: str | None = None,
    markup: InlineKeyboardMarkup | None = None,
) -> None:
    """Edit the card message in place."""
    text = card_text(card, ctx.lang, ctx.tz, notice)
    await screen.edit(query, text, markup or card_keyboard(card, ctx.lang))


async def sub_menu(
    query: CallbackQuery,
    ctx: Ctx,
    cb: DealCb,
    markup: Callable[[DealCard], Markup],
    pick: str | None = None,
) -> DealCard:
    """A sub-menu of the card (stages, loss reasons, deferral, next contact, a plan…): the
    fresh card with the text `pick` (a key) above and `markup(card)` below in place of its
    buttons. A tap on a stale card is refused (the error router shows the current one)."""
    card = await fresh(ctx, cb)
    keyboard = markup(card)
    if inspect.isawaitable(keyboard):
        keyboard = await keyboard
    await show(query, ctx, card, notice=ctx.t(pick) if pick else None, markup=keyboard)
    return card


async def ask_for_card(
    query: CallbackQuery,
    ctx: Ctx,
    step: State,
    cb: DealCb,
    prompt: str,
    *,
    check: Callable[[DealCard], Awaitable[object] | None] | None = None,
    data: dict[str, Any] | None = None,
) -> DealCard:
    """Ask for a value typed for this card (read back by `typed`; the text `prompt` is a
    key). The card is loaded first: a stale one, or one `check(card)` refuses, is refused
    at the tap, not after the value is typed. `data`: more to keep in the FSM."""
    card = await fresh(ctx, cb)
    if check is not None:
        checked = check(card)
        if inspect.isawaitable(checked):
            await checked
    await screen.ask(query, ctx, step, ctx.t(prompt), data={"cb": cb.pack(), **(data or {})})
    return card


async def replace_card(
    message: Message,
    ctx: Ctx,
    card_msg: list[int] | None,
    card: DealCard,
    notice: str | None = None,
) -> None:
    """Update the original card in place if we know it, else send a fresh one. The card
    itself says "Saved" (no message of its own: confirmations are not chat messages)."""
    text = card_text(card, ctx.lang, ctx.tz, notice or ctx.t("deal.saved"))
    await screen.edit_or_send(message, card_msg, text, card_keyboard(card, ctx.lang))


async def typed(
    message: Message,
    ctx: Ctx,
    ask_key: str,
    apply: Callable[[DealCb, str], Awaitable[DealCard]],
) -> None:
    """A value typed for a card (a date, a note): bad input re-asks and saves nothing."""
    data = await ctx.state.get_data()
    try:
        card = await apply(DealCb.unpack(data["cb"]), message.text or "")
    except ValidationError as exc:
        await screen.refused(message, ctx, exc, ask_key)
        return
    await ctx.state.clear()
    await replace_card(message, ctx, data.get("card_msg"), card)


async def send_card(message: Message, ctx: Ctx, card: DealCard, notice: str | None = None) -> None:
    """Send the card as a message of its own (remembered in the FSM storage, so a change
    made in the Mini App redraws it: `refresh_in_chat`)."""
    sent = await message.answer(
        card_text(card, ctx.lang, ctx.tz, notice), reply_markup=card_keyboard(card, ctx.lang)
    )
    if message.bot is not None and isinstance(sent, Message):
        storage = ctx.state.storage
        await cards.remember(storage, message.bot.id, sent.chat.id, card.id, sent.message_id)


async def refresh_in_chat(
    bot: Bot, storage: BaseStorage, actor: Actor, lang: str, tz: tzinfo, card: DealCard
) -> bool:
    """Redraw this deal's card in the person's chat, where the bot last sent it (a move
    made in the Mini App). False when there is no such card or it cannot be edited."""
    message_id = await cards.message_of(storage, bot.id, actor.telegram_id, card.id)
    if message_id is None:
        return False
    try:
        await bot.edit_message_text(
            text=card_text(card, lang, tz),
            chat_id=actor.telegram_id,
            message_id=message_id,
            reply_markup=card_keyboard(card, lang),
        )
    except TelegramBadRequest as exc:  # deleted, too old, or "message is not modified"
        log.info("deal %s card in chat %s not redrawn: %s", card.id, actor.telegram_id, exc)
        return False
    return True


async def drawn(
    uow: UnitOfWork, actor: Actor, deal_id: int, lang: str, tz: tzinfo, notice: str | None = None
) -> tuple[str, InlineKeyboardMarkup]:
    """The deal's current card, loaded (the actor's right checked) and drawn."""
    card = await deals.get_card(uow, actor, deal_id)
    return card_text(card, lang, tz, notice), card_keyboard(card, lang)
