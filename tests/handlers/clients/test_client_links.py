"""Linking a client's Telegram (issue 25) through the real dispatcher: 📲 Invite the client on
the card gives a QR code and a one-time link; the client opening it is linked, greeted and
shown their orders, and the deal's timeline says so. A used, expired or unknown link, a
staff member, or a manager without the right to the deal links nobody and changes nothing."""

from __future__ import annotations

from sqlalchemy import select

from handlers.ui.callbacks import DealAction, DealCb
from storage.models import ClientInvite, ClientLink
from tests.client_kit import invite, new_client, open_link
from tests.factories import count, deal_row, new_deal, plain
from tests.tg import tg_user

USED = "⚠️ Эта ссылка уже использована. Попросите менеджера прислать новую."
EXPIRED = "⚠️ Срок действия ссылки истёк. Попросите менеджера прислать новую."
UNKNOWN = "⚠️ Эта ссылка не подходит. Попросите менеджера прислать новую."


async def contact_of(uow_factory, deal_id: int) -> int:
    contact_id = (await deal_row(uow_factory, deal_id)).contact_id
    assert contact_id is not None
    return contact_id


async def links(uow_factory) -> list[tuple[int, int]]:
    async with uow_factory() as uow:
        rows = await uow.session.scalars(select(ClientLink).order_by(ClientLink.id))
        return [(r.contact_id, r.telegram_id) for r in rows]


async def test_the_link_links_the_client_once(harness, uow_factory, team, db_snapshot):
    ann = team["ann"]
    deal = await new_deal(uow_factory, ann, name="Мария Соколова", amount="150000")
    payload, made = await invite(harness, ann, deal.id)
    assert made.alert == "Ссылка для клиента готова"  # a toast, not a chat message
    maria = new_client("Мария")
    opened = await open_link(harness, maria, payload)
    text = plain(opened.texts[-1])
    assert text.startswith("Здравствуйте, Мария!")
    assert f"Заказ №{deal.id} · Заявка принята" in text
    assert opened.buttons()[0] == (f"📦 Заказ №{deal.id}", f"cl:d:{deal.id}")
    assert await links(uow_factory) == [(await contact_of(uow_factory, deal.id), maria.id)]
    # The deal's history says so (the card's last events).
    card = await harness.send(tg_user(ann.telegram_id), f"/deal {deal.id}")
    assert "Клиент подключил Telegram (Мария)" in card.text

    # Used: neither another person nor the same one links again; nothing changes.
    before = await db_snapshot()
    for who in (new_client("Пётр"), maria):
        again = await open_link(harness, who, payload)
        assert again.texts == [USED]
    assert await db_snapshot() == before
    # The linked client's /start: their orders again.
    home = await harness.send(maria, "/start")
    assert f"Заказ №{deal.id}" in home.text


async def test_expired_and_unknown_links_link_nobody(
    harness, uow_factory, team, clock, db_snapshot
):
    ann = team["ann"]
    deal = await new_deal(uow_factory, ann)
    payload, _ = await invite(harness, ann, deal.id)
    clock.advance(hours=72, seconds=1)  # CLIENT_INVITE_TTL_HOURS, default 72
    before = await db_snapshot()
    maria = new_client()
    assert (await open_link(harness, maria, payload)).texts == [EXPIRED]
    made_up = "c_" + "A" * 32
    assert (await open_link(harness, maria, made_up)).texts == [UNKNOWN]
    assert await db_snapshot() == before
    assert await links(uow_factory) == []
    # Not a client: the polite refusal for strangers.
    assert "доступ только по приглашению" in (await harness.send(maria, "/start")).text


async def test_an_english_client_reads_english(harness, uow_factory, team):
    ann = team["ann"]
    deal = await new_deal(uow_factory, ann, name="Mary Smith")
    payload, _ = await invite(harness, ann, deal.id)
    opened = await open_link(harness, new_client("Mary", lang="en"), payload)
    text = plain(opened.texts[-1])
    assert text.startswith("Hello, Mary!") and f"Order #{deal.id} · Request received" in text
    assert not any("\u0400" <= ch <= "\u04ff" for ch in text), text
    used = await open_link(harness, new_client("John", lang="en"), payload)
    assert used.texts == [
        "⚠️ This link has been used already. Please ask your manager for a new one."
    ]


async def test_staff_are_never_made_clients(harness, uow_factory, team, db_snapshot):
    ann, bob = team["ann"], team["bob"]
    deal = await new_deal(uow_factory, ann)
    payload, _ = await invite(harness, ann, deal.id)
    before = await db_snapshot()
    refused = await open_link(harness, tg_user(bob.telegram_id), payload)
    assert refused.texts == [
        "⚠️ Вы сотрудник компании: ссылка для клиента не делает вас клиентом. Откройте меню: /menu"
    ]
    assert await db_snapshot() == before  # the invite is still unused
    # Bob cannot make one for Ann's deal either (the service checks the right to the deal).
    denied = await harness.tap(
        tg_user(bob.telegram_id), DealCb(action=DealAction.INVITE_CLIENT, deal_id=deal.id)
    )
    assert denied.alert == "⚠️ Нет доступа." and not denied.texts
    assert await count(uow_factory, ClientInvite) == 1
    # The real client still can.
    maria = new_client()
    assert f"Заказ №{deal.id}" in (await open_link(harness, maria, payload)).text


async def test_a_fresh_invite_moves_the_contact_to_the_newer_account(harness, uow_factory, team):
    """A contact has one account: a new invite, opened from another Telegram, moves it there
    (the manager's word that this is now the client's Telegram); the old account then sees
    nothing of it."""
    ann = team["ann"]
    deal = await new_deal(uow_factory, ann)
    first, _ = await invite(harness, ann, deal.id)
    old, new = new_client("Мария"), new_client("Маша")
    await open_link(harness, old, first)
    second, _ = await invite(harness, ann, deal.id)
    moved = await open_link(harness, new, second)
    assert f"Заказ №{deal.id}" in moved.text
    assert await links(uow_factory) == [(await contact_of(uow_factory, deal.id), new.id)]
    assert "доступ только по приглашению" in (await harness.send(old, "/start")).text
    async with uow_factory() as uow:
        used = (await uow.session.scalars(select(ClientInvite).order_by(ClientInvite.id))).all()
    assert [i.used_by_telegram_id for i in used] == [old.id, new.id]
