"""The client's side of the bot (issue 25): a client is not staff.

Three routers (handlers/routers.py places them):
- `links`, before the staff invites: ``/start c_<token>`` (a client's invite link) links the
  Telegram account to its contact (services/clients/invites.py), then greets the client and
  shows their orders. A refused link (used, expired, unknown, a staff member's) is answered
  by the error router in the person's language; nothing is linked.
- `clients` (only for a linked client, `handlers.ui.filters.Client`): /start and "My orders"
  list their orders, a tap opens one (services/clients/views.py, which checks
  `require_client` on every deal it loads: a forged callback for another client's deal is
  refused). Staff routers filter on Staff, so a client reaches none of them.
- `requests` (for strangers, when CLIENT_REQUESTS is on): /start offers to leave a request
  (share the phone, say what is needed) that becomes a lead (services/intake/requests.py).
  One request per person per window (the `client_request_limiter` of the Dispatcher): a
  flood makes one lead and one answer. With the setting off, the strangers' router refuses.
"""

from __future__ import annotations

import logging
from datetime import tzinfo
from typing import Protocol

from aiogram import F, Router
from aiogram.filters import CommandObject, CommandStart, Filter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import (
    CallbackQuery,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    TelegramObject,
)
from aiogram.utils.callback_answer import CallbackAnswer

from handlers.clients import views as view
from handlers.ui import screen
from handlers.ui.callbacks import ClientAction, ClientCb
from handlers.ui.error_text import error_text
from handlers.ui.filters import client_router
from handlers.ui.i18n import lang_of, t
from services import validation
from services.clients import invites
from services.clients import views as client_views
from services.clock import Clock
from services.errors import ValidationError
from services.intake.api import InvalidSubmission, RateLimiter
from services.intake.requests import leave_request
from services.permissions import Actor, ClientActor
from storage.uow import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)


class RequestSettings(Protocol):
    """What the strangers' requests read of the settings (bot.settings.Settings)."""

    client_requests: bool
    intake_manager_ids: list[int]


# --- linking ----------------------------------------------------------------------------------


async def open_invite(
    message: Message,
    command: CommandObject,
    uow: UnitOfWork,
    tz: tzinfo,
    clock: Clock,
) -> None:
    """``/start c_<token>``: link this account to the invite's contact, greet, show orders."""
    user = message.from_user
    if user is None:
        return
    client = await invites.accept(
        uow, user.id, user.first_name, command.args or "", lang_of(user.language_code)
    )
    lang = client.language or lang_of(user.language_code)
    await _send_orders(message, uow, client, lang, tz, clock, greet=True)


# --- what the client sees ---------------------------------------------------------------------


async def _send_orders(
    message: Message,
    uow: UnitOfWork,
    client: ClientActor,
    lang: str,
    tz: tzinfo,
    clock: Clock,
    greet: bool = False,
) -> None:
    deals = await client_views.my_deals(uow, client)
    text = view.orders_text(deals, client.first_name if greet else None, lang, tz, clock.now())
    await message.answer(text, reply_markup=view.orders_keyboard(deals, lang))


async def start(
    message: Message, uow: UnitOfWork, client: ClientActor, lang: str, tz: tzinfo, clock: Clock
) -> None:
    """/start of a linked client: hello and their orders."""
    await _send_orders(message, uow, client, lang, tz, clock, greet=True)


async def screen_of(
    query: CallbackQuery,
    callback_data: ClientCb,
    uow: UnitOfWork,
    client: ClientActor,
    lang: str,
    tz: tzinfo,
    clock: Clock,
) -> None:
    """My orders, or one order by the number in the button: the service loads it and checks
    it is this client's (a forged number is refused by the error router, nothing shown)."""
    if callback_data.action == ClientAction.ORDERS:
        deals = await client_views.my_deals(uow, client)
        text = view.orders_text(deals, None, lang, tz, clock.now())
        await screen.edit(query, text, view.orders_keyboard(deals, lang))
        return
    deal = await client_views.my_deal(uow, client, callback_data.deal_id)
    await screen.edit(
        query, view.deal_text(deal, lang, tz, clock.now()), view.deal_keyboard(deal, lang)
    )


async def client_text(
    message: Message, uow: UnitOfWork, client: ClientActor, lang: str, tz: tzinfo, clock: Clock
) -> None:
    """Anything else a client writes: their orders (a manager reads the chat nowhere here)."""
    await message.answer(t("client.unknown_input", lang))
    await _send_orders(message, uow, client, lang, tz, clock)


async def client_stale(query: CallbackQuery, lang: str, callback_answer: CallbackAnswer) -> None:
    """A button that is not a client's (a staff card's, a forged one): nothing happens."""
    callback_answer.show_alert = True
    callback_answer.text = t("client.stale_button", lang)


# --- requests from strangers ------------------------------------------------------------------


