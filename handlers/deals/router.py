"""Deal card: stage buttons, loss reasons, deferral, notes, history, reassignment, lists.

Every handler: read the callback/state -> one service call -> render. Services check the
actor's right to the deal and the card's version; errors go to the error router.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any, Protocol

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, StateFilter
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.base import StorageKey
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    FSInputFile,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    InputMediaVideo,
    Message,
)
from aiogram.utils.callback_answer import CallbackAnswer

from handlers.deals import views as view
from handlers.ui import deal_card, screen, timeline, when
from handlers.ui.callbacks import (
    DealAction,
    DealCb,
    LeadAction,
    LeadCb,
    ListCb,
    MenuAction,
    MenuCb,
    SearchCb,
    TimelineCb,
    TimelineSubject,
)
from handlers.ui.context import Ctx
from handlers.ui.filters import staff_router
from handlers.ui.i18n import t
from handlers.ui.keyboards import button, deep_link, with_app
from services import dates
from services.clients import invites as client_invites
from services.dto import DealCard, DealListItem, FileItem, Page
from services.errors import CommentRequired, FieldRequired, PermissionDenied, ValidationError
from services.intake import business
from services.permissions import Action, Actor, require
from services.sales import deals, pipelines
from services.sales import timeline as timelines
from services.sales.pipeline_config import DATE_FIELDS
from services.work import measurement
from storage.enums import ActivityKind
from storage.uow import UnitOfWork


class DealInput(StatesGroup):
    field = State()  # a stage's required field, asked inline
    note = State()
    call = State()  # what was said on a call
    reply = State()  # a reply to the client's Telegram chat
    defer_date = State()
    search = State()
    loss_comment = State()  # a loss reason that needs a comment ("Other")


# --- open ---------------------------------------------------------------------------------


async def open_deal(query: CallbackQuery, callback_data: DealCb, ctx: Ctx) -> None:
    await ctx.state.clear()
    card = await deals.get_card(ctx.uow, ctx.actor, callback_data.deal_id)
    if callback_data.v:  # a "back" from a sub-menu of this card: edit in place
        await deal_card.show(query, ctx, card)
    elif isinstance(query.message, Message):  # opened from a list: a card of its own
        await deal_card.send_card(query.message, ctx, card)


async def deal_command(message: Message, ctx: Ctx) -> None:
    arg = (message.text or "").split(maxsplit=1)[1:]
    if not arg or not arg[0].lstrip("#").isdigit():
        await message.answer(ctx.t("deal.usage"))
        return
    card = await deals.get_card(ctx.uow, ctx.actor, int(arg[0].lstrip("#")))
    await deal_card.send_card(message, ctx, card)


# --- stage moves (required fields asked inline) -------------------------------------------

Move = Callable[[UnitOfWork, Actor, DealCb, dict[str, Any] | None], Awaitable[DealCard]]

# The one dispatch of a move: the router's filter takes these actions, `_move` calls one.
MOVES: dict[DealAction, Move] = {
    DealAction.NEXT: lambda uow, a, cb, fields: deals.advance(uow, a, cb.deal_id, cb.v, fields),
    DealAction.TO_STAGE: lambda uow, a, cb, fields: deals.move_to(
        uow, a, cb.deal_id, cb.arg, cb.v, fields
    ),
}


async def _move(callback_data: DealCb, ctx: Ctx, fields: dict[str, Any] | None = None) -> DealCard:
    move = MOVES.get(callback_data.action)
    if move is None:  # a move asked for a field, then its callback was replaced: refuse
        raise ValidationError("action", "unknown")
    return await move(ctx.uow, ctx.actor, callback_data, fields)


async def move(query: CallbackQuery, callback_data: DealCb, ctx: Ctx) -> None:
    try:
        card = await _move(callback_data, ctx)
    except FieldRequired as exc:
        await _ask_field(query, callback_data, exc.field, {}, ctx)
        return
    await deal_card.show(query, ctx, card)


async def _ask_field(
    query: CallbackQuery | None,
    cb: DealCb,
    field: str,
    collected: dict[str, Any],
    ctx: Ctx,
    message: Message | None = None,
) -> None:
    card_msg = (await ctx.state.get_data()).get("card_msg")
    if query is not None and screen.message_of(query) is not None:
        card_msg = screen.where(query)
    target = message or query
    if target is None:
        return
    data = {"cb": cb.pack(), "field": field, "fields": collected, "card_msg": card_msg}
    prompt, markup = ctx.t(f"deal.ask.{field}"), None
    if field == "measurement_at":  # quick days and times, with each measurer's load
        days = await measurement.slot_days(ctx.uow, ctx.actor, cb.deal_id, ctx.zone)
        slots, markup = view.measurement_slots(days, cb, ctx.lang)
        prompt += "\n\n" + slots
    await screen.ask(target, ctx, DealInput.field, prompt, data=data, markup=markup)


# A stage's required dates (DATE_FIELDS): said back in words (✅ / ✏️) before the move goes
# on, and a day without a time asks for the time (handlers/ui/when.py).
FIELD_CONFIRM, FIELD_CHANGE = 0, 1  # FIELD_OK's arg


def _collected(data: dict[str, Any]) -> dict[str, Any]:
    """The fields gathered so far for the move (dates are kept in the FSM as ISO text)."""
    collected: dict[str, Any] = dict(data.get("fields") or {})
    for key in DATE_FIELDS:
        if isinstance(collected.get(key), str):
            collected[key] = datetime.fromisoformat(collected[key])
    return collected


async def _go_on(
    cb: DealCb, ctx: Ctx, collected: dict[str, Any], data: dict[str, Any], message: Message
) -> bool:
    """Try the move with the fields gathered; ask the next missing one (False), or redraw
    the card (True)."""
    try:
        card = await _move(cb, ctx, collected)
    except FieldRequired as exc:
        if exc.field in collected:
            raise
        stored = {
            k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in collected.items()
        }
        await _ask_field(None, cb, exc.field, stored, ctx, message)
        return False
    await ctx.state.clear()
    await deal_card.replace_card(message, ctx, data.get("card_msg"), card)
    return True


async def field_input(message: Message, ctx: Ctx) -> None:
    data = await ctx.state.get_data()
    cb = DealCb.unpack(data["cb"])
    field = data["field"]
    if field in DATE_FIELDS:
        ok, change = (
            DealCb(action=DealAction.FIELD_OK, deal_id=cb.deal_id, v=cb.v, arg=arg)
            for arg in (FIELD_CONFIRM, FIELD_CHANGE)
        )
        await when.typed(message, ctx, ctx.t(f"edit.field.{field}"), ok, change)
        return
    collected = _collected(data)
    try:
        collected[field] = message.text or ""
        await _go_on(cb, ctx, collected, data, message)
    except ValidationError as exc:
        # Re-ask the same field; nothing was saved.
        await screen.refused(message, ctx, exc, f"deal.ask.{field}")


async def field_quick(
    query: CallbackQuery, callback_data: DealCb, ctx: Ctx, callback_answer: CallbackAnswer
) -> None:
    """A measurement date's quick button: the day and time taken, the move goes on."""
    data = await ctx.state.get_data()
    if data.get("field") != "measurement_at" or "cb" not in data:
        raise ValidationError("when", "expired")
    cb = DealCb.unpack(data["cb"])
    if cb.deal_id != callback_data.deal_id:
        raise ValidationError("when", "expired")
    offset, index = divmod(callback_data.arg, 10)
    at = measurement.slot(ctx.uow, offset, index, ctx.zone)
    collected = _collected(data)
    collected["measurement_at"] = at
    msg = screen.message_of(query)
    if msg is not None:
        await _go_on(cb, ctx, collected, data, msg)  # the card, or the next field asked
        callback_answer.text = ctx.t(
            "edit.confirmed", field=ctx.t("edit.field.measurement_at"), when=when.said(ctx, at)
        )


