"""Installment control: win with a plan, the linked copy, reminders before each due date,
overdue after the grace period, partial and full payments, /receivables."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from services.errors import (
    DealClosed,
    NotFound,
    PermissionDenied,
    RuleViolation,
    StaleVersion,
    StrictOrder,
    ValidationError,
)
from services.outbox.queue import Kind
from services.sales import deals
from services.work import installments
from services.work.installments import EqualSplit, ExplicitPlan
from storage.enums import ActivityKind
from storage.models import Activity, Deal, InstallmentDue, InstallmentPlan, Reminder, StageHistory
from tests.factories import cast, contract_signed, count, new_deal, stage_code
from tests.outbox_fakes import RecordingNotifier, make_sweeper

TZ = "Europe/Moscow"
RUB = 100  # kopecks


@pytest.fixture
async def people(make_actor):
    return await cast(make_actor, "ann", "bob", "lee", "liz", "mia")


async def win(uow_factory, actor, deal_id: int, plan, *args, **kwargs):
    """Win `deal_id` with installments in a unit of work of its own: the plan's summary."""
    async with uow_factory() as uow:
        return await installments.win_with_installments(uow, actor, deal_id, plan, *args, **kwargs)


async def reminders_of(uow_factory, deal_id: int, kind: str) -> list[Reminder]:
    async with uow_factory() as uow:
        rows = await uow.session.scalars(
            select(Reminder)
            .where(Reminder.deal_id == deal_id, Reminder.kind == kind)
            .order_by(Reminder.due_at, Reminder.recipient_id)
        )
        return list(rows)


async def test_win_with_equal_split_creates_the_linked_copy(uow_factory, clock, people):
    ann = people["ann"]
    card = await contract_signed(uow_factory, ann, clock, amount="100000")
    plan = EqualSplit(count=3, first_due=date(2026, 2, 1))
    summary = await win(uow_factory, ann, card.id, plan, card.version)

    assert summary.source_deal_id == card.id and summary.deal_id != card.id
    assert summary.stage_code == "awaiting_payment" and not summary.closed
    assert [(d.n, d.due_date, d.amount) for d in summary.dues] == [
        (1, date(2026, 2, 1), 3_333_334),
        (2, date(2026, 3, 1), 3_333_333),
        (3, date(2026, 4, 1), 3_333_333),
    ]
    assert summary.total == summary.remaining == 10_000_000 and summary.paid == 0
    async with uow_factory() as uow:
        source = await uow.repo.get(Deal, card.id)
        copy = await uow.repo.get(Deal, summary.deal_id)
        pipeline = await uow.repo.pipelines.by_role("installments")
        history = await uow.repo.history.for_deal(copy.id)
    assert source.with_installments and source.closed_at is not None
    assert await stage_code(uow_factory, card.id) == "won"
    assert copy.parent_deal_id == source.id and copy.pipeline_id == pipeline.id
    assert copy.manager_id == ann.id and copy.amount == source.amount
    assert [(h.from_stage_id, h.actor_id) for h in history] == [(None, ann.id)]
    # the plan is also reachable from the original deal
    async with uow_factory() as uow:
        same = await installments.plan_summary(uow, ann, card.id)
    assert same.deal_id == summary.deal_id


