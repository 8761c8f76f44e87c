"""Analytics over data written by the real services (leads, deals) with a moving clock:
a hand-computed story, and random move sequences checked against a replay of history."""

from __future__ import annotations

import asyncio
import itertools
import math
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from statistics import median
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from services.clock import FakeClock
from services.errors import DomainError
from services.permissions import Actor
from services.reports import analytics
from services.reports.analytics import Period, ReportFilter
from services.sales import deals, leads
from services.sales.pipelines import rules_for
from storage.db import create_engine, create_session_factory
from storage.models import Deal, Employee, Lead, StageHistory
from storage.uow import UnitOfWorkFactory
from tests.factories import new_deal, new_lead, qualify

MEASURE = {"measurement_at": datetime(2027, 1, 1, tzinfo=UTC), "address": "Lenina 1"}


async def pipeline_id(uow_factory: Any, code: str) -> int:
    async with uow_factory() as uow:
        return (await uow.repo.pipelines.by_code(code)).id


async def test_story_through_the_services(uow_factory, make_actor, clock):
    ann = await make_actor(roles=("manager",), name="Ann")
    bob = await make_actor(roles=("manager",), name="Bob")
    lea = await make_actor(roles=("leader",), name="Lea")
    # Monday 2026-01-12 09:00. L1: answered after 30 min, converted 10 min later.
    l1 = await new_lead(uow_factory, ann)
    clock.advance(minutes=30)
    await qualify(uow_factory, ann, l1.id)
    clock.advance(minutes=10)
    async with uow_factory() as uow:
        x1 = await leads.convert(uow, ann, l1.id)
    l2 = await new_lead(uow_factory, ann)  # disqualified after two hours
    clock.advance(hours=2)
    async with uow_factory() as uow:
        await leads.disqualify(uow, ann, l2.id, "not_target")
    await new_lead(uow_factory, ann)  # L3: nobody touched it
    # X1 (data collection since 09:40): proposal at 12:40, measurement 2 h later, back to
    # the proposal after 3 h, lost there after 4 h.
    clock.advance(hours=1)
    async with uow_factory() as uow:
        await deals.advance(uow, ann, x1, None, {"amount": "1000"})
    clock.advance(hours=2)
    async with uow_factory() as uow:
        await deals.advance(uow, ann, x1, None, MEASURE)
    clock.advance(hours=3)
    async with uow_factory() as uow:
        await deals.step_back(uow, ann, x1, None)
    clock.advance(hours=4)
    async with uow_factory() as uow:
        await deals.lose(uow, ann, x1, "expensive")
    # X2 (lead L4 converted at once): deferred after 1 h, back in sales 5 h later.
    x2 = (await new_deal(uow_factory, ann)).id
    clock.advance(hours=1)
    async with uow_factory() as uow:
        await deals.defer(uow, ann, x2, clock.now() + timedelta(days=3), None)
    clock.advance(hours=5)
    async with uow_factory() as uow:
        await deals.return_to_sales(uow, ann, x2, None)
    # X3 (lead L5): proposal after 2 h, "thinking" after 3 h, reopened after 1 h, to Bob.
    x3 = (await new_deal(uow_factory, ann)).id
    clock.advance(hours=2)
    async with uow_factory() as uow:
        await deals.advance(uow, ann, x3, None, {"amount": "2500"})
    clock.advance(hours=3)
    async with uow_factory() as uow:
        await deals.lose(uow, ann, x3, "thinking")
    clock.advance(hours=1)
    async with uow_factory() as uow:
        await deals.reopen(uow, ann, x3, None)
    async with uow_factory() as uow:
        await deals.reassign(uow, lea, x3, bob.id, None)

    month = ReportFilter(period=Period.THIS_MONTH, tz="Europe/Moscow")
    async with uow_factory() as uow:
        sales = await analytics.period_funnel(uow, lea, month)
    # X1 reached the measurement (lost back at the proposal), X2 data collection, X3 proposal.
    assert [s.reached for s in sales.steps] == [3, 2, 1, 0, 0, 0, 0]
    assert [s.lost for s in sales.steps][:3] == [0, 1, 0]
    assert sales.lost_amount == 100_000 and sales.cohort_amount == 350_000
    assert [s.open for s in sales.steps][:3] == [1, 1, 0]
    # Finished stays: dc X1 3 h, X2 1 h (before deferral), X3 2 h; ps X1 2 h and 4 h,
    # X3 3 h (then frozen); ms X1 3 h.
    assert [s.visits for s in sales.steps][:3] == [3, 3, 1]
    assert [s.median_seconds for s in sales.steps][:3] == [2 * 3600, 3 * 3600, 3 * 3600]

    async with uow_factory() as uow:
        by_bob = await analytics.period_funnel(
            uow, lea, ReportFilter(period=Period.THIS_MONTH, manager_id=bob.id)
        )
    assert by_bob.cohort == 1 and by_bob.steps[1].open == 1

    deferred = await pipeline_id(uow_factory, "deferred")
    async with uow_factory() as uow:
        funnel = await analytics.period_funnel(
            uow, lea, ReportFilter(period=Period.THIS_MONTH, pipeline_id=deferred)
        )
    assert funnel.cohort == 1 and funnel.steps[0].left == 1
    assert funnel.steps[0].median_seconds == 5 * 3600

    leads_pipeline = await pipeline_id(uow_factory, "leads")
    async with uow_factory() as uow:
        funnel = await analytics.period_funnel(
            uow, lea, ReportFilter(period=Period.THIS_MONTH, pipeline_id=leads_pipeline)
        )
    # L1, L4, L5 converted; L2 disqualified while new; L3 untouched.
    assert [s.reached for s in funnel.steps] == [5, 3, 3]
    assert (funnel.won, funnel.lost, funnel.steps[0].lost, funnel.steps[0].open) == (3, 1, 1, 1)
    # Time in "new" is the response time: 30 min, 2 h, 0, 0.
    assert funnel.steps[0].median_seconds == 900

    async with uow_factory() as uow:
        ranking = await analytics.managers(uow, lea, month)
    rows = {r.name: r for r in ranking.rows}
    assert (rows["Ann"].deals, rows["Ann"].lost, rows["Ann"].open) == (2, 1, 1)
    assert (rows["Bob"].deals, rows["Bob"].open, rows["Bob"].leads) == (1, 1, 0)
    a = rows["Ann"]
    assert (a.leads, a.leads_processed, a.leads_converted) == (5, 4, 3)
    assert a.median_response_seconds == 900  # median of 0, 0, 1800, 7200

    async with uow_factory() as uow:
        snap = await analytics.snapshot(uow, lea, ReportFilter())
    assert [s.count for s in snap.stages][:2] == [1, 1]
    assert snap.stages[1].amount == 250_000 and snap.stages[1].weighted == 50_000


