"""Stale ("rotting") deals (issue 14, Must show 3): with a fake clock, one alert per deal
past its stage's limit, none twice after a restart; each of the alert's buttons acts
through the real dispatcher; cards and lists mark the deal.

The shipped config gives "Data collection" rot_after_days = 3.
"""

from __future__ import annotations

from types import SimpleNamespace
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select

from bot.scheduler import ReminderJobs
from handlers.notify import render
from handlers.ui.callbacks import DealAction, DealCb
from services.outbox.queue import Kind
from services.sales import deals
from services.work import rotting
from storage.models import Deal, JobRun, Reminder
from tests.factories import new_deal
from tests.outbox_fakes import FakeTimer, RecordingNotifier
from tests.tg import tg_user

SETTINGS = SimpleNamespace(timezone="UTC", summary_hour=23)


def _jobs(uow_factory, clock, notifier: RecordingNotifier) -> ReminderJobs:
    timer = FakeTimer(clock)
    return ReminderJobs(
        uow_factory, notifier, clock, SETTINGS, sleep=timer.sleep, monotonic=timer.monotonic
    )


async def _alerts(uow_factory) -> int:
    async with uow_factory() as uow:
        return int(
            await uow.session.scalar(
                select(func.count()).where(Reminder.kind == Kind.DEAL_ROTTING.value)
            )
            or 0
        )


async def test_one_alert_per_stale_deal_none_twice_after_restarts(uow_factory, clock, make_actor):
    ann = await make_actor(roles=("manager",), name="Ann")
    bob = await make_actor(roles=("manager",), name="Bob")
    a1 = await new_deal(uow_factory, ann, amount="1000")
    a2 = await new_deal(uow_factory, ann)
    b1 = await new_deal(uow_factory, bob)
    notifier = RecordingNotifier()
    jobs = _jobs(uow_factory, clock, notifier)

    clock.advance(days=2)
    async with uow_factory() as uow:  # a2 moves on: a new stay in Proposal sent (limit 7)
        await deals.advance(uow, ann, a2.id, None, {"amount": "500"})
    await jobs.scan()
    await jobs.sweep()
    assert notifier.items() == []

    clock.advance(days=1, hours=1)  # a1 and b1: 3 days 1 hour in Data collection
    await jobs.scan()
    await jobs.sweep()
    assert sorted(i.deal_id for i in notifier.items()) == sorted([a1.id, b1.id])
    assert [i.deal_id for i in notifier.items(ann.id)] == [a1.id]
    assert notifier.items(ann.id)[0].payload.days == 3

    # A restart: a fresh scheduler scans and sweeps again; then one that lost the
    # watermark (the job-run row) rescans the last week: the dedupe keys hold.
    for _ in range(2):
        jobs = _jobs(uow_factory, clock, notifier)
        await jobs.catch_up()
        await jobs.sweep()
    async with uow_factory() as uow:
        await uow.session.execute(delete(JobRun).where(JobRun.name == rotting.ROT_JOB))
        await uow.commit()
    await _jobs(uow_factory, clock, notifier).scan()
    await jobs.sweep()
    assert len(notifier.items()) == 2
    assert await _alerts(uow_factory) == 2

    clock.advance(days=5)  # a2: 6 days 1 hour in Proposal sent (limit 7)
    await jobs.scan()
    assert await _alerts(uow_factory) == 2
    clock.advance(days=1, hours=1)  # now past 7 days: one more, for a2 only
    await jobs.scan()
    await jobs.sweep()
    assert [i.deal_id for i in notifier.items()][2:] == [a2.id]