async def test_explicit_plan_must_add_up(uow_factory, clock, people, db_snapshot):
    ann, bob = people["ann"], people["bob"]
    card = await contract_signed(uow_factory, ann, clock, amount="1000")
    before = await db_snapshot()
    bad_plans: list[EqualSplit | ExplicitPlan] = [
        ExplicitPlan(((date(2026, 2, 1), 500 * RUB), (date(2026, 3, 1), 400 * RUB))),
        ExplicitPlan(((date(2026, 2, 1), 500 * RUB), (date(2026, 2, 1), 500 * RUB))),
        ExplicitPlan(((date(2025, 12, 1), 500 * RUB), (date(2026, 3, 1), 500 * RUB))),
        ExplicitPlan(((date(2026, 2, 1), 0), (date(2026, 3, 1), 1000 * RUB))),
        ExplicitPlan(()),
        EqualSplit(count=0, first_due=date(2026, 2, 1)),
        EqualSplit(count=61, first_due=date(2026, 2, 1)),
        EqualSplit(count=2, first_due=date(2026, 1, 1)),
    ]
    for plan in bad_plans:
        with pytest.raises(ValidationError):
            async with uow_factory() as uow:
                await installments.win_with_installments(uow, ann, card.id, plan)
    with pytest.raises(ValidationError) as mismatch:
        async with uow_factory() as uow:
            await installments.win_with_installments(uow, ann, card.id, bad_plans[0])
    assert mismatch.value.code == "sum_mismatch" and mismatch.value.params["got"] == 90_000
    with pytest.raises(PermissionDenied):
        async with uow_factory() as uow:
            await installments.win_with_installments(
                uow, bob, card.id, EqualSplit(2, date(2026, 2, 1))
            )
    assert await db_snapshot() == before

    typed = installments.parse_plan_lines("01.02.2026 600\n1 000 — 01.03\n", clock, TZ)
    assert typed.items == ((date(2026, 2, 1), 600 * RUB), (date(2026, 3, 1), 1000 * RUB))
    typed = installments.parse_plan_lines("01.02.2026 600\n01.03.2026 400", clock, TZ)
    summary = await win(uow_factory, ann, card.id, typed)
    assert [d.amount for d in summary.dues] == [60_000, 40_000]
    with pytest.raises(RuleViolation):  # won already: no second plan
        async with uow_factory() as uow:
            await installments.win_with_installments(uow, ann, card.id, typed)
    with pytest.raises(ValidationError):
        installments.parse_plan_lines("когда-нибудь тысячу", clock, TZ)


async def test_due_reminders_overdue_partial_and_paid_off(uow_factory, clock, people):
    ann, lee = people["ann"], people["lee"]
    notifier = RecordingNotifier()
    sweeper, _ = make_sweeper(uow_factory, notifier, clock)
    card = await contract_signed(uow_factory, ann, clock, amount="90000")
    plan = EqualSplit(count=3, first_due=date(2026, 2, 1))
    s = await win(uow_factory, ann, card.id, plan, reminder_days=3)
    deal_id = s.deal_id

    # Reminder 3 days before the first due date, at 10:00 local time.
    clock.set(datetime(2026, 1, 29, 6, 59, tzinfo=UTC))
    await sweeper.sweep_until_idle()
    assert notifier.items(ann.id) == []
    clock.set(datetime(2026, 1, 29, 7, 0, tzinfo=UTC))
    await sweeper.sweep_until_idle()
    [upcoming] = notifier.items(ann.id)
    assert upcoming.kind == Kind.INSTALLMENT_UPCOMING and upcoming.deal_id == deal_id
    assert upcoming.payload.n == 1 and upcoming.payload.amount == 3_000_000
    assert upcoming.payload.due_date.isoformat() == "2026-02-01"

    # Not paid: within the grace period nothing happens; after it -> Overdue, both told.
    clock.set(datetime(2026, 2, 4, 9, 0, tzinfo=UTC))  # due + 3 days
    async with uow_factory() as uow:
        assert await installments.mark_overdue(uow, grace_days=3, tz=TZ) == 0
    clock.set(datetime(2026, 2, 5, 9, 0, tzinfo=UTC))
    async with uow_factory() as uow:
        assert await installments.mark_overdue(uow, grace_days=3, tz=TZ) == 1
    async with uow_factory() as uow:
        assert await installments.mark_overdue(uow, grace_days=3, tz=TZ) == 0  # once
    assert await stage_code(uow_factory, deal_id) == "overdue"
    await sweeper.sweep_until_idle()
    for person in (ann, lee):
        [item] = [i for i in notifier.items(person.id) if i.kind == Kind.INSTALLMENT_OVERDUE]
        assert item.payload.amount == 3_000_000 and item.payload.days == 4

    # A partial payment: the balance drops, still overdue.
    async with uow_factory() as uow:
        s = await installments.record_payment(uow, ann, deal_id, "10 000", date(2026, 2, 5))
    assert s.paid == 1_000_000 and s.remaining == 8_000_000 and s.overdue_amount == 2_000_000
    assert s.stage_code == "overdue" and s.dues[0].paid == 1_000_000
    with pytest.raises(ValidationError) as over:
        async with uow_factory() as uow:
            await installments.record_payment(uow, ann, deal_id, 8_000_001)
    assert over.value.code == "overpayment" and over.value.params["remaining"] == 8_000_000
    for bad in (0, -5, "ноль"):
        with pytest.raises(ValidationError):
            async with uow_factory() as uow:
                await installments.record_payment(uow, ann, deal_id, bad)
    with pytest.raises(ValidationError):
        async with uow_factory() as uow:
            await installments.record_payment(uow, ann, deal_id, 100, date(2026, 2, 6))

    # Paying the rest of the overdue part (and a bit of the next one): back to awaiting.
    async with uow_factory() as uow:
        s = await installments.record_payment(uow, ann, card.id, 2_500_000)
    assert s.stage_code == "awaiting_payment" and s.overdue_amount == 0
    assert [d.paid for d in s.dues] == [3_000_000, 500_000, 0]
    assert s.next_due is not None and s.next_due.n == 2

    # The second part is paid before its reminder: the reminder is not sent.
    async with uow_factory() as uow:
        s = await installments.record_payment(uow, ann, deal_id, 2_500_000)
    clock.set(datetime(2026, 2, 27, 8, 0, tzinfo=UTC))
    notifier.deliveries.clear()
    await sweeper.sweep_until_idle()
    assert notifier.items(ann.id) == []

    # Paid off -> won in Installment control, closed; nothing more to pay.
    async with uow_factory() as uow:
        s = await installments.record_payment(uow, ann, deal_id, 3_000_000)
    assert s.remaining == 0 and s.closed and s.stage_code == "paid"
    with pytest.raises(RuleViolation):
        async with uow_factory() as uow:
            await installments.record_payment(uow, ann, deal_id, 1)
    clock.set(datetime(2026, 4, 1, 8, 0, tzinfo=UTC))
    await sweeper.sweep_until_idle()
    assert notifier.items(ann.id) == []  # the third part's reminder is moot too