# --- random move sequences against a replay of the history --------------------------------


def ts(moment: datetime) -> int:
    return math.floor(moment.timestamp())


async def replayed(uow: Any, pipeline: int, manager_id: int) -> dict[str, Any]:
    """The period funnel's numbers recomputed in Python from history and the deals table,
    by the rules of the services.analytics docstring (no period limit: every deal counts)."""
    rules = await rules_for(uow, pipeline)
    flow = [s.id for s in rules.flow]
    active = {s.id for s in rules.flow if s.kind == "active"}
    kinds = {}
    for p in await uow.repo.pipelines.all(include_archived=True):
        kinds.update({s.id: s.kind for s in await uow.repo.pipelines.stages(p.id)})
    reached = [0] * len(flow)
    outcome: dict[str, list[int]] = defaultdict(lambda: [0] * len(flow))
    stays: dict[int, list[int]] = defaultdict(list)
    history: dict[tuple[str, int], list[StageHistory]] = defaultdict(list)
    for row in await uow.session.scalars(select(StageHistory).order_by(StageHistory.id)):
        key = ("deal", row.deal_id) if row.deal_id else ("lead", row.lead_id)
        history[key].append(row)
    for (kind, subject_id), items in history.items():
        model = Deal if kind == "deal" else Lead
        subject = await uow.repo.get(model, subject_id)
        mine = [r for r in items if r.pipeline_id == pipeline]
        if not mine or subject.manager_id != manager_id:
            continue
        furthest = max(flow.index(r.to_stage_id) for r in mine if r.to_stage_id in flow)
        for k in range(furthest + 1):
            reached[k] += 1
        last_flow = flow.index([r.to_stage_id for r in mine if r.to_stage_id in flow][-1])
        here = kinds[mine[-1].to_stage_id]
        if items[-1].pipeline_id != pipeline and here in ("active", "frozen"):
            result = "left"
        else:
            result = "open" if here == "active" else here
        outcome[result][last_flow] += 1
        for row, after in zip(items, items[1:], strict=False):
            if row.pipeline_id == pipeline and row.to_stage_id in active:
                stays[row.to_stage_id].append(max(0, ts(after.at) - ts(row.at)))
    return {
        "reached": reached,
        "outcomes": {k: v for k, v in outcome.items()},
        "medians": [median(stays[s]) if stays[s] else None for s in flow],
        "visits": [len(stays[s]) for s in flow],
    }


