"""Client chats through Telegram Business (issue 12), fed through the real dispatcher as
Telegram sends them: `business_connection`, `business_message`, `edited_business_message`,
`deleted_business_messages`. A stranger becomes a lead, a known client's messages land on
their deal, the manager replies from the card through the connection, and everything that
should not be read or answered is refused with nothing saved."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime

import pytest
from aiogram.methods import EditMessageText, SendMessage
from aiogram.types import (
    BusinessBotRights,
    BusinessConnection,
    BusinessMessagesDeleted,
    Chat,
    Contact,
    Message,
    PhotoSize,
    Update,
    User,
    Voice,
)
from sqlalchemy import select

from handlers.ui.callbacks import DealAction, DealCb, TimelineCb
from services.errors import PermissionDenied
from services.policy import CompanyPolicy
from services.sales import deals
from services.sales import timeline as timelines
from storage.models import Activity, BusinessChat, Lead
from storage.models import Contact as ContactRow
from tests.factories import cast, new_deal
from tests.tg import tg_user

CLIENT_ID = 777_000_111
_ids = itertools.count(50_000)


def plain(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


def connection(manager, conn_id="bc-ann", *, enabled=True, can_reply=True, user_id=None):
    user = User(id=user_id or manager.telegram_id, is_bot=False, first_name=manager.name)
    return Update(
        update_id=next(_ids),
        business_connection=BusinessConnection(
            id=conn_id,
            user=user,
            user_chat_id=user.id,
            date=datetime.now(UTC),
            is_enabled=enabled,
            rights=BusinessBotRights(can_reply=can_reply),
        ),
    )


def client_msg(conn_id="bc-ann", *, client=CLIENT_ID, sender=None, edited=False, mid=None, **f):
    who = sender or User(
        id=client, is_bot=False, first_name="Олег", last_name="Ким", username="oleg"
    )
    msg = Message(
        message_id=mid or next(_ids),
        date=datetime.now(UTC),
        chat=Chat(id=client, type="private", first_name="Олег"),
        from_user=who,
        business_connection_id=conn_id,
        **f,
    )
    if edited:
        return Update(update_id=next(_ids), edited_business_message=msg)
    return Update(update_id=next(_ids), business_message=msg)


def deleted(conn_id, message_ids, client=CLIENT_ID):
    return Update(
        update_id=next(_ids),
        deleted_business_messages=BusinessMessagesDeleted(
            business_connection_id=conn_id,
            chat=Chat(id=client, type="private"),
            message_ids=message_ids,
        ),
    )


async def rows(uow_factory, **where) -> list[Activity]:
    async with uow_factory() as uow:
        stmt = select(Activity).order_by(Activity.id)
        for key, value in where.items():
            stmt = stmt.where(getattr(Activity, key) == value)
        return list((await uow.session.scalars(stmt)).all())


async def known_by_telegram(uow_factory, deal_id: int) -> int:
    """The deal's contact is known by the client's Telegram user id; its id."""
    async with uow_factory() as uow:
        contact_id = (await uow.repo.deals.with_client(deal_id)).contact_id
        (await uow.repo.get(ContactRow, contact_id)).telegram_id = CLIENT_ID
        await uow.commit()
    return contact_id


@pytest.fixture
async def staff(make_actor):
    return await cast(make_actor, "ann", "bob", "lee", "mia")


async def test_connect_then_a_stranger_becomes_a_lead_and_talks_on(harness, uow_factory, staff):
    ann = staff["ann"]
    told = await harness.feed(connection(ann))
    [note] = told.of(SendMessage)
    assert note.chat_id == ann.telegram_id and "Voronka подключена" in note.text
    assert "в течение 24 часов" in note.text  # it may reply: says so

    first = await harness.feed(client_msg(text="Здравствуйте, нужны окна на дачу"))
    async with uow_factory() as uow:
        [lead] = (await uow.session.scalars(select(Lead))).all()
    assert (lead.source, lead.name, lead.need, lead.manager_id) == (
        "telegram",
        "Олег Ким",
        "Здравствуйте, нужны окна на дачу",
        ann.id,
    )
    [news] = first.of(SendMessage)
    assert news.chat_id == ann.telegram_id and "Новый лид из Telegram: Олег Ким" in news.text
    opened = await harness.tap(tg_user(ann.telegram_id), first.button("Открыть лид"), first)
    assert "Олег Ким" in opened.last.text

    photo = [PhotoSize(file_id="cl-photo", file_unique_id="u1", width=800, height=600)]
    await harness.feed(client_msg(photo=photo, caption="вот проём"))
    voice = Voice(file_id="cl-voice", file_unique_id="u2", duration=3)
    await harness.feed(client_msg(voice=voice))
    async with uow_factory() as uow:
        assert len((await uow.session.scalars(select(Lead))).all()) == 1  # no second lead
    kept = await rows(uow_factory, lead_id=lead.id, kind="msg_in")
    assert [(r.media_type, r.file_id, r.caption) for r in kept] == [
        (None, None, None),
        ("photo", "cl-photo", "вот проём"),
        ("voice", "cl-voice", None),
    ]
    assert all(r.chat_id == CLIENT_ID for r in kept)


async def test_a_known_client_lands_on_the_deal_edits_deletions_and_a_reply(
    harness, uow_factory, clock, staff
):
    ann = staff["ann"]
    deal = await new_deal(uow_factory, ann, amount="1000")
    await harness.feed(connection(ann))
    # known by the phone they share in the chat
    assert deal.phone is not None
    shared = Contact(phone_number=deal.phone, first_name="Иван", user_id=CLIENT_ID)
    await harness.feed(client_msg(contact=shared))
    async with uow_factory() as uow:
        found = await uow.session.scalars(select(Lead).where(Lead.source == "telegram"))
        assert found.all() == []  # not a stranger: no lead
    hello = await harness.feed(client_msg(text="Когда замер?", mid=900))
    assert not hello.of(SendMessage)  # a known client: no "new lead" notice
    await harness.feed(client_msg(text="Когда замер? В субботу можно?", mid=900, edited=True))
    await harness.feed(deleted("bc-ann", [900]))

    on_deal = await rows(uow_factory, deal_id=deal.id)
    kinds = [(r.kind, r.text) for r in on_deal if r.kind.startswith("msg")]
    assert kinds == [
        ("msg_in", ""),
        ("msg_in", "Когда замер?"),
        ("msg_edited", "Когда замер? В субботу можно?"),
        ("msg_deleted", "Когда замер?"),
    ]
    async with uow_factory() as uow:
        contact = await uow.repo.get(ContactRow, on_deal[0].contact_id)
    assert contact.telegram_id == CLIENT_ID  # known by user id from now on

    u_ann = tg_user(ann.telegram_id)
    card = await harness.send(u_ann, f"/deal {deal.id}")
    assert "💬 Сообщения: 2" in plain(card.last.text)
    assert "✏️ Клиент исправил сообщение: Когда замер? В субботу можно?" in plain(card.last.text)
    ask = await harness.tap(u_ann, card.button("Ответить"), card)
    assert "Напишите ответ клиенту" in ask.last.text
    sent = await harness.send(u_ann, "Да, в субботу в 11:00 <подходит?>")
    out = [r for r in sent.of(SendMessage) if r.chat_id == CLIENT_ID]
    assert len(out) == 1 and out[0].business_connection_id == "bc-ann"
    assert out[0].text == "Да, в субботу в 11:00 &lt;подходит?&gt;"
    [reply] = await rows(uow_factory, deal_id=deal.id, kind="msg_out")
    assert (reply.text, reply.author_id, reply.chat_id) == (
        "Да, в субботу в 11:00 <подходит?>",
        ann.id,
        CLIENT_ID,
    )
    assert "↪️ Ann: Ответ клиенту: Да, в субботу" in plain(sent.of(EditMessageText)[0].text)

    # the manager's own message typed in Telegram is recorded as a reply too
    me = User(id=ann.telegram_id, is_bot=False, first_name="Ann")
    await harness.feed(client_msg(sender=me, text="Адрес пришлите, пожалуйста"))
    assert len(await rows(uow_factory, deal_id=deal.id, kind="msg_out")) == 2

    # the reply window: 24 hours after the client's last message
    clock.advance(hours=25)
    card = await harness.send(u_ann, f"/deal {deal.id}")
    late = await harness.tap(u_ann, card.button("Ответить"), card)
    assert "больше 24 часов назад" in late.alert
    assert not [r for r in late.of(SendMessage) if "Напишите ответ" in r.text]


async def test_replies_refused_when_the_bot_may_not_reply_or_is_disconnected(
    harness, uow_factory, staff, db_snapshot
):
    ann = staff["ann"]
    deal = await new_deal(uow_factory, ann, amount="1000")
    await known_by_telegram(uow_factory, deal.id)
    await harness.feed(connection(ann, can_reply=False))
    await harness.feed(client_msg(text="Добрый день"))
    assert [r.text for r in await rows(uow_factory, deal_id=deal.id, kind="msg_in")] == [
        "Добрый день"
    ]
    u_ann = tg_user(ann.telegram_id)
    card = await harness.send(u_ann, f"/deal {deal.id}")
    refused = await harness.tap(u_ann, card.button("Ответить"), card)
    assert "не разрешено отвечать" in refused.alert

    off = await harness.feed(connection(ann, enabled=False))
    assert "отключена" in off.of(SendMessage)[0].text
    before = await db_snapshot()
    ignored = await harness.feed(client_msg(text="Вы тут?"))
    assert ignored.requests == [] and await db_snapshot() == before  # stopped at once
    refused = await harness.tap(u_ann, card.button("Ответить"), card)
    assert "Telegram Business отключён" in refused.alert


async def test_forged_foreign_and_switched_off_are_refused(
    harness, uow_factory, staff, db_snapshot
):
    ann, bob = staff["ann"], staff["bob"]
    await harness.feed(connection(ann))
    before = await db_snapshot()
    for update in (
        client_msg("bc-forged", text="Здравствуйте"),  # a connection nobody made
        client_msg("", text="Здравствуйте"),
        connection(bob, "bc-ann"),  # Bob claiming Ann's connection id
        deleted("bc-forged", [1, 2]),
        client_msg("bc-forged", text="x", edited=True),
    ):
        await harness.feed(update)
        assert await db_snapshot() == before
    # someone who is not staff connects the bot: recorded disabled, never read
    stranger = await harness.feed(connection(ann, "bc-x", user_id=555))
    assert "только для приглашённых" in stranger.of(SendMessage)[0].text
    mid = await db_snapshot()
    await harness.feed(client_msg("bc-x", text="Привет"))
    assert await db_snapshot() == mid

    # the company turned capture off: nothing is recorded
    uow_factory.policy = CompanyPolicy(business_capture=False)
    try:
        await harness.feed(client_msg(text="Здравствуйте"))
        assert await db_snapshot() == mid
    finally:
        uow_factory.policy = None


async def test_only_the_deals_manager_and_leaders_read_the_chat(harness, uow_factory, staff):
    ann, bob, lee, mia = staff["ann"], staff["bob"], staff["lee"], staff["mia"]
    deal = await new_deal(uow_factory, ann, amount="1000")
    contact_id = await known_by_telegram(uow_factory, deal.id)
    await harness.feed(connection(ann))
    await harness.feed(client_msg(text="Секретная цена 90 000"))

    chat = TimelineCb(subject="d", subject_id=deal.id, f="c")
    shown = await harness.tap(tg_user(lee.telegram_id), chat)
    assert "Секретная цена" in shown.last.text  # a leader reads it
    for who in (bob, mia):
        refused = await harness.tap(tg_user(who.telegram_id), chat)
        assert refused.alert and not refused.of(EditMessageText)
        reply = await harness.tap(
            tg_user(who.telegram_id), DealCb(action=DealAction.REPLY, deal_id=deal.id)
        )
        assert reply.alert and not reply.of(SendMessage)
    async with uow_factory() as uow:
        with pytest.raises(PermissionDenied):
            await timelines.contact_timeline(uow, bob, contact_id)
        seen = await timelines.contact_timeline(uow, ann, contact_id)
    assert [e.text for e in seen.items] == ["Секретная цена 90 000"]
    # a leader reads, but replies go through the manager's own account: not hers
    lee_card = await harness.send(tg_user(lee.telegram_id), f"/deal {deal.id}")
    assert not any("Ответить" in text for text, _ in lee_card.buttons())
    forged = await harness.tap(
        tg_user(lee.telegram_id), DealCb(action=DealAction.REPLY, deal_id=deal.id, v=deal.version)
    )
    assert forged.alert and not [r for r in forged.of(SendMessage) if r.chat_id == CLIENT_ID]


async def test_a_manager_stops_recording_a_chat(harness, uow_factory, staff, db_snapshot):
    ann = staff["ann"]
    deal = await new_deal(uow_factory, ann, amount="1000")
    await known_by_telegram(uow_factory, deal.id)
    await harness.feed(connection(ann))
    await harness.feed(client_msg(text="Личное"))
    u_ann = tg_user(ann.telegram_id)
    card = await harness.send(u_ann, f"/deal {deal.id}")
    done = await harness.tap(u_ann, card.button("Не записывать"), card)
    assert "больше не записывается" in done.last.text
    async with uow_factory() as uow:
        [chat] = (await uow.session.scalars(select(BusinessChat))).all()
    assert chat.excluded
    before = await db_snapshot()
    await harness.feed(client_msg(text="Ещё личное"))
    await harness.feed(deleted("bc-ann", [1]))
    assert await db_snapshot() == before


async def test_the_used_update_types_include_business(harness):
    used = set(harness.dp.resolve_used_update_types())
    assert {
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
    } <= used


async def test_a_client_with_only_closed_deals_lands_on_the_newest(harness, uow_factory, staff):
    ann = staff["ann"]
    deal = await new_deal(uow_factory, ann, amount="1000")
    async with uow_factory() as uow:
        await deals.lose(uow, ann, deal.id, "expensive")
    await known_by_telegram(uow_factory, deal.id)
    await harness.feed(connection(ann))
    await harness.feed(client_msg(text="Я передумал, давайте всё-таки окна"))
    assert [r.text for r in await rows(uow_factory, deal_id=deal.id, kind="msg_in")] == [
        "Я передумал, давайте всё-таки окна"
    ]
    async with uow_factory() as uow:
        assert (
            await uow.session.scalars(select(Lead).where(Lead.source == "telegram"))
        ).all() == []


async def test_a_shared_contact_keeps_its_phone(harness, uow_factory, staff):
    """Issue 20: a stranger's lead has no phone; the client then shares their own contact in
    the chat: the lead keeps the number, and the timeline shows it (not a bare "Client")."""
    ann = staff["ann"]
    await harness.feed(connection(ann))
    await harness.feed(client_msg(text="Здравствуйте"))
    async with uow_factory() as uow:
        [lead] = (await uow.session.scalars(select(Lead))).all()
    assert lead.phone is None
    shared = Contact(phone_number="79161112233", first_name="Олег", user_id=CLIENT_ID)
    await harness.feed(client_msg(contact=shared))
    async with uow_factory() as uow:
        lead = await uow.repo.get(Lead, lead.id)
    assert lead.phone == "+79161112233"
    # someone else's number, shared by the client, is shown but not taken as theirs
    other = Contact(phone_number="79160000000", first_name="Жена", user_id=123)
    await harness.feed(client_msg(contact=other))
    async with uow_factory() as uow:
        assert (await uow.repo.get(Lead, lead.id)).phone == "+79161112233"
    u_ann = tg_user(ann.telegram_id)
    card = await harness.send(u_ann, f"/lead {lead.id}")
    assert "📞 8 (916) 111-22-33" in card.last.text
    history = await harness.tap(u_ann, card.button("История"), card)
    text = plain(history.last.text)
    assert "📞 8 (916) 111-22-33" in text and "📞 8 (916) 000-00-00" in text


# --- issue 21 -----------------------------------------------------------------------------


async def test_an_edit_or_deletion_lands_on_its_own_managers_lead(harness, uow_factory, staff):
    """A client's chat id is the same in every manager's account while message ids are
    numbered per account: Bob's edit and deletion of his message 500 land on Bob's lead,
    not on Ann's (whose message 500 is another one)."""
    ann, bob = staff["ann"], staff["bob"]
    await harness.feed(connection(ann, "bc-ann"))
    await harness.feed(connection(bob, "bc-bob"))
    await harness.feed(client_msg("bc-ann", text="Нужны окна", mid=500))
    await harness.feed(client_msg("bc-bob", text="Бобу: цена 40 000?", mid=777))
    await harness.feed(client_msg("bc-bob", text="Бобу: цена 45 000", mid=500))
    await harness.feed(
        client_msg("bc-bob", text="Бобу: цена 45 000 (исправлено)", mid=500, edited=True)
    )
    await harness.feed(deleted("bc-bob", [500]))
    async with uow_factory() as uow:
        leads = {
            lead.manager_id: lead.id for lead in (await uow.session.scalars(select(Lead))).all()
        }
    on_ann = [(r.kind, r.text) for r in await rows(uow_factory, lead_id=leads[ann.id])]
    on_bob = [(r.kind, r.text) for r in await rows(uow_factory, lead_id=leads[bob.id])]
    assert [k for k in on_ann if k[0].startswith("msg")] == [("msg_in", "Нужны окна")]
    assert [k for k in on_bob if k[0].startswith("msg")] == [
        ("msg_in", "Бобу: цена 40 000?"),
        ("msg_in", "Бобу: цена 45 000"),
        ("msg_edited", "Бобу: цена 45 000 (исправлено)"),
        ("msg_deleted", "Бобу: цена 45 000"),
    ]