async def test_receivables_and_who_may_record(uow_factory, clock, people):
    ann, bob, lee = people["ann"], people["bob"], people["lee"]
    first = await contract_signed(uow_factory, ann, clock, amount="60000")
    second = await contract_signed(uow_factory, bob, clock, amount="10000")
    a = await win(uow_factory, ann, first.id, EqualSplit(3, date(2026, 1, 20)))
    b = await win(uow_factory, bob, second.id, EqualSplit(1, date(2026, 3, 1)))
    with pytest.raises(PermissionDenied):
        async with uow_factory() as uow:
            await installments.record_payment(uow, bob, a.deal_id, 100)
    clock.set(datetime(2026, 2, 25, 9, 0, tzinfo=UTC))  # two of Ann's parts are past due
    async with uow_factory() as uow:
        await installments.record_payment(uow, ann, a.deal_id, 500_000)
    async with uow_factory() as uow:
        everyone = await installments.receivables(uow, lee, TZ)
        own = await installments.receivables(uow, bob, TZ)
    rows = {r.deal_id: r for r in everyone.rows}
    assert rows[a.deal_id].remaining == 5_500_000 and rows[a.deal_id].overdue == 3_500_000
    assert rows[a.deal_id].overdue_since == date(2026, 1, 20)
    assert rows[a.deal_id].next_due == date(2026, 3, 20)
    assert rows[b.deal_id].overdue == 0 and rows[b.deal_id].next_due == date(2026, 3, 1)
    assert everyone.total_remaining == 6_500_000 and everyone.total_overdue == 3_500_000
    assert [r.deal_id for r in everyone.rows] == [a.deal_id, b.deal_id]  # overdue first
    assert [r.deal_id for r in own.rows] == [b.deal_id] and own.rows[0].manager_name == "Bob"


async def test_dues_are_stored_in_kopecks(uow_factory, clock, people):
    ann = people["ann"]
    card = await contract_signed(uow_factory, ann, clock, amount="1000,01")
    s = await win(uow_factory, ann, card.id, EqualSplit(4, date(2026, 1, 31)))
    async with uow_factory() as uow:
        rows = await uow.session.run_sync(
            lambda sync: sync.query(InstallmentDue).order_by(InstallmentDue.n).all()
        )
    assert sum(r.amount for r in rows) == 100_001
    assert [r.due_date for r in rows] == [
        date(2026, 1, 31),
        date(2026, 2, 28),
        date(2026, 3, 31),
        date(2026, 4, 30),
    ]
    assert s.total == 100_001


