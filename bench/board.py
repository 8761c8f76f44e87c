"""Benchmark: the Mini App's board API on a pipeline with 5,000 open deals, against a floor.

    .venv/bin/python bench/board.py [--deals 5000] [--rounds 15] [--per-round 10]
                                    [--db-url postgresql+asyncpg://...]

Builds (once: kept in bench/out/board-<N>.db) a SQLite file database, migrated, with the
default pipelines and N open deals in Sales spread over its six active stages (and its
conditional-refusal stage), ten managers, a contact per deal. Then serves the real Mini
App (handlers/webapp via bot/webapp.py, aiohttp on 127.0.0.1) and, in the same server, a
floor route, and requests them over HTTP in interleaved rounds (floor, board, floor,
board, ...; a shared, noisy machine slows both alike):

  floor  GET /floor — no login, no services: the same two statements the board runs
         (open deals per stage with their sum; the first 20 cards of every stage with
         the client's name, a LIMIT per stage joined by UNION ALL) as raw SQL on the same
         engine (same SQLite settings: storage/db.py), rows dumped to JSON;
  board  GET /app/api/board as a leader (everyone's deals: the largest board) — initData
         checked, actor from the cache, board service, DTOs, JSON with money and dates
         formatted in the person's language.

"Server time" is the handler's own measure (``Server-Timing: app;dur=``): request parsed
to response built; the client's round trip is printed too. Prints the medians of the
rounds' medians and their p10-p90 spread, and cost / floor. The Must-show figure: board
server time <= 100 ms with 5,000 open deals (printed as PASS/FAIL; exit status 1 on FAIL).
"""

from __future__ import annotations

import argparse
import asyncio
import json
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

from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from sqlalchemy import insert, select, text

from bot.webapp import webapp_state
from handlers.webapp.api import mount
from services.clock import SystemClock
from services.sales.pipeline_config import load_config
from services.sales.pipelines import sync_config
from storage import migrate
from storage.db import create_engine, create_session_factory
from storage.enums import StageKind
from storage.models import Contact, Deal, Employee, Pipeline, Stage
from storage.uow import UnitOfWorkFactory
from tests.tg import BOT_TOKEN, RecordingSession, make_bot, make_settings
from tests.webapp_kit import auth, sign_init_data

OUT = ROOT / "bench" / "out"
DEFAULT_PIPELINES = ROOT / "config" / "pipelines" / "default.toml"
LEADER_TG = 710_000_001
LIMIT_MS = 100.0
PER_COLUMN = 20

FLOOR_TOTALS = text(
    "SELECT stage_id, count(*), coalesce(sum(amount), 0) FROM deals "
    "WHERE pipeline_id = :p AND closed_at IS NULL GROUP BY stage_id"
)


def floor_cards(stage_ids: list[int]) -> Any:
    """The board's cards statement as raw SQL: the first N of each stage, UNION ALL."""
    part = (
        "SELECT * FROM (SELECT d.id, d.stage_id, d.title, coalesce(c.name, co.name) AS client,"
        " d.amount, d.next_contact_at, d.stage_entered_at, d.manager_id, d.version"
        " FROM deals d LEFT JOIN contacts c ON c.id = d.contact_id"
        " LEFT JOIN companies co ON co.id = d.company_id"
        " WHERE d.pipeline_id = :p AND d.closed_at IS NULL AND d.stage_id = {s}"
        " ORDER BY d.stage_entered_at, d.id LIMIT :n) AS s{s}"
    )
    return text(" UNION ALL ".join(part.format(s=s) for s in stage_ids))


async def build(url: str, deals: int) -> None:
    await migrate.upgrade(url)
    engine = create_engine(url)
    factory = UnitOfWorkFactory(create_session_factory(engine), SystemClock())
    try:
        async with factory() as uow:
            await sync_config(uow, load_config(DEFAULT_PIPELINES))
        async with engine.begin() as conn:
            if await conn.scalar(select(Deal.id).limit(1)) is not None:
                return  # built before
            now = datetime.now(UTC)
            await conn.execute(
                insert(Employee),
                [
                    {
                        "telegram_id": LEADER_TG + i,
                        "name": "Leader" if i == 0 else f"Manager {i}",
                        "roles": ["leader"] if i == 0 else ["manager"],
                        "active": True,
                        "created_at": now,
                    }
                    for i in range(11)
                ],
            )
            managers = list(
                await conn.scalars(select(Employee.id).where(Employee.telegram_id > LEADER_TG))
            )
            sales = await conn.scalar(select(Pipeline.id).where(Pipeline.role == "sales"))
            stages = list(
                await conn.scalars(
                    select(Stage.id).where(
                        Stage.pipeline_id == sales,
                        Stage.kind.in_([StageKind.ACTIVE, StageKind.FROZEN]),
                        Stage.archived.is_(False),
                    )
                )
            )
            rng = random.Random(15)
            await conn.execute(
                insert(Contact),
                [{"name": f"Client {i}", "created_at": now} for i in range(deals)],
            )
            contacts = list(await conn.scalars(select(Contact.id).order_by(Contact.id)))
            rows = []
            for i in range(deals):
                entered = now - timedelta(days=rng.randint(0, 60), minutes=rng.randint(0, 1440))
                rows.append(
                    {
                        "title": f"Deal {i}",
                        "contact_id": contacts[i],
                        "pipeline_id": sales,
                        "stage_id": rng.choice(stages),
                        "manager_id": rng.choice(managers),
                        "amount": rng.randint(10, 900) * 100_000,
                        "next_contact_at": now + timedelta(days=rng.randint(1, 30))
                        if rng.random() < 0.5
                        else None,
                        "created_at": entered,
                        "updated_at": entered,
                        "stage_entered_at": entered,
                        "last_activity_at": entered,
                        "search_text": f"deal {i}",
                        "version": 1,
                    }
                )
            for start in range(0, len(rows), 1000):
                await conn.execute(insert(Deal), rows[start : start + 1000])
    finally:
        await engine.dispose()


