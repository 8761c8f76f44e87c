"""Deal card: stage buttons, loss reasons, deferral, notes, history, reassignment, lists.

Every handler: read the callback/state -> one service call -> render. Services check the
actor's right to the deal and the card's version; errors go to the error router.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, tzinfo
from html import escape
from typing import Any

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    InputMediaVideo,
    Message,
)
from aiogram.utils.callback_answer import CallbackAnswer

from handlers.deals import views as view
from handlers.ui import deal_card, screen, timeline
from handlers.ui.callbacks import (
    DealAction,
    DealCb,
    LeadAction,
    LeadCb,
    ListCb,
    MenuAction,
    MenuCb,
    TimelineCb,
    TimelineSubject,
)
from handlers.ui.error_text import error_text
from handlers.ui.filters import Staff
from handlers.ui.i18n import t
from handlers.ui.keyboards import button, with_app
from services import dates
from services.dto import DealCard
from services.errors import FieldRequired, PermissionDenied, ValidationError
from services.intake import business
from services.permissions import Action, Actor, require
from services.sales import deals, pipelines
from services.sales import timeline as timelines
from storage.enums import ActivityKind
from storage.uow import UnitOfWork


class DealInput(StatesGroup):
    field = State()  # a stage's required field, asked inline
    note = State()
    call = State()  # what was said on a call
    reply = State()  # a reply to the client's Telegram chat
    defer_date = State()
    search = State()


# --- open ---------------------------------------------------------------------------------


async def open_deal(
    query: CallbackQuery,
    callback_data: DealCb,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    tz: tzinfo,
    state: FSMContext,
) -> None:
    await state.clear()
    card = await deals.get_card(uow, actor, callback_data.deal_id)
    if callback_data.v:  # a "back" from a sub-menu of this card: edit in place
        await deal_card.show(query, card, lang, tz)
    elif isinstance(query.message, Message):  # opened from a list: a card of its own
        await deal_card.send_card(query.message, card, lang, tz, storage=state.storage)


async def deal_command(
    message: Message, uow: UnitOfWork, actor: Actor, lang: str, tz: tzinfo, state: FSMContext
) -> None:
    arg = (message.text or "").split(maxsplit=1)[1:]
    if not arg or not arg[0].lstrip("#").isdigit():
        await message.answer(t("deal.usage", lang))
        return
    card = await deals.get_card(uow, actor, int(arg[0].lstrip("#")))
    await deal_card.send_card(message, card, lang, tz, storage=state.storage)


# --- stage moves (required fields asked inline) -------------------------------------------

Move = Callable[[UnitOfWork, Actor, DealCb, dict[str, Any] | None], Awaitable[DealCard]]

# The one dispatch of a move: the router's filter takes these actions, `_move` calls one.
MOVES: dict[DealAction, Move] = {
    DealAction.NEXT: lambda uow, a, cb, fields: deals.advance(uow, a, cb.deal_id, cb.v, fields),
    DealAction.TO_STAGE: lambda uow, a, cb, fields: deals.move_to(
        uow, a, cb.deal_id, cb.arg, cb.v, fields
    ),
}


async def _move(
    callback_data: DealCb, uow: UnitOfWork, actor: Actor, fields: dict[str, Any] | None = None
) -> DealCard:
    move = MOVES.get(callback_data.action)
    if move is None:  # a move asked for a field, then its callback was replaced: refuse
        raise ValidationError("action", "unknown")
    return await move(uow, actor, callback_data, fields)


async def move(
    query: CallbackQuery,
    callback_data: DealCb,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    tz: tzinfo,
    state: FSMContext,
) -> None:
    try:
        card = await _move(callback_data, uow, actor)
    except FieldRequired as exc:
        await _ask_field(query, callback_data, exc.field, {}, lang, state)
        return
    await deal_card.show(query, card, lang, tz)


async def _ask_field(
    query: CallbackQuery | None,
    cb: DealCb,
    field: str,
    collected: dict[str, Any],
    lang: str,
    state: FSMContext,
    message: Message | None = None,
) -> None:
    card_msg = (await state.get_data()).get("card_msg")
    if query is not None and screen.message_of(query) is not None:
        card_msg = screen.where(query)
    target = message or query
    if target is None:
        return
    data = {"cb": cb.pack(), "field": field, "fields": collected, "card_msg": card_msg}
    await screen.ask(target, state, DealInput.field, t(f"deal.ask.{field}", lang), lang, data=data)


def _parse_field(field: str, text: str, tz: tzinfo, clock: Any) -> Any:
    if field in ("measurement_at", "next_contact_at"):
        return dates.parse_when(text, clock, str(tz))
    return text


async def field_input(
    message: Message,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    tz: tzinfo,
    state: FSMContext,
    clock: Any,
) -> None:
    data = await state.get_data()
    cb = DealCb.unpack(data["cb"])
    field = data["field"]
    collected: dict[str, Any] = dict(data.get("fields") or {})
    for key in ("measurement_at", "next_contact_at"):  # kept in the FSM as ISO text
        if isinstance(collected.get(key), str):
            collected[key] = datetime.fromisoformat(collected[key])
    try:
        value = _parse_field(field, message.text or "", tz, clock)
        collected[field] = value
        card = await _move(cb, uow, actor, collected)
    except ValidationError as exc:
        # Re-ask the same field; nothing was saved.
        await message.answer(screen.again(error_text(exc, lang), t(f"deal.ask.{field}", lang)))
        return
    except FieldRequired as exc:
        if exc.field in collected:
            raise
        stored = {
            k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in collected.items()
        }
        await _ask_field(None, cb, exc.field, stored, lang, state, message)
        return
    await state.clear()
    await deal_card.replace_card(message, data.get("card_msg"), card, lang, tz)


# --- one tap, one service call, the card re-rendered -----------------------------------------

OneCall = Callable[[UnitOfWork, Actor, DealCb], Awaitable[DealCard]]

ONE_CALL: dict[DealAction, OneCall] = {
    DealAction.BACK: lambda uow, a, cb: deals.step_back(uow, a, cb.deal_id, cb.v),
    DealAction.REASON: lambda uow, a, cb: deals.lose(uow, a, cb.deal_id, cb.arg, None, cb.v),
    DealAction.REOPEN: lambda uow, a, cb: deals.reopen(uow, a, cb.deal_id, cb.v),
    DealAction.RETURN: lambda uow, a, cb: deals.return_to_sales(uow, a, cb.deal_id, cb.v),
    DealAction.REASSIGN_TO: lambda uow, a, cb: deals.reassign(uow, a, cb.deal_id, cb.arg, cb.v),
}


async def one_call(
    query: CallbackQuery,
    callback_data: DealCb,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    tz: tzinfo,
) -> None:
    card = await ONE_CALL[callback_data.action](uow, actor, callback_data)
    await deal_card.show(query, card, lang, tz)


async def choose_stage(
    query: CallbackQuery,
    callback_data: DealCb,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    tz: tzinfo,
) -> None:
    await deal_card.sub_menu(
        query, uow, actor, callback_data, lang, tz, lambda card: view.stages(card, lang)
    )


# --- losing, refusal, reopening -----------------------------------------------------------


async def lose_menu(
    query: CallbackQuery,
    callback_data: DealCb,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    tz: tzinfo,
) -> None:
    async def menu(card: DealCard) -> InlineKeyboardMarkup:
        reasons = [
            (rid, ("⏸ " if cond else "") + label)
            for rid, label, cond in await deals.loss_reasons(uow, lang)
        ]
        return view.reasons(card, reasons, lang)

    pick = t("deal.lose.pick", lang)
    await deal_card.sub_menu(query, uow, actor, callback_data, lang, tz, menu, pick)


# --- deferral -----------------------------------------------------------------------------


async def defer_menu(
    query: CallbackQuery,
    callback_data: DealCb,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    tz: tzinfo,
) -> None:
    pick = t("deal.defer.pick", lang)
    await deal_card.sub_menu(
        query, uow, actor, callback_data, lang, tz, lambda c: view.defer_choices(c, lang), pick
    )


async def defer_quick(
    query: CallbackQuery,
    callback_data: DealCb,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    tz: tzinfo,
    clock: Any,
) -> None:
    choices = view.DEFER_CHOICES
    if not 0 <= callback_data.arg < len(choices):
        raise ValidationError("when", "unknown")
    when = dates.quick(choices[callback_data.arg], clock, str(tz))
    card = await deals.defer(uow, actor, callback_data.deal_id, when, callback_data.v)
    await deal_card.show(query, card, lang, tz)


async def defer_type(
    query: CallbackQuery,
    callback_data: DealCb,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    state: FSMContext,
) -> None:
    await deal_card.fresh(uow, actor, callback_data)
    await deal_card.ask_for_card(
        query, state, DealInput.defer_date, callback_data, t("deal.ask.defer", lang), lang
    )


async def defer_date_input(
    message: Message,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    tz: tzinfo,
    state: FSMContext,
    clock: Any,
) -> None:
    async def apply(cb: DealCb, text: str) -> DealCard:
        when = dates.parse_when(text, clock, str(tz))
        return await deals.defer(uow, actor, cb.deal_id, when, cb.v)

    await deal_card.typed(message, state, lang, tz, "deal.ask.defer", apply)


# --- notes, history, reassignment ---------------------------------------------------------


async def note_ask(
    query: CallbackQuery,
    callback_data: DealCb,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    state: FSMContext,
) -> None:
    """Note or call: a prompt from a stale card is refused at the tap (with the fresh card),
    not after the text is typed."""
    card = await deal_card.fresh(uow, actor, callback_data)
    if not card.may_edit:
        raise PermissionDenied(str(Action.DEAL_EDIT))
    call = callback_data.action == DealAction.CALL
    step = DealInput.call if call else DealInput.note
    key = "deal.ask.call" if call else "deal.ask.note"
    await deal_card.ask_for_card(query, state, step, callback_data, t(key, lang), lang)


async def note_input(
    message: Message, uow: UnitOfWork, actor: Actor, lang: str, tz: tzinfo, state: FSMContext
) -> None:
    async def apply(cb: DealCb, text: str) -> DealCard:
        return await deals.add_note(uow, actor, cb.deal_id, text)

    await deal_card.typed(message, state, lang, tz, "deal.ask.note", apply)


async def call_input(
    message: Message, uow: UnitOfWork, actor: Actor, lang: str, tz: tzinfo, state: FSMContext
) -> None:
    async def apply(cb: DealCb, text: str) -> DealCard:
        return await deals.add_note(uow, actor, cb.deal_id, text, ActivityKind.CALL)

    await deal_card.typed(message, state, lang, tz, "deal.ask.call", apply)


async def history(
    query: CallbackQuery,
    callback_data: DealCb,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    tz: tzinfo,
) -> None:
    """📜 History: the newest page of the deal's timeline, every kind."""
    card = await deals.get_card(uow, actor, callback_data.deal_id)
    page = await timelines.deal_timeline(uow, actor, card.id)
    await screen.edit(
        query, timeline.page_text(page, lang, tz), view.history_markup(card, page, lang)
    )