@given(
    total=st.integers(min_value=1, max_value=10**12),
    count=st.integers(min_value=1, max_value=60),
    day=st.dates(min_value=date(2026, 1, 1), max_value=date(2030, 12, 31)),
)
def test_equal_split_adds_up_and_parts_differ_by_at_most_a_kopeck(total, count, day):
    if total < count:
        with pytest.raises(ValidationError):
            installments.equal_split(total, count, day)
        return
    parts = installments.equal_split(total, count, day)
    amounts = [a for _, a in parts]
    assert sum(amounts) == total and len(parts) == count
    assert max(amounts) - min(amounts) <= 1
    dates_ = [d for d, _ in parts]
    assert dates_ == sorted(set(dates_)) and dates_[0] == day


# --- plans --------------------------------------------------------------------------------


async def test_explicit_lines_are_sorted_on_both_timelines_and_each_part_is_reminded(
    uow_factory, clock, people
):
    ann = people["ann"]
    card = await contract_signed(uow_factory, ann, clock, amount="1000")
    plan = ExplicitPlan(  # typed out of order; the first part falls inside the reminder window
        ((date(2026, 3, 10), 700 * RUB), (date(2026, 1, 13), 300 * RUB)),
    )
    s = await win(uow_factory, ann, card.id, plan, reminder_days=3)
    assert [(d.n, d.due_date, d.amount) for d in s.dues] == [
        (1, date(2026, 1, 13), 30_000),
        (2, date(2026, 3, 10), 70_000),
    ]
    assert s.next_due is not None and s.next_due.n == 1

    for deal_id in (card.id, s.deal_id):  # the plan is a fact on both timelines
        async with uow_factory() as uow:
            [row] = await uow.session.scalars(
                select(Activity).where(
                    Activity.deal_id == deal_id, Activity.kind == ActivityKind.PLAN
                )
            )
        assert row.payload == {
            "total": 100_000,
            "parts": 2,
            "dues": [
                {"date": "2026-01-13", "amount": 30_000},
                {"date": "2026-03-10", "amount": 70_000},
            ],
        }

    upcoming = await reminders_of(uow_factory, s.deal_id, Kind.INSTALLMENT_UPCOMING)
    assert [(r.recipient_id, r.payload["n"], r.payload["count"]) for r in upcoming] == [
        (ann.id, 1, 2),
        (ann.id, 2, 2),
    ]
    # 3 days before 13.01 is in the past: the reminder is due now, not skipped.
    assert upcoming[0].due_at == clock.now()
    # 3 days before 10.03, at 10:00 in Moscow.
    assert upcoming[1].due_at == datetime(2026, 3, 7, 7, 0, tzinfo=UTC)
    async with uow_factory() as uow:
        dues = await uow.repo.installments.dues(
            (await uow.repo.installments.plan_for_deal(s.deal_id)).id
        )
    assert [r.dedupe_key for r in upcoming] == [f"inst:{d.id}:pre" for d in dues]


async def test_every_second_month_and_the_31st(uow_factory, clock, people):
    ann = people["ann"]
    card = await contract_signed(uow_factory, ann, clock, amount="900")
    plan = EqualSplit(count=3, first_due=date(2026, 1, 31), every_months=2)
    s = await win(uow_factory, ann, card.id, plan)
    assert [(d.due_date, d.amount) for d in s.dues] == [
        (date(2026, 1, 31), 30_000),
        (date(2026, 3, 31), 30_000),
        (date(2026, 5, 31), 30_000),
    ]
    with pytest.raises(ValidationError):
        installments.equal_split(100, 2, date(2026, 1, 1), every_months=13)


