"""Plans (issue 26), hand-computed on both databases with a fake clock: plan against done
against the forecast, the pace per remaining working day, who is behind, the 50/90/100%
alerts sent once each, and setting a plan (its rights, its month, sums as people type them).

December 2026 in Moscow: the 1st is a Tuesday; Mon-Fri working days: 23 in the month, 4
before Monday the 7th ("now"), 19 from the 7th (included) to the 31st."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from services.errors import PermissionDenied, ValidationError
from services.permissions import Action
from services.reports import analytics
from services.reports.analytics import Period, ReportFilter
from services.sales import deals, edit, plans
from services.sales import stage as stage_core
from storage.models import Reminder
from tests.factories import loose_sales, new_deal

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)  # Monday, 15:00 in Moscow
DEC = date(2026, 12, 1)


def at(month: int, day: int, year: int = 2026) -> datetime:
    return datetime(year, month, day, 9, 0, tzinfo=UTC)  # noon in Moscow


async def _deal(uow_factory, clock, who, st, when, stage, amount):
    """A deal of `who` at `stage` since `when`, with `amount` roubles."""
    clock.set(when)
    card = await new_deal(uow_factory, who)
    async with uow_factory() as uow:
        await deals.move_to(uow, who, card.id, st["proposal_sent"], None, {"amount": amount})
    if stage != "proposal_sent":
        async with uow_factory() as uow:
            await deals.move_to(uow, who, card.id, st[stage], None, None)
    return card.id


async def _plan(uow_factory, leader, employee_id, count, money, month=DEC):
    async with uow_factory() as uow:
        return await plans.set_plan(uow, leader, month, employee_id, count, money)


async def story(uow_factory, clock, make_actor):
    """who  deal  stage (since)             money    expected close         in December
    Ann  A1   won 3 Dec                   300 000                          done
    Ann  A2   won 20 Nov                  200 000                          (November)
    Ann  A3   contract (5 Dec)            100 000  rule: +10 d = 15 Dec   90% -> 90 000
    Ann  A4   proposal (5 Dec)             50 000  typed 20 Dec           20% -> 10 000
    Ann  A5   measured (6 Dec)             30 000  rule: +14 d = 20 Dec   67% -> 20 100
    Ann  A6   proposal (1 Nov)             10 000  rule: 1 Dec, past      20% ->  2 000
    Bob  B1   won 4 Dec                   100 000                          done
    Bob  B2   data collection (1 Oct)      70 000  typed 15 Jan           not this month
    Plans: Ann 4 sales / 1 000 000; Bob 2 sales (no money); Cy 5 sales; the company
    10 sales / 2 000 000."""
    clock.set(at(10, 1))
    ann = await make_actor(roles=("manager",), name="Ann")
    bob = await make_actor(roles=("manager",), name="Bob")
    cy = await make_actor(roles=("manager",), name="Cy")
    lea = await make_actor(roles=("leader",), name="Lea")
    st = await loose_sales(uow_factory)
    a1 = await _deal(uow_factory, clock, ann, st, at(11, 25), "proposal_sent", "300000")
    a2 = await _deal(uow_factory, clock, ann, st, at(11, 10), "proposal_sent", "200000")
    await _deal(uow_factory, clock, ann, st, at(12, 5), "contract_signed", "100000")
    a4 = await _deal(uow_factory, clock, ann, st, at(12, 5), "proposal_sent", "50000")
    await _deal(uow_factory, clock, ann, st, at(12, 6), "measurement_done", "30000")
    await _deal(uow_factory, clock, ann, st, at(11, 1), "proposal_sent", "10000")
    b1 = await _deal(uow_factory, clock, bob, st, at(11, 2), "proposal_sent", "100000")
    clock.set(at(10, 1))
    b2 = (await new_deal(uow_factory, bob, amount="70000")).id
    for who, deal_id, when in ((ann, a2, at(11, 20)), (ann, a1, at(12, 3)), (bob, b1, at(12, 4))):
        clock.set(when)
        async with uow_factory() as uow:
            await deals.win(uow, who, deal_id, None)
    clock.set(NOW)
    async with uow_factory() as uow:
        await edit.edit_deal(uow, ann, a4, "expected_close_at", "20.12", None)
    async with uow_factory() as uow:
        await edit.edit_deal(uow, bob, b2, "expected_close_at", "15.01.2027", None)
    await _plan(uow_factory, lea, ann.id, "4", "1 млн")
    await _plan(uow_factory, lea, bob.id, "2", "0")
    await _plan(uow_factory, lea, cy.id, "5", "0")
    await _plan(uow_factory, lea, None, "10", "2 000 000")
    return {"ann": ann, "bob": bob, "cy": cy, "lea": lea}


async def test_plan_done_forecast_and_pace_by_hand(uow_factory, clock, make_actor):
    people = await story(uow_factory, clock, make_actor)
    async with uow_factory() as uow:
        report = await plans.plan_report(uow, people["lea"], tz="Europe/Moscow")
    assert report.month == DEC
    assert (report.days_total, report.days_past, report.days_left) == (23, 4, 19)
    rows = {r.name: r for r in report.rows}
    assert list(rows) == ["Bob", "Ann", "Cy"]  # by progress: 50%, 30%, 0%
    ann, bob, cy = rows["Ann"], rows["Bob"], rows["Cy"]
    assert (ann.plan_count, ann.plan_amount) == (4, 100_000_000)
    assert (ann.won, ann.won_amount) == (1, 30_000_000)  # A1; A2 was won in November
    assert (ann.forecast, ann.forecast_amount) == (4, 19_000_000)  # A3..A6
    assert ann.weighted == 9_000_000 + 1_000_000 + 2_010_000 + 200_000
    assert ann.progress == pytest.approx(0.3)
    # left: 3 sales, 700 000 over 19 days -> 1 a day, 36 842.10 -> 36 843 (whole roubles up)
    assert (ann.pace_count, ann.pace_amount) == (1, 3_684_300)
    assert not ann.behind  # 30% done, 4/23 = 17% of the working days past
    # Bob's plan is in sales only: progress and pace in sales; B2 is typed for January.
    assert (bob.won, bob.won_amount, bob.forecast, bob.weighted) == (1, 10_000_000, 0, 0)
    assert (bob.progress, bob.pace_count, bob.pace_amount) == (0.5, 1, None)
    assert not bob.behind
    assert (cy.won, cy.pace_count, cy.behind) == (0, 1, True)  # 0 of 5 after 4 days
    company = report.company
    assert company is not None
    assert (company.plan_count, company.plan_amount) == (10, 200_000_000)
    assert (company.won, company.won_amount) == (2, 40_000_000)
    assert (company.forecast, company.weighted) == (4, 12_210_000)
    # left: 8 sales and 1 600 000 over 19 days: 1 a day, 84 210.53 -> 84 211
    assert (company.pace_count, company.pace_amount) == (1, 8_421_100)
    # Done is what /funnel counts as won that happened this month.
    async with uow_factory() as uow:
        month = await analytics.period_funnel(
            uow, people["lea"], ReportFilter(period=Period.THIS_MONTH, tz="Europe/Moscow")
        )
    assert (month.happened.won, month.happened.won_amount) == (company.won, company.won_amount)
    # A manager sees their own row only, whatever they ask for.
    async with uow_factory() as uow:
        own = await plans.plan_report(uow, people["ann"], people["bob"].id, tz="Europe/Moscow")
    assert own.company is None and [r.name for r in own.rows] == ["Ann"]
    assert own.rows[0] == ann


async def test_the_last_working_day_needs_all_that_is_left(uow_factory, clock, make_actor):
    people = await story(uow_factory, clock, make_actor)
    clock.set(datetime(2026, 12, 31, 12, 0, tzinfo=UTC))
    async with uow_factory() as uow:
        report = await plans.plan_report(uow, people["lea"], tz="Europe/Moscow")
    assert (report.days_past, report.days_left) == (22, 1)
    ann = next(r for r in report.rows if r.name == "Ann")
    assert (ann.pace_count, ann.pace_amount) == (3, 70_000_000)


def _plan_alerts(rows):
    return sorted(r.dedupe_key for r in rows if r.kind == "plan.reached")


async def _alerts(uow_factory):
    async with uow_factory() as uow:
        return list(await uow.session.scalars(select(Reminder)))


async def test_plan_alerts_at_50_90_100_once_each(uow_factory, clock, make_actor):
    clock.set(at(12, 1))
    dan = await make_actor(roles=("manager",), name="Dan")
    lea = await make_actor(roles=("leader",), name="Lea")
    st = await loose_sales(uow_factory)
    await _plan(uow_factory, lea, dan.id, "4", "1 000 000")
    ids = [
        await _deal(uow_factory, clock, dan, st, at(12, 1), "proposal_sent", amount)
        for amount in ("400000", "150000", "350000", "100000", "50000")
    ]

    async def win(deal_id: int, day: int) -> list[str]:
        clock.set(at(12, day))
        async with uow_factory() as uow:
            await deals.win(uow, dan, deal_id, None)
        return _plan_alerts(await _alerts(uow_factory))

    key = f"plan:2026-12:{dan.id}:"
    assert await win(ids[0], 2) == []  # 40%
    assert await win(ids[1], 3) == [key + "50"]  # 55%
    # Taken back to work (no button does that to a won deal: a correction, through the
    # stage core) and won again: 55% again, nothing new.
    async with uow_factory() as uow:
        deal, rules = await stage_core.load_for(uow, dan, ids[1], Action.DEAL_MOVE, None)
        await stage_core.enter(uow, dan, deal, rules.stage(st["contract_signed"]))
        await stage_core.finish(uow, dan, deal, rules)
    async with uow_factory() as uow:
        assert (await plans.plan_report(uow, dan)).rows[0].won == 1  # reopened: not done
    assert await win(ids[1], 4) == [key + "50"]
    assert await win(ids[2], 7) == [key + "50", key + "90"]  # 90%
    assert await win(ids[3], 8) == [key + "100", key + "50", key + "90"]  # 100%
    assert len(await win(ids[4], 9)) == 3  # 105%: no second alert
    reached = [r for r in await _alerts(uow_factory) if r.kind == "plan.reached"]
    assert sorted(r.payload["percent"] for r in reached) == [50, 90, 100]
    assert all(r.recipient_id == dan.id for r in reached)


async def test_behind_pace_told_to_leaders_once_a_day(uow_factory, clock, make_actor):
    people = await story(uow_factory, clock, make_actor)
    async with uow_factory() as uow:
        assert await plans.behind_scan(uow) == 1  # Cy, to Lea
    async with uow_factory() as uow:
        assert await plans.behind_scan(uow) == 0  # the same day: nothing again
    behind = [r for r in await _alerts(uow_factory) if r.kind == "plan.behind"]
    assert [(r.recipient_id, r.payload["manager"]) for r in behind] == [(people["lea"].id, "Cy")]
    clock.set(datetime(2026, 12, 12, 9, 0, tzinfo=UTC))  # a Saturday: no scan
    async with uow_factory() as uow:
        assert await plans.behind_scan(uow) == 0
    # Monday the 14th, 9 of 23 working days past (39%): Cy still, and Ann (30%) now.
    clock.set(datetime(2026, 12, 14, 9, 0, tzinfo=UTC))
    async with uow_factory() as uow:
        assert await plans.behind_scan(uow) == 2


async def test_setting_a_plan_is_checked(uow_factory, clock, make_actor, db_snapshot):
    clock.set(NOW)
    ann = await make_actor(roles=("manager",), name="Ann")
    lea = await make_actor(roles=("leader",), name="Lea")
    before = await db_snapshot()
    for actor, month, who, count, money, error in (
        (ann, DEC, ann.id, "3", "100", PermissionDenied),  # managers do not set plans
        (lea, date(2026, 11, 1), ann.id, "3", "100", ValidationError),  # last month
        (lea, date(2027, 2, 1), ann.id, "3", "100", ValidationError),  # too far ahead
        (lea, DEC, 999_999, "3", "100", ValidationError),  # nobody
        (lea, DEC, ann.id, "три", "100", ValidationError),
        (lea, DEC, ann.id, "-1", "100", ValidationError),
        (lea, DEC, ann.id, "3", "сто", ValidationError),
        (lea, DEC, ann.id, "0", "0", ValidationError),  # an empty plan
    ):
        with pytest.raises(error):
            async with uow_factory() as uow:
                await plans.set_plan(uow, actor, month, who, count, money)
    assert await db_snapshot() == before
    # Sums as people type them; setting again replaces the numbers.
    first = await _plan(uow_factory, lea, ann.id, "3", "150к")
    assert (first.sales_count, first.amount, first.name) == (3, 15_000_000, "Ann")
    await _plan(uow_factory, lea, ann.id, "4", "1,5 млн", month=date(2027, 1, 1))
    await _plan(uow_factory, lea, ann.id, "5", "200 000")
    async with uow_factory() as uow:
        dec = await uow.repo.plans.of_month(DEC)
        jan = await uow.repo.plans.of_month(date(2027, 1, 1))
    assert [(p.sales_count, p.amount, p.set_by_id) for p in dec] == [(5, 20_000_000, lea.id)]
    assert [(p.sales_count, p.amount) for p in jan] == [(4, 150_000_000)]