async def field_confirmed(
    query: CallbackQuery, callback_data: DealCb, ctx: Ctx, callback_answer: CallbackAnswer
) -> None:
    """✅ under a stage's date said back: the move goes on (or asks the next field); ✏️:
    the date is asked again."""
    data = await ctx.state.get_data()
    if "cb" not in data or DealCb.unpack(data["cb"]).deal_id != callback_data.deal_id:
        raise ValidationError("when", "expired")
    cb, field = DealCb.unpack(data["cb"]), data["field"]
    if callback_data.arg == FIELD_CHANGE:
        again = {**data, "value": None, "day": None}
        await screen.ask(query, ctx, DealInput.field, ctx.t(f"deal.ask.{field}"), data=again)
        return
    at = await when.confirmed(ctx)
    collected = _collected(data)
    collected[field] = at
    done = ctx.t("edit.confirmed", field=ctx.t(f"edit.field.{field}"), when=when.said(ctx, at))
    msg = screen.message_of(query)
    if msg is None:
        return
    await _go_on(cb, ctx, collected, data, msg)  # the card, or the next field asked
    callback_answer.text = done
    await screen.edit(query, done)


# --- one tap, one service call, the card re-rendered -----------------------------------------

OneCall = Callable[[UnitOfWork, Actor, DealCb], Awaitable[DealCard]]

