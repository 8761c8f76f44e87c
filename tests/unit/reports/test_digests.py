"""Digests to leaders: when (a fake clock across days and a week, in the company's time
zone, restarts and missed times) and what (since the previous digest)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.notifier import render
from bot.scheduler import build_scheduler
from services import tasks
from services.outbox.payloads import parse
from services.outbox.queue import Delivery, OutboxItem
from services.reports.digests import KINDS, due_digests, latest_moment
from services.sales import deals
from storage.models import Deal, Pipeline, Reminder, Stage, StageHistory
from tests.factories import new_deal, new_lead
from tests.outbox_fakes import RecordingNotifier

MSK = "Europe/Moscow"
DAILY, WEEKLY = KINDS["daily"], KINDS["weekly"]
SETTINGS = SimpleNamespace(
    timezone=MSK, digest_daily_at="08:30", digest_weekly_at="Mon 09:00", summary_hour=9
)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# --- when: the pure rule --------------------------------------------------------------------


def test_latest_moment_is_local_time():
    # Monday 2026-01-12. 08:30 in Moscow is 05:30 UTC.
    assert latest_moment(utc(2026, 1, 12, 5, 30), MSK, time(8, 30)) == utc(2026, 1, 12, 5, 30)
    assert latest_moment(utc(2026, 1, 12, 5, 29), MSK, time(8, 30)) == utc(2026, 1, 11, 5, 30)
    assert latest_moment(utc(2026, 1, 12, 5, 30), "UTC", time(8, 30)) == utc(2026, 1, 11, 8, 30)
    # Weekly on Monday 09:00 Moscow: from Sunday back to the previous Monday.
    assert latest_moment(utc(2026, 1, 18, 20, 0), MSK, time(9), 0) == utc(2026, 1, 12, 6, 0)
    assert latest_moment(utc(2026, 1, 19, 5, 59), MSK, time(9), 0) == utc(2026, 1, 12, 6, 0)
    assert latest_moment(utc(2026, 1, 19, 6, 0), MSK, time(9), 0) == utc(2026, 1, 19, 6, 0)
    # Just after midnight in Moscow (21:10 UTC the day before) it is already Tuesday there.
    assert latest_moment(utc(2026, 1, 12, 21, 10), MSK, time(0, 5)) == utc(2026, 1, 12, 21, 5)


def test_due_digests_in_moscow_and_in_utc():
    last = {DAILY: utc(2026, 1, 11, 9, 0), WEEKLY: utc(2026, 1, 5, 7, 0)}

    def due(now: datetime, tz: str = MSK) -> list[tuple[str, datetime]]:
        found = due_digests(now, tz, time(8, 30), time(9), 0, last)
        return [(d.kind, d.moment) for d in found]

    assert due(utc(2026, 1, 12, 5, 29)) == []
    assert due(utc(2026, 1, 12, 5, 30)) == [("daily", utc(2026, 1, 12, 5, 30))]
    assert due(utc(2026, 1, 12, 6, 0)) == [
        ("daily", utc(2026, 1, 12, 5, 30)),
        ("weekly", utc(2026, 1, 12, 6, 0)),
    ]
    # The same moments in UTC are three hours later.
    last[WEEKLY] = utc(2026, 1, 5, 9, 30)
    assert due(utc(2026, 1, 12, 5, 30), "UTC") == []
    assert due(utc(2026, 1, 12, 8, 30), "UTC") == [("daily", utc(2026, 1, 12, 8, 30))]
    # Never run: nothing is due (the first check only records the time).
    assert due_digests(utc(2026, 1, 12, 6), MSK, time(8, 30), time(9), 0, {}) == []
    # Sent at 05:30:02: not due again that day.
    last[DAILY] = utc(2026, 1, 12, 5, 30, 2)
    assert due(utc(2026, 1, 12, 20, 0)) == [("weekly", utc(2026, 1, 12, 6, 0))]
    last[WEEKLY] = utc(2026, 1, 12, 6, 0, 3)
    assert due(utc(2026, 1, 12, 20, 0)) == []


# --- when: the scheduler's job on a real database, restarts included --------------------------


async def check(uow_factory, clock, settings=SETTINGS) -> None:
    """One run of the every-minute job of a freshly built scheduler (a restart)."""
    scheduler = build_scheduler(uow_factory, RecordingNotifier(), clock, settings)
    assert scheduler.get_job("digests.catch_up") is not None
    await scheduler.get_job("digests.check").func()


async def rows(uow_factory, kind: str, recipient: int | None = None) -> list[Reminder]:
    async with uow_factory() as uow:
        found = await uow.session.scalars(
            select(Reminder).where(Reminder.kind == kind).order_by(Reminder.id)
        )
        return [r for r in found if recipient is None or r.recipient_id == recipient]


async def test_daily_and_weekly_across_days_restarts_and_downtime(uow_factory, clock, make_actor):
    lee = await make_actor(roles=("leader",), name="Lee")
    kim = await make_actor(roles=("leader",), name="Kim")
    await make_actor(roles=("manager",), name="Ann")  # managers get no digest

    async def counts() -> tuple[int, int]:
        return len(await rows(uow_factory, DAILY, lee.id)), len(
            await rows(uow_factory, WEEKLY, lee.id)
        )

    clock.set(utc(2026, 1, 11, 20, 0))  # Sunday 23:00 in Moscow: first start
    await check(uow_factory, clock)
    assert await counts() == (0, 0)
    clock.set(utc(2026, 1, 12, 5, 29))  # Monday 08:29 Moscow
    await check(uow_factory, clock)
    assert await counts() == (0, 0)
    clock.set(utc(2026, 1, 12, 5, 30))  # 08:30 Moscow = 05:30 UTC
    await check(uow_factory, clock)
    assert await counts() == (1, 0)
    assert len(await rows(uow_factory, DAILY)) == 2  # one per leader
    await check(uow_factory, clock)  # restarted right after: nothing twice
    clock.advance(minutes=1)
    await check(uow_factory, clock)
    assert await counts() == (1, 0)
    clock.set(utc(2026, 1, 12, 6, 0))  # Monday 09:00 Moscow: the weekly one
    await check(uow_factory, clock)
    await check(uow_factory, clock)
    assert await counts() == (1, 1)
    clock.set(utc(2026, 1, 13, 5, 30))  # Tuesday
    await check(uow_factory, clock)
    clock.advance(minutes=3)
    await check(uow_factory, clock)
    assert await counts() == (2, 1)
    # Down from Wednesday 05:00 to 10:00 UTC: the missed 08:30 digest goes out once, late.
    clock.set(utc(2026, 1, 14, 10, 0))
    await check(uow_factory, clock)
    await check(uow_factory, clock)
    assert await counts() == (3, 1)
    late = (await rows(uow_factory, DAILY, lee.id))[-1]
    assert late.payload["moment"] == utc(2026, 1, 14, 5, 30).isoformat()
    assert late.payload["since"] == utc(2026, 1, 13, 5, 30).isoformat()
    # Down from Wednesday to the next Monday 10:00 Moscow: one daily (covering the days
    # missed) and one weekly.
    clock.set(utc(2026, 1, 19, 7, 0))
    await check(uow_factory, clock)
    await check(uow_factory, clock)
    assert await counts() == (4, 2)
    weekly = await rows(uow_factory, WEEKLY, kim.id)
    assert [r.payload["since"] for r in weekly] == [
        utc(2026, 1, 11, 20, 0).isoformat(),  # the first start
        utc(2026, 1, 12, 6, 0).isoformat(),
    ]
    keys = [r.dedupe_key for r in await rows(uow_factory, WEEKLY, kim.id)]
    assert keys == [f"digest:weekly:2026-01-12:{kim.id}", f"digest:weekly:2026-01-19:{kim.id}"]


async def test_utc_company_gets_it_at_0830_utc(uow_factory, clock, make_actor):
    lee = await make_actor(roles=("leader",), name="Lee")
    settings = SimpleNamespace(**{**vars(SETTINGS), "timezone": "UTC"})
    clock.set(utc(2026, 1, 12, 1, 0))
    await check(uow_factory, clock, settings)
    clock.set(utc(2026, 1, 12, 5, 30))  # 08:30 in Moscow, but not in UTC
    await check(uow_factory, clock, settings)
    assert await rows(uow_factory, DAILY, lee.id) == []
    clock.set(utc(2026, 1, 12, 8, 30))
    await check(uow_factory, clock, settings)
    assert len(await rows(uow_factory, DAILY, lee.id)) == 1


# --- what -----------------------------------------------------------------------------------


async def win(uow_factory, actor, deal_id: int, at: datetime) -> None:
    """Record a deal entering the won stage (the history row the digest reads)."""
    async with uow_factory() as uow:
        deal = await uow.repo.get(Deal, deal_id)
        won = await uow.session.scalar(
            select(Stage)
            .join(Pipeline, Pipeline.id == Stage.pipeline_id)
            .where(Pipeline.code == "sales", Stage.kind == "won")
        )
        uow.repo.add(
            StageHistory(
                deal_id=deal.id,
                pipeline_id=won.pipeline_id,
                from_stage_id=deal.stage_id,
                to_stage_id=won.id,
                actor_id=actor.id,
                at=at,
            )
        )
        deal.stage_id = won.id
        deal.closed_at = at
        await uow.commit()


async def test_content_is_what_changed_since_the_previous_digest(uow_factory, clock, make_actor):
    lee = await make_actor(roles=("leader",), name="Lee", language="en")
    ann = await make_actor(roles=("manager",), name="Ann")
    clock.set(utc(2026, 1, 12, 3, 0))
    await new_lead(uow_factory, ann, name="Old Lead")  # before the window
    clock.set(utc(2026, 1, 12, 4, 0))
    await check(uow_factory, clock)  # first start: the window begins here
    clock.advance(minutes=10)
    await new_lead(uow_factory, ann, name="Petr Ivanov")
    lost = await new_deal(uow_factory, ann, name="Lost Client", amount="70000")
    won = await new_deal(uow_factory, ann, name="Happy Client", amount="250000")
    await new_deal(uow_factory, ann, name="Open Client", amount="30000")
    async with uow_factory() as uow:
        await deals.lose(uow, ann, lost.id, "expensive")
    await win(uow_factory, ann, won.id, clock.now())
    async with uow_factory() as uow:
        await tasks.create_manual_task(
            uow, ann, "Call the architect", clock.now() + timedelta(minutes=20)
        )
    clock.set(utc(2026, 1, 12, 5, 30))
    await check(uow_factory, clock)
    [row] = await rows(uow_factory, DAILY, lee.id)
    p = row.payload
    assert p["leads"] == 4  # Petr and the three deals' leads; not the old one
    assert "Old Lead" not in [name for _, name, _ in p["lead_names"]]
    assert (p["won"], p["won_amount"], p["wins"][0]["title"]) == (1, 25_000_000, won.title)
    assert (p["lost"], p["lost_amount"]) == (1, 7_000_000)
    assert p["reasons"] == [
        {"name": "Дорого", "name_en": "Too expensive", "count": 1, "amount": 7_000_000}
    ]
    assert p["losses"][0]["reason_en"] == "Too expensive"
    assert (p["overdue"], p["overdue_new"]) == (1, 1)
    assert p["overdue_tasks"][0]["title"] == "Call the architect"
    assert p["overdue_tasks"][0]["assignee"] == "Ann"
    assert p["active"] == 1 and p["active_amount"] == 3_000_000  # the snapshot headline

    # What the leader reads (the notifier's renderer, in their language).
    item = OutboxItem(row.id, row.kind, parse(row.kind, p), row.due_at, False, None, None)
    delivery = Delivery(lee.id, lee.telegram_id, "en", (item,), clock.now())
    text, markup = render(delivery, ZoneInfo(MSK))
    assert (
        "Daily digest" in text
        and "Since the previous one: 1/12 7:00\u202fAM – 1/12 8:30\u202fAM" in text
    )
    assert "New leads: 4" in text and "Petr Ivanov" in text
    assert "In work (Sales): 1 deal, 30K\u00a0RUB, forecast" in text  # one deal, in RUB
    assert "Won: 1, 250K\u00a0RUB" in text and "Happy Client" in text
    assert "Refusals: 1, 70K\u00a0RUB" in text and "Too expensive: 1, 70K\u00a0RUB" in text
    assert "Overdue tasks: 1 (new since the previous digest: 1)" in text
    assert "Call the architect · Ann" in text
    assert markup is not None and "Sent late" not in text

    # The next day: nothing new, the task still overdue but not new.
    clock.set(utc(2026, 1, 13, 7, 0))  # restarted late: 10:00 Moscow
    await check(uow_factory, clock)
    second = (await rows(uow_factory, DAILY, lee.id))[-1].payload
    assert (second["leads"], second["won"], second["lost"]) == (0, 0, 0)
    assert (second["overdue"], second["overdue_new"]) == (1, 0)
    item = OutboxItem(2, DAILY, parse(DAILY, second), clock.now(), False, None, None)
    text, _ = render(Delivery(lee.id, 1, "ru", (item,), clock.now()), ZoneInfo(MSK))
    assert "Сводка за день" in text and "с опозданием" in text


async def test_comparison_speed_and_stale_deals_per_manager(uow_factory, clock, make_actor):
    """Issue 14: the digest compares its window with the one of the same length before,
    gives the sales cycle of the last 30 days, and counts stale deals per manager."""
    from services.reports.digests import compose_digest

    lee = await make_actor(roles=("leader",), name="Lee", language="en")
    ann = await make_actor(roles=("manager",), name="Ann")
    bob = await make_actor(roles=("manager",), name="Bob")
    clock.set(utc(2026, 1, 12, 4, 0))
    won = await new_deal(uow_factory, ann, amount="250000")
    lost = await new_deal(uow_factory, ann)
    await new_deal(uow_factory, ann)  # stays in data collection (rot_after_days = 3)
    await new_deal(uow_factory, bob)
    clock.set(utc(2026, 1, 14, 6, 0))
    await win(uow_factory, ann, won.id, clock.now())  # a 2-day (2 d 2 h) cycle
    async with uow_factory() as uow:
        await deals.lose(uow, ann, lost.id, "expensive")
    leader = lee
    clock.set(utc(2026, 1, 16, 5, 0))
    async with uow_factory() as uow:  # window: the last day; the one before: the day before
        digest = await compose_digest(
            uow, leader, "daily", utc(2026, 1, 15, 5, 0), clock.now(), tz=MSK
        )
    assert (digest.leads, digest.won, digest.lost) == (0, 0, 0)
    assert (digest.prev_leads, digest.prev_won, digest.prev_lost) == (0, 1, 1)
    assert digest.prev_won_amount == 25_000_000
    assert (digest.cycle_won, digest.cycle_median_days) == (1, 2.0)
    assert digest.stale_by_manager == [("Ann", 1), ("Bob", 1)]
    async with uow_factory() as uow:  # a longer window: the one before holds the leads
        earlier = await compose_digest(
            uow, leader, "daily", utc(2026, 1, 14, 0, 0), utc(2026, 1, 16, 5, 0), tz=MSK
        )
    assert (earlier.won, earlier.prev_leads) == (1, 4)  # the deals' leads of Jan 12
    item = OutboxItem(1, DAILY, digest, clock.now(), False, None, None)
    text, _ = render(Delivery(lee.id, 1, "en", (item,), clock.now()), ZoneInfo(MSK))
    assert "Against the window before: leads 0, won −1 (then 250K\u00a0RUB), refused −1" in text
    assert "Sales cycle, last 30 days: median 2 d over 1 won" in text
    assert "Stale deals now: 2" in text and "• Ann: 1" in text


async def test_a_won_installment_sale_counts_once(uow_factory, clock, make_actor):
    """Issue 20: a deal won with installments has a copy in Installment control; the copy
    paid off enters that pipeline's won stage, but it is the same sale: one win, its money
    once."""
    from services.reports.digests import compose_digest
    from services.work import installments
    from tests.factories import contract_signed, won_in_three_parts

    lee = await make_actor(roles=("leader",), name="Lee", language="en")
    ann = await make_actor(roles=("manager",), name="Ann")
    clock.set(utc(2026, 1, 12, 4, 0))
    since = clock.now()
    signed = await contract_signed(uow_factory, ann, clock, amount="185000")
    summary = await won_in_three_parts(uow_factory, ann, signed.id, signed.version)
    async with uow_factory() as uow:  # paid off at once: the copy enters its won stage
        paid = await installments.record_payment(uow, ann, summary.deal_id, "185000")
    async with uow_factory() as uow:
        copy = await uow.repo.get(Deal, summary.deal_id)
        won_copy = await uow.session.scalar(
            select(StageHistory.id)
            .join(Stage, Stage.id == StageHistory.to_stage_id)
            .where(StageHistory.deal_id == copy.id, Stage.kind == "won")
        )
    assert copy.parent_deal_id == signed.id and paid.closed and paid.remaining == 0
    assert won_copy is not None  # the copy's payoff is a won-stage entry in the window
    clock.advance(hours=1)
    async with uow_factory() as uow:
        digest = await compose_digest(uow, lee, "daily", since, clock.now(), tz=MSK)
    assert (digest.won, digest.won_amount) == (1, 18_500_000)
    assert [w.id for w in digest.wins] == [signed.id]
