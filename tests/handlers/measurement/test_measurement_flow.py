"""The measurement chain on the phone through the real dispatcher: the head assigns a
measurer by a button, the measurer accepts, is on the way, uploads photos and documents,
finishes (or declines); forged task ids are refused.

Outbox messages are delivered by the real Sweeper through the real BotNotifier into the
harness's recording session (tests.factories.deliver), so the buttons tapped are the ones
Telegram would show."""

from __future__ import annotations

from aiogram.methods import EditMessageText, SendMessage
from aiogram.types import Document, PhotoSize
from sqlalchemy import select

from handlers.ui.callbacks import DealAction, DealCb, TaskAction, TaskCb
from storage.models import Activity
from tests.factories import (
    deliver,
    measurer_assigned,
    stage_code,
    to,
)
from tests.tg import tg_user


async def test_measurement_chain_end_to_end(harness, uow_factory, clock, team):
    ann, mia = team["ann"], team["mia"]
    deal_id, task_id, card = await measurer_assigned(harness, uow_factory, clock, team)
    assert "ул. Мира, 1" in card.text and "8 (916)" in card.text
    assert any(data.startswith("https://yandex.ru/maps/") for _, data in card.buttons())
    u_mia = tg_user(mia.telegram_id)

    accepted = await harness.tap(u_mia, card.button("Принять"), card)
    assert "принята" in accepted.last.text.lower() or "Статус" in accepted.last.text
    assert not any("Принять" in text for text, _ in accepted.buttons())
    way = await harness.tap(u_mia, accepted.button("Выезжаю"), card)
    assert [text for text, _ in way.buttons()][0] == "✅ Готово"

    ask = await harness.tap(u_mia, way.button("Готово"), card)
    assert "Завершить" in ask.last.text
    for n in (1, 2):
        photo = [
            PhotoSize(file_id=f"small{n}", file_unique_id=f"us{n}", width=90, height=90),
            PhotoSize(file_id=f"big{n}", file_unique_id=f"ub{n}", width=1280, height=960),
        ]
        got = await harness.send_message(u_mia, photo=photo)
        assert "📎" in got.last.text
    doc = Document(file_id="doc1", file_unique_id="ud1", file_name="plan.pdf")
    await harness.send_message(u_mia, document=doc, caption="Смета")
    await harness.send(u_mia, "Проём 1200×1400, подоконник под замену")
    finished = await harness.tap(u_mia, ask.button("Завершить"), ask)
    assert "Замер выполнен" in finished.last.text

    assert await stage_code(uow_factory, deal_id) == "measurement_done"
    async with uow_factory() as uow:
        files = (
            await uow.session.scalars(
                select(Activity).where(Activity.deal_id == deal_id, Activity.kind == "file")
            )
        ).all()
    assert sorted((f.media_type, f.file_id) for f in files) == [
        ("document", "doc1"),
        ("photo", "big1"),
        ("photo", "big2"),
    ]
    told = to(await deliver(harness, uow_factory, clock), ann)
    assert "Замер выполнен" in told.text and "Mia" in told.text
    assert "Проём 1200×1400" in told.text


async def test_measurer_declines_and_the_head_gets_it_back(harness, uow_factory, clock, team):
    hank, mia = team["hank"], team["mia"]
    deal_id, task_id, card = await measurer_assigned(harness, uow_factory, clock, team)
    u_mia = tg_user(mia.telegram_id)
    asked = await harness.tap(u_mia, card.button("Не смогу"), card)
    assert "причину" in asked.last.text
    await harness.send(u_mia, "Заболел")
    assert await stage_code(uow_factory, deal_id) == "measurement_scheduled"
    head = to(await deliver(harness, uow_factory, clock), hank)
    assert "Заболел" in head.text and "Mia" in head.text


async def test_forged_task_ids_are_refused(harness, uow_factory, clock, team, db_snapshot):
    deal_id, task_id, card = await measurer_assigned(harness, uow_factory, clock, team)
    u_max = tg_user(team["max"].telegram_id)
    before = await db_snapshot()
    for action in (TaskAction.ACCEPT, TaskAction.ON_MY_WAY, TaskAction.FINISH, TaskAction.DECLINE):
        refused = await harness.tap(u_max, TaskCb(action=action, task_id=task_id))
        assert refused.alert == "⚠️ Нет доступа.", action
        assert not refused.of(EditMessageText) and not refused.of(SendMessage)
    refused = await harness.tap(u_max, TaskCb(action=TaskAction.UPLOAD_END, task_id=task_id))
    assert refused.alert == "⚠️ Нет доступа."
    # A measurer never opens a deal, even their own measurement's.
    u_mia = tg_user(team["mia"].telegram_id)
    for who in (u_max, u_mia):
        refused = await harness.tap(who, DealCb(action=DealAction.OPEN, deal_id=deal_id))
        assert refused.alert == "⚠️ Нет доступа."
    assert await db_snapshot() == before
