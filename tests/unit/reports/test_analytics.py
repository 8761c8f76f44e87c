"""Analytics: hand-computed funnels on small fixtures, on SQLite and PostgreSQL.

The story below is written as history rows (what services.deals would have written), so it
can contain what the strict sales pipeline refuses today: skipped stages (an import, or a
pipeline made non-strict later). Every expected number was computed by hand from it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from services.errors import NotFound, PermissionDenied, ValidationError
from services.reports import analytics
from services.reports.analytics import Period, ReportFilter
from services.sales.pipeline_config import load_config
from services.sales.pipelines import sync_config
from storage import migrate
from storage.db import create_engine, create_session_factory
from storage.enums import TaskStatus
from storage.models import Deal, Employee, StageHistory, Task
from storage.models.analytics import FunnelFact, StageVisit
from storage.uow import UnitOfWorkFactory
from tests.factories import DEFAULT_PIPELINES, bare_deal

H = 3600
JAN = ReportFilter(period=Period.CUSTOM, start=date(2026, 1, 1), end=date(2026, 1, 31))
NOW = datetime(2026, 2, 15, 12, 0, tzinfo=UTC)

SALES = {
    "dc": "data_collection",
    "ps": "proposal_sent",
    "ms": "measurement_scheduled",
    "ma": "measurer_assigned",
    "md": "measurement_done",
    "cs": "contract_signed",
    "won": "won",
    "cr": "conditional_refusal",
    "lost": "lost",
}


async def stage_ids(uow_factory: Any) -> dict[str, Any]:
    """'dc', 'ps', ... for sales stages; 'deferred.waiting' style for the others."""
    async with uow_factory() as uow:
        result: dict[str, Any] = {}
        for p in await uow.repo.pipelines.all():
            for s in await uow.repo.pipelines.stages(p.id):
                result[f"{p.code}.{s.code}"] = s
        for short, code in SALES.items():
            result[short] = result[f"sales.{code}"]
        return result


async def story(
    uow_factory: Any,
    manager_id: int,
    amount: int | None,
    start: datetime,
    *steps: tuple[Any, ...],
) -> int:
    """A deal and its history: steps are (stage, hours after the previous step[, reason])."""
    stages = await stage_ids(uow_factory)
    async with uow_factory() as uow:
        reasons = {r.code: r.id for r in await uow.repo.catalog.loss_reasons()}
        first = stages[steps[0][0]]
        deal = bare_deal(first, start, "deal", manager_id=manager_id, amount=amount)
        uow.repo.add(deal)
        await uow.flush()
        at, previous = start, None
        for code, hours, *reason in steps:
            stage = stages[code]
            at += timedelta(hours=hours)
            uow.repo.add(
                StageHistory(
                    deal_id=deal.id,
                    pipeline_id=stage.pipeline_id,
                    from_stage_id=previous,
                    to_stage_id=stage.id,
                    at=at,
                    reason_id=reasons[reason[0]] if reason else None,
                )
            )
            await uow.flush()
            previous = stage.id
        deal.pipeline_id, deal.stage_id, deal.stage_entered_at = stage.pipeline_id, stage.id, at
        await uow.commit()
        return deal.id


def jan(day: int, hour: int = 9, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, second, tzinfo=UTC)


@pytest.fixture
async def world(uow_factory, make_actor, clock):
    """Ann (manager) has D1-D10, Bob (manager) has D11; see the module docstring."""
    ann = await make_actor(roles=("manager",), name="Ann")
    bob = await make_actor(roles=("manager",), name="Bob")
    leader = await make_actor(roles=("leader",), name="Lea")
    a, b = ann.id, bob.id
    deals = {
        "D1": await story(
            uow_factory,
            a,
            100_000,
            datetime(2026, 1, 1, tzinfo=UTC),
            ("dc", 0),
            ("ps", 2),
            ("ms", 10),
            ("ma", 1),
            ("md", 24),
            ("cs", 48),
            ("won", 72),
        ),  # fmt: skip
        "D2": await story(
            uow_factory, a, 50_000, jan(2), ("dc", 0), ("ps", 4), ("lost", 6, "expensive")
        ),
        # Skips the proposal and the measurer's assignment; lost after the measurement.
        "D3": await story(
            uow_factory,
            a,
            200_000,
            jan(3),
            ("dc", 0),
            ("ms", 6),
            ("md", 30),
            ("lost", 12, "competitor"),
        ),  # fmt: skip
        # Moved back from the measurement to the proposal, lost there.
        "D4": await story(
            uow_factory,
            a,
            80_000,
            jan(4),
            ("dc", 0),
            ("ps", 8),
            ("ms", 5),
            ("ps", 3),
            ("lost", 7, "expensive"),
        ),  # fmt: skip
        # Deferred: left sales at the proposal, still waiting.
        "D5": await story(
            uow_factory, a, 30_000, jan(5), ("dc", 0), ("ps", 1), ("deferred.waiting", 20)
        ),
        # Deferred, back in sales after 100 h, now at the measurement.
        "D6": await story(
            uow_factory,
            a,
            40_000,
            jan(6),
            ("dc", 0),
            ("ps", 3),
            ("deferred.waiting", 2),
            ("ps", 100),
            ("ms", 4),
        ),  # fmt: skip
        # The last second of January: in the period; still in data collection.
        "D7": await story(uow_factory, a, None, jan(31, 23, 59, 59), ("dc", 0)),
        "D8": await story(
            uow_factory, a, 60_000, jan(8), ("dc", 0), ("ps", 5), ("cr", 9, "thinking")
        ),
        # Came in December: not in January's cohort though it was won in January.
        "D9": await story(
            uow_factory,
            a,
            500_000,
            datetime(2025, 12, 20, tzinfo=UTC),
            ("dc", 0),
            ("ps", 1),
            ("ms", 1),
            ("ma", 1),
            ("md", 1),
            ("cs", 1),
            ("won", 400),
        ),  # fmt: skip
        # The first second of February: not in January.
        "D10": await story(
            uow_factory, a, 70_000, datetime(2026, 2, 1, tzinfo=UTC), ("dc", 0), ("ps", 216)
        ),
        "D11": await story(
            uow_factory,
            b,
            300_000,
            jan(20),
            ("dc", 0),
            ("ps", 10),
            ("ms", 1),
            ("ma", 2),
            ("md", 3),
            ("cs", 4),
            ("won", 5),
        ),  # fmt: skip
    }
    clock.set(NOW)
    return {"ann": ann, "bob": bob, "leader": leader, "deals": deals}


def steps_by_code(funnel: analytics.PeriodFunnel) -> dict[str, analytics.FunnelStep]:
    return {s.stage.code: s for s in funnel.steps}


async def test_period_funnel_by_hand(uow_factory, world):
    async with uow_factory() as uow:
        funnel = await analytics.period_funnel(uow, world["leader"], JAN)
    assert [s.stage.code for s in funnel.steps] == [SALES[k] for k in SALES][:7]
    # Furthest stage: D1 won, D2 ps, D3 md, D4 ms, D5 ps, D6 ms, D7 dc, D8 ps, D11 won.
    assert [s.reached for s in funnel.steps] == [9, 8, 5, 3, 3, 2, 2]
    assert [s.reached_amount for s in funnel.steps] == [
        860_000, 860_000, 720_000, 600_000, 600_000, 400_000, 400_000,
    ]  # fmt: skip
    assert [s.drop_off for s in funnel.steps] == [1, 3, 2, 0, 1, 0, 0]
    assert [s.conversion for s in funnel.steps] == [None, 8 / 9, 5 / 8, 3 / 5, 1.0, 2 / 3, 1.0]
    assert [s.from_start for s in funnel.steps] == [1.0, 8 / 9, 5 / 9, 3 / 9, 3 / 9, 2 / 9, 2 / 9]
    # Outcomes at the last flow stage the deal was in.
    assert [s.lost for s in funnel.steps] == [0, 2, 0, 0, 1, 0, 0]  # D2+D4 at ps, D3 at md
    assert [s.lost_amount for s in funnel.steps] == [0, 130_000, 0, 0, 200_000, 0, 0]
    assert [s.open for s in funnel.steps] == [1, 0, 1, 0, 0, 0, 0]  # D7 dc, D6 ms
    assert [s.left for s in funnel.steps] == [0, 1, 0, 0, 0, 0, 0]  # D5 deferred at ps
    assert [s.frozen for s in funnel.steps] == [0, 1, 0, 0, 0, 0, 0]  # D8 thinking at ps
    assert (funnel.cohort, funnel.cohort_amount) == (9, 860_000)
    assert (funnel.won, funnel.won_amount) == (2, 400_000)
    assert (funnel.lost, funnel.lost_amount) == (3, 330_000)
    assert (funnel.open, funnel.left, funnel.frozen) == (2, 1, 1)
    assert funnel.conversion == 2 / 9
    # Key stage (the measurement done): 2 of the 3 measured deals won.
    (key,) = funnel.key_steps
    assert key.stage.code == "measurement_done" and key.win_rate == 2 / 3
    # Finished stays of cohort deals (hours): dc 2,4,6,8,1,3,5,10 (D7 still there);
    # ps 10,6,5,7,20,2,4,9,1 (D4 and D6 twice); ms 1,30,3,2; ma 24,3; md 48,12,4; cs 72,5.
    assert [s.visits for s in funnel.steps] == [8, 9, 4, 2, 3, 2, 0]
    medians = [s.median_seconds for s in funnel.steps]
    assert medians == [4.5 * H, 6 * H, 2.5 * H, 13.5 * H, 12 * H, 38.5 * H, None]


async def test_period_funnel_of_one_manager(uow_factory, world):
    bob, leader, ann = world["bob"], world["leader"], world["ann"]
    async with uow_factory() as uow:
        as_leader = await analytics.period_funnel(
            uow, leader, ReportFilter(**{**JAN.__dict__, "manager_id": bob.id})
        )
    async with uow_factory() as uow:
        # A manager gets their own deals whatever manager they ask for.
        as_bob = await analytics.period_funnel(
            uow, bob, ReportFilter(**{**JAN.__dict__, "manager_id": ann.id})
        )
    for funnel in (as_leader, as_bob):
        assert funnel.manager_id == bob.id
        assert [s.reached for s in funnel.steps] == [1] * 7
        assert (funnel.won, funnel.won_amount, funnel.lost) == (1, 300_000, 0)
        assert [s.median_seconds for s in funnel.steps] == [
            10 * H, 1 * H, 2 * H, 3 * H, 4 * H, 5 * H, None,
        ]  # fmt: skip
    async with uow_factory() as uow:
        as_ann = await analytics.period_funnel(uow, ann, JAN)
    assert as_ann.manager_id == ann.id
    assert [s.reached for s in as_ann.steps] == [8, 7, 4, 2, 2, 1, 1]


async def test_period_boundaries_follow_the_company_time_zone(uow_factory, world):
    # January in Moscow is 2025-12-31 21:00 .. 2026-01-31 21:00 UTC: D7 (23:59:59 UTC on
    # the 31st) falls out; D1 (00:00 UTC on the 1st) stays in; E (22:00 UTC on Dec 31st)
    # comes in. E's stay in data collection lies in a part-day at the period's edge, which
    # the median's histogram reads from the visits, the whole days from the daily rollup.
    await story(
        uow_factory, world["ann"].id, 1_000, datetime(2025, 12, 31, 22, tzinfo=UTC),
        ("dc", 0), ("ps", 1),
    )  # fmt: skip
    moscow = ReportFilter(**{**JAN.__dict__, "tz": "Europe/Moscow"})
    async with uow_factory() as uow:
        funnel = await analytics.period_funnel(uow, world["leader"], moscow)
    assert funnel.range.start == datetime(2025, 12, 31, 21, tzinfo=UTC)
    assert funnel.cohort == 9 and funnel.steps[0].open == 0 and funnel.steps[1].open == 1
    # dc stays (h): E 1, D1 2, D2 4, D3 6, D4 8, D5 1, D6 3, D8 5, D11 10 -> median 4 h.
    assert (funnel.steps[0].visits, funnel.steps[0].median_seconds) == (9, 4 * H)
    assert funnel.steps[1].median_seconds == 6 * H  # E is still in ps


async def test_deferred_pipeline_funnel(uow_factory, world):
    async with uow_factory() as uow:
        deferred = await uow.repo.pipelines.by_code("deferred")
        funnel = await analytics.period_funnel(
            uow, world["leader"], ReportFilter(**{**JAN.__dict__, "pipeline_id": deferred.id})
        )
    # D5 waits; D6 waited 100 h and went back to sales: it left at "waiting".
    assert [s.stage.code for s in funnel.steps] == ["waiting", "contact_due"]
    assert [s.reached for s in funnel.steps] == [2, 0]
    assert (funnel.steps[0].open, funnel.steps[0].left, funnel.won) == (1, 1, 0)
    assert funnel.steps[0].median_seconds == 100 * H and funnel.steps[0].visits == 1


async def test_an_archived_stage_counts_where_it_stood(uow_factory, world):
    """D12 got as far as "measurer assigned" and was lost there; that stage was removed
    from the config since: D12 counts as having reached the stage before it."""
    ann = world["ann"]
    await story(
        uow_factory, ann.id, 10_000, jan(12),
        ("dc", 0), ("ps", 1), ("ms", 1), ("ma", 1), ("lost", 1, "no_answer"),
    )  # fmt: skip
    async with uow_factory() as uow:
        stage = (await stage_ids(uow_factory))["ma"]
        stored = await uow.repo.get(type(stage), stage.id)
        stored.archived = True
        await uow.commit()
    async with uow_factory() as uow:
        funnel = await analytics.period_funnel(uow, world["leader"], JAN)
    assert "measurer_assigned" not in [s.stage.code for s in funnel.steps]
    assert [s.reached for s in funnel.steps] == [10, 9, 6, 3, 2, 2]
    assert [s.lost for s in funnel.steps] == [0, 2, 1, 1, 0, 0]


async def test_unknown_pipeline(uow_factory, world):
    with pytest.raises(NotFound):
        async with uow_factory() as uow:
            await analytics.period_funnel(uow, world["leader"], ReportFilter(pipeline_id=999))


async def test_snapshot_by_hand(uow_factory, world):
    async with uow_factory() as uow:
        snap = await analytics.snapshot(uow, world["leader"], ReportFilter(stuck_days=14))
    by_code = {s.stage.code: s for s in snap.stages}
    assert list(by_code) == [SALES[k] for k in ("dc", "ps", "ms", "ma", "md", "cs")]
    # Open now: D7 in dc since Jan 31, D10 in ps since Feb 10, D6 in ms since Jan 10.
    assert [(s.count, s.amount, s.weighted, s.stuck) for s in snap.stages] == [
        (1, 0, 0, 1),
        (1, 70_000, 14_000, 0),
        (1, 40_000, 16_000, 1),
        (0, 0, 0, 0),
        (0, 0, 0, 0),
        (0, 0, 0, 0),
    ]
    assert (snap.count, snap.amount, snap.weighted, snap.stuck) == (3, 110_000, 30_000, 2)
    assert (snap.frozen, snap.frozen_amount) == (1, 60_000)
    async with uow_factory() as uow:
        mine = await analytics.snapshot(uow, world["bob"], ReportFilter())
    assert mine.count == 0 and mine.frozen == 0 and mine.manager_id == world["bob"].id


async def test_loss_reasons_by_hand(uow_factory, world):
    # One more: lost without a reason (an import could write that), at data collection.
    await story(uow_factory, world["ann"].id, 5_000, jan(9), ("dc", 0), ("lost", 3))
    async with uow_factory() as uow:
        report = await analytics.loss_reasons(uow, world["leader"], JAN)
    rows = [
        (
            r.reason.code if r.reason else None,
            r.count,
            r.amount,
            r.frozen,
            [(c.stage.code, c.count, c.amount) for c in r.by_stage],
        )
        for r in report.rows
    ]
    assert rows == [
        ("expensive", 2, 130_000, 0, [("proposal_sent", 2, 130_000)]),
        ("competitor", 1, 200_000, 0, [("measurement_done", 1, 200_000)]),
        ("thinking", 1, 60_000, 1, [("proposal_sent", 1, 60_000)]),
        (None, 1, 5_000, 0, [("data_collection", 1, 5_000)]),
    ]
    assert (report.count, report.amount) == (5, 395_000)
    async with uow_factory() as uow:
        mine = await analytics.loss_reasons(uow, world["bob"], JAN)
    assert mine.rows == ()


async def test_manager_ranking_by_hand(uow_factory, world, clock):
    ann, bob = world["ann"], world["bob"]
    async with uow_factory() as uow:
        for due, status in (
            (NOW - timedelta(hours=1), TaskStatus.OPEN),  # overdue
            (NOW - timedelta(days=3), TaskStatus.IN_PROGRESS),  # overdue
            (NOW - timedelta(days=3), TaskStatus.DONE),  # done: not overdue
            (NOW + timedelta(hours=1), TaskStatus.OPEN),  # not due yet
        ):
            uow.repo.add(
                Task(
                    kind="custom",
                    title="call",
                    assignee_id=ann.id,
                    status=status,
                    due_at=due,
                    created_at=NOW - timedelta(days=5),
                )
            )
        await uow.commit()
    async with uow_factory() as uow:
        report = await analytics.managers(uow, world["leader"], JAN)
    rows = {r.name: r for r in report.rows}
    assert [r.name for r in report.rows] == ["Bob", "Ann"]  # 300 000 won beats 100 000
    assert (rows["Bob"].deals, rows["Bob"].won, rows["Bob"].won_amount) == (1, 1, 300_000)
    assert rows["Bob"].conversion == 1.0 and rows["Bob"].overdue_tasks == 0
    a = rows["Ann"]
    assert (a.deals, a.won, a.won_amount, a.lost, a.lost_amount, a.open) == (
        8, 1, 100_000, 3, 330_000, 2,
    )  # fmt: skip
    assert a.conversion == 1 / 8 and a.overdue_tasks == 2
    async with uow_factory() as uow:
        own = await analytics.managers(uow, bob, JAN)
    assert [r.manager_id for r in own.rows] == [bob.id]


@pytest.mark.parametrize(
    "report",
    [analytics.snapshot, analytics.period_funnel, analytics.loss_reasons, analytics.managers],
)
@pytest.mark.parametrize("roles", [("measurer",), ("head_measurer",)])
async def test_measurers_are_refused(uow_factory, make_actor, report, roles):
    someone = await make_actor(roles=roles, name="Max")
    with pytest.raises(PermissionDenied):
        async with uow_factory() as uow:
            await report(uow, someone, ReportFilter())


async def test_facts_follow_reassignment_and_amount(uow_factory, world):
    """Triggers keep the copies of manager and amount in step with the deal."""
    d2 = world["deals"]["D2"]
    bob = world["bob"]
    async with uow_factory() as uow:
        deal = await uow.repo.get(Deal, d2)
        deal.manager_id, deal.amount = bob.id, 55_000
        await uow.commit()
    async with uow_factory() as uow:
        facts = (
            await uow.session.scalars(select(FunnelFact).where(FunnelFact.deal_id == d2))
        ).all()
        visits = (
            await uow.session.scalars(select(StageVisit).where(StageVisit.deal_id == d2))
        ).all()
    assert [(f.manager_id, f.amount) for f in facts] == [(bob.id, 55_000)]
    assert {v.manager_id for v in visits} == {bob.id} and len(visits) == 2
    async with uow_factory() as uow:
        funnel = await analytics.period_funnel(uow, bob, JAN)
    assert funnel.cohort == 2 and funnel.lost_amount == 55_000


def test_periods_in_a_time_zone():
    now = datetime(2026, 2, 15, 12, 0, tzinfo=UTC)  # a Sunday

    def days(period: Period, tz: str = "UTC") -> tuple[date, date]:
        span = analytics.resolve_period(ReportFilter(period=period, tz=tz), now)
        return span.first_day, span.last_day

    assert days(Period.THIS_WEEK) == (date(2026, 2, 9), date(2026, 2, 15))
    assert days(Period.LAST_WEEK) == (date(2026, 2, 2), date(2026, 2, 8))
    assert days(Period.THIS_MONTH) == (date(2026, 2, 1), date(2026, 2, 28))
    assert days(Period.LAST_MONTH) == (date(2026, 1, 1), date(2026, 1, 31))
    assert days(Period.THIS_QUARTER) == (date(2026, 1, 1), date(2026, 3, 31))
    assert days(Period.LAST_QUARTER) == (date(2025, 10, 1), date(2025, 12, 31))
    late = datetime(2026, 3, 31, 22, 30, tzinfo=UTC)  # already April 1st in Moscow
    span = analytics.resolve_period(
        ReportFilter(period=Period.THIS_MONTH, tz="Europe/Moscow"), late
    )
    assert (span.first_day, span.start) == (date(2026, 4, 1), datetime(2026, 3, 31, 21, tzinfo=UTC))
    assert span.end == datetime(2026, 4, 30, 21, tzinfo=UTC)


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        (ReportFilter(period=Period.CUSTOM), "period"),
        (
            ReportFilter(period=Period.CUSTOM, start=date(2026, 2, 1), end=date(2026, 1, 1)),
            "period",
        ),
        (
            ReportFilter(period=Period.CUSTOM, start=date(2020, 1, 1), end=date(2026, 1, 1)),
            "period",
        ),
        (ReportFilter(period="fortnight"), "period"),  # type: ignore[arg-type]
        (ReportFilter(tz="Mars/Olympus"), "tz"),
    ],
)
def test_bad_periods_are_refused(filters, field):
    with pytest.raises(ValidationError) as err:
        analytics.resolve_period(filters, NOW)
    assert err.value.field == field


async def test_upgrade_replays_existing_history(empty_db_url, clock):
    """Migration 0003 on a database that already has history fills the derived tables."""
    await migrate.upgrade(empty_db_url, "0002")
    engine = create_engine(empty_db_url)
    uow_factory = UnitOfWorkFactory(create_session_factory(engine), clock)
    # Columns later revisions add to tables the models write here: present while the
    # story is written through the models, gone again before the upgrade adds them.
    later = [
        ("stages", "rot_after_days", "INTEGER"),  # 0011
        ("loss_reasons", "comment_required", "BOOLEAN NOT NULL DEFAULT FALSE"),  # 0014
        ("loss_reasons", "applies_to", "VARCHAR(16) NOT NULL DEFAULT 'any'"),  # 0014
        ("stages", "extras", "JSON"),  # 0018
        ("deals", "items", "JSON"),
        ("deals", "production_at", "TIMESTAMP WITH TIME ZONE"),
        ("deals", "delivery_at", "TIMESTAMP WITH TIME ZONE"),
        ("stages", "short", "VARCHAR(16)"),  # 0017
        ("stages", "short_en", "VARCHAR(16)"),
        ("deals", "expected_close_at", "TIMESTAMP WITH TIME ZONE"),  # 0022
    ]
    async with engine.begin() as conn:
        for table, column, kind in later:
            await conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    try:
        async with uow_factory() as uow:
            await sync_config(uow, load_config(DEFAULT_PIPELINES))
        async with uow_factory() as uow:
            ann = Employee(telegram_id=1, name="Ann", roles=["manager"], created_at=clock.now())
            uow.repo.add(ann)
            await uow.commit()
        d4 = await story(
            uow_factory, ann.id, 80_000, jan(4),
            ("dc", 0), ("ps", 8), ("ms", 5), ("ps", 3), ("lost", 7, "expensive"),
        )  # fmt: skip
        d6 = await story(
            uow_factory, ann.id, 40_000, jan(6),
            ("dc", 0), ("ps", 3), ("deferred.waiting", 2), ("ps", 100), ("ms", 4),
        )  # fmt: skip
        async with engine.begin() as conn:
            for table, column, _ in later:
                await conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {column}")
        await engine.dispose()  # SQLite: no pooled connection keeps the old schema
        await migrate.upgrade(empty_db_url)
        stages = {s.id: name for name, s in (await stage_ids(uow_factory)).items()}
        async with uow_factory() as uow:
            facts = (await uow.session.scalars(select(FunnelFact).order_by(FunnelFact.id))).all()
            visits = (await uow.session.scalars(select(StageVisit).order_by(StageVisit.id))).all()
    finally:
        await engine.dispose()
    got = [
        (f.deal_id, stages[f.reached_stage_id], stages[f.flow_stage_id], f.outcome, f.amount)
        for f in facts
    ]
    assert sorted(got) == sorted(
        [
            (d4, "ms", "ps", "lost", 80_000),
            (d6, "ms", "ms", "open", 40_000),
            (d6, "deferred.waiting", "deferred.waiting", "left", 40_000),
        ]
    )
    assert [(v.deal_id, stages[v.stage_id], v.duration_s // H) for v in visits] == [
        (d4, "dc", 8), (d4, "ps", 5), (d4, "ms", 3), (d4, "ps", 7),
        (d6, "dc", 3), (d6, "ps", 2), (d6, "deferred.waiting", 100), (d6, "ps", 4),
    ]  # fmt: skip
