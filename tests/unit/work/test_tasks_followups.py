"""Follow-ups, manual tasks, done/snooze, escalation, deferred demand's task, morning summary:
all driven by a fake clock and the real sweeper."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from services import dates, tasks
from services.errors import PermissionDenied, RuleViolation, ValidationError
from services.outbox.queue import Kind
from services.sales import deals
from services.work import followups, jobs
from storage.enums import TaskKind, TaskStatus
from storage.models import Deal, Stage, Task
from tests.factories import cast, new_deal
from tests.outbox_fakes import RecordingNotifier, make_sweeper, reminders

TZ = "Europe/Moscow"


@pytest.fixture
async def people(make_actor):
    return await cast(make_actor, "ann", "bob", "lee", "liz")


@pytest.fixture
def notifier():
    return RecordingNotifier()


@pytest.fixture
def sweeper(uow_factory, notifier, clock):
    return make_sweeper(uow_factory, notifier, clock)[0]


async def task_row(uow_factory, task_id: int) -> Task:
    async with uow_factory() as uow:
        return await uow.repo.get(Task, task_id)


async def stage_of(uow_factory, deal_id: int) -> tuple[str, str]:
    async with uow_factory() as uow:
        deal = await uow.repo.get(Deal, deal_id)
        stage = await uow.repo.get(Stage, deal.stage_id)
        pipeline = await uow.repo.pipelines.by_role("sales")
        return ("sales" if stage.pipeline_id == pipeline.id else "other", stage.code)


async def test_next_contact_reminds_the_manager_at_that_time(
    uow_factory, clock, people, notifier, sweeper
):
    ann = people["ann"]
    card = await new_deal(uow_factory, ann)
    when = dates.parse_when("завтра 10:00", clock, TZ)
    async with uow_factory() as uow:
        card = await followups.set_next_contact(uow, ann, card.id, when, card.version)
    assert card.next_contact_at == when
    await sweeper.sweep_until_idle()
    assert notifier.deliveries == []  # her own follow-up: nothing until it is due

    clock.set(when - timedelta(minutes=1))
    await sweeper.sweep_until_idle()
    assert notifier.deliveries == []
    clock.set(when)
    await sweeper.sweep_until_idle()
    [delivery] = notifier.deliveries
    [item] = delivery.items
    assert delivery.recipient_id == ann.id and delivery.chat_id == ann.telegram_id
    assert item.kind == Kind.TASK_DUE and item.payload.task_kind == "follow_up"
    assert item.payload.deal_title == card.title and not item.late
    assert item.deal_id == card.id

    # a new next contact replaces the open follow-up (and its pending reminder)
    async with uow_factory() as uow:
        card = await followups.set_next_contact_quick(uow, ann, card.id, "3d", TZ)
    async with uow_factory() as uow:
        card = await followups.set_next_contact_quick(uow, ann, card.id, "nw", TZ)
    async with uow_factory() as uow:
        open_ = await uow.repo.tasks.open_for_deal(card.id, TaskKind.FOLLOW_UP)
    assert [t.due_at for t in open_] == [card.next_contact_at]
    assert card.next_contact_at == datetime(2026, 1, 19, 7, 0, tzinfo=UTC)  # Mon 10:00 MSK
    clock.advance(days=30)
    notifier.deliveries.clear()
    await sweeper.sweep_until_idle()
    assert len(notifier.items(ann.id)) == 1  # the replaced reminder never went out


async def test_next_contact_validation(uow_factory, clock, people, db_snapshot):
    ann, bob = people["ann"], people["bob"]
    card = await new_deal(uow_factory, ann)
    before = await db_snapshot()
    with pytest.raises(ValidationError) as err:
        async with uow_factory() as uow:
            await followups.set_next_contact(uow, ann, card.id, clock.now() - timedelta(minutes=1))
    assert err.value.code == "in_the_past"
    with pytest.raises(PermissionDenied):
        async with uow_factory() as uow:
            await followups.set_next_contact(uow, bob, card.id, clock.now() + timedelta(hours=1))
    assert await db_snapshot() == before


async def test_done_and_snooze(uow_factory, clock, people, notifier, sweeper):
    ann = people["ann"]
    due = clock.now() + timedelta(hours=2)
    async with uow_factory() as uow:
        info = await tasks.create_manual_task(uow, ann, "Позвонить поставщику", due)
    clock.set(due)
    await sweeper.sweep_until_idle()
    assert notifier.kinds(ann.id) == [Kind.TASK_DUE]

    # Snooze 1 h: the next reminder comes an hour later, not before.
    async with uow_factory() as uow:
        snoozed = await tasks.snooze_quick(uow, ann, info.id, dates.QuickChoice.IN_1H, TZ)
    assert snoozed.due_at == due + timedelta(hours=1)
    clock.advance(minutes=59)
    await sweeper.sweep_until_idle()
    assert notifier.kinds(ann.id) == [Kind.TASK_DUE]
    clock.advance(minutes=1)
    await sweeper.sweep_until_idle()
    assert notifier.kinds(ann.id) == [Kind.TASK_DUE, Kind.TASK_DUE]

    with pytest.raises(ValidationError):  # not into the past
        async with uow_factory() as uow:
            await tasks.snooze(uow, ann, info.id, clock.now() - timedelta(minutes=5))
    # Snooze to tomorrow 10:00, then Done before it: nothing more is sent.
    async with uow_factory() as uow:
        snoozed = await tasks.snooze_quick(uow, ann, info.id, "tm", TZ)
    assert snoozed.due_at == datetime(2026, 1, 13, 7, 0, tzinfo=UTC)
    async with uow_factory() as uow:
        finished = await tasks.done(uow, ann, info.id)
    assert finished.status == "done"
    clock.advance(days=2)
    await sweeper.sweep_until_idle()
    assert len(notifier.kinds(ann.id)) == 2
    rows = await reminders(uow_factory, task_id=info.id)
    assert sorted(r.state for r in rows) == ["cancelled", "sent", "sent"]
    with pytest.raises(RuleViolation):
        async with uow_factory() as uow:
            await tasks.done(uow, ann, info.id)
    with pytest.raises(RuleViolation):
        async with uow_factory() as uow:
            await tasks.snooze_quick(uow, ann, info.id, "1h", TZ)


async def test_snooze_of_a_task_closed_elsewhere_is_not_sent(
    uow_factory, clock, people, notifier, sweeper
):
    """A reminder whose task got closed by another path (deals.return_to_sales cancels
    deferred tasks directly) is dropped at claim time."""
    ann = people["ann"]
    async with uow_factory() as uow:
        info = await tasks.create_manual_task(uow, ann, "x", clock.now() + timedelta(hours=1))
    async with uow_factory() as uow:
        await uow.session.execute(
            update(Task).where(Task.id == info.id).values(status=TaskStatus.CANCELLED)
        )
        await uow.commit()
    clock.advance(hours=2)
    stats = await sweeper.sweep_until_idle()
    assert notifier.deliveries == [] and stats.cancelled == 1


async def test_leader_gives_a_manager_a_task_and_overdue_escalates(
    uow_factory, clock, people, notifier, sweeper
):
    ann, bob, lee, liz = people["ann"], people["bob"], people["lee"], people["liz"]
    due = clock.now() + timedelta(hours=3)
    with pytest.raises(PermissionDenied):
        async with uow_factory() as uow:
            await tasks.create_manual_task(uow, bob, "x", due, assignee_id=ann.id)
    with pytest.raises(ValidationError):
        async with uow_factory() as uow:  # only managers get tasks from a leader
            await tasks.create_manual_task(uow, lee, "x", due, assignee_id=liz.id)
    async with uow_factory() as uow:
        info = await tasks.create_manual_task(uow, lee, "Отчёт по КП", due, assignee_id=ann.id)
    await sweeper.sweep_until_idle()
    assert notifier.kinds(ann.id) == [Kind.TASK_NEW]
    assert notifier.items(ann.id)[0].payload.created_by == "Lee"

    delay = timedelta(minutes=30)
    clock.set(due + delay - timedelta(minutes=1))
    async with uow_factory() as uow:
        assert await jobs.escalate_overdue(uow, delay) == 0
    clock.set(due + delay)
    async with uow_factory() as uow:
        assert await jobs.escalate_overdue(uow, delay) == 1
    async with uow_factory() as uow:  # a second scan escalates nothing again
        assert await jobs.escalate_overdue(uow, delay) == 0
    await sweeper.sweep_until_idle()
    for leader in (lee, liz):
        [item] = notifier.items(leader.id)
        assert item.kind == Kind.TASK_ESCALATED and item.payload.assignee == "Ann"
        assert item.payload.title == "Отчёт по КП"
    assert notifier.kinds(ann.id) == [Kind.TASK_NEW, Kind.TASK_DUE]  # one message, merged
    assert (await task_row(uow_factory, info.id)).escalated_at == due + delay

    # Snoozed, it may escalate again after the new due time; done, never.
    async with uow_factory() as uow:
        await tasks.snooze(uow, ann, info.id, clock.now() + timedelta(hours=1))
    clock.advance(hours=2)
    async with uow_factory() as uow:
        assert await jobs.escalate_overdue(uow, delay) == 1
    async with uow_factory() as uow:
        await tasks.done(uow, ann, info.id)
    clock.advance(hours=5)
    async with uow_factory() as uow:
        assert await jobs.escalate_overdue(uow, delay) == 0
    notifier.deliveries.clear()
    await sweeper.sweep_until_idle()
    assert notifier.items(lee.id) == []  # the second escalation was moot: task done


async def test_deferred_demand_task_back_to_sales(uow_factory, clock, people, notifier, sweeper):
    ann = people["ann"]
    card = await new_deal(uow_factory, ann, amount="50000")
    async with uow_factory() as uow:
        card = await deals.advance(uow, ann, card.id, card.version)
    when = dates.parse_when("25.01 11:00", clock, TZ)
    async with uow_factory() as uow:
        card = await deals.defer(uow, ann, card.id, when, card.version, "после ремонта")
    assert card.stage.code == "waiting"
    async with uow_factory() as uow:
        [task] = await uow.repo.tasks.open_for_deal(card.id, TaskKind.DEFERRED_CONTACT)

    clock.set(when - timedelta(minutes=5))
    async with uow_factory() as uow:
        assert await jobs.deferred_due_scan(uow) == 0
    await sweeper.sweep_until_idle()
    assert notifier.deliveries == []
    clock.set(when)
    async with uow_factory() as uow:
        assert await jobs.deferred_due_scan(uow) == 1
    assert (await stage_of(uow_factory, card.id))[1] == "contact_due"
    await sweeper.sweep_until_idle()
    [item] = notifier.items(ann.id)
    assert item.kind == Kind.TASK_DUE and item.task_id == task.id
    assert item.payload.task_kind == "deferred_contact"
    assert item.payload.comment == "после ремонта"

    async with uow_factory() as uow:
        back = await followups.deferred_back_to_sales(uow, ann, task.id)
    assert back.pipeline.role == "sales" and back.stage.code == "proposal_sent"
    assert (await task_row(uow_factory, task.id)).status == "done"
    with pytest.raises(RuleViolation):
        async with uow_factory() as uow:
            await followups.deferred_back_to_sales(uow, ann, task.id)


async def test_deferred_demand_task_defer_again_and_lost(
    uow_factory, clock, people, notifier, sweeper
):
    ann, bob = people["ann"], people["bob"]
    card = await new_deal(uow_factory, ann)
    when = clock.now() + timedelta(days=2)
    async with uow_factory() as uow:
        card = await deals.defer(uow, ann, card.id, when, card.version)
    async with uow_factory() as uow:
        [task] = await uow.repo.tasks.open_for_deal(card.id, TaskKind.DEFERRED_CONTACT)
    clock.set(when)
    async with uow_factory() as uow:
        await jobs.deferred_due_scan(uow)
    await sweeper.sweep_until_idle()
    with pytest.raises(PermissionDenied):
        async with uow_factory() as uow:
            await followups.defer_again(uow, bob, task.id, clock.now() + timedelta(days=7))
    later = clock.now() + timedelta(days=7)
    async with uow_factory() as uow:
        card = await followups.defer_again(uow, ann, task.id, later)
    assert card.stage.code == "waiting" and card.next_contact_at == later
    async with uow_factory() as uow:
        [task2] = await uow.repo.tasks.open_for_deal(card.id, TaskKind.DEFERRED_CONTACT)
    assert task2.id != task.id and task2.due_at == later

    clock.set(later)
    await sweeper.sweep_until_idle()
    assert [i.task_id for i in notifier.items(ann.id)] == [task.id, task2.id]
    async with uow_factory() as uow:
        lost = await followups.deferred_lost(uow, ann, task2.id, "expensive", "дорого")
    assert lost.closed and lost.loss_reason == "Дорого"
    async with uow_factory() as uow:
        assert await uow.repo.tasks.open_for_deal(card.id) == []


async def test_morning_summary_lists_stale_deals_once_a_day(
    uow_factory, clock, people, notifier, sweeper
):
    ann, bob = people["ann"], people["bob"]
    stale = await new_deal(uow_factory, ann)
    fresh_at = clock.now() + timedelta(days=6)
    clock.advance(days=6)
    fresh = await new_deal(uow_factory, ann)
    async with uow_factory() as uow:
        await tasks.create_manual_task(uow, ann, "Перезвонить", clock.now() + timedelta(hours=1))
    clock.set(datetime(2026, 1, 20, 6, 0, tzinfo=UTC))  # 09:00 in Moscow, 8 days later
    async with uow_factory() as uow:
        stats = await jobs.morning_summary(uow, TZ, stale_days=7)
    assert stats.recipients == 1 and stats.per_manager == {ann.id: 1}
    async with uow_factory() as uow:  # the same morning again: nothing
        again = await jobs.morning_summary(uow, TZ, stale_days=7)
    assert again.skipped
    await sweeper.sweep_until_idle()
    [summary] = [d for d in notifier.to(ann.id) if d.items[0].kind == Kind.SUMMARY_MORNING]
    assert len(summary.items) == 1  # a summary is a message of its own
    payload = summary.items[0].payload
    assert [d[0] for d in payload.stale] == [stale.id]
    assert payload.stale[0][2] == 7 and payload.tasks_today == 1 and payload.overdue == 1
    assert notifier.to(bob.id) == []  # nothing to tell Bob
    assert fresh.id not in [d[0] for d in payload.stale] and fresh_at

    clock.advance(days=1)  # the next morning it runs again
    async with uow_factory() as uow:
        nxt = await jobs.morning_summary(uow, TZ, stale_days=7)
    assert nxt.per_manager == {ann.id: 1}
    clock.advance(days=5)  # and the second deal has gone quiet for over a week too
    async with uow_factory() as uow:
        nxt = await jobs.morning_summary(uow, TZ, stale_days=7)
    assert nxt.per_manager == {ann.id: 2}


async def test_my_tasks_today_and_upcoming(uow_factory, clock, people):
    ann, bob = people["ann"], people["bob"]
    now = clock.now()  # 12:00 in Moscow
    made = {}
    for name, offset in (("today", 3), ("tomorrow", 20), ("next_week", 24 * 7)):
        async with uow_factory() as uow:
            info = await tasks.create_manual_task(uow, ann, name, now + timedelta(hours=offset))
        made[name] = info.id
    async with uow_factory() as uow:
        await tasks.create_manual_task(uow, bob, "bob's", now + timedelta(hours=1))
    clock.advance(hours=4)  # the first is overdue now: still listed today, flagged
    async with uow_factory() as uow:
        today = await tasks.list_my_tasks(uow, ann, "today", TZ)
        upcoming = await tasks.list_my_tasks(uow, ann, "upcoming", TZ)
    assert [(t.title, t.overdue) for t in today] == [("today", True)]
    assert [t.title for t in upcoming] == ["tomorrow", "next_week"]
    with pytest.raises(ValidationError):
        async with uow_factory() as uow:
            await tasks.list_my_tasks(uow, ann, "yesterday")  # type: ignore[arg-type]


async def test_an_escalation_is_dropped_if_the_task_was_snoozed_before_it_went_out(
    uow_factory, clock, people, notifier, sweeper
):
    ann, lee = people["ann"], people["lee"]
    due = clock.now() + timedelta(hours=1)
    async with uow_factory() as uow:
        info = await tasks.create_manual_task(uow, ann, "Счёт", due)
    clock.set(due + timedelta(hours=2))
    async with uow_factory() as uow:
        assert await jobs.escalate_overdue(uow, timedelta(hours=1)) == 1
    async with uow_factory() as uow:  # Ann reacts first: snoozed to tomorrow
        await tasks.snooze_quick(uow, ann, info.id, "tm", TZ)
    await sweeper.sweep_until_idle()
    assert notifier.items(lee.id) == []
    assert notifier.kinds(ann.id) == []  # the snooze replaced her pending reminder too
    escalations = await reminders(uow_factory, kind=Kind.TASK_ESCALATED)
    assert [(r.state, r.last_error) for r in escalations] == [("cancelled", "moot")] * 2
