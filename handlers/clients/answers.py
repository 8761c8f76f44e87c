"""The client's answers in their own Telegram (issue 25): the buttons of the messages the
outbox sends them (handlers/notify/views.py: Confirm / Reschedule, All fine / Remarks,
the stars), the times they propose and the remarks they type, /stop and /start after it.

A router that serves clients only (a linked client: `client` in the handler data);
staff and strangers never reach it. Every deal id in a button is client input:
services/clients/answers.py loads the deal and checks it against the client's contacts.
"""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from typing import Any

from aiogram import F, Router
from aiogram.filters import Command, CommandStart, Filter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    TelegramObject,
)
from aiogram.utils.callback_answer import CallbackAnswer

from handlers.ui import fmt
from handlers.ui.callbacks import ClientAnswer, ClientAnswerCb
from handlers.ui.error_text import error_text
from handlers.ui.i18n import t
from services import dates
from services.clients import answers
from services.clock import Clock
from services.errors import DomainError, ValidationError
from services.permissions import ClientActor
from storage.uow import UnitOfWork


class Client(Filter):
    """Passes only for a linked client (the ContextMiddleware loads `client`, never for staff)."""

    async def __call__(self, event: TelegramObject, client: ClientActor | None = None) -> bool:
        return client is not None


class Stopped(Filter):
    async def __call__(self, event: TelegramObject, client: ClientActor | None = None) -> bool:
        return client is not None and client.stopped


class Answering(StatesGroup):
    reschedule = State()  # data: deal_id, typed, day (a day without a time), value (ISO)
    remarks = State()  # data: deal_id


def _button(text: str, action: ClientAnswer, deal_id: int, arg: int = 0) -> InlineKeyboardButton:
    cb = ClientAnswerCb(action=action, deal_id=deal_id, arg=arg)
    return InlineKeyboardButton(text=text, callback_data=cb.pack())


def stars_keyboard(deal_id: int) -> InlineKeyboardMarkup:
    row = [_button("⭐" * n, ClientAnswer.RATE, deal_id, n) for n in range(1, 6)]
    return InlineKeyboardMarkup(inline_keyboard=[row[:3], row[3:]])


async def _done(query: CallbackQuery, note: str) -> None:
    """The answered message keeps its text, loses its buttons, and says what was done."""
    message = query.message
    if isinstance(message, Message) and message.text is not None:
        await message.edit_text(f"{message.html_text}\n\n{note}", reply_markup=None)


async def confirm(
    query: CallbackQuery,
    callback_data: ClientAnswerCb,
    uow: UnitOfWork,
    client: ClientActor,
    lang: str,
    callback_answer: CallbackAnswer,
) -> None:
    await answers.confirm(uow, client, callback_data.deal_id)
    callback_answer.text = t("clientmsg.confirmed", lang)
    await _done(query, t("clientmsg.confirmed.text", lang))


# What a tap asks the client to type: the check that it may be asked, the FSM step, the words.
ASKS: dict[ClientAnswer, tuple[Any, str, str]] = {
    ClientAnswer.RESCHEDULE: (answers.check_reschedule, "reschedule", "clientmsg.reschedule.ask"),
    ClientAnswer.OTHER: (answers.check_reschedule, "reschedule", "clientmsg.reschedule.ask"),
    ClientAnswer.REMARKS: (answers.check_remarks, "remarks", "clientmsg.remarks.ask"),
}


async def ask(
    query: CallbackQuery,
    callback_data: ClientAnswerCb,
    uow: UnitOfWork,
    client: ClientActor,
    lang: str,
    state: FSMContext,
) -> None:
    """Reschedule (or another time after one said back), Remarks: checked now (the deal is
    the client's, its stage asks it), then the client types the answer."""
    check, step, text = ASKS[callback_data.action]
    await check(uow, client, callback_data.deal_id)
    await state.set_state(getattr(Answering, step))
    await state.set_data({"deal_id": callback_data.deal_id})
    if isinstance(query.message, Message):
        await query.message.answer(t(text, lang))