async def test_a_plan_is_refused_where_a_win_is_and_nothing_is_written(
    uow_factory, clock, people, db_snapshot
):
    ann, bob, mia = people["ann"], people["bob"], people["mia"]
    ready = await contract_signed(uow_factory, ann, clock, amount="1000")
    fresh = await new_deal(uow_factory, ann, amount="1000")  # at the entry stage of Sales
    lost = await new_deal(uow_factory, ann, amount="1000")
    async with uow_factory() as uow:
        await deals.lose(uow, ann, lost.id, "expensive")
    done = await contract_signed(uow_factory, ann, clock, amount="1000")
    won = await win(uow_factory, ann, done.id, EqualSplit(2, date(2026, 2, 1)))
    plan = EqualSplit(2, date(2026, 2, 1))
    before = await db_snapshot()

    async def refused(actor, deal_id, version=None):
        async with uow_factory() as uow:
            await installments.win_with_installments(uow, actor, deal_id, plan, version)

    with pytest.raises(PermissionDenied):  # another manager's deal
        await refused(bob, ready.id)
    with pytest.raises(PermissionDenied):  # a measurer never moves a deal
        await refused(mia, ready.id)
    with pytest.raises(StaleVersion):  # the card was changed meanwhile
        await refused(ann, ready.id, ready.version - 1)
    with pytest.raises(NotFound):
        await refused(ann, 10**9)
    with pytest.raises(DealClosed):  # lost already
        await refused(ann, lost.id)
    with pytest.raises(StrictOrder):  # Sales is strict: won only from Contract signed
        await refused(ann, fresh.id)
    with pytest.raises(RuleViolation) as copy:  # the installment deal itself
        await refused(ann, won.deal_id)
    assert copy.value.rule == "already_installments"
    with pytest.raises(RuleViolation) as again:  # the original, won with a plan already
        await refused(ann, done.id)
    assert again.value.rule == "plan_exists"
    assert await db_snapshot() == before
    assert await count(uow_factory, InstallmentPlan) == 1


# --- reading and paying -------------------------------------------------------------------


async def test_who_sees_a_plan_and_who_pays_it_off(uow_factory, clock, people, db_snapshot):
    ann, bob, lee, mia = people["ann"], people["bob"], people["lee"], people["mia"]
    plain_deal = await new_deal(uow_factory, ann, amount="1000")
    card = await contract_signed(uow_factory, ann, clock, amount="2000")
    s = await win(uow_factory, ann, card.id, EqualSplit(2, date(2026, 2, 1)))
    before = await db_snapshot()
    for who in (bob, mia):
        with pytest.raises(PermissionDenied):
            async with uow_factory() as uow:
                await installments.plan_summary(uow, who, s.deal_id)
        with pytest.raises(PermissionDenied):
            async with uow_factory() as uow:
                await installments.record_payment(uow, who, s.deal_id, 100)
    with pytest.raises(RuleViolation) as no_plan:
        async with uow_factory() as uow:
            await installments.plan_summary(uow, ann, plain_deal.id)
    assert no_plan.value.rule == "no_installment_plan"
    with pytest.raises(StaleVersion):
        async with uow_factory() as uow:
            await installments.record_payment(
                uow, ann, s.deal_id, 100, expected_version=s.version - 1
            )
    with pytest.raises(ValidationError) as future:
        async with uow_factory() as uow:
            await installments.record_payment(uow, ann, s.deal_id, 100, date(2026, 1, 13))
    assert future.value.code == "in_the_future"
    assert await db_snapshot() == before

    # The leader records the whole sum for Ann: paid off, and Ann is told.
    async with uow_factory() as uow:
        paid = await installments.record_payment(uow, lee, s.deal_id, "2 000")
    assert paid.closed and paid.stage_code == "paid" and paid.remaining == 0
    [told] = await reminders_of(uow_factory, s.deal_id, Kind.INSTALLMENT_PAID)
    assert told.recipient_id == ann.id and told.payload["total"] == 200_000
    assert await reminders_of(uow_factory, s.deal_id, Kind.INSTALLMENT_UPCOMING) != []
    async with uow_factory() as uow:  # both parts paid: their reminders are cancelled
        pending = await uow.session.scalars(
            select(Reminder).where(
                Reminder.deal_id == s.deal_id,
                Reminder.kind == Kind.INSTALLMENT_UPCOMING,
                Reminder.state == "pending",
            )
        )
        assert list(pending) == []
    async with uow_factory() as uow:  # the payment is a fact on the timeline
        [row] = await uow.session.scalars(
            select(Activity).where(
                Activity.deal_id == s.deal_id, Activity.kind == ActivityKind.PAYMENT
            )
        )
    assert row.payload == {"amount": 200_000, "paid_on": "2026-01-12"}
    assert row.author_id == lee.id


