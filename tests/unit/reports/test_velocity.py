"""Velocity and period comparison (issue 14, Must show 1): a hand-computed story through
the real services — moves back, skipped stages, a trip to another pipeline and back — on
SQLite and PostgreSQL.

Sales is made non-strict here (stages may be skipped). Days are exact: every move happens
a whole number of days after the previous one.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.reports import analytics
from services.reports.analytics import Period, ReportFilter
from services.sales import deals
from tests.factories import loose_sales, new_deal

DAY = 86400
MEASURE = {"measurement_at": datetime(2027, 1, 1, tzinfo=UTC), "address": "Lenina 1"}
T0 = datetime(2026, 1, 12, 9, 0, tzinfo=UTC)


async def story(uow_factory, clock, make_actor):
    ann = await make_actor(roles=("manager",), name="Ann")
    bob = await make_actor(roles=("manager",), name="Bob")
    lea = await make_actor(roles=("leader",), name="Lea")
    st = await loose_sales(uow_factory)

    async def at(day: float, who, deal_id: int, action: str, *args) -> None:
        clock.set(start + timedelta(days=day))
        async with uow_factory() as uow:
            if action == "to":
                code, fields = args
                await deals.move_to(uow, who, deal_id, st[code], None, fields)
            elif action == "defer":
                await deals.defer(uow, who, deal_id, clock.now() + timedelta(days=3), None)
            elif action == "return":
                await deals.return_to_sales(uow, who, deal_id, None)
            else:
                await deals.lose(uow, who, deal_id, "expensive")

    # D5, last period (December): dc 3 d, ps 6 d, won: a 9-day cycle.
    start = T0 - timedelta(days=23)
    clock.set(start)
    d5 = (await new_deal(uow_factory, ann)).id
    await at(3, ann, d5, "to", "proposal_sent", {"amount": "100"})
    await at(9, ann, d5, "to", "won", None)

    start = T0
    clock.set(start)
    d1 = (await new_deal(uow_factory, ann)).id
    d2 = (await new_deal(uow_factory, ann)).id
    d3 = (await new_deal(uow_factory, ann)).id
    await new_deal(uow_factory, ann)  # D4: still in data collection (no finished stay)
    async with uow_factory() as uow:
        await deals.reassign(uow, lea, d2, bob.id, None)
    # D1: dc 1 d, ps 2 d, ms 1 d, back to ps 3 d, ms 1 d, skips "measurer assigned" to md
    # 2 d, skips "contract signed" to won: a 10-day cycle.
    await at(1, ann, d1, "to", "proposal_sent", {"amount": "1000"})
    await at(3, ann, d1, "to", "measurement_scheduled", MEASURE)
    await at(4, ann, d1, "to", "proposal_sent", None)
    await at(7, ann, d1, "to", "measurement_scheduled", None)
    await at(8, ann, d1, "to", "measurement_done", None)
    await at(10, ann, d1, "to", "won", None)
    # D2 (Bob): dc 2 d, ps 5 d, deferred 3 d (another pipeline), back to ps 6 d, won:
    # a 16-day cycle.
    await at(2, bob, d2, "to", "proposal_sent", {"amount": "2000"})
    await at(7, bob, d2, "defer")
    await at(10, bob, d2, "return")
    await at(16, bob, d2, "to", "won", None)
    # D3: dc 1 d, ps 4 d, lost.
    await at(1, ann, d3, "to", "proposal_sent", {"amount": "3000"})
    await at(5, ann, d3, "lose")
    clock.set(datetime(2026, 1, 29, 12, 0, tzinfo=UTC))
    return ann, bob, lea


def _days(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / DAY


async def test_velocity_and_comparison_by_hand(uow_factory, clock, make_actor):
    ann, bob, lea = await story(uow_factory, clock, make_actor)
    month = ReportFilter(period=Period.THIS_MONTH, tz="Europe/Moscow", compare=True)
    async with uow_factory() as uow:
        speed = await analytics.velocity(uow, lea, month)
    stages = {
        s.stage.code: (s.stays, _days(s.median_seconds), _days(s.p75_seconds)) for s in speed.stages
    }
    assert stages == {
        "data_collection": (3, 1.0, 1.5),  # 1, 1, 2
        "proposal_sent": (5, 4.0, 5.0),  # 2, 3 (D1 twice), 5, 6 (D2 around its deferral), 4
        "measurement_scheduled": (2, 1.0, 1.0),  # D1 twice
        "measurer_assigned": (0, None, None),  # skipped
        "measurement_done": (1, 2.0, 2.0),
        "contract_signed": (0, None, None),  # skipped
    }
    assert (speed.cycle.won, speed.cycle.median_days, speed.cycle.p75_days) == (2, 13.0, 14.5)
    assert [(c.name, c.won, c.median_days, c.p75_days) for c in speed.by_manager] == [
        ("Ann", 1, 10.0, 10.0),
        ("Bob", 1, 16.0, 16.0),
    ]
    # The previous period: the same days of the previous month, 1-29 December (Moscow),
    # this month running up to the 29th: D5 only.
    before = speed.previous
    assert before is not None and before.previous is None
    assert before.range.start == datetime(2025, 11, 30, 21, 0, tzinfo=UTC)
    assert (before.range.first_day, before.range.last_day) == (
        date(2025, 12, 1),
        date(2025, 12, 29),
    )
    prev = {s.stage.code: (s.stays, _days(s.median_seconds)) for s in before.stages}
    assert prev["data_collection"] == (1, 3.0) and prev["proposal_sent"] == (1, 6.0)
    assert (before.cycle.won, before.cycle.median_days) == (1, 9.0)

    async with uow_factory() as uow:
        mine = await analytics.velocity(uow, ann, month)  # a manager: their own deals
    assert mine.manager_id == ann.id
    stages = {
        s.stage.code: (s.stays, _days(s.median_seconds), _days(s.p75_seconds)) for s in mine.stages
    }
    assert stages["data_collection"] == (2, 1.0, 1.0)
    assert stages["proposal_sent"] == (3, 3.0, 3.5)  # 2, 3, 4
    assert (mine.cycle.won, mine.cycle.median_days) == (1, 10.0)

    async with uow_factory() as uow:
        funnel = await analytics.period_funnel(uow, lea, month)
    assert (funnel.cohort, funnel.won, funnel.lost, funnel.open) == (4, 2, 1, 1)
    assert funnel.previous is not None
    assert (funnel.previous.cohort, funnel.previous.won, funnel.previous.won_amount) == (
        1,
        1,
        10_000,
    )
    assert [s.reached for s in funnel.previous.steps] == [1, 1, 1, 1, 1, 1, 1]
    # Skipped stages count as reached (the counting rule), moves back un-reach nothing.
    assert [s.reached for s in funnel.steps] == [4, 3, 2, 2, 2, 2, 2]

    async with uow_factory() as uow:
        losses = await analytics.loss_reasons(uow, lea, month)
        ranking = await analytics.managers(uow, lea, month)
    assert losses.count == 1 and losses.previous is not None and losses.previous.count == 0
    assert ranking.previous is not None
    prev_rows = {r.name: (r.deals, r.won) for r in ranking.previous.rows}
    assert prev_rows["Ann"] == (1, 1) and prev_rows["Bob"] == (0, 0)
    rows = {r.name: (r.deals, r.won) for r in ranking.rows}
    assert rows == {"Ann": (3, 1), "Bob": (1, 1)}

    async with uow_factory() as uow:
        plain = await analytics.period_funnel(
            uow, lea, ReportFilter(period=Period.THIS_MONTH, tz="Europe/Moscow")
        )
    assert plain.previous is None  # only when asked for


@pytest.mark.parametrize(
    ("now", "period", "span", "before"),
    [
        # A finished month: all of the month before it (not "the same number of days").
        (
            "2026-03-10",
            Period.LAST_MONTH,
            ("2026-02-01", "2026-02-28"),
            ("2026-01-01", "2026-01-31"),
        ),
        # The running month, day for day: 1-7 December against 1-7 November.
        (
            "2026-12-07",
            Period.THIS_MONTH,
            ("2026-12-01", "2026-12-31"),
            ("2026-11-01", "2026-11-07"),
        ),
        # ... clipped to the previous month's end: 1-31 March against 1-28 February.
        (
            "2026-03-30",
            Period.THIS_MONTH,
            ("2026-03-01", "2026-03-31"),
            ("2026-02-01", "2026-02-28"),
        ),
        # The running week (Monday 7 December): Monday-Wednesday against the same days before.
        (
            "2026-12-09",
            Period.THIS_WEEK,
            ("2026-12-07", "2026-12-13"),
            ("2026-11-30", "2026-12-02"),
        ),
        (
            "2026-12-09",
            Period.LAST_WEEK,
            ("2026-11-30", "2026-12-06"),
            ("2026-11-23", "2026-11-29"),
        ),
        # The running quarter: its first 68 days against the previous quarter's.
        (
            "2026-12-07",
            Period.THIS_QUARTER,
            ("2026-10-01", "2026-12-31"),
            ("2026-07-01", "2026-09-07"),
        ),
        (
            "2026-01-12",
            Period.LAST_QUARTER,
            ("2025-10-01", "2025-12-31"),
            ("2025-07-01", "2025-09-30"),
        ),
    ],
)
def test_previous_period_is_the_same_span_of_the_previous_calendar_unit(
    now: str, period: Period, span: tuple[str, str], before: tuple[str, str]
) -> None:
    moment = datetime.fromisoformat(now).replace(hour=12, tzinfo=UTC)
    here = analytics.resolve_period(ReportFilter(period=period, tz="Europe/Moscow"), moment)
    prev = analytics.previous_range(here, moment, "Europe/Moscow")
    assert (here.first_day.isoformat(), here.last_day.isoformat()) == span
    assert (prev.first_day.isoformat(), prev.last_day.isoformat()) == before
    # [start, end) are the Moscow midnights (UTC+3) of those days
    assert prev.start == datetime.fromisoformat(before[0]).replace(tzinfo=UTC) - timedelta(hours=3)
    last = datetime.fromisoformat(before[1]).replace(tzinfo=UTC) + timedelta(hours=21)
    assert prev.end == last


def test_quantile_of_counts() -> None:
    assert analytics.quantile_of_counts({}, 0.5) is None
    assert analytics.quantile_of_counts({10: 1, 16: 1}, 0.5) == 13
    assert analytics.quantile_of_counts({10: 1, 16: 1}, 0.75) == 14.5
    assert analytics.quantile_of_counts({1: 2, 2: 1}, 0.75) == 1.5
