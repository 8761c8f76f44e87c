"""Demo data: consistent rows, the seeds' shape, determinism, refusals."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import demo
from services.permissions import Actor
from services.reports import analytics
from services.reports.analytics import Period, ReportFilter
from services.sales import leads
from services.sales.leads import LeadInput
from storage.db import create_engine, create_session_factory
from storage.enums import LeadStatus, Role
from storage.models import Contact, Deal, Employee, Lead, Stage, StageHistory, Task
from storage.models.analytics import FunnelFact
from storage.uow import UnitOfWork, UnitOfWorkFactory
from tests.factories import count_in

NOW = datetime(2026, 1, 12, 9, 0, tzinfo=UTC)
LEADER = Actor(id=0, telegram_id=0, name="Lea", roles=frozenset({Role.LEADER}))


async def test_demo_rows_are_consistent(engine: AsyncEngine, uow_factory: UnitOfWorkFactory):
    report = await demo.generate(engine, 240, now=NOW, chunk=100)
    assert (report.deals, report.leads) == (240, 360)
    async with uow_factory() as uow:
        assert await count_in(uow, Deal, Deal.parent_deal_id.is_(None)) == 240
        assert await count_in(uow, Lead) == 360
        assert await count_in(uow, Lead, Lead.status == LeadStatus.CONVERTED) == 240
        assert await count_in(uow, StageHistory) == report.history_rows
        assert report.history_rows / report.deals > 5  # "about six history rows a deal"
        # Every subject's history chains up and ends where the subject is now.
        rows = (await uow.session.scalars(select(StageHistory).order_by(StageHistory.id))).all()
        last: dict[tuple[str, int | None], StageHistory] = {}
        for row in rows:
            key = ("deal", row.deal_id) if row.deal_id else ("lead", row.lead_id)
            previous = last.get(key)
            assert row.from_stage_id == (previous.to_stage_id if previous else None)
            assert previous is None or previous.at <= row.at
            last[key] = row
        for deal in (await uow.session.scalars(select(Deal))).all():
            assert last[("deal", deal.id)].to_stage_id == deal.stage_id
            assert deal.created_at <= NOW and deal.updated_at <= NOW
        for lead in (await uow.session.scalars(select(Lead))).all():
            assert last[("lead", lead.id)].to_stage_id == lead.stage_id
        # The triggers saw every history row: one fact per subject and pipeline entered.
        entered = {(r.deal_id, r.lead_id, r.pipeline_id) for r in rows}
        assert await count_in(uow, FunnelFact) == len(entered) > 600
        assert await count_in(uow, Task, Task.due_at < NOW, Task.status == "open") > 0


async def test_demo_ids_leave_room_for_new_rows(engine, uow_factory, make_actor):
    """On PostgreSQL explicit ids do not move sequences: the demo resets them."""
    await demo.generate(engine, 30, now=NOW)
    ann = await make_actor(roles=("manager",))
    async with uow_factory() as uow:
        lead = await leads.create_lead(uow, ann, LeadInput(name="Новый", phone="+79160000001"))
    async with uow_factory() as uow:
        assert await count_in(uow, Lead) == 46 and lead.id > 45


async def test_demo_refuses_a_database_with_deals(engine):
    await demo.generate(engine, 5, now=NOW)
    with pytest.raises(demo.DemoError, match="already has"):
        await demo.generate(engine, 5, now=NOW)


async def test_run_demo_on_a_fresh_file(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    await demo.run_demo(url, 20, seed=7)
    engine = create_engine(url)
    try:
        async with UnitOfWork(create_session_factory(engine)) as uow:
            assert await count_in(uow, Deal, Deal.parent_deal_id.is_(None)) == 20
            names = (await uow.session.scalars(select(Employee.name))).all()
        assert "Анна Смирнова" in names and len(names) == 15
    finally:
        await engine.dispose()


async def fingerprint(url: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(
                    StageHistory.deal_id,
                    StageHistory.lead_id,
                    StageHistory.to_stage_id,
                    StageHistory.at,
                    StageHistory.reason_id,
                ).order_by(StageHistory.id)
            )
            return [tuple(r) for r in rows]
    finally:
        await engine.dispose()


async def test_same_seed_same_data(tmp_path, sqlite_template):
    urls = []
    for name in ("a", "b", "c"):
        path = tmp_path / f"{name}.db"
        path.write_bytes(sqlite_template.read_bytes())
        urls.append(f"sqlite+aiosqlite:///{path}")
    for url, seed in zip(urls, (3, 3, 4), strict=True):
        engine = create_engine(url)
        await demo.generate(engine, 50, seed=seed, now=NOW)
        await engine.dispose()
    a, b, c = [await fingerprint(url) for url in urls]
    assert a == b and a != c


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_demo_is_a_company_worth_showing(engine, uow_factory, clock):
    """Issue 20: open deals in every active stage of Sales, about a quarter won, this month
    and the last one full, managers with different results, all in the demo's language; the
    report tells that distribution, and the reports read the same from the rows."""
    report = await demo.generate(engine, 300, now=NOW, seed=1, lang="en")
    active = ["data_collection", "proposal_sent", "measurement_scheduled"]
    active += ["measurer_assigned", "measurement_done", "contract_signed"]
    assert list(report.open_stages) == active and min(report.open_stages.values()) >= 3
    assert 0.2 <= report.won_share <= 0.3
    this, last = "2026-01", "2025-12"  # NOW is 12 January: twelve days of this month
    assert report.months[last] >= 0.1 * 300 and report.months[this] >= 0.04 * 300
    assert report.won_months[last] >= 5 and report.won_months[this] >= 1
    shares = [m.won_share for m in report.managers]
    assert len(shares) == 8 and shares == sorted(shares, reverse=True)
    assert shares[0] - shares[-1] > 0.2 and len({round(s, 2) for s in shares}) >= 5
    assert sum(m.deals for m in report.managers) == 300
    assert sum(report.stages.values()) == 300 and report.stages["won"] == report.won
    printed = "\n".join(report.lines())
    assert "won: " in printed and "Anna Smith: " in printed and "contract_signed " in printed
    # The rows say the same: the board and the snapshot see every stage.
    clock.set(NOW)
    async with uow_factory() as uow:
        snap = await analytics.snapshot(uow, LEADER, ReportFilter())
        texts = []
        for column in (Deal.title, Deal.address, Employee.name, Task.title, Contact.name):
            texts += [t for t in (await uow.session.scalars(select(column))).all() if t]
        won_stage = select(Stage.id).where(Stage.code == "won").scalar_subquery()
        won_rows = await count_in(uow, Deal, Deal.stage_id == won_stage)
    assert {s.stage.code: s.count for s in snap.stages if s.count} == report.open_stages
    assert won_rows == report.won
    cyrillic = [t for t in texts if re.search("[а-яА-ЯёЁ]", t)]
    assert not cyrillic, cyrillic[:3]  # names, needs and task titles in English


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_demo_has_the_seeds_shape(engine, uow_factory, clock):
    """Two in three measured deals are won (the key stage of seed 002), a quarter of all."""
    await demo.generate(engine, 6000, now=NOW, seed=1)
    clock.set(NOW)
    year = ReportFilter(period=Period.CUSTOM, start=datetime(2025, 1, 1).date(), end=NOW.date())
    async with uow_factory() as uow:
        funnel = await analytics.period_funnel(uow, LEADER, year)
        ranking = await analytics.managers(uow, LEADER, year)
        reasons = await analytics.loss_reasons(uow, LEADER, year)
        snap = await analytics.snapshot(uow, LEADER, ReportFilter())
        leads_total = await count_in(uow, Lead)
    steps = {s.stage.code: s for s in funnel.steps}
    measured = steps["measurement_done"]
    assert measured.win_rate is not None and 0.55 < measured.win_rate < 0.8  # the key stage
    assert 0.25 < measured.reached / leads_total < 0.4
    proposal_conversion = steps["proposal_sent"].conversion
    assert proposal_conversion is not None and 0.7 < proposal_conversion < 0.9
    assert 0.2 < funnel.won / 6000 < 0.3
    # Deals moved back (rescheduled measurements), deferred and parked exist.
    assert funnel.left > 0 and funnel.lost > 0 and funnel.open > 0
    assert steps["measurement_scheduled"].visits > steps["measurement_scheduled"].reached
    # Managers differ; the best converts better than the worst.
    assert len(ranking.rows) == 8
    best, worst = ranking.rows[0].conversion, ranking.rows[-1].conversion
    assert best is not None and worst is not None and best > worst
    assert all(r.median_response_seconds for r in ranking.rows)
    assert sum(r.overdue_tasks for r in ranking.rows) > 0
    assert {r.reason.code for r in reasons.rows if r.reason} >= {"expensive", "competitor"}
    assert snap.count > 0 and snap.stuck > 0
    async with uow_factory() as uow:
        sources = Counter((await uow.session.scalars(select(Lead.source))).all())
    assert sources.most_common(1)[0][0] == "call" and len(sources) == 5


async def test_the_made_up_people_never_get_a_message(engine, uow_factory, clock, make_actor):
    """What the bot's jobs queue after a demo (summaries, escalations, task reminders) is
    cancelled for the made-up staff at the sweep; a real person still gets theirs."""
    from services.outbox import queue
    from services.outbox.payloads import TaskPayload
    from services.work import jobs
    from tests.outbox_fakes import RecordingNotifier, make_sweeper, reminders

    await demo.generate(engine, 60, now=NOW)
    clock.set(NOW)
    real = await make_actor(roles=("manager",), name="Real Person")
    async with uow_factory() as uow:
        made_up = (
            await uow.session.scalars(select(Employee).where(Employee.telegram_id < 0))
        ).all()
        assert made_up and all(queue.is_made_up(e.telegram_id) for e in made_up)
        for person in (*made_up[:3], real):
            await queue.enqueue(uow, person.id, "task.due", TaskPayload(title="Call"), NOW)
        await uow.commit()
    async with uow_factory() as uow:
        await jobs.morning_summary(uow, force=True)
    async with uow_factory() as uow:
        await jobs.escalate_overdue(uow)
    queued = await reminders(uow_factory)
    demo_ids = {e.id for e in made_up}
    assert sum(r.recipient_id in demo_ids for r in queued) >= 3  # the jobs did queue some

    notifier = RecordingNotifier()
    sweeper, _ = make_sweeper(uow_factory, notifier, clock)
    await sweeper.sweep_until_idle()
    assert notifier.deliveries and {d.recipient_id for d in notifier.deliveries} == {real.id}
    for row in await reminders(uow_factory):
        if row.recipient_id in demo_ids:
            assert (row.state, row.last_error) == ("cancelled", "demo"), row