ONE_CALL: dict[DealAction, OneCall] = {
    DealAction.BACK: lambda uow, a, cb: deals.step_back(uow, a, cb.deal_id, cb.v),
    DealAction.REASON: lambda uow, a, cb: deals.lose(uow, a, cb.deal_id, cb.arg, None, cb.v),
    DealAction.REOPEN: lambda uow, a, cb: deals.reopen(uow, a, cb.deal_id, cb.v),
    DealAction.RETURN: lambda uow, a, cb: deals.return_to_sales(uow, a, cb.deal_id, cb.v),
    DealAction.REASSIGN_TO: lambda uow, a, cb: deals.reassign(uow, a, cb.deal_id, cb.arg, cb.v),
}


async def one_call(query: CallbackQuery, callback_data: DealCb, ctx: Ctx) -> None:
    try:
        card = await ONE_CALL[callback_data.action](ctx.uow, ctx.actor, callback_data)
    except CommentRequired:  # the reason needs a comment: ask, then lose with it
        comment = LOSS_COMMENT
        await deal_card.ask_for_card(query, ctx, comment.step, callback_data, comment.prompt)
        return
    await deal_card.show(query, ctx, card)


async def exclude_chat(query: CallbackQuery, callback_data: DealCb, ctx: Ctx) -> None:
    card = await business.exclude_chat(ctx.uow, ctx.actor, callback_data.deal_id, callback_data.v)
    await deal_card.show(query, ctx, card, notice=ctx.t("deal.chat.excluded"))


async def defer_quick(query: CallbackQuery, callback_data: DealCb, ctx: Ctx) -> None:
    choices = view.DEFER_CHOICES
    if not 0 <= callback_data.arg < len(choices):
        raise ValidationError("when", "unknown")
    when = dates.quick(choices[callback_data.arg], ctx.clock, ctx.zone)
    card = await deals.defer(ctx.uow, ctx.actor, callback_data.deal_id, when, callback_data.v)
    await deal_card.show(query, ctx, card)


# --- sub-menus: stages, loss reasons, deferral, reassignment ------------------------------

SubMenu = Callable[[Ctx, DealCard], deal_card.Markup]


async def _loss_reasons(ctx: Ctx, card: DealCard) -> InlineKeyboardMarkup:
    reasons = [
        (rid, ("⏸ " if cond else "") + label)
        for rid, label, cond in await deals.loss_reasons(ctx.uow, ctx.lang)
    ]
    return view.reasons(card, reasons, ctx.lang)


async def _managers(ctx: Ctx, card: DealCard) -> InlineKeyboardMarkup:
    return view.managers(card, await deals.assignable_managers(ctx.uow, ctx.actor), ctx.lang)


# action -> (the keyboard in place of the card's buttons, the key of the text above it)
SUB_MENUS: dict[DealAction, tuple[SubMenu, str | None]] = {
    DealAction.CHOOSE: (lambda ctx, card: view.stages(card, ctx.lang), None),
    DealAction.LOSE: (_loss_reasons, "deal.lose.pick"),
    DealAction.DEFER: (lambda ctx, card: view.defer_choices(card, ctx.lang), "deal.defer.pick"),
    DealAction.REASSIGN: (_managers, "deal.reassign.pick"),
}


async def sub_menu(query: CallbackQuery, callback_data: DealCb, ctx: Ctx) -> None:
    markup, pick = SUB_MENUS[callback_data.action]
    await deal_card.sub_menu(query, ctx, callback_data, lambda card: markup(ctx, card), pick)


# --- typed values: a deferral date, notes, calls, replies to the client's chat -----------


def _may_edit(ctx: Ctx, card: DealCard) -> None:
    if not card.may_edit:
        raise PermissionDenied(str(Action.DEAL_EDIT))