async def test_a_strangers_long_first_message_is_kept_whole(harness, uow_factory, staff):
    """Over the need's 2,000 characters: the lead is made with the need trimmed with "…",
    the whole message is on its timeline."""
    await harness.feed(connection(staff["ann"]))
    long = "Окна " + "очень " * 600  # 3,605 characters
    await harness.feed(client_msg(text=long))
    async with uow_factory() as uow:
        [lead] = (await uow.session.scalars(select(Lead))).all()
    assert len(lead.need) == 2000 and lead.need.endswith("…")
    assert long.startswith(lead.need[:-1])
    [kept] = await rows(uow_factory, lead_id=lead.id, kind="msg_in")
    assert kept.text == long


async def test_a_business_update_that_cannot_be_recorded_is_logged_and_kept(
    harness, uow_factory, staff, db_snapshot, caplog, monkeypatch
):
    """Whatever fails while recording a Business update: ERROR with its update id, nothing
    saved, its id not marked applied, and the failure escapes the dispatcher (the webhook
    answers 500, Telegram delivers it again) -- never a silent acknowledgement."""
    from services.errors import ValidationError
    from services.sales import leads

    await harness.feed(connection(staff["ann"]))
    before = await db_snapshot()

    async def refuse(*args, **kwargs):
        raise ValidationError("need", "too_long", max=2000)

    monkeypatch.setattr(leads, "insert_lead", refuse)
    update = client_msg(text="Здравствуйте")
    with pytest.raises(ValidationError):
        await harness.feed(update)
    failed = [r for r in caplog.records if r.levelname == "ERROR"]
    assert failed and str(update.update_id) in failed[0].getMessage()
    assert await db_snapshot() == before
    async with uow_factory.peek() as uow:
        assert not await uow.peek_update(update.update_id)
    monkeypatch.undo()
    await harness.feed(update)  # the retry
    async with uow_factory() as uow:
        assert len((await uow.session.scalars(select(Lead))).all()) == 1