class RequestForm(StatesGroup):
    contact = State()
    need = State()
    sent = State()


class RequestsOpen(Filter):
    """A stranger (neither staff nor a linked client) while CLIENT_REQUESTS is on."""

    async def __call__(
        self,
        event: TelegramObject,
        settings: RequestSettings,
        actor: Actor | None = None,
        client: ClientActor | None = None,
    ) -> bool:
        return settings.client_requests and actor is None and client is None


def _share_keyboard(lang: str) -> ReplyKeyboardMarkup:
    share = KeyboardButton(text=t("client.request.share", lang), request_contact=True)
    return ReplyKeyboardMarkup(keyboard=[[share]], resize_keyboard=True, one_time_keyboard=True)


async def request_offer(message: Message, state: FSMContext, lang: str) -> None:
    """A stranger's /start (or first words): what the bot can do for them."""
    if await state.get_state() == RequestForm.sent.state:
        return  # their request is in: one answer was enough
    await state.set_state(RequestForm.contact)
    await message.answer(t("client.request.offer", lang), reply_markup=_share_keyboard(lang))


async def request_contact(message: Message, state: FSMContext, lang: str) -> None:
    """The shared contact: their own only (a forwarded card of someone else is re-asked)."""
    user, contact = message.from_user, message.contact
    if user is None or contact is None or contact.user_id != user.id:
        await message.answer(
            t("client.request.own_contact", lang), reply_markup=_share_keyboard(lang)
        )
        return
    name = " ".join(x for x in (contact.first_name, contact.last_name) if x)
    await state.update_data(phone=contact.phone_number, name=name or user.first_name)
    await state.set_state(RequestForm.need)
    await message.answer(t("client.request.ask_need", lang), reply_markup=ReplyKeyboardRemove())


async def request_contact_again(message: Message, lang: str) -> None:
    await message.answer(t("client.request.own_contact", lang), reply_markup=_share_keyboard(lang))


async def request_need(
    message: Message,
    state: FSMContext,
    lang: str,
    settings: RequestSettings,
    uow_factory: UnitOfWorkFactory,
    client_request_limiter: RateLimiter,
) -> None:
    """What they need: the lead (or the open lead of their phone), and one answer. A person
    over the limit (a flood, a second request within the window) gets no lead and no
    second answer."""
    user = message.from_user
    if user is None:
        return
    try:  # too long: said and asked again, before it counts as their request
        validation.optional_text(message.text, "need")
    except ValidationError as exc:
        await message.answer(error_text(exc, lang))
        return
    data = await state.get_data()
    decision = await client_request_limiter.hit(f"client-request:{user.id}")
    await state.set_state(RequestForm.sent)
    if not decision.allowed:
        log.info("request from Telegram id %s not taken: %s this window", user.id, decision.count)
        return
    name = str(data.get("name") or user.first_name)
    for attempt in (name, f"Telegram {user.id}"):  # a name the rules refuse: their id
        try:
            await leave_request(
                uow_factory,
                attempt,
                str(data.get("phone") or ""),
                message.text,
                manager_telegram_ids=settings.intake_manager_ids,
            )
        except InvalidSubmission as exc:
            log.info("request from Telegram id %s refused: %s", user.id, exc.errors)
            if set(exc.errors) == {"name"}:
                continue
            break
        await message.answer(t("client.request.received", lang))
        return
    await message.answer(t("client.request.refused", lang))


async def request_need_again(message: Message, lang: str) -> None:
    await message.answer(t("client.request.ask_need", lang))


async def request_sent(message: Message) -> None:
    """Anything after the request went in: no second answer."""


# --- assembly ---------------------------------------------------------------------------------


def setup() -> tuple[Router, Router, Router]:
    """Fresh routers for one Dispatcher: links (before the staff invites), clients and
    requests (both before the strangers' catch-all)."""
    links = Router(name="client_links")
    links.message.register(
        open_invite, CommandStart(deep_link=True, magic=F.args.regexp(invites.PAYLOAD_RE))
    )

    clients = client_router("clients")
    clients.message.register(start, CommandStart())
    clients.callback_query.register(screen_of, ClientCb.filter())
    # More of the client's handlers (answers to stage messages: handlers/clients/answers.py)
    # register on `clients` here, before its catch-alls below.
    clients.message.register(client_text)
    clients.callback_query.register(client_stale)

    requests = Router(name="client_requests")
    requests.message.filter(RequestsOpen())
    requests.message.register(request_offer, CommandStart(deep_link=False))
    requests.message.register(request_contact, RequestForm.contact, F.contact)
    requests.message.register(request_contact_again, RequestForm.contact)
    requests.message.register(request_need, RequestForm.need, F.text)
    requests.message.register(request_need_again, RequestForm.need)
    requests.message.register(request_sent, RequestForm.sent)
    requests.message.register(request_offer)
    return links, clients, requests