async def typed_time(
    message: Message, lang: str, tz: tzinfo, clock: Clock, state: FSMContext
) -> None:
    """A proposed time, typed: said back in words before it is used, with ✅ / ✏️."""
    data = await state.get_data()
    raw = data.get("day")
    day = date.fromisoformat(raw) if isinstance(raw, str) else None
    text = message.text or ""
    try:
        at = dates.read_when(text, clock, str(tz), day=day)
    except dates.TimeMissing as exc:
        await state.update_data(day=exc.day.isoformat(), typed=text[:200])
        year = clock.now().astimezone(tz).year
        said_day = fmt.said_day(exc.day, lang, year)
        await message.answer(t("clientmsg.reschedule.time", lang, day=said_day))
        return
    except ValidationError:
        await message.answer(t("clientmsg.reschedule.bad", lang))
        return
    typed = " ".join(x for x in (data.get("typed"), text) if isinstance(x, str) and x)[:500]
    await state.update_data(value=at.isoformat(), typed=typed, day=None)
    deal_id = int(data.get("deal_id") or 0)
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[
            [
                _button(t("clientmsg.btn.propose", lang), ClientAnswer.PROPOSE, deal_id),
                _button(t("clientmsg.btn.other", lang), ClientAnswer.OTHER, deal_id),
            ]
        ]
    )
    when = fmt.said(at, tz, lang, clock.now())
    await message.answer(t("clientmsg.reschedule.said", lang, when=when), reply_markup=keyboard)


async def propose(
    query: CallbackQuery,
    callback_data: ClientAnswerCb,
    uow: UnitOfWork,
    client: ClientActor,
    lang: str,
    tz: tzinfo,
    clock: Clock,
    state: FSMContext,
    callback_answer: CallbackAnswer,
) -> None:
    data = await state.get_data()
    value = data.get("value")
    if data.get("deal_id") != callback_data.deal_id or not isinstance(value, str):
        callback_answer.text = t("clientmsg.done", lang)
        return
    when = datetime.fromisoformat(value)
    try:
        await answers.reschedule(
            uow, client, callback_data.deal_id, when, str(data.get("typed") or "")
        )
    finally:  # proposed, or no longer possible: the question is over either way
        await state.clear()
    sent = t("clientmsg.reschedule.sent", lang, when=fmt.said(when, tz, lang, clock.now()))
    callback_answer.text = sent[:190]
    if isinstance(query.message, Message):
        await query.message.edit_text(sent, reply_markup=None)


async def accept(
    query: CallbackQuery,
    callback_data: ClientAnswerCb,
    uow: UnitOfWork,
    client: ClientActor,
    lang: str,
) -> None:
    await answers.accept(uow, client, callback_data.deal_id)
    await _done(query, "👍")
    if isinstance(query.message, Message):
        await query.message.answer(
            t("clientmsg.accepted", lang), reply_markup=stars_keyboard(callback_data.deal_id)
        )


async def typed_remarks(
    message: Message, uow: UnitOfWork, client: ClientActor, lang: str, state: FSMContext
) -> None:
    data = await state.get_data()
    try:
        await answers.remarks(uow, client, int(data.get("deal_id") or 0), message.text or "")
    except ValidationError as exc:  # empty, too long: type it again
        await message.answer(error_text(exc, lang))
        return
    except DomainError:  # no longer asked (answered, stage moved): the question is over
        await state.clear()
        raise
    await state.clear()
    await message.answer(t("clientmsg.remarks.sent", lang))


async def rate(
    query: CallbackQuery,
    callback_data: ClientAnswerCb,
    uow: UnitOfWork,
    client: ClientActor,
    lang: str,
    callback_answer: CallbackAnswer,
) -> None:
    await answers.rate(uow, client, callback_data.deal_id, callback_data.arg)
    callback_answer.text = t("clientmsg.rated", lang)
    if isinstance(query.message, Message):
        stars = "⭐" * callback_data.arg
        await query.message.edit_text(f"{t('clientmsg.rated', lang)} {stars}", reply_markup=None)


async def stop(message: Message, uow: UnitOfWork, client: ClientActor, lang: str) -> None:
    await answers.stop(uow, client)
    await message.answer(t("clientmsg.stopped", lang))


async def resume(message: Message, uow: UnitOfWork, client: ClientActor, lang: str) -> None:
    await answers.resume(uow, client)
    await message.answer(t("clientmsg.resumed", lang))


CALLBACKS: dict[ClientAnswer, Any] = {
    ClientAnswer.CONFIRM: confirm,
    ClientAnswer.RESCHEDULE: ask,
    ClientAnswer.PROPOSE: propose,
    ClientAnswer.OTHER: ask,
    ClientAnswer.ACCEPT: accept,
    ClientAnswer.REMARKS: ask,
    ClientAnswer.RATE: rate,
}


def setup() -> Router:
    """A fresh router that only serves linked clients."""
    router = Router(name="client_answers")
    router.message.filter(Client())
    router.callback_query.filter(Client())
    router.message.register(stop, Command("stop"))
    router.message.register(resume, CommandStart(), F.text == "/start", Stopped())
    router.message.register(typed_time, Answering.reschedule, F.text)
    router.message.register(typed_remarks, Answering.remarks, F.text)
    for action, handler in CALLBACKS.items():
        router.callback_query.register(handler, ClientAnswerCb.filter(F.action == action))
    return router
