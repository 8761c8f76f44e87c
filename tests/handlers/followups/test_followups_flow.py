"""Follow-ups on the phone through the real dispatcher: the deal card's next-contact menu
(quick choices and typed dates), the reminder's buttons (snooze, done, open the deal), and
deferred demand's reminder (defer again, lost, back to sales)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from aiogram.methods import EditMessageReplyMarkup, EditMessageText

from handlers.ui.callbacks import TaskAction, TaskCb
from services.sales import deals
from services.work import jobs
from storage.enums import TaskKind
from storage.models import Task
from tests.factories import (
    deal_row,
    deliver,
    new_deal,
    open_tasks,
    to,
)
from tests.tg import Sent, tg_user

MSK_NOW = datetime(2026, 1, 12, 9, 0, tzinfo=UTC)  # the FakeClock's start: 12:00 in Moscow


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("завтра 10:00", datetime(2026, 1, 13, 7, 0, tzinfo=UTC)),
        ("25.12 14:30", datetime(2026, 12, 25, 11, 30, tzinfo=UTC)),
        ("tomorrow 3pm", datetime(2026, 1, 13, 12, 0, tzinfo=UTC)),
    ],
)
async def test_next_contact_typed(harness, uow_factory, clock, team, typed, expected):
    assert clock.now() == MSK_NOW
    ann = team["ann"]
    deal = await new_deal(uow_factory, ann, amount="1000")
    user = tg_user(ann.telegram_id)
    card = await harness.send(user, f"/deal {deal.id}")
    menu = await harness.tap(user, card.button("След. контакт"), card)
    assert "Через час" in [t for t, _ in menu.buttons()]
    asked = await harness.tap(user, menu.button("Ввести дату"), card)
    assert "Когда?" in asked.last.text

    bad = await harness.send(user, "когда-нибудь потом")
    assert bad.last.text.startswith("⚠️") and "Когда?" in bad.last.text
    assert (await deal_row(uow_factory, deal.id)).next_contact_at is None
    assert await open_tasks(uow_factory, deal.id, TaskKind.FOLLOW_UP) == []

    said = await harness.send(user, typed)
    assert "— верно?" in said.last.text  # said back in words before it is used
    assert (await deal_row(uow_factory, deal.id)).next_contact_at is None
    saved = await harness.tap(user, said.button("Верно"), said)
    assert saved.alert and saved.alert.startswith("✅ След. контакт:")
    assert (await deal_row(uow_factory, deal.id)).next_contact_at == expected
    [task] = await open_tasks(uow_factory, deal.id, TaskKind.FOLLOW_UP)
    assert task.due_at == expected and task.assignee_id == ann.id
    edits = [e.message_id for e in saved.of(EditMessageText)]
    assert card.message.message_id in edits  # the card, in place


async def test_next_contact_quick_then_reminder_snooze_and_done(harness, uow_factory, clock, team):
    ann = team["ann"]
    deal = await new_deal(uow_factory, ann, amount="1000")
    user = tg_user(ann.telegram_id)
    card = await harness.send(user, f"/deal {deal.id}")
    menu = await harness.tap(user, card.button("След. контакт"), card)
    done = await harness.tap(user, menu.button("Через час"), card)
    assert "Следующий контакт" in done.last.text
    [task] = await open_tasks(uow_factory, deal.id, TaskKind.FOLLOW_UP)
    assert task.due_at == MSK_NOW + timedelta(hours=1)

    clock.advance(hours=1, minutes=1)
    reminder = to(await deliver(harness, uow_factory, clock), ann)
    labels = [t for t, _ in reminder.buttons()]
    assert labels == ["✅ Готово", "⏰ Через час", "⏰ Завтра 10:00", "✏️ Срок", "📂 Открыть сделку"]
    snoozed = await harness.tap(user, reminder.button("Завтра 10:00"), reminder)
    assert snoozed.alert.startswith("⏰ Напомню 13.01.2026 10:00")
    async with uow_factory() as uow:
        row = await uow.repo.get(Task, task.id)
    assert row.due_at == datetime(2026, 1, 13, 7, 0, tzinfo=UTC)

    closed = await harness.tap(user, reminder.button("Готово"), reminder)
    assert closed.alert == "✅ Готово"
    async with uow_factory() as uow:
        assert (await uow.repo.get(Task, task.id)).status == "done"
    opened = await harness.tap(user, reminder.button("Открыть сделку"), reminder)
    assert f"#{deal.id}" in opened.last.text


async def deferred_reminder(harness, uow_factory, clock, ann) -> tuple[int, Sent]:
    deal = await new_deal(uow_factory, ann, amount="1000")
    when = clock.now() + timedelta(days=2)
    async with uow_factory() as uow:
        await deals.defer(uow, ann, deal.id, when, deal.version)
    clock.set(when)
    async with uow_factory() as uow:
        await jobs.deferred_due_scan(uow)
    return deal.id, to(await deliver(harness, uow_factory, clock), ann)


async def test_deferred_demand_buttons(harness, uow_factory, clock, team):
    ann = team["ann"]
    user = tg_user(ann.telegram_id)
    deal_id, msg = await deferred_reminder(harness, uow_factory, clock, ann)
    menu = await harness.tap(user, msg.button("Отложить ещё"), msg)
    again = await harness.tap(user, _btn(menu, "Через 3 дня"), msg)
    assert "Отложенный спрос" in again.last.text
    [task2] = await open_tasks(uow_factory, deal_id, TaskKind.DEFERRED_CONTACT)
    assert task2.due_at == clock.now() + timedelta(days=3)

    lost_menu = await harness.tap(user, TaskCb(action=TaskAction.LOST, task_id=task2.id), msg)
    lost = await harness.tap(user, _btn(lost_menu, "Дорого"), msg)
    assert "Причина: Дорого" in lost.last.text
    assert (await deal_row(uow_factory, deal_id)).loss_reason_id is not None

    other_id, msg2 = await deferred_reminder(harness, uow_factory, clock, ann)
    # someone else's deferred task: refused
    bob = tg_user(team["bob"].telegram_id)
    refused = await harness.tap(bob, msg2.button("В продажу"), msg2)
    assert refused.alert == "⚠️ Нет доступа."
    back = await harness.tap(user, msg2.button("В продажу"), msg2)
    assert "Продажа" in back.last.text or "Sales" in back.last.text
    async with uow_factory() as uow:
        card = await deals.get_card(uow, ann, other_id)
    assert card.pipeline.role == "sales"


def _btn(sent: Sent, text_part: str) -> str:
    """A button of the last edited keyboard (edit_reply_markup has no text)."""
    markup = sent.of(EditMessageReplyMarkup)[-1].reply_markup
    for row in markup.inline_keyboard:
        for b in row:
            if text_part in b.text:
                return b.callback_data
    raise AssertionError(f"no {text_part!r}")
