"""A request from a stranger (issue 25, CLIENT_REQUESTS), through the real dispatcher: off by
default (the polite refusal); on, a stranger shares their own phone and says what they need,
and it becomes a lead (source Telegram) through the intake's path: dedupe by phone, the
manager told. A flood of 100 strangers, each sending their request three times at once,
makes one lead each and answers each of them once."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from aiogram.methods import SendMessage
from aiogram.types import Contact, ReplyKeyboardMarkup, User
from sqlalchemy import select

from bot.app import build_dispatcher
from storage.enums import ActivityKind
from storage.models import Activity, Lead, Reminder
from tests.client_kit import new_client
from tests.factories import count, new_lead, next_phone
from tests.tg import BotHarness, RecordingSession, make_bot, make_settings

OFFER = "Здравствуйте! Оставьте заявку — менеджер свяжется с вами."
ASK_NEED = "Спасибо! Напишите одним сообщением, что вам нужно"
RECEIVED = "✅ Заявка принята. Менеджер свяжется с вами в ближайшее время."


@pytest.fixture
def open_bot(db_url, uow_factory, clock) -> BotHarness:
    """The dispatcher with CLIENT_REQUESTS on."""
    session = RecordingSession()
    settings = make_settings(db_url, client_requests=True)
    return BotHarness(build_dispatcher(settings, uow_factory, clock), make_bot(session), session)


async def share(bot: BotHarness, user: User, phone: str, own: bool = True):
    contact = Contact(
        phone_number=phone,
        first_name=user.first_name,
        user_id=user.id if own else user.id + 1,
    )
    return await bot.send_message(user, contact=contact)


async def test_off_by_default_strangers_are_refused(harness, uow_factory, team):
    got = await harness.send(new_client(), "/start")
    assert "доступ только по приглашению" in got.text
    assert await count(uow_factory, Lead) == 0


async def test_a_request_becomes_a_lead_for_a_manager(open_bot, uow_factory, team):
    olga, phone = new_client("Ольга"), next_phone()
    offer = await open_bot.send(olga, "/start")
    assert offer.text.startswith(OFFER)
    keyboard = offer.last.reply_markup
    assert isinstance(keyboard, ReplyKeyboardMarkup) and keyboard.keyboard[0][0].request_contact
    # Someone else's contact card is not a request of theirs: asked again, nothing saved.
    other = await share(open_bot, olga, phone, own=False)
    assert other.text.startswith("Нажмите кнопку «📱 Оставить заявку: мой номер»")
    asked = await share(open_bot, olga, phone)
    assert asked.text.startswith(ASK_NEED)
    done = await open_bot.send(olga, "Балкон под ключ, 6 метров")
    assert done.texts == [RECEIVED]
    async with uow_factory() as uow:
        [lead] = (await uow.session.scalars(select(Lead))).all()
        notices = (await uow.session.scalars(select(Reminder))).all()
    assert (lead.source, lead.phone, lead.name) == ("telegram", phone, "Ольга")
    assert lead.need == "Балкон под ключ, 6 метров"
    assert lead.manager_id == team["ann"].id  # the intake's round-robin
    assert [(n.kind, n.recipient_id) for n in notices] == [("lead.new", team["ann"].id)]
    # Afterwards: no second answer, no second lead.
    for text in ("/start", "Алло?", "Балкон под ключ, 6 метров"):
        assert (await open_bot.send(olga, text)).texts == []
    assert await count(uow_factory, Lead) == 1


async def test_a_name_the_rules_refuse_and_a_need_too_long(open_bot, uow_factory, team):
    """A Telegram name with no letter or digit is no reason to lose the request (the lead
    is named by the Telegram id); a need over the limit is said and asked again."""
    star = new_client("⭐")
    await open_bot.send(star, "/start")
    await share(open_bot, star, next_phone())
    too_long = await open_bot.send(star, "о" * 3001)
    assert too_long.text.startswith("⚠️") and await count(uow_factory, Lead) == 0
    assert (await open_bot.send(star, "Окна")).texts == [RECEIVED]
    async with uow_factory() as uow:
        [lead] = (await uow.session.scalars(select(Lead))).all()
    assert lead.name == f"Telegram {star.id}"


async def test_a_known_phone_adds_to_its_open_lead(open_bot, uow_factory, team):
    """The same dedupe by phone as every channel: the open lead gets the request."""
    phone = next_phone()
    known = await new_lead(uow_factory, team["ann"], phone=phone)
    olga = new_client("Ольга")
    await open_bot.send(olga, "/start")
    await share(open_bot, olga, phone)
    assert (await open_bot.send(olga, "Ещё и дверь")).texts == [RECEIVED]
    assert await count(uow_factory, Lead) == 1
    async with uow_factory() as uow:
        rows = (
            await uow.session.scalars(
                select(Activity).where(Activity.lead_id == known.id, Activity.kind == "intake")
            )
        ).all()
    repeats = [r for r in rows if (r.payload or {}).get("repeat")]
    assert [(r.kind, r.text, (r.payload or {}).get("form")) for r in repeats] == [
        (ActivityKind.INTAKE.value, "Ещё и дверь", "telegram-bot")
    ]


async def test_a_flood_makes_one_lead_each_and_answers_nobody_twice(open_bot, uow_factory, team):
    people = [new_client(f"Гость{i}") for i in range(100)]
    phones = {p.id: next_phone() for p in people}
    for person in people:
        await open_bot.send(person, "/start")
        await share(open_bot, person, phones[person.id])
    sent_before = len(open_bot.session.requests)
    # Each sends their request three times at once; all 300 updates run together.
    await asyncio.gather(*(open_bot.send(p, f"Окна, {n}") for p in people for n in range(3)))
    async with uow_factory() as uow:
        leads = (await uow.session.scalars(select(Lead))).all()
    assert sorted(lead.phone for lead in leads) == sorted(phones.values())  # one lead each
    answers = [r for r in open_bot.session.requests[sent_before:] if isinstance(r, SendMessage)]
    per_chat = Counter(r.chat_id for r in answers)
    assert per_chat == {p.id: 1 for p in people}  # everyone answered, nobody twice
    assert {r.text for r in answers} == {RECEIVED}
    all_sent = Counter(r.chat_id for r in open_bot.session.requests if isinstance(r, SendMessage))
    assert set(all_sent.values()) == {3}  # the offer, "what do you need?", "received"


def test_the_limit_is_shared_through_redis_when_the_fsm_is_there(clock):
    """Several workers (webhook mode with Redis) count one person's requests together."""
    from bot.app import client_request_limiter
    from storage.ratelimit import MemoryRateLimiter, RedisRateLimiter

    class RedisFsm:
        redis = object()

    shared = client_request_limiter(RedisFsm(), clock)  # type: ignore[arg-type]
    assert isinstance(shared, RedisRateLimiter) and shared.limit == 1
    assert shared.prefix == "voronka:client:request" and shared.window == 3600
    alone = client_request_limiter(None, clock)
    assert isinstance(alone, MemoryRateLimiter) and alone.limit == 1