async def _defer_at(message: Message, ctx: Ctx, data: dict[str, Any], at: datetime) -> None:
    """A typed deferral date, said back and confirmed (handlers/ui/when.py)."""
    cb = DealCb.unpack(data["cb"])
    card = await deals.defer(ctx.uow, ctx.actor, cb.deal_id, at, cb.v)
    await ctx.state.clear()
    await deal_card.replace_card(message, ctx, data.get("card_msg"), card)


when.use(DealInput.defer_date, "deal.ask.defer", "edit.field.defer", _defer_at)


async def defer_type(query: CallbackQuery, callback_data: DealCb, ctx: Ctx) -> None:
    await deal_card.ask_for_card(query, ctx, DealInput.defer_date, callback_data, "deal.ask.defer")


async def _reply(ctx: Ctx, cb: DealCb, text: str, message: Message) -> DealCard:
    target = await business.prepare_reply(ctx.uow, ctx.actor, cb.deal_id, text)
    if message.bot is None:
        raise ValidationError("reply", "not_sent")
    sent = await message.bot.send_message(
        target.chat_id,
        escape(target.text),
        business_connection_id=target.connection_id,
    )
    return await business.record_reply(ctx.uow, ctx.actor, target, sent.message_id)


Apply = Callable[[Ctx, DealCb, str, Message], Awaitable[DealCard]]
Check = Callable[[Ctx, DealCard], Awaitable[object] | None]


@dataclass(frozen=True, slots=True)
class Typed:
    """A value typed for the card: the step, its question (a key; asked again after a
    refused value), the service call, and what refuses the question at the tap."""

    step: State
    prompt: str
    apply: Apply
    check: Check | None = None


TYPED: dict[DealAction, Typed] = {
    # a note or a call on a stale card is refused at the tap (with the fresh card)
    DealAction.NOTE: Typed(
        DealInput.note,
        "deal.ask.note",
        lambda ctx, cb, text, _m: deals.add_note(ctx.uow, ctx.actor, cb.deal_id, text),
        _may_edit,
    ),
    DealAction.CALL: Typed(
        DealInput.call,
        "deal.ask.call",
        lambda ctx, cb, text, _m: deals.add_note(
            ctx.uow, ctx.actor, cb.deal_id, text, ActivityKind.CALL
        ),
        _may_edit,
    ),
    # refused at the tap when the chat cannot be answered (no connection, no right to
    # reply, the 24-hour window passed)
    DealAction.REPLY: Typed(
        DealInput.reply,
        "deal.ask.reply",
        _reply,
        lambda ctx, card: business.check_reply(ctx.uow, ctx.actor, card.id),
    ),
}
# Not a button of its own: asked when a tapped loss reason needs a comment (`one_call`).
LOSS_COMMENT = Typed(
    DealInput.loss_comment,
    "deal.lose.ask_comment",
    lambda ctx, cb, text, _m: deals.lose(ctx.uow, ctx.actor, cb.deal_id, cb.arg, text, cb.v),
)
TYPED_AT: dict[str | None, Typed] = {
    typed.step.state: typed for typed in (*TYPED.values(), LOSS_COMMENT)
}


async def typed_ask(query: CallbackQuery, callback_data: DealCb, ctx: Ctx) -> None:
    typed = TYPED[callback_data.action]
    check = typed.check
    await deal_card.ask_for_card(
        query,
        ctx,
        typed.step,
        callback_data,
        typed.prompt,
        check=(lambda card: check(ctx, card)) if check else None,
    )


async def typed_input(message: Message, ctx: Ctx, raw_state: str | None = None) -> None:
    typed = TYPED_AT[raw_state]
    apply = typed.apply
    await deal_card.typed(
        message, ctx, typed.prompt, lambda cb, text: apply(ctx, cb, text, message)
    )


# --- history ------------------------------------------------------------------------------


async def history(query: CallbackQuery, callback_data: DealCb, ctx: Ctx) -> None:
    """📜 History: the newest page of the deal's timeline, every kind."""
    card = await deals.get_card(ctx.uow, ctx.actor, callback_data.deal_id)
    page = await timelines.deal_timeline(ctx.uow, ctx.actor, card.id)
    await screen.edit(
        query, timeline.page_text(page, ctx.lang, ctx.tz), view.history_markup(card, page, ctx.lang)
    )


