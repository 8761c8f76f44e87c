"""The first-response promise (issue 26): working-time arithmetic by hand, the escalation
scan on a fake clock (one second before the due moment: nothing; at it: the leaders;
a lead at night: not before the morning's start plus the limit), the first-touch rule and
the leader's reassignment from the escalation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from services.errors import PermissionDenied
from services.outbox.queue import Kind
from services.policy import CompanyPolicy
from services.sales import leads
from services.sales.leads import LeadInput
from services.work import response
from services.worktime import WorkHours, parse_days, parse_hours
from storage.enums import ActivityKind
from storage.models import Lead, Reminder
from tests.factories import cast

TZ = "Europe/Moscow"  # UTC+3, no DST
HOURS = WorkHours.parse("09:00-19:00", "mon-fri", TZ)


def msk(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A Moscow wall time in January 2026 (the 12th is a Monday) as UTC."""
    return datetime(2026, 1, day, hour - 3, minute, second, tzinfo=UTC)


def test_working_time_by_hand() -> None:
    limit = timedelta(minutes=15)
    assert HOURS.add(msk(12, 10), limit) == msk(12, 10, 15)
    assert HOURS.add(msk(12, 18, 55), limit) == msk(13, 9, 10)  # the brief's example
    assert HOURS.add(msk(16, 18, 55), limit) == msk(19, 9, 10)  # Friday -> Monday
    assert HOURS.add(msk(12, 23), limit) == msk(13, 9, 15)  # night: from the morning
    assert HOURS.add(msk(17, 12), limit) == msk(19, 9, 15)  # Saturday
    assert HOURS.add(msk(12, 18, 45), limit) == msk(12, 19)  # ends at the close
    assert HOURS.elapsed(msk(12, 18, 55), msk(13, 9, 10)) == limit
    assert HOURS.elapsed(msk(16, 18), msk(19, 10)) == timedelta(hours=2)
    assert HOURS.elapsed(msk(13, 9), msk(12, 9)) == timedelta()
    assert HOURS.is_open(msk(12, 9)) and not HOURS.is_open(msk(12, 19))
    assert not HOURS.is_open(msk(17, 12))
    assert parse_days("mon-fri,sun") == frozenset({0, 1, 2, 3, 4, 6})
    assert parse_days("sat-mon") == frozenset({5, 6, 0})
    for bad in ("19:00-09:00", "9-19", "25:00-26:00"):
        with pytest.raises(ValueError):
            parse_hours(bad)
    with pytest.raises(ValueError):
        parse_days("mon-fry")


@pytest.fixture
async def people(uow_factory, make_actor):
    uow_factory.policy = CompanyPolicy(timezone=TZ, first_response=timedelta(minutes=15))
    return await cast(make_actor, "ann", "bob", "lee")


async def new_lead(uow_factory, clock, actor, at: datetime, phone: str) -> int:
    clock.set(at)
    async with uow_factory() as uow:
        card = await leads.create_lead(uow, actor, LeadInput(name="Client", phone=phone))
    return card.id


async def late_rows(uow_factory) -> list[Reminder]:
    async with uow_factory() as uow:
        found = await uow.session.scalars(
            select(Reminder).where(Reminder.kind == Kind.LEAD_LATE).order_by(Reminder.id)
        )
        return list(found.all())


async def scan_at(uow_factory, clock, at: datetime) -> int:
    clock.set(at)
    async with uow_factory() as uow:
        return await response.first_response_scan(uow)


async def test_escalated_exactly_when_working_time_runs_out(uow_factory, clock, people):
    ann, lee = people["ann"], people["lee"]
    lead_id = await new_lead(uow_factory, clock, ann, msk(12, 10), "+79160000001")
    assert await scan_at(uow_factory, clock, msk(12, 10, 14, 59)) == 0
    assert await late_rows(uow_factory) == []
    assert await scan_at(uow_factory, clock, msk(12, 10, 15)) == 1
    rows = await late_rows(uow_factory)
    assert [(r.recipient_id, r.due_at) for r in rows] == [(lee.id, msk(12, 10, 15))]
    payload = rows[0].payload
    assert payload["lead_id"] == lead_id and payload["manager"] == "Ann"
    # the buttons: every manager on duty but the lead's own
    assert [c[1] for c in payload["choices"]] == ["Bob"]
    # idempotent: the next scans add nothing
    assert await scan_at(uow_factory, clock, msk(12, 10, 20)) == 0
    assert len(await late_rows(uow_factory)) == 1


async def test_a_lead_at_night_waits_for_the_morning(uow_factory, clock, people):
    ann = people["ann"]
    await new_lead(uow_factory, clock, ann, msk(12, 23), "+79160000002")
    for at in (msk(13, 3), msk(13, 8, 59), msk(13, 9, 14, 59)):
        assert await scan_at(uow_factory, clock, at) == 0
    assert await scan_at(uow_factory, clock, msk(13, 9, 15)) == 1


async def test_due_at_the_close_is_held_when_missed_until_morning(uow_factory, clock, people):
    ann = people["ann"]
    await new_lead(uow_factory, clock, ann, msk(12, 18, 55), "+79160000003")  # due 09:10
    assert await scan_at(uow_factory, clock, msk(12, 19, 30)) == 0  # evening: not due
    assert await scan_at(uow_factory, clock, msk(13, 9, 9, 59)) == 0
    assert await scan_at(uow_factory, clock, msk(13, 9, 10)) == 1
    # a due moment at the very close, scanned later that night: not until the morning
    await new_lead(uow_factory, clock, ann, msk(13, 18, 45), "+79160000004")  # due 19:00
    assert await scan_at(uow_factory, clock, msk(13, 22)) == 0
    assert await scan_at(uow_factory, clock, msk(14, 9)) == 1


