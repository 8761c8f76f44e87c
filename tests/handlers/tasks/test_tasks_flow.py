"""Tasks on the phone through the real dispatcher: the measurement chain by buttons, forged
task ids, typed next-contact dates, reminders (done, snooze), deferred demand's task,
manual tasks, winning with installments, payments and /receivables.

Outbox messages are delivered by the real Sweeper through the real BotNotifier into the
harness's recording session, so the buttons tapped are the ones Telegram would show."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from aiogram.methods import EditMessageText, SendMessage
from aiogram.types import Document, PhotoSize
from sqlalchemy import select

from bot.notifier import BotNotifier
from handlers.ui.callbacks import DealAction, DealCb, TaskAction, TaskCb
from services.errors import RuleViolation
from services.sales import deals
from services.work import installments, jobs
from storage.enums import TaskKind
from storage.models import Activity, Deal, Stage, Task
from tests.factories import new_deal
from tests.outbox_fakes import make_sweeper
from tests.tg import BotHarness, Sent, tg_user

MSK_NOW = datetime(2026, 1, 12, 9, 0, tzinfo=UTC)  # the FakeClock's start: 12:00 in Moscow


@pytest.fixture
async def team(make_actor):
    return {
        "ann": await make_actor(roles=("manager",), name="Ann"),
        "bob": await make_actor(roles=("manager",), name="Bob"),
        "hank": await make_actor(roles=("head_measurer",), name="Hank"),
        "mia": await make_actor(roles=("measurer",), name="Mia"),
        "max": await make_actor(roles=("measurer",), name="Max"),
        "lee": await make_actor(roles=("leader",), name="Lee"),
    }


async def deliver(harness: BotHarness, uow_factory, clock) -> list[Sent]:
    """Run the outbox once: every message the bot sent, one Sent each."""
    sweeper, _ = make_sweeper(uow_factory, BotNotifier(harness.bot, "Europe/Moscow"), clock)
    before = len(harness.session.requests)
    await sweeper.sweep_until_idle()
    reqs = harness.session.requests[before:]
    results = harness.session.results[before:]
    return [Sent([r], [res]) for r, res in zip(reqs, results, strict=True)]


def to(sent: list[Sent], actor) -> Sent:
    mine = [
        s for s in sent if isinstance(s.last, SendMessage) and s.last.chat_id == actor.telegram_id
    ]
    assert len(mine) == 1, [s.last.chat_id for s in sent]
    return mine[0]


async def stage_code(uow_factory, deal_id: int) -> str:
    async with uow_factory() as uow:
        deal = await uow.repo.get(Deal, deal_id)
        return (await uow.repo.get(Stage, deal.stage_id)).code


async def deal_row(uow_factory, deal_id: int) -> Deal:
    async with uow_factory() as uow:
        return await uow.repo.get(Deal, deal_id)


async def open_tasks(uow_factory, deal_id: int, kind: str) -> list[Task]:
    async with uow_factory() as uow:
        return await uow.repo.tasks.open_for_deal(deal_id, kind)


async def measurer_assigned(harness, uow_factory, clock, team) -> tuple[int, int, Sent]:
    """A deal scheduled through the card, assigned to Mia by the head's button.
    Returns (deal id, measure task id, Mia's task message)."""
    ann, hank, mia = team["ann"], team["hank"], team["mia"]
    deal = await new_deal(uow_factory, ann, amount="150000", need="3 окна ПВХ")
    async with uow_factory() as uow:
        await deals.advance(uow, ann, deal.id, deal.version)  # Proposal sent
    u_ann = tg_user(ann.telegram_id)
    card = await harness.send(u_ann, f"/deal {deal.id}")
    await harness.tap(u_ann, card.button("Замер запланирован ▶"), card)
    await harness.send(u_ann, "завтра 12:00")
    await harness.send(u_ann, "ул. Мира, 1")
    assert await stage_code(uow_factory, deal.id) == "measurement_scheduled"

    head = to(await deliver(harness, uow_factory, clock), hank)
    assert "ул. Мира, 1" in head.text and "3 окна ПВХ" in head.text
    labels = [text for text, _ in head.buttons()]
    assert "Mia (0)" in labels and "Max (0)" in labels
    assigned = await harness.tap(tg_user(hank.telegram_id), head.button("Mia"), head)
    assert "Замерщик назначен: Mia" in assigned.last.text
    assert assigned.last.reply_markup is None
    assert await stage_code(uow_factory, deal.id) == "measurer_assigned"
    [measure] = await open_tasks(uow_factory, deal.id, TaskKind.MEASURE)
    card_msg = to(await deliver(harness, uow_factory, clock), mia)
    return deal.id, measure.id, card_msg


async def test_measurement_chain_end_to_end(harness, uow_factory, clock, team):
    ann, mia = team["ann"], team["mia"]
    deal_id, task_id, card = await measurer_assigned(harness, uow_factory, clock, team)
    assert "ул. Мира, 1" in card.text and "+7916" in card.text
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

    saved = await harness.send(user, typed)
    assert (await deal_row(uow_factory, deal.id)).next_contact_at == expected
    [task] = await open_tasks(uow_factory, deal.id, TaskKind.FOLLOW_UP)
    assert task.due_at == expected and task.assignee_id == ann.id
    edit = saved.of(EditMessageText)[0]
    assert edit.message_id == card.message.message_id


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
    assert labels == ["✅ Готово", "⏰ Через час", "⏰ Завтра 10:00", "📂 Открыть сделку"]
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
    whom = await harness.send(u_lee, "завтра 10:00")
    given = await harness.tap(u_lee, whom.button("Ann"), whom)
    assert "Отчёт по КП" in given.last.text and "Ann" in given.last.text
    async with uow_factory() as uow:
        rows = (await uow.session.scalars(select(Task).order_by(Task.id))).all()
    assert [(r.title, r.assignee_id, r.created_by_id) for r in rows] == [
        ("Позвонить поставщику", ann.id, ann.id),
        ("Отчёт по КП", ann.id, lee.id),
    ]
    assert rows[1].due_at == datetime(2026, 1, 13, 7, 0, tzinfo=UTC)


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


def _exact(sent: Sent, label: str) -> str:
    [data] = [data for text, data in sent.buttons() if text == label]
    return data


def _btn(sent: Sent, text_part: str) -> str:
    """A button of the last edited keyboard (edit_reply_markup has no text)."""
    from aiogram.methods import EditMessageReplyMarkup

    markup = sent.of(EditMessageReplyMarkup)[-1].reply_markup
    for row in markup.inline_keyboard:
        for b in row:
            if text_part in b.text:
                return b.callback_data
    raise AssertionError(f"no {text_part!r}")


async def contract_signed(uow_factory, ann, clock, amount="300000"):
    card = await new_deal(uow_factory, ann, amount=amount)
    fields = {"measurement_at": clock.now() + timedelta(days=1), "address": "Мира 1"}
    for extra in (None, fields, None, None, None):
        async with uow_factory() as uow:
            card = await deals.advance(uow, ann, card.id, card.version, fields=extra)
    assert card.stage.code == "contract_signed"
    return card


async def test_win_with_installments_payment_and_receivables(harness, uow_factory, clock, team):
    ann = team["ann"]
    user = tg_user(ann.telegram_id)
    deal = await contract_signed(uow_factory, ann, clock, amount="300000")
    card = await harness.send(user, f"/deal {deal.id}")
    labels = [t for t, _ in card.buttons()]
    assert "Успешная продажа ▶" in labels and "💳 Успех в рассрочку" in labels
    menu = await harness.tap(user, card.button("в рассрочку"), card)
    asked = await harness.tap(user, _exact(menu, "3"), card)
    assert "первого платежа" in asked.last.text
    bad = await harness.send(user, "вчера")
    assert bad.last.text.startswith("⚠️")
    won = await harness.send(user, "01.02")
    text = won.of(EditMessageText)[0].text
    assert "100\u00a0000\u00a0₽" in text and "01.04.2026" in text
    assert await stage_code(uow_factory, deal.id) == "won"
    async with uow_factory() as uow:
        plan = await installments.plan_summary(uow, ann, deal.id)
    assert plan.source_deal_id == deal.id and plan.deal_id != deal.id
    assert [(d.due_date, d.amount) for d in plan.dues] == [
        (date(2026, 2, 1), 10_000_000),
        (date(2026, 3, 1), 10_000_000),
        (date(2026, 4, 1), 10_000_000),
    ]

    inst_card = await harness.send(user, f"/deal {plan.deal_id}")
    pay = await harness.tap(user, inst_card.button("Внести платёж"), inst_card)
    assert "300\u00a0000\u00a0₽" in pay.last.text
    over = await harness.send(user, "400 000")
    assert over.last.text.startswith("⚠️")
    paid = await harness.send(user, "50 000 11.01")
    assert "Платёж записан" in paid.last.text
    async with uow_factory() as uow:
        plan = await installments.plan_summary(uow, ann, deal.id)
    assert plan.paid == 5_000_000 and plan.remaining == 25_000_000

    report = await harness.send(user, "/receivables")
    lines = re.sub(r"<[^>]+>", "", report.last.text).splitlines()
    assert all(len(line) <= 40 for line in lines), lines
    assert (
        "Всего к получению: 250\u00a0000\u00a0₽" in lines
        and "🔴 Из них просрочено: 0\u00a0₽" in lines
    )
    assert "1. Иван Петров" in lines and "   осталось 250\u00a0000\u00a0₽" in lines
    measurer = await harness.send(tg_user(team["mia"].telegram_id), "/receivables")
    assert measurer.last.text == "⚠️ Нет доступа."


async def test_plain_move_into_won_still_works(harness, uow_factory, clock, team):
    ann = team["ann"]
    user = tg_user(ann.telegram_id)
    deal = await contract_signed(uow_factory, ann, clock, amount="1000")
    card = await harness.send(user, f"/deal {deal.id}")
    won = await harness.tap(user, card.button("Успешная продажа ▶"), card)
    assert "<b>Успешная продажа</b>" in won.last.text
    async with uow_factory() as uow:
        with pytest.raises(RuleViolation):
            await installments.plan_summary(uow, ann, deal.id)