async def test_whose_business_chats_are_captured_is_a_setting(
    harness, uow_factory, staff, db_snapshot
):
    """Default: managers, leaders, admins. A measurer is told their chats are not read and
    nothing of theirs is recorded; a stranger writing to a leader is the leader's lead."""
    mia, lee = staff["mia"], staff["lee"]
    told = await harness.feed(connection(mia, "bc-mia"))
    assert "не записывает чаты" in told.of(SendMessage)[0].text
    before = await db_snapshot()
    quiet = await harness.feed(client_msg("bc-mia", text="Здравствуйте, сколько стоит?"))
    assert await db_snapshot() == before and not quiet.of(SendMessage)

    await harness.feed(connection(lee, "bc-lee"))
    await harness.feed(client_msg("bc-lee", text="Мне окна", client=CLIENT_ID + 1))
    async with uow_factory() as uow:
        [lead] = (await uow.session.scalars(select(Lead))).all()
    assert lead.manager_id == lee.id

    # leaders' chats off: a leader connecting is told so, nothing more is recorded
    uow_factory.policy = CompanyPolicy(business_roles=frozenset({"manager"}))
    try:
        told = await harness.feed(connection(lee, "bc-lee"))
        assert "не записывает чаты" in told.of(SendMessage)[0].text
        mid = await db_snapshot()
        await harness.feed(client_msg("bc-lee", text="Ещё вопрос", client=CLIENT_ID + 1))
        await harness.feed(client_msg("bc-lee", text="Новый", client=CLIENT_ID + 2))
        assert await db_snapshot() == mid
    finally:
        uow_factory.policy = None


async def test_a_stranger_writing_to_a_manager_off_today_goes_to_one_on_duty(
    harness, uow_factory, staff
):
    """Issue 26: Ann is off today, so the distribution gives her new client to Bob; her own
    reply in that chat later is still the lead's first touch."""
    from services.team import distribution

    ann, bob, lee = staff["ann"], staff["bob"], staff["lee"]
    async with uow_factory() as uow:
        await distribution.set_absence(uow, lee, ann.id, distribution.today(uow))
    await harness.feed(connection(ann))
    await harness.feed(client_msg(text="Нужны окна"))
    async with uow_factory() as uow:
        [lead] = (await uow.session.scalars(select(Lead))).all()
    assert (lead.manager_id, lead.first_action_at) == (bob.id, None)
    me = User(id=ann.telegram_id, is_bot=False, first_name="Анна")
    await harness.feed(client_msg(sender=me, text="Здравствуйте! Перезвоню в 10"))
    async with uow_factory() as uow:
        assert (await uow.session.get(Lead, lead.id)).first_action_at is not None