async def test_each_button_of_the_alert_acts(harness, uow_factory, clock, make_actor):
    ann = await make_actor(roles=("manager",), name="Ann", language="en")
    user = tg_user(ann.telegram_id, lang="en")
    cards = [await new_deal(uow_factory, ann, amount="1000") for _ in range(3)]
    clock.advance(days=4)
    notifier = RecordingNotifier()
    jobs = _jobs(uow_factory, clock, notifier)
    await jobs.scan()
    await jobs.sweep()
    assert len(notifier.deliveries) == 3
    by_deal = {d.items[0].deal_id: d for d in notifier.deliveries}
    keyboards = {}
    for deal_id, delivery in by_deal.items():
        text, markup = render(delivery, ZoneInfo("UTC"))
        assert "Stale deal: 4 days in “Data collection” (the limit is 3)" in text
        assert markup is not None
        keyboards[deal_id] = {
            b.text: b.callback_data for row in markup.inline_keyboard for b in row
        }

    # 1. Next stage: the deal moves to "Proposal sent" (the stage core), its card shown.
    first = cards[0].id
    data = keyboards[first]["Proposal sent ▶"]
    assert data is not None
    assert DealCb.unpack(data) == DealCb(action=DealAction.NEXT, deal_id=first, v=cards[0].version)
    sent = await harness.tap(user, data)
    assert sent.alert is None
    async with uow_factory() as uow:
        deal = await uow.repo.get(Deal, first)
        assert deal is not None and deal.stage_id != cards[0].stage.id
    assert "Proposal sent" in sent.texts[-1] and "Stale" not in sent.texts[-1]

    # 2. Next contact: the choices, then one of them sets the date.
    second = cards[1].id
    sent = await harness.tap(user, keyboards[second]["🗓 Next contact"])
    assert sent.alert is None
    choice = sent.buttons()[0][1]
    sent = await harness.tap(user, choice, on=sent)
    async with uow_factory() as uow:
        deal = await uow.repo.get(Deal, second)
        assert deal is not None and deal.next_contact_at is not None

    # 3. Lost: the reason picker, then a reason loses the deal.
    third = cards[2].id
    sent = await harness.tap(user, keyboards[third]["❌ Lost"])
    assert sent.alert is None
    reason = next(data for text, data in sent.buttons() if "expensive" in text)
    await harness.tap(user, reason, on=sent)
    async with uow_factory() as uow:
        deal = await uow.repo.get(Deal, third)
        assert deal is not None and deal.loss_reason_id is not None


async def test_cards_and_lists_mark_stale_deals(harness, uow_factory, clock, make_actor):
    ann = await make_actor(roles=("manager",), name="Ann", language="en")
    user = tg_user(ann.telegram_id, lang="en")
    old = await new_deal(uow_factory, ann)
    clock.advance(days=3, hours=1)
    fresh = await new_deal(uow_factory, ann)
    sent = await harness.tap(user, DealCb(action=DealAction.OPEN, deal_id=old.id))
    assert "🔴 Stale: 3 days in this stage" in sent.texts[-1]
    sent = await harness.tap(user, DealCb(action=DealAction.OPEN, deal_id=fresh.id))
    assert "Stale" not in sent.texts[-1]
    listing = await harness.send(user, "/deals")
    labels = {
        DealCb.unpack(data).deal_id: text for text, data in listing.buttons() if data[:2] == "d:"
    }
    assert labels[old.id].startswith("🔴 ") and not labels[fresh.id].startswith("🔴 ")


async def test_the_first_scan_ever_does_not_flood_with_old_stale_deals(
    uow_factory, clock, make_actor
):
    ann = await make_actor(roles=("manager",), name="Ann")
    old = await new_deal(uow_factory, ann)  # stale since day 3
    clock.advance(days=7)
    recent = await new_deal(uow_factory, ann)  # stale since day 10
    clock.advance(days=3, hours=12)
    await _jobs(uow_factory, clock, RecordingNotifier()).scan()  # day 10.5: the first scan
    async with uow_factory() as uow:
        alerted = set(
            await uow.session.scalars(
                select(Reminder.deal_id).where(Reminder.kind == Kind.DEAL_ROTTING.value)
            )
        )
        card = await deals.get_card(uow, ann, old.id)
    assert alerted == {recent.id}  # the old one went stale more than FIRST_LOOKBACK ago
    assert card.stale_days == 10  # ... it still shows stale
