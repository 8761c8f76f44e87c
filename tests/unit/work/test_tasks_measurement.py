"""Measurement chain: head of measurers -> measurer -> done with photos -> deal moved,
manager notified. Permissions: a measurer sees only their own tasks and never a deal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from services import tasks
from services.errors import PermissionDenied, RuleViolation, ValidationError
from services.outbox.payloads import MeasureDone, TaskPayload
from services.outbox.queue import Kind
from services.sales import deals
from services.work import followups, measurement
from storage.enums import TaskKind, TaskStatus
from storage.models import Activity, Task
from tests.factories import cast, deal_row, new_deal, stage_code
from tests.outbox_fakes import RecordingNotifier, make_sweeper, reminders

MEASURE_AT = datetime(2026, 1, 14, 9, 0, tzinfo=UTC)  # 12:00 in Moscow, two days ahead


@pytest.fixture
async def team(make_actor):
    return await cast(make_actor, "ann", "hank", "mia", "max", "lee")


async def scheduled_deal(uow_factory, ann, when=MEASURE_AT, address="ул. Мира, 1"):
    card = await new_deal(uow_factory, ann, amount="150000", need="3 окна ПВХ")
    async with uow_factory() as uow:
        card = await deals.add_note(uow, ann, card.id, "Домофон 12, звонить за час")
    async with uow_factory() as uow:
        card = await deals.advance(uow, ann, card.id, card.version)
    async with uow_factory() as uow:
        card = await deals.advance(
            uow, ann, card.id, card.version, fields={"measurement_at": when, "address": address}
        )
    assert card.stage.code == "measurement_scheduled"
    return card


async def open_task(uow_factory, deal_id: int, kind: str) -> Task:
    async with uow_factory() as uow:
        found = await uow.repo.tasks.open_for_deal(deal_id, kind)
    assert len(found) == 1, found
    return found[0]


async def test_measurement_chain_head_to_measurer_to_done(uow_factory, clock, team):
    ann, hank, mia, max_ = team["ann"], team["hank"], team["mia"], team["max"]
    notifier = RecordingNotifier()
    sweeper, _ = make_sweeper(uow_factory, notifier, clock)

    # Max already has a measurement that day: his load shows 1.
    other = await scheduled_deal(uow_factory, ann, MEASURE_AT + timedelta(hours=3))
    other_assign = await open_task(uow_factory, other.id, TaskKind.ASSIGN_MEASURER)
    async with uow_factory() as uow:
        await measurement.assign_measurer(uow, hank, other_assign.id, max_.id)
    await sweeper.sweep_until_idle()
    notifier.deliveries.clear()

    card = await scheduled_deal(uow_factory, ann)
    assign = await open_task(uow_factory, card.id, TaskKind.ASSIGN_MEASURER)
    assert (assign.assignee_role, assign.assignee_id) == ("head_measurer", None)

    # 1. The head gets the task: the deal's essentials and every measurer with their load.
    await sweeper.sweep_once()
    [delivery] = notifier.to(hank.id)
    [item] = delivery.items
    assert item.kind == Kind.TASK_NEW and item.task_id == assign.id
    p = item.payload
    assert isinstance(p, TaskPayload)
    assert p.task_kind == "assign_measurer"
    assert p.address == "ул. Мира, 1" and p.need == "3 окна ПВХ"
    assert p.client_name == "Иван Петров" and (p.phone or "").startswith("+7916")
    assert p.measurement_at == MEASURE_AT
    assert sorted(p.measurers) == sorted([(mia.id, "Mia", 0), (max_.id, "Max", 1)])
    assert notifier.to(ann.id) == []  # the manager made no task for herself to be told of

    # 2. The head picks Mia: deal -> Measurer assigned, Mia gets a card for her phone.
    async with uow_factory() as uow:
        measure_card = await measurement.assign_measurer(uow, hank, assign.id, mia.id)
    assert measure_card.task.kind == "measure" and measure_card.task.assignee_id == mia.id
    assert measure_card.address == "ул. Мира, 1"
    assert measure_card.map_url is not None
    assert measure_card.map_url.startswith("https://yandex.ru/maps/?text=")
    assert measure_card.manager_comment == "Домофон 12, звонить за час"
    assert await stage_code(uow_factory, card.id) == "measurer_assigned"
    assert (await deal_row(uow_factory, card.id)).measurer_id == mia.id
    await sweeper.sweep_once()
    [delivery] = notifier.to(mia.id)
    p = delivery.items[0].payload
    assert delivery.items[0].kind == Kind.TASK_NEW and isinstance(p, TaskPayload)
    assert p.task_kind == "measure" and p.phone and p.address == "ул. Мира, 1"
    assert p.manager_comment == "Домофон 12, звонить за час"

    # 3. Accept, on my way, done with two photos, a document and a comment.
    measure_id = measure_card.task.id
    async with uow_factory() as uow:
        c = await measurement.accept(uow, mia, measure_id)
    assert c.task.status == "accepted"
    async with uow_factory() as uow:
        c = await measurement.on_my_way(uow, mia, measure_id)
    assert c.task.status == "in_progress"
    files = [
        ("photo", "AgAD-photo-1", "uniq-1", None),
        ("photo", "AgAD-photo-2", "uniq-2", "окно на кухне"),
        ("document", "BQAD-doc-1", "uniq-3", "замеры.pdf"),
        ("photo", "AgAD-photo-1", "uniq-1", None),  # the same photo twice counts once
    ]
    async with uow_factory() as uow:
        done = await measurement.complete_measurement(uow, mia, measure_id, files, "Всё замерено")
    assert done.task.status == "done" and done.attachments == 3

    assert await stage_code(uow_factory, card.id) == "measurement_done"
    async with uow_factory() as uow:
        rows = (
            await uow.session.scalars(
                select(Activity).where(Activity.deal_id == card.id, Activity.kind == "file")
            )
        ).all()
        notes = (
            await uow.session.scalars(
                select(Activity).where(Activity.deal_id == card.id, Activity.kind == "measurement")
            )
        ).all()
    assert sorted((a.media_type, a.file_id, a.author_id) for a in rows) == [
        ("document", "BQAD-doc-1", mia.id),
        ("photo", "AgAD-photo-1", mia.id),
        ("photo", "AgAD-photo-2", mia.id),
    ]
    assert [n.text for n in notes] == ["Всё замерено"]
    async with uow_factory() as uow:  # the manager sees the files on the deal card
        assert (await deals.get_card(uow, ann, card.id)).stage.code == "measurement_done"

    # 4. The manager is told; nothing more goes to Mia (her reminder was cancelled).
    clock.advance(days=3)
    await sweeper.sweep_until_idle()
    [told] = notifier.to(ann.id)
    told_p = told.items[0].payload
    assert told.items[0].kind == Kind.MEASURE_DONE and isinstance(told_p, MeasureDone)
    assert told_p.photos == 2 and told_p.files == 3 and told_p.comment == "Всё замерено"
    assert [d.items[0].kind for d in notifier.to(mia.id)] == [Kind.TASK_NEW]
    left = await reminders(uow_factory, task_id=measure_id)
    assert {r.state for r in left} <= {"sent", "cancelled"}


async def test_decline_goes_back_to_the_head_with_the_reason(uow_factory, clock, team):
    ann, hank, mia = team["ann"], team["hank"], team["mia"]
    notifier = RecordingNotifier()
    sweeper, _ = make_sweeper(uow_factory, notifier, clock)
    card = await scheduled_deal(uow_factory, ann)
    assign = await open_task(uow_factory, card.id, TaskKind.ASSIGN_MEASURER)
    async with uow_factory() as uow:
        measure = await measurement.assign_measurer(uow, hank, assign.id, mia.id)
    await sweeper.sweep_until_idle()
    notifier.deliveries.clear()

    with pytest.raises(ValidationError):
        async with uow_factory() as uow:
            await measurement.decline(uow, mia, measure.task.id, "   ")
    async with uow_factory() as uow:
        info = await measurement.decline(uow, mia, measure.task.id, "Заболел")
    assert info.status == "declined"
    assert await stage_code(uow_factory, card.id) == "measurement_scheduled"
    assert (await deal_row(uow_factory, card.id)).measurer_id is None
    again = await open_task(uow_factory, card.id, TaskKind.ASSIGN_MEASURER)
    assert again.id != assign.id

    await sweeper.sweep_once()
    [delivery] = notifier.to(hank.id)
    payload = delivery.items[0].payload
    assert isinstance(payload, TaskPayload)
    assert delivery.items[0].task_id == again.id
    assert payload.declined_by == "Mia" and payload.decline_reason == "Заболел"
    async with uow_factory() as uow:
        head_card = await tasks.task_card(uow, hank, again.id)
    assert head_card.declined_by == "Mia" and head_card.decline_reason == "Заболел"
    # the declined task cannot be completed afterwards
    with pytest.raises(RuleViolation):
        async with uow_factory() as uow:
            await measurement.complete_measurement(uow, mia, measure.task.id, [], "x")


async def test_measurer_load_counts_that_local_day_only(uow_factory, clock, team):
    ann, hank, mia = team["ann"], team["hank"], team["mia"]
    for when in (MEASURE_AT, MEASURE_AT + timedelta(hours=5), MEASURE_AT + timedelta(days=1)):
        card = await scheduled_deal(uow_factory, ann, when)
        assign = await open_task(uow_factory, card.id, TaskKind.ASSIGN_MEASURER)
        async with uow_factory() as uow:
            await measurement.assign_measurer(uow, hank, assign.id, mia.id)
    async with uow_factory() as uow:
        loads = {m.name: m.load for m in await measurement.measurer_loads(uow, hank, MEASURE_AT)}
    assert loads == {"Mia": 2, "Max": 0}
    # 21:30 UTC on the 14th is already the 15th in Moscow
    async with uow_factory() as uow:
        late = datetime(2026, 1, 14, 21, 30, tzinfo=UTC)
        loads = {m.name: m.load for m in await measurement.measurer_loads(uow, hank, late)}
    assert loads == {"Mia": 1, "Max": 0}
    with pytest.raises(PermissionDenied):
        async with uow_factory() as uow:
            await measurement.measurer_loads(uow, mia, MEASURE_AT)


async def test_measurer_cannot_touch_another_measurers_task_nor_open_deals(
    uow_factory, clock, team, db_snapshot
):
    ann, hank, mia, max_ = team["ann"], team["hank"], team["mia"], team["max"]
    card = await scheduled_deal(uow_factory, ann)
    assign = await open_task(uow_factory, card.id, TaskKind.ASSIGN_MEASURER)
    async with uow_factory() as uow:
        measure = await measurement.assign_measurer(uow, hank, assign.id, mia.id)
    forged = measure.task.id
    before = await db_snapshot()
    attempts = [
        lambda uow: tasks.task_card(uow, max_, forged),
        lambda uow: measurement.accept(uow, max_, forged),
        lambda uow: measurement.on_my_way(uow, max_, forged),
        lambda uow: measurement.decline(uow, max_, forged, "не моё"),
        lambda uow: measurement.complete_measurement(
            uow, max_, forged, [("photo", "f", "u", None)], ""
        ),
        lambda uow: tasks.done(uow, max_, forged),
        lambda uow: tasks.snooze(uow, max_, forged, clock.now() + timedelta(hours=1)),
        # a measurer never assigns, nor opens or moves the deal
        lambda uow: measurement.assign_measurer(uow, mia, assign.id, mia.id),
        lambda uow: deals.get_card(uow, mia, card.id),
        lambda uow: deals.advance(uow, mia, card.id, None),
        lambda uow: deals.history(uow, mia, card.id),
        lambda uow: followups.set_next_contact(uow, mia, card.id, clock.now() + timedelta(days=1)),
        lambda uow: tasks.create_manual_task(
            uow, mia, "x", clock.now() + timedelta(hours=1), deal_id=card.id
        ),
    ]
    for attempt in attempts:
        with pytest.raises(PermissionDenied):
            async with uow_factory() as uow:
                await attempt(uow)
    assert await db_snapshot() == before

    # Mia's own view: her task and its card, made for the phone, without the deal.
    async with uow_factory() as uow:
        mine = await tasks.list_my_tasks(uow, mia, "upcoming")
        theirs = await tasks.list_my_tasks(uow, max_, "upcoming")
        own = await tasks.task_card(uow, mia, forged)
    assert [t.id for t in mine] == [forged] and theirs == []
    assert own.phone and own.address == "ул. Мира, 1" and own.client_name == "Иван Петров"


async def test_assign_refuses_non_measurers_and_closed_tasks(uow_factory, clock, team):
    ann, hank, mia = team["ann"], team["hank"], team["mia"]
    card = await scheduled_deal(uow_factory, ann)
    assign = await open_task(uow_factory, card.id, TaskKind.ASSIGN_MEASURER)
    for bad in (ann.id, 999_999, -1):
        with pytest.raises(ValidationError) as err:
            async with uow_factory() as uow:
                await measurement.assign_measurer(uow, hank, assign.id, bad)
        assert err.value.code == "not_a_measurer"
    async with uow_factory() as uow:
        await measurement.assign_measurer(uow, hank, assign.id, mia.id)
    with pytest.raises(RuleViolation) as closed:
        async with uow_factory() as uow:
            await measurement.assign_measurer(uow, hank, assign.id, mia.id)
    assert closed.value.rule == "task_closed"
    # "Done" on a flow task is refused: it closes through its own buttons
    measure = await open_task(uow_factory, card.id, TaskKind.MEASURE)
    with pytest.raises(RuleViolation):
        async with uow_factory() as uow:
            await tasks.done(uow, mia, measure.id)
    with pytest.raises(ValidationError):
        async with uow_factory() as uow:
            await measurement.complete_measurement(uow, mia, measure.id, [], None)
    with pytest.raises(ValidationError):
        async with uow_factory() as uow:
            await measurement.complete_measurement(
                uow, mia, measure.id, [("sticker", "x", None, None)], ""
            )
    async with uow_factory() as uow:
        assert (await uow.repo.get(Task, measure.id)).status == TaskStatus.OPEN


async def test_measurer_is_reminded_an_hour_before(uow_factory, clock, team):
    ann, hank, mia = team["ann"], team["hank"], team["mia"]
    notifier = RecordingNotifier()
    sweeper, _ = make_sweeper(uow_factory, notifier, clock)
    card = await scheduled_deal(uow_factory, ann)
    assign = await open_task(uow_factory, card.id, TaskKind.ASSIGN_MEASURER)
    async with uow_factory() as uow:
        measure = await measurement.assign_measurer(uow, hank, assign.id, mia.id)
    async with uow_factory() as uow:  # assigning closed the head's task: no due reminder
        await measurement.accept(uow, mia, measure.task.id)
    await sweeper.sweep_until_idle()
    assert notifier.kinds(mia.id) == [Kind.TASK_NEW]
    assert Kind.TASK_DUE not in notifier.kinds(hank.id)
    clock.set(MEASURE_AT - timedelta(hours=1, minutes=1))
    await sweeper.sweep_until_idle()
    assert notifier.kinds(mia.id) == [Kind.TASK_NEW]
    clock.advance(minutes=1)
    await sweeper.sweep_until_idle()
    assert notifier.kinds(mia.id) == [Kind.TASK_NEW, Kind.TASK_DUE]
    assert not notifier.items(mia.id)[-1].late