async def timeline_page(
    query: CallbackQuery,
    callback_data: TimelineCb,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    tz: tzinfo,
) -> None:
    """A filter button or "older" on a deal's or a lead's history."""
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
    await screen.edit(query, timeline.page_text(page, lang, tz), markup)


# --- files ----------------------------------------------------------------------------------

SEND_ONE: dict[str, Callable[..., Any]] = {
    "document": lambda bot, chat, f: bot.send_document(chat, f.file_id, caption=f.caption),
    "voice": lambda bot, chat, f: bot.send_voice(chat, f.file_id, caption=f.caption),
    "audio": lambda bot, chat, f: bot.send_audio(chat, f.file_id, caption=f.caption),
    "animation": lambda bot, chat, f: bot.send_animation(chat, f.file_id, caption=f.caption),
    "video_note": lambda bot, chat, f: bot.send_video_note(chat, f.file_id),
    "sticker": lambda bot, chat, f: bot.send_sticker(chat, f.file_id),
}


async def files(
    query: CallbackQuery,
    callback_data: DealCb,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
) -> None:
    """📎 Files: the deal's photos and videos back as media groups (captions kept), the
    other files one by one, a page at a time, then a line with "more" and "back"."""
    card = await deal_card.fresh(uow, actor, callback_data)
    page = await timelines.deal_files(uow, actor, card.id, callback_data.arg)
    msg = screen.message_of(query)
    if msg is None or msg.bot is None:
        return
    bot, chat = msg.bot, msg.chat.id
    album: list[InputMediaPhoto | InputMediaVideo] = []
    for f in page.items:
        if f.media_type == "photo":
            album.append(InputMediaPhoto(media=f.file_id, caption=f.caption))
        elif f.media_type == "video":
            album.append(InputMediaVideo(media=f.file_id, caption=f.caption))
    if len(album) == 1:
        one = album[0]
        if isinstance(one, InputMediaPhoto):
            await bot.send_photo(chat, str(one.media), caption=one.caption)
        else:
            await bot.send_video(chat, str(one.media), caption=one.caption)
    elif album:
        await bot.send_media_group(chat, media=list(album))
    for f in page.items:
        if f.media_type in SEND_ONE:
            await SEND_ONE[f.media_type](bot, chat, f)
    await msg.answer(
        view.files_text(card, page, lang, timelines.FILES_PER_PAGE),
        reply_markup=view.files_markup(card, page, lang),
    )