async def test_a_touch_in_time_stops_the_clock(uow_factory, clock, people):
    ann = people["ann"]
    first = await new_lead(uow_factory, clock, ann, msk(12, 10), "+79160000005")
    second = await new_lead(uow_factory, clock, ann, msk(12, 10), "+79160000006")
    clock.set(msk(12, 10, 14))
    async with uow_factory() as uow:
        await leads.add_note(uow, ann, first, "called, no answer", ActivityKind.CALL)
    async with uow_factory() as uow:
        # a client's own message is no touch; a Business reply is
        await leads.touched(uow, second, ActivityKind.MESSAGE_IN)
        assert (await uow.repo.get(Lead, second)).first_action_at is None
        await leads.touched(uow, second, ActivityKind.MESSAGE_OUT)
        await uow.commit()
    async with uow_factory() as uow:
        assert (await uow.repo.get(Lead, first)).first_action_at == msk(12, 10, 14)
        assert (await uow.repo.get(Lead, second)).first_action_at == msk(12, 10, 14)
    assert await scan_at(uow_factory, clock, msk(12, 11)) == 0


async def test_reassign_from_the_escalation(uow_factory, clock, people):
    ann, bob, lee = people["ann"], people["bob"], people["lee"]
    lead_id = await new_lead(uow_factory, clock, ann, msk(12, 10), "+79160000007")
    await scan_at(uow_factory, clock, msk(12, 10, 15))
    async with uow_factory() as uow:
        with pytest.raises(PermissionDenied):  # a manager cannot take another's lead
            await leads.reassign(uow, bob, lead_id, bob.id)
    async with uow_factory() as uow:
        card, changed = await leads.reassign(uow, lee, lead_id, bob.id)
    assert changed and card.manager_id == bob.id
    async with uow_factory() as uow:
        _, again = await leads.reassign(uow, lee, lead_id, bob.id)
    assert not again
    async with uow_factory() as uow:
        told = await uow.session.scalars(
            select(Reminder.recipient_id).where(Reminder.kind == Kind.LEAD_NEW)
        )
        assert list(told.all()) == [bob.id]


async def test_the_sweep_tells_the_leader_with_a_button_per_manager_on_duty(
    uow_factory, clock, people
):
    """The scheduler's sweep (every REMINDER_SWEEP_SECONDS) runs the scan, then sends: the
    leader gets the message drawn with Reassign buttons, in the second it fell due."""
    from types import SimpleNamespace
    from zoneinfo import ZoneInfo

    from bot.scheduler import ReminderJobs
    from handlers.notify import render
    from handlers.ui.callbacks import LeadAction, LeadCb
    from tests.outbox_fakes import FakeTimer, RecordingNotifier

    ann, bob, lee = people["ann"], people["bob"], people["lee"]
    lead_id = await new_lead(uow_factory, clock, ann, msk(12, 10), "+79160000008")
    notifier = RecordingNotifier()
    timer = FakeTimer(clock)
    jobs = ReminderJobs(
        uow_factory,
        notifier,
        clock,
        SimpleNamespace(timezone=TZ),
        sleep=timer.sleep,
        monotonic=timer.monotonic,
    )
    clock.set(msk(12, 10, 14, 50))
    await jobs.sweep()
    assert notifier.deliveries == []
    clock.set(msk(12, 10, 15))
    await jobs.sweep()
    [delivery] = notifier.deliveries
    assert delivery.recipient_id == lee.id
    text, markup = render(delivery, ZoneInfo(TZ))
    assert "Лид без ответа дольше 15 мин рабочего времени" in text
    assert "👤 Менеджер: Ann" in text
    assert markup is not None
    buttons = [(b.text, b.callback_data) for row in markup.inline_keyboard for b in row]
    give = LeadCb(action=LeadAction.REASSIGN, lead_id=lead_id, arg=bob.id).pack()
    assert buttons[0] == ("➡️ Отдать: Bob", give)
    await jobs.sweep()  # once
    assert len(notifier.deliveries) == 1


async def test_a_big_import_left_untouched_is_one_message_not_one_each(uow_factory, clock, people):
    """25 leads late at once: the 10 oldest told one by one, the other 15 in one
    lead.late_many; every one marked, so later scans pass over them (and a lead late later
    is told on its own)."""
    ann, lee = people["ann"], people["lee"]
    for i in range(25):
        await new_lead(uow_factory, clock, ann, msk(12, 10, i), f"+7916000{i:04d}")
    assert await scan_at(uow_factory, clock, msk(12, 11)) == 25
    rows = await late_rows(uow_factory)
    assert len(rows) == 10 and {r.recipient_id for r in rows} == {lee.id}
    async with uow_factory() as uow:
        many = (
            await uow.session.scalars(select(Reminder).where(Reminder.kind == Kind.LEAD_LATE_MANY))
        ).all()
        assert [(r.recipient_id, r.payload["count"]) for r in many] == [(lee.id, 15)]
        assert many[0].payload["oldest_came_at"] == msk(12, 10, 10).isoformat()
        marked = await uow.session.scalars(select(Lead.late_at).where(Lead.late_at.is_not(None)))
        assert len(marked.all()) == 25
    assert await scan_at(uow_factory, clock, msk(12, 11, 30)) == 0
    await new_lead(uow_factory, clock, ann, msk(12, 11, 30), "+79169999999")
    assert await scan_at(uow_factory, clock, msk(12, 11, 45)) == 1
    assert len(await late_rows(uow_factory)) == 11
