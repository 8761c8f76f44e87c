"""The client's answers through the real dispatcher (issue 25): the messages the outbox
delivers to a linked client's chat, Confirm, Reschedule (a typed time said back, then a task
for the manager), accepting the work and the stars, remarks that become a claim, /stop;
forged buttons (another client's deal, a stale stage, staff, a stranger) change nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiogram.methods import SendMessage
from sqlalchemy import select

from handlers.ui.callbacks import ClientAnswer, ClientAnswerCb
from services.sales import deals
from storage.enums import ActivityKind, TaskKind
from storage.models import Activity, ClientLink, Deal, Reminder
from tests.factories import (
    count,
    deliver,
    link_client,
    measurer_assigned,
    new_deal,
    open_tasks,
    order_at_installation,
    plain,
    stage_code,
)
from tests.tg import Sent, tg_user

IVAN = 700_000_001
OLGA = 700_000_002


def to_chat(sent: list[Sent], chat_id: int) -> Sent:
    mine = [s for s in sent if isinstance(s.last, SendMessage) and s.last.chat_id == chat_id]
    assert len(mine) == 1, [getattr(s.last, "chat_id", None) for s in sent]
    return mine[0]


async def answers(uow_factory, deal_id: int) -> list[dict[str, Any]]:
    async with uow_factory() as uow:
        rows = await uow.session.scalars(
            select(Activity)
            .where(Activity.deal_id == deal_id, Activity.kind == ActivityKind.CLIENT_IN.value)
            .order_by(Activity.id)
        )
        return [{**(r.payload or {}), "text": r.text} for r in rows.all()]


async def measurement_booked(harness, uow_factory, clock, ann, telegram_id=IVAN, name="Ivan"):
    """A deal of Ann's with a linked client, moved to Measurement scheduled; the client's
    message as delivered: (deal id, the message)."""
    card = await new_deal(uow_factory, ann, name=f"{name} Petrov", amount="150000")
    await link_client(uow_factory, card.id, telegram_id, name)
    async with uow_factory() as uow:
        card = await deals.advance(uow, ann, card.id, card.version)
    fields = {"measurement_at": clock.now() + timedelta(days=2), "address": "ул. Мира, 1"}
    async with uow_factory() as uow:
        await deals.advance(uow, ann, card.id, card.version, fields=fields)
    return card.id, to_chat(await deliver(harness, uow_factory, clock), telegram_id)


async def test_the_client_confirms_the_measurement_once(harness, uow_factory, clock, team):
    deal_id, msg = await measurement_booked(harness, uow_factory, clock, team["ann"])
    text = plain(msg.text)
    # 2026-01-14 12:00 in Moscow, in words; client words only
    assert "Замер назначен: ср, 14 января, 12:00, адрес: ул. Мира, 1" in text, text
    assert [t for t, _ in msg.buttons()] == ["✅ Подтверждаю", "🗓 Перенести"]
    u_ivan = tg_user(IVAN, "Ivan")
    done = await harness.tap(u_ivan, msg.button("Подтверждаю"), msg)
    assert done.alert == "Спасибо, ждём вас!"
    assert "✅ Вы подтвердили" in done.text and done.last.reply_markup is None
    assert [a["answer"] for a in await answers(uow_factory, deal_id)] == ["confirm"]
    again = await harness.tap(u_ivan, msg.button("Подтверждаю"), msg)
    assert again.alert == "⚠️ Уже учтено, спасибо."
    assert len(await answers(uow_factory, deal_id)) == 1
    # The manager reads it on the deal's history, in their words.
    history = await harness.send(tg_user(team["ann"].telegram_id), f"/deal {deal_id}")
    assert "Клиент подтвердил время" in history.text


async def test_a_reschedule_is_said_back_and_lands_as_a_task_for_the_manager(
    harness, uow_factory, clock, team
):
    deal_id, msg = await measurement_booked(harness, uow_factory, clock, team["ann"])
    u_ivan = tg_user(IVAN, "Ivan")
    asked = await harness.tap(u_ivan, msg.button("Перенести"), msg)
    assert "Когда вам удобно?" in asked.text
    day = await harness.send(u_ivan, "пятница")
    assert "в какое время?" in day.text
    said = await harness.send(u_ivan, "15:00")
    assert plain(said.text) == "Предложить пт, 16 января, 15:00?"
    assert await open_tasks(uow_factory, deal_id, TaskKind.CALL_BACK) == []  # not yet
    sent = await harness.tap(u_ivan, said.button("Да, предложить"), said)
    assert "Передали менеджеру: пт, 16 января, 15:00" in sent.text
    [task] = await open_tasks(uow_factory, deal_id, TaskKind.CALL_BACK)
    assert task.assignee_id == team["ann"].id and task.comment == "пятница 15:00"
    assert task.payload["proposed"] == "2026-01-16T12:00:00+00:00"
    [row] = await answers(uow_factory, deal_id)
    assert row["answer"] == "reschedule" and row["when"] == "2026-01-16T12:00:00+00:00"
    # Ann gets the task card through the outbox.
    card = to_chat(await deliver(harness, uow_factory, clock), team["ann"].telegram_id)
    assert "Клиент просит перенести" in card.text and "пятница 15:00" in card.text


async def test_forged_and_stale_buttons_change_nothing(
    harness, uow_factory, clock, team, db_snapshot
):
    ivan_deal, _ = await measurement_booked(harness, uow_factory, clock, team["ann"])
    olga_deal, _ = await measurement_booked(
        harness, uow_factory, clock, team["bob"], telegram_id=OLGA, name="Olga"
    )
    before = await db_snapshot()
    u_olga = tg_user(OLGA, "Olga")
    for action in ClientAnswer:  # Olga with buttons naming Ivan's deal
        refused = await harness.tap(u_olga, ClientAnswerCb(action=action, deal_id=ivan_deal, arg=5))
        if action == ClientAnswer.PROPOSE:  # nothing typed in her chat for it
            assert refused.alert == "Уже учтено, спасибо.", action
        else:
            assert refused.alert == "⚠️ Нет доступа.", action
    # Her own deal, but the stage asks no acceptance (and no stars before it).
    for action in (ClientAnswer.ACCEPT, ClientAnswer.REMARKS, ClientAnswer.RATE):
        stale = await harness.tap(u_olga, ClientAnswerCb(action=action, deal_id=olga_deal, arg=5))
        assert stale.alert.startswith("⚠️ Это уже неактуально"), action
    # A deal that does not exist; staff and a stranger tapping a client's button.
    assert (
        await harness.tap(u_olga, ClientAnswerCb(action=ClientAnswer.CONFIRM, deal_id=999))
    ).alert
    for user in (tg_user(team["ann"].telegram_id), tg_user(700_000_099, "Stranger")):
        await harness.tap(user, ClientAnswerCb(action=ClientAnswer.CONFIRM, deal_id=ivan_deal))
    after = await db_snapshot()
    assert len(after.pop("access_attempts")) == 1  # the stranger's tap, logged as ever
    before.pop("access_attempts")
    assert after == before
    assert await answers(uow_factory, ivan_deal) == []


async def test_stop_then_nothing_is_sent_until_start(harness, uow_factory, clock, team):
    ann = team["ann"]
    card = await new_deal(uow_factory, ann, name="Ivan Petrov", amount="150000")
    await link_client(uow_factory, card.id, IVAN, "Ivan")
    u_ivan = tg_user(IVAN, "Ivan")
    stopped = await harness.send(u_ivan, "/stop")
    assert "Больше не будем писать" in stopped.text
    async with uow_factory() as uow:
        card = await deals.advance(uow, ann, card.id, card.version)
    fields = {"measurement_at": clock.now() + timedelta(days=2), "address": "ул. Мира, 1"}
    async with uow_factory() as uow:
        card = await deals.advance(uow, ann, card.id, card.version, fields=fields)
    sent = await deliver(harness, uow_factory, clock)
    assert all(s.last.chat_id != IVAN for s in sent if isinstance(s.last, SendMessage))
    assert await count(uow_factory, Reminder, Reminder.client_link_id.is_not(None)) == 0
    resumed = await harness.send(u_ivan, "/start")
    assert resumed.text == "Сообщения снова включены."
    async with uow_factory() as uow:
        [link] = await uow.repo.client_links.of_telegram(IVAN)
    assert link.stopped_at is None


async def test_the_client_accepts_the_installation_and_rates_it(harness, uow_factory, clock, team):
    ann = team["ann"]
    sale_id, order_id = await order_at_installation(uow_factory, clock, ann)
    await link_client(uow_factory, sale_id, IVAN, "Ivan")
    await deliver(harness, uow_factory, clock)  # what came before
    async with uow_factory() as uow:
        order = await deals.get_card(uow, ann, order_id)
        installed = next(s for s in order.pipeline.stages if s.code == "installed")
        await deals.move_to(uow, ann, order_id, installed.id, order.version)
    msg = to_chat(await deliver(harness, uow_factory, clock), IVAN)
    assert "Монтаж завершён" in msg.text
    assert [t for t, _ in msg.buttons()] == [
        "👍 Всё установлено, претензий нет",
        "✍️ Есть замечания",
    ]
    u_ivan = tg_user(IVAN, "Ivan")
    accepted = await harness.tap(u_ivan, msg.button("претензий нет"), msg)
    assert accepted.text == "Спасибо! Оцените, пожалуйста, нашу работу:"
    assert len(accepted.buttons()) == 5
    rated = await harness.tap(u_ivan, accepted.button("⭐⭐⭐⭐⭐"), accepted)
    assert rated.alert == "Спасибо за оценку!"
    again = await harness.tap(
        u_ivan, ClientAnswerCb(action=ClientAnswer.RATE, deal_id=order_id, arg=1)
    )
    assert again.alert == "⚠️ Уже учтено, спасибо."
    got = await answers(uow_factory, order_id)
    assert [(a["answer"], a.get("stars")) for a in got] == [("accept", None), ("rate", 5)]
    history = await harness.send(tg_user(ann.telegram_id), f"/deal {order_id}")
    assert "Оценка клиента: ⭐⭐⭐⭐⭐" in history.text


async def test_remarks_become_a_claim_with_the_clients_words(harness, uow_factory, clock, team):
    ann = team["ann"]
    sale_id, order_id = await order_at_installation(uow_factory, clock, ann)
    await link_client(uow_factory, sale_id, IVAN, "Ivan")
    async with uow_factory() as uow:
        order = await deals.get_card(uow, ann, order_id)
        installed = next(s for s in order.pipeline.stages if s.code == "installed")
        await deals.move_to(uow, ann, order_id, installed.id, order.version)
    msg = to_chat(await deliver(harness, uow_factory, clock), IVAN)
    u_ivan = tg_user(IVAN, "Ivan")
    asked = await harness.tap(u_ivan, msg.button("Есть замечания"), msg)
    assert "Опишите" in asked.text
    done = await harness.send(u_ivan, "Дует из-под подоконника")
    assert "получили ваши замечания" in done.text
    async with uow_factory() as uow:
        claim = await uow.session.scalar(select(Deal).where(Deal.parent_deal_id == order_id))
    assert claim is not None and claim.need == "Дует из-под подоконника"
    assert await stage_code(uow_factory, claim.id) == "claim_received"
    [row] = await answers(uow_factory, order_id)
    assert row["answer"] == "remarks" and row["claim_id"] == claim.id
    # Accepting after the remarks is refused (one answer per stay).
    refused = await harness.tap(u_ivan, msg.button("претензий нет"), msg)
    assert refused.alert == "⚠️ Уже учтено, спасибо."
    assert await count(uow_factory, ClientLink) == 1


async def test_the_client_hears_the_measurer_is_on_the_way(harness, uow_factory, clock, team):
    deal_id, _, card = await measurer_assigned(harness, uow_factory, clock, team)
    await link_client(uow_factory, deal_id, IVAN, "Ivan", "en")
    u_mia = tg_user(team["mia"].telegram_id)
    accepted = await harness.tap(u_mia, card.button("Принять"), card)
    await harness.tap(u_mia, accepted.button("Выезжаю"), card)
    told = to_chat(await deliver(harness, uow_factory, clock), IVAN)
    assert told.text == "🚗 Mia, our measurer, is on the way."  # a first name, nothing else
    assert told.buttons() == []