async def timeline_page(query: CallbackQuery, callback_data: TimelineCb, ctx: Ctx) -> None:
    """A filter button or "older" on a deal's or a lead's history."""
    uow, actor, lang = ctx.uow, ctx.actor, ctx.lang
    flt = timeline.FILTER_OF[callback_data.f]
    after = (callback_data.src, callback_data.rid) if callback_data.src else None
    ident = callback_data.subject_id
    if callback_data.subject == TimelineSubject.LEAD:
        page = await timelines.lead_timeline(uow, actor, ident, flt, after)
        back = [button(t("common.back", lang), LeadCb(action=LeadAction.OPEN, lead_id=ident))]
    else:
        page = await timelines.deal_timeline(uow, actor, ident, flt, after)
        # v set: "back" redraws the card in this message (open_deal checks no version)
        back = [button(t("common.back", lang), DealCb(action=DealAction.OPEN, deal_id=ident, v=1))]
    markup = timeline.page_keyboard(page, callback_data.subject, ident, lang, back)
    await screen.edit(query, timeline.page_text(page, lang, ctx.tz), markup)


# --- files ----------------------------------------------------------------------------------

SEND_ONE: dict[str, Callable[..., Any]] = {  # (bot, chat, file item, file id or upload)
    "photo": lambda bot, chat, f, m: bot.send_photo(chat, m, caption=f.caption),
    "video": lambda bot, chat, f, m: bot.send_video(chat, m, caption=f.caption),
    "document": lambda bot, chat, f, m: bot.send_document(chat, m, caption=f.caption),
    "voice": lambda bot, chat, f, m: bot.send_voice(chat, m, caption=f.caption),
    "audio": lambda bot, chat, f, m: bot.send_audio(chat, m, caption=f.caption),
    "animation": lambda bot, chat, f, m: bot.send_animation(chat, m, caption=f.caption),
    "video_note": lambda bot, chat, f, m: bot.send_video_note(chat, m),
    "sticker": lambda bot, chat, f, m: bot.send_sticker(chat, m),
}
ALBUM = ("photo", "video")


def _refused_file(exc: TelegramBadRequest) -> bool:
    """Telegram does not know this file id (another bot's, a deleted file)."""
    return "file" in exc.message.lower()


async def files(
    query: CallbackQuery, callback_data: DealCb, ctx: Ctx, files_dir: Path | None = None
) -> None:
    """📎 Files: the deal's photos and videos back as media groups (captions kept), the
    other files one by one, a page at a time, then a line with "more" and "back". A file id
    Telegram refuses is sent as Voronka's own copy (services/files.py), uploaded from disk."""
    card = await deal_card.fresh(ctx, callback_data)
    page = await timelines.deal_files(ctx.uow, ctx.actor, card.id, callback_data.arg)
    msg = screen.message_of(query)
    if msg is None or msg.bot is None:
        return
    bot, chat = msg.bot, msg.chat.id

    async def send_one(f: FileItem) -> None:
        try:
            await SEND_ONE[f.media_type](bot, chat, f, f.file_id)
        except TelegramBadRequest as exc:
            path = None
            if files_dir is not None and _refused_file(exc):
                path = await timelines.stored_copy(
                    ctx.uow, ctx.actor, card.id, f.file_id, files_dir
                )
            if path is None:
                raise
            await SEND_ONE[f.media_type](bot, chat, f, FSInputFile(path))

    visual = [f for f in page.items if f.media_type in ALBUM]
    if len(visual) > 1:
        album: list[InputMediaPhoto | InputMediaVideo] = [
            InputMediaPhoto(media=f.file_id, caption=f.caption)
            if f.media_type == "photo"
            else InputMediaVideo(media=f.file_id, caption=f.caption)
            for f in visual
        ]
        try:
            await bot.send_media_group(chat, media=list(album))
            visual = []
        except TelegramBadRequest as exc:  # an id refused: each alone, that one from disk
            if not _refused_file(exc):
                raise
    for f in [*visual, *(f for f in page.items if f.media_type not in ALBUM)]:
        if f.media_type in SEND_ONE:
            await send_one(f)
    await msg.answer(
        view.files_text(card, page, ctx.lang, timelines.FILES_PER_PAGE),
        reply_markup=view.files_markup(card, page, ctx.lang),
    )


# --- my deals, search ---------------------------------------------------------------------