async def test_paying_off_ones_own_plan_tells_nobody(uow_factory, clock, people):
    ann = people["ann"]
    card = await contract_signed(uow_factory, ann, clock, amount="500")
    s = await win(uow_factory, ann, card.id, EqualSplit(1, date(2026, 2, 1)))
    async with uow_factory() as uow:
        s = await installments.record_payment(uow, ann, card.id, 50_000)
    assert s.closed and s.remaining == 0
    assert await reminders_of(uow_factory, s.deal_id, Kind.INSTALLMENT_PAID) == []


# --- the overdue scan ---------------------------------------------------------------------


async def test_the_overdue_scan_moves_a_deal_once_and_tells_each_person_once_a_part(
    uow_factory, clock, people
):
    ann, bob, lee, liz = people["ann"], people["bob"], people["lee"], people["liz"]
    late = await contract_signed(uow_factory, ann, clock, amount="3000")
    on_time = await contract_signed(uow_factory, bob, clock, amount="3000")
    a = await win(uow_factory, ann, late.id, EqualSplit(3, date(2026, 1, 15)))
    b = await win(uow_factory, bob, on_time.id, EqualSplit(3, date(2026, 1, 15)))
    async with uow_factory() as uow:  # Bob's client pays the first two parts in advance
        await installments.record_payment(uow, bob, b.deal_id, 200_000)

    clock.set(datetime(2026, 2, 17, 9, 0, tzinfo=UTC))  # 15.02 is within its grace days
    async with uow_factory() as uow:
        assert await installments.mark_overdue(uow, grace_days=3) == 1  # only 15.01
    clock.set(datetime(2026, 2, 19, 9, 0, tzinfo=UTC))  # 15.02 is 4 days late
    async with uow_factory() as uow:
        assert await installments.mark_overdue(uow, grace_days=3) == 1  # now 15.02
    async with uow_factory() as uow:
        assert await installments.mark_overdue(uow, grace_days=3) == 0  # each part once
    assert await stage_code(uow_factory, a.deal_id) == "overdue"
    assert await stage_code(uow_factory, b.deal_id) == "awaiting_payment"
    async with uow_factory() as uow:
        moves = await uow.session.scalars(
            select(StageHistory).where(StageHistory.deal_id == a.deal_id)
        )
        assert len(list(moves)) == 2  # born at Awaiting payment, moved to Overdue once

    told = await reminders_of(uow_factory, a.deal_id, Kind.INSTALLMENT_OVERDUE)
    by_part = sorted((r.payload["n"], r.recipient_id) for r in told)
    assert by_part == sorted((n, p.id) for n in (1, 2) for p in (ann, lee, liz))
    first = next(r for r in told if r.payload["n"] == 1 and r.recipient_id == ann.id)
    assert first.payload["days"] == 33 and first.payload["amount"] == 100_000
    assert first.payload["manager"] == "Ann"
    assert await reminders_of(uow_factory, b.deal_id, Kind.INSTALLMENT_OVERDUE) == []

    # Paying what is overdue brings the deal back to Awaiting payment.
    async with uow_factory() as uow:
        s = await installments.record_payment(uow, ann, late.id, 200_000)
    assert s.stage_code == "awaiting_payment" and s.overdue_amount == 0


# --- /receivables -------------------------------------------------------------------------


async def test_receivables_scope_empty_and_paid_off(uow_factory, clock, people):
    ann, lee, mia = people["ann"], people["lee"], people["mia"]
    with pytest.raises(PermissionDenied):
        async with uow_factory() as uow:
            await installments.receivables(uow, mia, TZ)
    async with uow_factory() as uow:
        empty = await installments.receivables(uow, lee, TZ)
    assert empty.rows == () and empty.total_remaining == empty.total_overdue == 0

    card = await contract_signed(uow_factory, ann, clock, amount="1000")
    s = await win(uow_factory, ann, card.id, EqualSplit(2, date(2026, 2, 1)))
    async with uow_factory() as uow:
        listed = await installments.receivables(uow, lee, TZ)
    assert [(r.deal_id, r.remaining, r.paid, r.total) for r in listed.rows] == [
        (s.deal_id, 100_000, 0, 100_000)
    ]
    assert listed.rows[0].manager_name == "Ann" and listed.rows[0].overdue_since is None
    async with uow_factory() as uow:
        await installments.record_payment(uow, ann, s.deal_id, 100_000)
    async with uow_factory() as uow:
        after = await installments.receivables(uow, lee, TZ)
    assert after.rows == () and after.total_remaining == 0
