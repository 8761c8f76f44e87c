"""Tasks on the phone through the real dispatcher: /tasks shows one's own tasks, manual
tasks (/task) for oneself and from a leader.

The team fixture (ann, bob, hank, mia, max, lee) is tests/handlers/conftest.py's."""

from __future__ import annotations

from datetime import UTC, datetime

from aiogram.methods import SendMessage
from sqlalchemy import select

from storage.models import Task
from tests.factories import (
    measurer_assigned,
)
from tests.tg import tg_user


async def test_tasks_command_shows_only_my_tasks(harness, uow_factory, clock, team):
    await measurer_assigned(harness, uow_factory, clock, team)
    upcoming_mia = await harness.send(tg_user(team["mia"].telegram_id), "/tasks")
    assert "Задачи на сегодня" in upcoming_mia.last.text
    # the measurement is tomorrow: upcoming
    later = await harness.tap(
        tg_user(team["mia"].telegram_id), upcoming_mia.button("Предстоящие"), upcoming_mia
    )
    assert any("Иван Петров" in t for t, _ in later.buttons())
    maxs = await harness.send(tg_user(team["max"].telegram_id), "/tasks")
    nothing = await harness.tap(tg_user(team["max"].telegram_id), maxs.button("Предстоящие"), maxs)
    assert "Задач нет" in nothing.last.text


async def test_manual_tasks_for_myself_and_from_a_leader(harness, uow_factory, clock, team):
    ann, lee = team["ann"], team["lee"]
    u_ann = tg_user(ann.telegram_id)
    asked = await harness.send(u_ann, "/task Позвонить поставщику")
    created = await harness.tap(u_ann, asked.button("Через час"), asked)
    assert "Позвонить поставщику" in created.last.text
    u_lee = tg_user(lee.telegram_id)
    await harness.send(u_lee, "/task")
    await harness.send(u_lee, "Отчёт по КП")
    bad = await harness.send(u_lee, "абракадабра")
    assert bad.last.text.startswith("⚠️")
    said = await harness.send(u_lee, "завтра 10:00")
    assert "Срок: <b>вт, 13 января, 10:00</b> — верно?" in said.last.text  # said back
    ok = await harness.tap(u_lee, said.button("Верно"), said)
    [whom] = [m for m in ok.of(SendMessage) if m.reply_markup is not None]
    ann_button = next(
        b.callback_data for row in whom.reply_markup.inline_keyboard for b in row if b.text == "Ann"
    )
    given = await harness.tap(u_lee, ann_button, said)
    assert "Отчёт по КП" in given.last.text and "Ann" in given.last.text
    async with uow_factory() as uow:
        rows = (await uow.session.scalars(select(Task).order_by(Task.id))).all()
    assert [(r.title, r.assignee_id, r.created_by_id) for r in rows] == [
        ("Позвонить поставщику", ann.id, ann.id),
        ("Отчёт по КП", ann.id, lee.id),
    ]
    assert rows[1].due_at == datetime(2026, 1, 13, 7, 0, tzinfo=UTC)