# --- client chats (Telegram Business) -------------------------------------------------------


async def reply_ask(
    query: CallbackQuery,
    callback_data: DealCb,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    state: FSMContext,
) -> None:
    """💬 Reply: refused at the tap when the card is stale, the chat cannot be answered
    (no connection, no right to reply, the 24-hour window passed)."""
    await deal_card.fresh(uow, actor, callback_data)
    await business.check_reply(uow, actor, callback_data.deal_id)
    await deal_card.ask_for_card(
        query, state, DealInput.reply, callback_data, t("deal.ask.reply", lang), lang
    )


async def reply_input(
    message: Message, uow: UnitOfWork, actor: Actor, lang: str, tz: tzinfo, state: FSMContext
) -> None:
    async def apply(cb: DealCb, text: str) -> DealCard:
        target = await business.prepare_reply(uow, actor, cb.deal_id, text)
        if message.bot is None:
            raise ValidationError("reply", "not_sent")
        sent = await message.bot.send_message(
            target.chat_id,
            escape(target.text),
            business_connection_id=target.connection_id,
        )
        return await business.record_reply(uow, actor, target, sent.message_id)

    await deal_card.typed(message, state, lang, tz, "deal.ask.reply", apply)


async def exclude_chat(
    query: CallbackQuery,
    callback_data: DealCb,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    tz: tzinfo,
) -> None:
    card = await business.exclude_chat(uow, actor, callback_data.deal_id, callback_data.v)
    await deal_card.show(query, card, lang, tz, notice=t("deal.chat.excluded", lang))


