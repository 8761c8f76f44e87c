"""Benchmark: a deal with 10,000 timeline events -- its card and a history page (issue 12,
Must-show 4: <= 50 ms of service time).

    .venv/bin/python bench/timeline.py [--events 10000] [--others 20] [--rounds 30] [--per-round 20]

Builds a migrated SQLite file database in bench/out/ (the default pipelines, one manager,
one deal made through the services), then writes `--events` timeline rows on that deal
(notes, calls, files, client messages both ways, payments...), `--others` more deals with
as many rows each (so the indexes, not the table's smallness, find the deal's rows), a stage
history and some tasks. Then, in interleaved rounds (floor, subject, floor, subject...):

  subject  the services a manager's taps run: `deals.get_card` (the card: its counts of
           files / messages / open tasks and last events, one statement) and
           `timeline.deal_timeline` (the newest history page: stage changes, tasks and
           events merged, every kind), each in its own unit of work as a tap would;
  floor    the least work that reads the same rows through the same engine (same SQLite
           settings, same process): the deal with its contact, its 3 newest activity rows,
           and the page's 9 newest rows of each source (activities, stage_history, tasks)
           by plain indexed SELECTs in one read transaction -- no counting, no merging,
           no permissions, no DTOs.

Prints ms per card+page for each (median of the rounds, p10-p90), the cost ratio subject /
floor (median of the rounds' ratios, p10-p90), and the figure against the 50 ms budget; also
the "client messages" filtered page alone. Exit status 1 if the subject's median is over the
budget.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, text

from services.clock import FakeClock
from services.permissions import Actor
from services.sales import deals
from services.sales import timeline as timelines
from services.sales.pipeline_config import load_config
from services.sales.pipelines import sync_config
from storage import migrate
from storage.db import create_engine, create_session_factory
from storage.enums import ActivityKind, TimelineFilter
from storage.models import Activity, Base, Deal, Employee, StageHistory, Task
from storage.uow import UnitOfWorkFactory
from tests.factories import new_deal

OUT = ROOT / "bench" / "out"
DEFAULT_PIPELINES = ROOT / "config" / "pipelines" / "default.toml"
BUDGET_MS = 50.0
KINDS = (
    (ActivityKind.MESSAGE_IN, 45),
    (ActivityKind.MESSAGE_OUT, 25),
    (ActivityKind.NOTE, 10),
    (ActivityKind.CALL, 8),
    (ActivityKind.FILE, 8),
    (ActivityKind.PAYMENT, 2),
    (ActivityKind.TASK_DONE, 2),
)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def rows_for(deal_id: int, author: int, n: int, start: datetime, rng: random.Random) -> list[dict]:
    kinds = [k for k, w in KINDS for _ in range(w)]
    out = []
    for i in range(n):
        kind = rng.choice(kinds)
        media = "photo" if kind == ActivityKind.FILE else None
        out.append(
            {
                "deal_id": deal_id,
                "lead_id": None,
                "contact_id": None,
                "task_id": None,
                "kind": kind.value,
                "text": f"event {i} " + "x" * rng.randint(10, 200),
                "author_id": None if kind == ActivityKind.MESSAGE_IN else author,
                "at": start + timedelta(minutes=i),
                "media_type": media,
                "file_id": f"file-{deal_id}-{i}" if media else None,
                "file_unique_id": None,
                "caption": None,
                "chat_id": 777 if kind.value.startswith("msg") else None,
                "message_id": i if kind.value.startswith("msg") else None,
                "payload": {"connection": "bc"} if kind.value.startswith("msg") else None,
            }
        )
    return out


async def build(events: int, others: int) -> tuple[UnitOfWorkFactory, Actor, int, Any]:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "timeline.db"
    for p in (path, path.with_suffix(".db-wal"), path.with_suffix(".db-shm")):
        p.unlink(missing_ok=True)
    url = f"sqlite+aiosqlite:///{path}"
    await migrate.upgrade(url)
    engine = create_engine(url)
    clock = FakeClock(datetime(2026, 1, 12, 9, 0, tzinfo=UTC))
    uow_factory = UnitOfWorkFactory(create_session_factory(engine), clock)
    async with uow_factory() as uow:
        await sync_config(uow, load_config(DEFAULT_PIPELINES))
    async with uow_factory() as uow:
        emp = Employee(
            telegram_id=700_000_001,
            name="Ann",
            roles=["manager"],
            active=True,
            created_at=clock.now(),
        )
        uow.repo.add(emp)
        await uow.commit()
        actor = Actor.of(emp)
    deal_ids = [(await new_deal(uow_factory, actor, amount="1000")).id for _ in range(others + 1)]
    subject = deal_ids[0]
    rng = random.Random(12)
    start = clock.now() - timedelta(minutes=events + 10)
    table = Base.metadata.tables[Activity.__tablename__]
    async with uow_factory() as uow:
        deal = await uow.repo.get(Deal, subject)
        assert deal is not None
        for deal_id in deal_ids:
            rows = rows_for(deal_id, actor.id, events, start, rng)
            for i in range(0, len(rows), 2000):
                await uow.session.execute(insert(table), rows[i : i + 2000])
        for i in range(200):  # a long stage history and many tasks on the subject deal
            uow.repo.add(
                StageHistory(
                    deal_id=subject,
                    pipeline_id=deal.pipeline_id,
                    from_stage_id=deal.stage_id,
                    to_stage_id=deal.stage_id,
                    actor_id=actor.id,
                    at=start + timedelta(minutes=50 * i),
                )
            )
            uow.repo.add(
                Task(
                    kind="follow_up",
                    title=f"task {i}",
                    deal_id=subject,
                    assignee_id=actor.id,
                    status="done" if i % 10 else "open",
                    payload={},
                    created_by_id=actor.id,
                    created_at=start + timedelta(minutes=50 * i + 7),
                )
            )
        await uow.commit()
    async with engine.begin() as conn:
        await conn.exec_driver_sql("ANALYZE")
    return uow_factory, actor, subject, engine


async def subject_once(uow_factory: UnitOfWorkFactory, actor: Actor, deal_id: int) -> float:
    t0 = time.perf_counter()
    async with uow_factory() as uow:
        card = await deals.get_card(uow, actor, deal_id)
    async with uow_factory() as uow:
        page = await timelines.deal_timeline(uow, actor, deal_id)
    elapsed = time.perf_counter() - t0
    assert card.messages > 0 and len(page.items) == timelines.PER_PAGE and page.next
    return elapsed


FLOOR_SQL = (
    "SELECT deals.*, contacts.* FROM deals LEFT JOIN contacts ON contacts.id = deals.contact_id"
    " WHERE deals.id = :d",
    "SELECT * FROM activities WHERE deal_id = :d ORDER BY at DESC, id DESC LIMIT 3",
    "SELECT * FROM activities WHERE deal_id = :d ORDER BY at DESC, id DESC LIMIT 9",
    "SELECT * FROM stage_history WHERE deal_id = :d ORDER BY at DESC, id DESC LIMIT 9",
    "SELECT * FROM tasks WHERE deal_id = :d ORDER BY created_at DESC, id DESC LIMIT 9",
)


async def floor_once(uow_factory: UnitOfWorkFactory, deal_id: int) -> float:
    t0 = time.perf_counter()
    async with uow_factory.read_only() as uow:
        for sql in FLOOR_SQL:
            (await uow.session.execute(text(sql), {"d": deal_id})).all()
    return time.perf_counter() - t0


async def main(events: int, others: int, rounds: int, per_round: int) -> int:
    print(f"building: a deal with {events} events, {others} other deals with as many...")
    uow_factory, actor, deal_id, engine = await build(events, others)
    for _ in range(20):  # warm the caches (actors, pipelines) and SQLite's pages
        await subject_once(uow_factory, actor, deal_id)
        await floor_once(uow_factory, deal_id)
    subj: list[float] = []
    floor: list[float] = []
    ratios: list[float] = []
    for _ in range(rounds):
        f = sum([await floor_once(uow_factory, deal_id) for _ in range(per_round)]) / per_round
        s = (
            sum([await subject_once(uow_factory, actor, deal_id) for _ in range(per_round)])
            / per_round
        )
        floor.append(f * 1000)
        subj.append(s * 1000)
        ratios.append(s / f)
    filtered: list[float] = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        async with uow_factory() as uow:
            await timelines.deal_timeline(uow, actor, deal_id, TimelineFilter.MESSAGES)
        filtered.append((time.perf_counter() - t0) * 1000)
    await engine.dispose()
    med = statistics.median(subj)
    print(
        f"floor    (the same rows, plain SELECTs): {statistics.median(floor):.2f} ms"
        f"  (p10 {quantile(floor, 0.1):.2f}, p90 {quantile(floor, 0.9):.2f})"
    )
    print(
        f"subject  card + history page:            {med:.2f} ms"
        f"  (p10 {quantile(subj, 0.1):.2f}, p90 {quantile(subj, 0.9):.2f})"
    )
    print(
        f"cost ratio subject / floor: {statistics.median(ratios):.2f}"
        f" (spread p10-p90 {quantile(ratios, 0.1):.2f}-{quantile(ratios, 0.9):.2f})"
    )
    print(f"client-messages page alone: {statistics.median(filtered):.2f} ms (median)")
    verdict = "holds" if med <= BUDGET_MS else "DOES NOT HOLD"
    print(f"budget: card + page <= {BUDGET_MS:.0f} ms with {events} events: {verdict}")
    return 0 if med <= BUDGET_MS else 1


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--others", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--per-round", type=int, default=20)
    args = ap.parse_args()
    sys.exit(asyncio.run(main(args.events, args.others, args.rounds, args.per_round)))