async def _list(ctx: Ctx, cb: ListCb, web_app_url: str | None) -> tuple[str, Any]:
    uow, actor, lang = ctx.uow, ctx.actor, ctx.lang
    page = await deals.list_deals(
        uow,
        actor,
        pipeline_id=cb.pipeline_id or None,
        stage_id=cb.stage_id or None,
        page=cb.page,
    )
    infos = await pipelines.list_pipelines(uow)
    filters = [(p.id, p.label(lang)) for p in infos]
    markup = view.list_keyboard(page, lang, cb.pipeline_id, cb.stage_id, filters)
    if cb.pipeline_id:
        chosen = next((p for p in infos if p.id == cb.pipeline_id), None)
        if chosen is not None:
            markup.inline_keyboard.extend(
                view.stage_filter(chosen.stages, lang, cb.pipeline_id, cb.stage_id)
            )
    heading = t("deals.list.heading_all" if actor.sees_all else "deals.list.heading", lang)
    return view.list_text(page, lang, heading), with_app(markup, web_app_url, lang)


async def my_deals(query: CallbackQuery, ctx: Ctx, web_app_url: str | None = None) -> None:
    text, markup = await _list(ctx, ListCb(), web_app_url)
    if isinstance(query.message, Message):
        await query.message.answer(text, reply_markup=markup)


async def my_deals_command(message: Message, ctx: Ctx, web_app_url: str | None = None) -> None:
    text, markup = await _list(ctx, ListCb(), web_app_url)
    await message.answer(text, reply_markup=markup)


async def list_page(
    query: CallbackQuery, callback_data: ListCb, ctx: Ctx, web_app_url: str | None = None
) -> None:
    text, markup = await _list(ctx, callback_data, web_app_url)
    if isinstance(query.message, Message):
        await query.message.edit_text(text, reply_markup=markup)


async def search_ask(query: CallbackQuery, ctx: Ctx) -> None:
    require(ctx.actor, Action.REPORTS_OWN)  # a forged Search button (measurers): refused
    await screen.ask(query, ctx, DealInput.search, ctx.t("deals.search.ask"))


async def search_command(message: Message, ctx: Ctx) -> None:
    query = (message.text or "").split(maxsplit=1)[1:]
    if not query:
        require(ctx.actor, Action.REPORTS_OWN)
        await screen.ask(message, ctx, DealInput.search, ctx.t("deals.search.ask"), hint=False)
        return
    await _search(message, ctx, query[0])


async def search_input(message: Message, ctx: Ctx) -> None:
    await _search(message, ctx, message.text or "")


SEARCH_DESTINY = "deal_search"  # the last /search query of a chat (its pages' buttons)


def _search_key(bot_id: int, chat_id: int) -> StorageKey:
    return StorageKey(bot_id=bot_id, chat_id=chat_id, user_id=chat_id, destiny=SEARCH_DESTINY)


def _found(page: Page[DealListItem], ctx: Ctx) -> tuple[str, InlineKeyboardMarkup]:
    """A page of search results: one button per deal, then ◀ / ▶ when there are more."""
    rows = [
        [
            button(
                deal_card.list_button(item, ctx.lang),
                DealCb(action=DealAction.OPEN, deal_id=item.id),
            )
        ]
        for item in page.items
    ]
    nav = []
    if page.page > 0:
        nav.append(button(ctx.t("deals.search.less"), SearchCb(page=page.page - 1)))
    if page.page + 1 < page.pages:
        nav.append(button(ctx.t("deals.search.more"), SearchCb(page=page.page + 1)))
    if nav:
        rows.append(nav)
    if page.pages > 1:
        text = ctx.t("deals.search.page", total=page.total, page=page.page + 1, pages=page.pages)
    else:
        text = ctx.t("deals.search.found", n=page.total)
    return text, InlineKeyboardMarkup(inline_keyboard=rows)


async def _search(message: Message, ctx: Ctx, text: str) -> None:
    try:
        found = await deals.search(ctx.uow, ctx.actor, text)
    except ValidationError as exc:
        await screen.refused(message, ctx, exc, "deals.search.ask")
        return
    await ctx.state.clear()
    if not found.total:
        await message.answer(ctx.t("deals.search.none"))
        return
    if message.bot is not None:
        key = _search_key(message.bot.id, message.chat.id)
        await ctx.state.storage.set_data(key, {"q": text})
    shown, markup = _found(found, ctx)
    await message.answer(shown, reply_markup=markup)