async def reassign_menu(
    query: CallbackQuery,
    callback_data: DealCb,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    tz: tzinfo,
) -> None:
    async def menu(card: DealCard) -> InlineKeyboardMarkup:
        return view.managers(card, await deals.assignable_managers(uow, actor), lang)

    pick = t("deal.reassign.pick", lang)
    await deal_card.sub_menu(query, uow, actor, callback_data, lang, tz, menu, pick)


# --- my deals, search ---------------------------------------------------------------------


async def _list(
    uow: UnitOfWork, actor: Actor, lang: str, cb: ListCb, web_app_url: str | None = None
) -> tuple[str, Any]:
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


async def my_deals(
    query: CallbackQuery,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    web_app_url: str | None = None,
) -> None:
    text, markup = await _list(uow, actor, lang, ListCb(), web_app_url)
    if isinstance(query.message, Message):
        await query.message.answer(text, reply_markup=markup)


async def my_deals_command(
    message: Message,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    web_app_url: str | None = None,
) -> None:
    text, markup = await _list(uow, actor, lang, ListCb(), web_app_url)
    await message.answer(text, reply_markup=markup)


async def list_page(
    query: CallbackQuery,
    callback_data: ListCb,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    web_app_url: str | None = None,
) -> None:
    text, markup = await _list(uow, actor, lang, callback_data, web_app_url)
    if isinstance(query.message, Message):
        await query.message.edit_text(text, reply_markup=markup)


