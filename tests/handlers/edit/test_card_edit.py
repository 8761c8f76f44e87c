"""✏️ Edit on the deal and lead cards through the real dispatcher (issue 20): every field,
the timeline row, the refusals (another manager, a stale card, a bad value: nothing
saved), and the measurer told when the measurement moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiogram.methods import EditMessageText, SendMessage

from handlers.ui.callbacks import DealAction, DealCb, LeadAction, LeadCb, TaskAction, TaskCb
from services import tasks
from services.sales.edit import DEAL_FIELDS, LEAD_FIELDS
from storage.enums import TaskKind
from storage.models import Activity, Company, Contact, Deal, Lead, Task
from tests.factories import (
    card_of,
    deal_row,
    deliver,
    measurer_assigned,
    new_deal,
    new_lead,
    open_tasks,
    plain,
    to,
)
from tests.tg import tg_user

# field -> (typed, what the card then shows, the timeline row's text)
DEAL_EDITS: dict[str, tuple[str, str, str]] = {
    "amount": (
        "135 тыс",
        "135\u00a0000\u00a0₽",
        "Сумма: 150\u00a0000\u00a0₽ → 135\u00a0000\u00a0₽",
    ),
    "need": ("4 окна и дверь", "4 окна и дверь", "Потребность: 3 окна → 4 окна и дверь"),
    "address": ("ул. Мира, 2", "ул. Мира, 2", "Адрес замера: — → ул. Мира, 2"),
    "title": ("Окна на дачу", "Окна на дачу", "Название сделки: "),
    "contact_name": ("Пётр Сидоров", "Пётр Сидоров", "Имя клиента: Иван Петров → Пётр Сидоров"),
    "phone": ("8 916 555-00-11", "+79165550011", "Телефон: "),
    "email": ("petr@example.com", "petr@example.com", "Email: — → petr@example.com"),
    "company_name": ("ООО Ромашка", "ООО Ромашка", "Организация: — → ООО Ромашка"),
}


def _ask(deal_id: int, version: int, field: str) -> DealCb:
    return DealCb(
        action=DealAction.EDIT_FIELD, deal_id=deal_id, v=version, arg=DEAL_FIELDS.index(field)
    )


async def test_every_deal_field_edited_from_the_card(harness, team, uow_factory):
    ann = team["ann"]
    deal = await new_deal(uow_factory, ann, name="Иван Петров", amount="150000", need="3 окна")
    user = tg_user(ann.telegram_id)
    card = await harness.send(user, f"/deal {deal.id}")
    menu = await harness.tap(user, card.button("✏️ Изменить"), card)
    assert "Что изменить?" in menu.last.text
    labels = [text for text, _ in menu.buttons()]
    assert {"Сумма", "Дата замера", "Телефон", "Организация", "Имя клиента"} <= set(labels)
    assert set(DEAL_EDITS) | {"measurement_at", "expected_close_at"} == set(DEAL_FIELDS)

    for field, (typed, shown, line) in DEAL_EDITS.items():
        version = (await card_of(uow_factory, ann, deal.id)).version
        asked = await harness.tap(user, _ask(deal.id, version, field), card)
        assert "Сейчас:" in asked.last.text, field
        done = await harness.send(user, typed)
        [edit] = done.of(EditMessageText)  # the card, in place
        assert edit.message_id == card.message.message_id
        assert shown in edit.text and line in plain(edit.text), (field, edit.text)
        assert "✏️ Ann:" in plain(edit.text)  # who (and when) on the card's last events

    row = await deal_row(uow_factory, deal.id)
    assert row.amount == 13_500_000 and row.need == "4 окна и дверь"
    assert row.address == "ул. Мира, 2" and row.title == "Окна на дачу"
    async with uow_factory() as uow:
        contact = await uow.repo.get(Contact, row.contact_id)
        company = await uow.repo.get(Company, row.company_id)
        edits = await uow.repo.timeline.card(deal.id, recent=20)
    assert contact.name == "Пётр Сидоров" and contact.phone == "+79165550011"
    assert contact.email == "petr@example.com" and company.name == "ООО Ромашка"
    assert sum(1 for a in edits.recent if a.kind == "edited") == len(DEAL_EDITS)
    # found by its new words
    found = await harness.send(user, "/search ромашка")
    assert "Окна на дачу" in str(found.buttons())


async def test_english_reader_sees_the_change_in_english(harness, team, uow_factory):
    ann = team["ann"]
    deal = await new_deal(uow_factory, ann, amount="120000")
    user = tg_user(ann.telegram_id, lang="en")
    card = await harness.send(user, f"/deal {deal.id}")
    await harness.tap(user, _ask(deal.id, deal.version, "amount"), card)
    done = await harness.send(user, "135k")
    [edit] = done.of(EditMessageText)
    assert "Amount: 120,000\u00a0RUB → 135,000\u00a0RUB" in plain(edit.text)


async def test_refusals_save_nothing(harness, team, uow_factory, db_snapshot):
    ann, bob = team["ann"], team["bob"]
    deal = await new_deal(uow_factory, ann, amount="150000")
    user, other = tg_user(ann.telegram_id), tg_user(bob.telegram_id)
    card = await harness.send(user, f"/deal {deal.id}")
    before = await db_snapshot()

    # another manager: the menu, the question and the forged answer are refused
    for action in (DealAction.EDIT, DealAction.EDIT_FIELD):
        cb = DealCb(action=action, deal_id=deal.id, v=deal.version)
        refused = await harness.tap(other, cb, card)
        assert refused.alert == "⚠️ Нет доступа."
    forged = DealCb(action=DealAction.EDIT_OK, deal_id=deal.id, v=deal.version, arg=3)
    assert (await harness.tap(other, forged, card)).alert

    # bad values: said why, asked again, nothing saved
    await harness.tap(user, _ask(deal.id, deal.version, "amount"), card)
    for bad in ("сто тысяч", "1,200", "-5"):
        said = await harness.send(user, bad)
        assert said.last.text.startswith("⚠️") and not said.of(EditMessageText), bad
    await harness.send(user, "/cancel")
    await harness.tap(user, _ask(deal.id, deal.version, "phone"), card)
    assert (await harness.send(user, "123")).last.text.startswith("⚠️")
    await harness.send(user, "/cancel")
    await harness.tap(user, _ask(deal.id, deal.version, "measurement_at"), card)
    for bad in ("вчера", "завтра в 5", "blah"):
        assert (await harness.send(user, bad)).last.text.startswith("⚠️"), bad
    await harness.send(user, "/cancel")
    assert await db_snapshot() == before

    # a stale card: refused at the tap, and a value typed after the card changed
    await harness.tap(user, _ask(deal.id, deal.version, "need"), card)
    await harness.send(user, "5 окон")  # the card's version moves on
    stale = await harness.tap(user, _ask(deal.id, deal.version, "amount"), card)
    assert "уже изменилась" in stale.alert
    fresh = await card_of(uow_factory, ann, deal.id)
    await harness.tap(user, _ask(deal.id, fresh.version, "amount"), card)
    async with uow_factory() as uow:  # meanwhile someone else changes the deal
        row = await uow.repo.get(Deal, deal.id)
        row.need = "6 окон"
        await uow.commit()
    late = await harness.send(user, "200000")
    assert "изменилась" in (late.alert or "") + " ".join(late.texts)
    assert (await deal_row(uow_factory, deal.id)).amount == 15_000_000


async def test_measurement_moved_tells_the_measurer(harness, team, uow_factory, clock):
    ann, mia = team["ann"], team["mia"]
    deal_id, task_id, _ = await measurer_assigned(harness, uow_factory, clock, team)
    user = tg_user(ann.telegram_id)
    card = await harness.send(user, f"/deal {deal_id}")
    version = (await card_of(uow_factory, ann, deal_id)).version
    await harness.tap(user, _ask(deal_id, version, "measurement_at"), card)
    asked = await harness.send(user, "в пятницу")  # a day without a time: the time asked
    assert "пт, 16 января — во сколько?" in asked.last.text
    said = await harness.send(user, "вечером")
    assert "Дата замера: <b>пт, 16 января, 18:00</b> — верно?" in said.last.text
    ok = await harness.tap(user, said.button("Верно"), said)
    assert ok.alert == "✅ Дата замера: пт, 16 января, 18:00"  # a toast
    edit = [e for e in ok.of(EditMessageText) if e.message_id == card.message.message_id]
    assert edit and "16.01.2026 18:00" in edit[0].text
    [task] = await open_tasks(uow_factory, deal_id, TaskKind.MEASURE)
    assert task.id == task_id and task.due_at == datetime(2026, 1, 16, 15, 0, tzinfo=UTC)
    told = to(await deliver(harness, uow_factory, clock), mia)
    assert "Замер перенесён" in told.text and "16.01" in told.text, told.text

    # the address too
    version = (await card_of(uow_factory, ann, deal_id)).version
    await harness.tap(user, _ask(deal_id, version, "address"), card)
    await harness.send(user, "ул. Мира, 7")
    told = to(await deliver(harness, uow_factory, clock), mia)
    assert "Замер перенесён" in told.text and "ул. Мира, 7" in told.text


async def test_unassigned_measurement_moved_tells_the_head(harness, team, uow_factory, clock):
    ann, hank = team["ann"], team["hank"]
    deal = await new_deal(uow_factory, ann, amount="150000")
    user = tg_user(ann.telegram_id)
    card = await harness.send(user, f"/deal {deal.id}")
    moved = await harness.tap(user, card.button("▶"), card)  # Proposal sent
    moved = await harness.tap(user, moved.button("Замер запланирован ▶"), card)
    said = await harness.send(user, "завтра в 11")
    asked = await harness.tap(user, said.button("Верно"), said)
    assert "Адрес замера" in asked.texts[0]
    await harness.send(user, "ул. Мира, 1")
    first = to(await deliver(harness, uow_factory, clock), hank)  # the assign task
    assert "Замер перенесён" not in first.text
    version = (await card_of(uow_factory, ann, deal.id)).version
    await harness.tap(user, _ask(deal.id, version, "address"), card)
    await harness.send(user, "ул. Мира, 3")
    told = to(await deliver(harness, uow_factory, clock), hank)
    assert "Замер перенесён" in told.text and "ул. Мира, 3" in told.text


async def test_every_lead_field_edited_from_the_card(harness, team, uow_factory):
    ann = team["ann"]
    lead = await new_lead(uow_factory, ann, name="Иван", phone="+79161112233", need="окна")
    user = tg_user(ann.telegram_id)
    card = await harness.send(user, f"/lead {lead.id}")
    menu = await harness.tap(user, card.button("✏️ Изменить"), card)
    assert "Что изменить?" in menu.last.text
    typed = {
        "name": ("Иван Иванов", "Иван Иванов"),
        "phone": ("+7 916 111-22-44", "+79161112244"),
        "email": ("ivan@example.com", "ivan@example.com"),
        "need": ("балкон", "балкон"),
        "company_name": ("ООО Ромашка", "ООО Ромашка"),
        "amount": ("1,2 млн", "1\u00a0200\u00a0000\u00a0₽"),
    }
    assert set(typed) == set(LEAD_FIELDS)
    for field, (text, shown) in typed.items():
        async with uow_factory() as uow:
            version = (await uow.repo.get(Lead, lead.id)).version
        cb = LeadCb(
            action=LeadAction.EDIT_FIELD, lead_id=lead.id, v=version, arg=LEAD_FIELDS.index(field)
        )
        await harness.tap(user, cb, card)
        done = await harness.send(user, text)
        assert shown in done.last.text, (field, done.last.text)
    async with uow_factory() as uow:
        row = await uow.repo.get(Lead, lead.id)
        edits = [
            a
            for a in (await uow.session.execute(Activity.__table__.select())).all()
            if a.lead_id == lead.id and a.kind == "edited"
        ]
    assert row.amount == 120_000_000 and row.company_name == "ООО Ромашка"
    assert len(edits) == len(typed)

    # another manager cannot; a bad email saves nothing
    bob = tg_user(team["bob"].telegram_id)
    cb = LeadCb(action=LeadAction.EDIT_FIELD, lead_id=lead.id, v=row.version, arg=2)
    assert (await harness.tap(bob, cb, card)).alert
    await harness.tap(user, cb, card)
    assert (await harness.send(user, "not-an-email")).last.text.startswith("⚠️")
    async with uow_factory() as uow:
        assert (await uow.repo.get(Lead, lead.id)).email == "ivan@example.com"


async def test_measurement_date_quick_buttons_with_each_measurers_load(
    harness, team, uow_factory, clock
):
    ann = team["ann"]
    await measurer_assigned(harness, uow_factory, clock, team)  # Mia: one tomorrow (Tue)
    deal = await new_deal(uow_factory, ann, amount="90000")
    user = tg_user(ann.telegram_id)
    card = await harness.send(user, f"/deal {deal.id}")
    moved = await harness.tap(user, card.button("▶"), card)
    asked = await harness.tap(user, moved.button("Замер запланирован ▶"), card)
    text = asked.last.text
    assert "вт, 13 января: Max 0 · Mia 1" in text and "ср, 14 января: Max 0 · Mia 0" in text
    assert "вс," not in text  # no Sundays
    labels = [label for label, _ in asked.buttons()]
    assert labels[:3] == ["вт 10:00", "вт 13:00", "вт 16:00"] and len(labels) == 15
    address = await harness.tap(user, asked.button("вт 16:00"), asked)
    assert address.alert == "✅ Дата замера: вт, 13 января, 16:00"
    assert "Адрес замера" in address.texts[0]
    await harness.send(user, "ул. Мира, 5")
    row = await deal_row(uow_factory, deal.id)
    assert row.measurement_at == datetime(2026, 1, 13, 13, 0, tzinfo=UTC)
    assert row.address == "ул. Мира, 5"


async def test_a_tasks_due_time_edited_from_its_card(harness, team, uow_factory, clock):
    ann, bob = team["ann"], team["bob"]
    async with uow_factory() as uow:
        info = await tasks.create_manual_task(
            uow, ann, "Позвонить клиенту", clock.now() + timedelta(hours=2)
        )
    user = tg_user(ann.telegram_id)
    opened = await harness.tap(user, TaskCb(action=TaskAction.OPEN, task_id=info.id))
    [card] = opened.of(SendMessage)
    assert ("✏️ Срок", TaskCb(action=TaskAction.DUE, task_id=info.id).pack()) in opened.buttons()
    refused = await harness.tap(
        tg_user(bob.telegram_id), TaskCb(action=TaskAction.DUE, task_id=info.id)
    )
    assert refused.alert  # someone else's task
    await harness.tap(user, TaskCb(action=TaskAction.DUE, task_id=info.id), opened)
    said = await harness.send(user, "завтра вечером")
    assert "Срок: <b>вт, 13 января, 18:00</b> — верно?" in said.last.text
    ok = await harness.tap(user, said.button("Верно"), said)
    assert ok.alert == "✅ Срок: вт, 13 января, 18:00"
    async with uow_factory() as uow:
        task = await uow.repo.get(Task, info.id)
    assert task.due_at == datetime(2026, 1, 13, 15, 0, tzinfo=UTC)
    redrawn = [e for e in ok.of(EditMessageText) if e.message_id == opened.message.message_id]
    assert redrawn and "13.01" in redrawn[0].text, [e.text for e in ok.of(EditMessageText)]
    assert card.chat_id == user.id