async def search_page(query: CallbackQuery, callback_data: SearchCb, ctx: Ctx) -> None:
    """◀ / ▶ under the results: the same query (kept per chat), another page."""
    msg = screen.message_of(query)
    if msg is None or msg.bot is None:
        return
    kept = await ctx.state.storage.get_data(_search_key(msg.bot.id, msg.chat.id))
    text = kept.get("q")
    if not isinstance(text, str):
        raise ValidationError("query", "expired")
    found = await deals.search(ctx.uow, ctx.actor, text, page=callback_data.page)
    shown, markup = _found(found, ctx)
    await screen.edit(query, shown, markup)


# --- the client's own Telegram (issue 25) ----------------------------------------------------


class ClientInviteSettings(Protocol):
    """What the invite reads of the settings (bot.settings.Settings)."""

    client_invite_ttl_hours: int


async def invite_client(
    query: CallbackQuery,
    callback_data: DealCb,
    bot: Bot,
    ctx: Ctx,
    settings: ClientInviteSettings,
    callback_answer: CallbackAnswer,
) -> None:
    """📲 Invite the client: a one-time link bound to the deal's contact, sent as a QR code
    with the link under it (to forward by SMS or print on the contract). The service checks
    the right to the deal; a stale card is refused like any tap."""
    card = await deal_card.fresh(ctx, callback_data)
    ttl = timedelta(hours=settings.client_invite_ttl_hours)
    invite = await client_invites.create(ctx.uow, ctx.actor, card.id, ttl)
    me = await bot.me()  # cached by aiogram (the start fetched it)
    link = deep_link(me.username or "", invite.payload)
    msg = screen.message_of(query)
    chat = msg.chat.id if msg is not None else ctx.actor.telegram_id
    await bot.send_photo(
        chat,
        BufferedInputFile(view.qr_png(link), filename=f"client-{card.id}.png"),
        caption=view.client_invite_text(invite, link, ctx.lang, ctx.tz),
    )
    callback_answer.text = ctx.t("client.invite.made")


def setup() -> Router:
    """A fresh router for one Dispatcher (its handlers in dispatch order)."""
    router = staff_router("deals")
    router.callback_query.register(open_deal, DealCb.filter(F.action == DealAction.OPEN))
    router.message.register(deal_command, Command("deal"))
    router.callback_query.register(move, DealCb.filter(F.action.in_(set(MOVES))))
    router.message.register(field_input, DealInput.field, F.text)
    router.callback_query.register(field_confirmed, DealCb.filter(F.action == DealAction.FIELD_OK))
    router.callback_query.register(field_quick, DealCb.filter(F.action == DealAction.FIELD_QUICK))
    router.callback_query.register(one_call, DealCb.filter(F.action.in_(set(ONE_CALL))))
    router.callback_query.register(exclude_chat, DealCb.filter(F.action == DealAction.EXCLUDE_CHAT))
    router.callback_query.register(defer_quick, DealCb.filter(F.action == DealAction.DEFER_QUICK))
    router.callback_query.register(sub_menu, DealCb.filter(F.action.in_(set(SUB_MENUS))))
    router.callback_query.register(defer_type, DealCb.filter(F.action == DealAction.DEFER_TYPE))
    router.message.register(when.typed_for, DealInput.defer_date, F.text)
    router.callback_query.register(typed_ask, DealCb.filter(F.action.in_(set(TYPED))))
    router.message.register(typed_input, StateFilter(*(x.step for x in TYPED_AT.values())), F.text)
    router.callback_query.register(history, DealCb.filter(F.action == DealAction.HISTORY))
    router.callback_query.register(timeline_page, TimelineCb.filter())
    router.callback_query.register(files, DealCb.filter(F.action == DealAction.FILES))
    router.callback_query.register(
        invite_client, DealCb.filter(F.action == DealAction.INVITE_CLIENT)
    )
    router.callback_query.register(my_deals, MenuCb.filter(F.action == MenuAction.MY_DEALS))
    router.message.register(my_deals_command, Command("deals"))
    router.callback_query.register(list_page, ListCb.filter())
    router.callback_query.register(search_ask, MenuCb.filter(F.action == MenuAction.SEARCH))
    router.message.register(search_command, Command("search"))
    router.message.register(search_input, DealInput.search, F.text)
    router.callback_query.register(search_page, SearchCb.filter())
    return router