def observed(funnel: analytics.PeriodFunnel) -> dict[str, Any]:
    outcomes = {}
    for name in ("open", "lost", "frozen", "left"):
        counts = [getattr(s, name) for s in funnel.steps]
        if any(counts):
            outcomes[name] = counts
    if funnel.won:
        outcomes["won"] = [0] * (len(funnel.steps) - 1) + [funnel.won]
    return {
        "reached": [s.reached for s in funnel.steps],
        "outcomes": outcomes,
        "medians": [s.median_seconds for s in funnel.steps],
        "visits": [s.visits for s in funnel.steps],
    }


TELEGRAM_IDS = itertools.count(10**12)

OPS = st.tuples(
    st.integers(0, 2),  # which deal
    st.sampled_from(
        ["advance", "back", "lose", "lose_cond", "reopen", "win", "defer", "return", "reassign"]
    ),
    st.integers(0, 3000),  # minutes before the operation
)


async def run_example(url: str, ops: list[tuple[int, str, int]]) -> None:
    engine = create_engine(url)
    clock = FakeClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    uf = UnitOfWorkFactory(create_session_factory(engine), clock)
    try:
        async with uf() as uow:  # fresh managers: reports filtered by them see only this example
            staff = [
                Employee(
                    telegram_id=next(TELEGRAM_IDS),
                    name=name,
                    roles=[role],
                    active=True,
                    created_at=clock.now(),
                )
                for name, role in (("M1", "manager"), ("M2", "manager"), ("L", "leader"))
            ]
            for e in staff:
                uow.repo.add(e)
            await uow.commit()
            m1, m2, leader = (Actor.of(e) for e in staff)
        ids = [(await new_deal(uf, m if i % 2 else m1)).id for i, m in enumerate((m1, m2, m1))]
        for index, op, minutes in ops:
            clock.advance(minutes=minutes)
            deal_id = ids[index]
            fields = {"amount": str(1000 + minutes), **MEASURE}
            try:
                async with uf() as uow:
                    if op == "advance":
                        await deals.advance(uow, leader, deal_id, None, fields)
                    elif op == "back":
                        await deals.step_back(uow, leader, deal_id, None)
                    elif op in ("lose", "lose_cond"):
                        reason = "thinking" if op == "lose_cond" else "competitor"
                        await deals.lose(uow, leader, deal_id, reason)
                    elif op == "reopen":
                        await deals.reopen(uow, leader, deal_id, None)
                    elif op == "win":
                        await deals.win(uow, leader, deal_id, None)
                    elif op == "defer":
                        when = clock.now() + timedelta(days=2)
                        await deals.defer(uow, leader, deal_id, when, None)
                    elif op == "return":
                        await deals.return_to_sales(uow, leader, deal_id, None)
                    elif op == "reassign":
                        deal = await uow.repo.get(Deal, deal_id)
                        assert deal is not None
                        target = m2 if deal.manager_id == m1.id else m1
                        await deals.reassign(uow, leader, deal_id, target.id, None)
            except DomainError:
                pass
        year = ReportFilter(period=Period.CUSTOM, start=date(2026, 1, 1), end=date(2026, 12, 31))
        for code in ("sales", "deferred", "leads"):
            async with uf() as uow:
                found = await uow.repo.pipelines.by_code(code)
                assert found is not None, code
                pipeline = found.id
            for manager in (m1, m2):
                filters = ReportFilter(**{**year.__dict__, "pipeline_id": pipeline})
                async with uf() as uow:
                    funnel = await analytics.period_funnel(uow, manager, filters)
                async with uf() as uow:
                    expected = await replayed(uow, pipeline, manager.id)
                assert observed(funnel) == expected, (code, manager.name)
    finally:
        await engine.dispose()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(OPS, min_size=1, max_size=30))
def test_random_moves_match_a_replay_of_history(db_url, ops):
    asyncio.run(run_example(db_url, ops))