async def search_ask(
    query: CallbackQuery,
    actor: Actor,
    lang: str,
    state: FSMContext,
    callback_answer: CallbackAnswer,
) -> None:
    require(actor, Action.REPORTS_OWN)  # a forged Search button (measurers): refused
    await screen.ask(query, state, DealInput.search, t("deals.search.ask", lang), lang)


async def search_command(
    message: Message, uow: UnitOfWork, actor: Actor, lang: str, state: FSMContext
) -> None:
    query = (message.text or "").split(maxsplit=1)[1:]
    if not query:
        require(actor, Action.REPORTS_OWN)
        await screen.ask(
            message, state, DealInput.search, t("deals.search.ask", lang), lang, hint=False
        )
        return
    await _search(message, uow, actor, lang, query[0], state)


async def search_input(
    message: Message, uow: UnitOfWork, actor: Actor, lang: str, state: FSMContext
) -> None:
    await _search(message, uow, actor, lang, message.text or "", state)


async def _search(
    message: Message, uow: UnitOfWork, actor: Actor, lang: str, text: str, state: FSMContext
) -> None:
    try:
        found = await deals.search(uow, actor, text)
    except ValidationError as exc:
        await message.answer(error_text(exc, lang) + "\n" + t("deals.search.ask", lang))
        return
    await state.clear()
    if not found:
        await message.answer(t("deals.search.none", lang))
        return
    rows = [
        [button(deal_card.list_button(item, lang), DealCb(action=DealAction.OPEN, deal_id=item.id))]
        for item in found
    ]
    await message.answer(
        t("deals.search.found", lang, n=len(found)),
        reply_markup=InlineKeyboardMarkup(inline_keyboard=rows),
    )


def setup() -> Router:
    """A fresh router for one Dispatcher (its handlers in dispatch order)."""
    router = Router(name="deals")
    router.message.filter(Staff())
    router.callback_query.filter(Staff())
    router.callback_query.register(open_deal, DealCb.filter(F.action == DealAction.OPEN))
    router.message.register(deal_command, Command("deal"))
    router.callback_query.register(move, DealCb.filter(F.action.in_(set(MOVES))))
    router.message.register(field_input, DealInput.field, F.text)
    router.callback_query.register(one_call, DealCb.filter(F.action.in_(set(ONE_CALL))))
    router.callback_query.register(choose_stage, DealCb.filter(F.action == DealAction.CHOOSE))
    router.callback_query.register(lose_menu, DealCb.filter(F.action == DealAction.LOSE))
    router.callback_query.register(defer_menu, DealCb.filter(F.action == DealAction.DEFER))
    router.callback_query.register(defer_quick, DealCb.filter(F.action == DealAction.DEFER_QUICK))
    router.callback_query.register(defer_type, DealCb.filter(F.action == DealAction.DEFER_TYPE))
    router.message.register(defer_date_input, DealInput.defer_date, F.text)
    router.callback_query.register(
        note_ask, DealCb.filter(F.action.in_({DealAction.NOTE, DealAction.CALL}))
    )
    router.message.register(note_input, DealInput.note, F.text)
    router.message.register(call_input, DealInput.call, F.text)
    router.callback_query.register(history, DealCb.filter(F.action == DealAction.HISTORY))
    router.callback_query.register(timeline_page, TimelineCb.filter())
    router.callback_query.register(files, DealCb.filter(F.action == DealAction.FILES))
    router.callback_query.register(reply_ask, DealCb.filter(F.action == DealAction.REPLY))
    router.message.register(reply_input, DealInput.reply, F.text)
    router.callback_query.register(exclude_chat, DealCb.filter(F.action == DealAction.EXCLUDE_CHAT))
    router.callback_query.register(reassign_menu, DealCb.filter(F.action == DealAction.REASSIGN))
    router.callback_query.register(my_deals, MenuCb.filter(F.action == MenuAction.MY_DEALS))
    router.message.register(my_deals_command, Command("deals"))
    router.callback_query.register(list_page, ListCb.filter())
    router.callback_query.register(search_ask, MenuCb.filter(F.action == MenuAction.SEARCH))
    router.message.register(search_command, Command("search"))
    router.message.register(search_input, DealInput.search, F.text)
    return router