def spread(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    q = statistics.quantiles(ordered, n=10) if len(ordered) > 1 else ordered * 9
    return statistics.median(ordered), q[0], q[-1]


async def main_async(args: argparse.Namespace) -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    url = args.db_url or f"sqlite+aiosqlite:///{OUT / f'board-{args.deals}.db'}"
    started = time.perf_counter()
    await build(url, args.deals)
    print(f"database: {url.split('@')[-1]} ({time.perf_counter() - started:.1f}s to build/check)")
    engine = create_engine(url)
    factory = UnitOfWorkFactory(create_session_factory(engine), SystemClock())
    bot = make_bot(RecordingSession())
    from aiogram.fsm.storage.memory import MemoryStorage

    app = web.Application()
    settings = make_settings(url, bot_token=BOT_TOKEN)
    mount(app, webapp_state(settings, factory, bot, MemoryStorage()))
    async with engine.connect() as conn:
        sales = await conn.scalar(select(Pipeline.id).where(Pipeline.role == "sales"))
        columns = list(
            await conn.scalars(
                select(Stage.id)
                .where(
                    Stage.pipeline_id == sales,
                    Stage.kind.in_([StageKind.ACTIVE, StageKind.FROZEN]),
                    Stage.archived.is_(False),
                )
                .order_by(Stage.position)
            )
        )
        floor_cards_sql = floor_cards(columns)
        open_deals = await conn.scalar(
            text("SELECT count(*) FROM deals WHERE pipeline_id = :p AND closed_at IS NULL"),
            {"p": sales},
        )

    async def floor(request: web.Request) -> web.Response:
        t0 = time.perf_counter()
        async with engine.connect() as conn:
            totals = (await conn.execute(FLOOR_TOTALS, {"p": sales})).all()
            cards = (await conn.execute(floor_cards_sql, {"p": sales, "n": PER_COLUMN})).all()
        body = json.dumps(
            {"totals": [list(r) for r in totals], "cards": [list(r) for r in cards]},
            default=str,
        )
        took = (time.perf_counter() - t0) * 1000
        return web.Response(
            text=body,
            content_type="application/json",
            headers={"Server-Timing": f"app;dur={took:.1f}"},
        )

    app.router.add_get("/floor", floor)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    server_ms: dict[str, list[float]] = {"floor": [], "board": []}
    trip_ms: dict[str, list[float]] = {"floor": [], "board": []}
    ratios: list[float] = []
    cards = 0
    try:
        async with ClientSession() as client:

            async def hit(name: str) -> tuple[float, float]:
                nonlocal cards
                path = "/floor" if name == "floor" else "/app/api/board"
                login = sign_init_data(LEADER_TG, datetime.now(UTC))
                headers = {} if name == "floor" else auth(login)
                t0 = time.perf_counter()
                async with client.get(base + path, headers=headers) as r:
                    body = await r.json()
                    assert r.status == 200, body
                    timing = r.headers["Server-Timing"]
                trip = (time.perf_counter() - t0) * 1000
                if name == "board":
                    cards = sum(len(c["cards"]) for c in body["columns"])
                    assert sum(c["count"] for c in body["columns"]) == open_deals
                return float(timing.split("dur=")[1]), trip

            for _ in range(args.warmup):
                await hit("floor")
                await hit("board")
            for _ in range(args.rounds):
                medians: dict[str, float] = {}
                for name in ("floor", "board"):
                    runs = [await hit(name) for _ in range(args.per_round)]
                    medians[name] = statistics.median(s for s, _ in runs)
                    server_ms[name].append(medians[name])
                    trip_ms[name].append(statistics.median(t for _, t in runs))
                ratios.append(medians["board"] / medians["floor"])
    finally:
        await server.close()
        await bot.session.close()
        await engine.dispose()

    print(
        f"{open_deals} open deals in Sales, a leader's board: {cards} cards shown "
        f"({PER_COLUMN} per column), {args.rounds} rounds x {args.per_round} requests"
    )
    print(f"{'':8} {'server ms (median, p10-p90)':>32} {'round trip ms':>16}")
    for name in ("floor", "board"):
        m, lo, hi = spread(server_ms[name])
        trip = statistics.median(trip_ms[name])
        print(f"{name:8} {m:>14.1f}  ({lo:.1f}-{hi:.1f}){'':6} {trip:>10.1f}")
    m, lo, hi = spread(ratios)
    print(f"cost ratio board / floor: {m:.2f} (p10-p90 {lo:.2f}-{hi:.2f})")
    board_ms = statistics.median(server_ms["board"])
    verdict = "PASS" if board_ms <= LIMIT_MS else "FAIL"
    print(f"board server time {board_ms:.1f} ms <= {LIMIT_MS:.0f} ms: {verdict}")
    return 0 if verdict == "PASS" else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deals", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--per-round", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--db-url", default=None, help="default: a SQLite file in bench/out/")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
