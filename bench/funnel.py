"""Every /funnel screen against a floor of indexed COUNTs of exactly the rows it reads;
the bot's memory serving /funnel against a bare aiogram bot; the demo build.

    python bench/funnel.py [--sizes 10000,100000,1000000] [--repeat 9] [--rebuild]
                           [--pg 10000,100000] [--rss 1000000] [--plans]

SQLite: for each size it builds ``bench/out/funnel-<size>.db`` once (migrate, sync
config/pipelines/default.toml, ``bot.demo`` with a fixed seed and "now"; a later run
reuses the file: build time and size are those of the first build, kept next to it) and
measures in a fresh subprocess. ``--pg``: the same on the throwaway PostgreSQL server of
tests/pg.py (started and removed by the bench; built each run).

Screens (what /funnel runs per tap: ``services.reports.screens.report_screen`` with the
comparison to the previous period on): snapshot, period, losses, managers (the ranking),
velocity (Speed), plan (this month's plans, done, forecast and pace: the month of the
demo's "now"; a database built before plans existed gets the demo's plans and typed
expected-close dates once, bot/demo.py ``plans_and_closes``). Each screen's floor is one
indexed ``COUNT(*)`` per index range the screen reads — the same tables, the same WHERE,
the previous period's ranges too — in the same unit of work. Floor and subject interleave
(A, B, A, B ...); the table shows medians, the p10-p90 spread and the ratio screen / floor.

RSS (``--rss SIZE``): ``voronka run`` (the real console script, this checkout first on
PYTHONPATH) against a fake Bot API (an aiohttp server here) on that size's database, fed
/funnel and a tap on each report; its VmHWM after the last answer, against a bare aiogram
polling bot (one handler answering text) fed the same updates through the same fake API.
Both run with libfaketime (Debian package faketime) at the demo's "now" when it is installed, so
that the bot's periods hold demo deals and its start-up jobs see the demo's day.

The period is last quarter (Europe/Moscow) as of the demo's "now".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import Select, func, select

from services.clock import FakeClock
from services.permissions import Actor
from services.reports import analytics, screens
from services.reports.analytics import Period, ReportFilter
from services.reports.screens import ReportKind
from services.sales import plans
from services.team import norms
from storage.db import create_engine, create_session_factory
from storage.enums import Role, StageKind
from storage.models import Deal, Lead, Task
from storage.models.analytics import (
    OUTCOME_FROZEN,
    OUTCOME_LOST,
    OUTCOME_OPEN,
    OUTCOME_WON,
    OUTCOMES,
    VISIT_BUCKET_LIMIT,
    FunnelFact,
    StageVisit,
    StageVisitDay,
)
from storage.repositories.analytics import happened_ranges
from storage.repositories.plans import forecast_ranges, won_ranges
from storage.repositories.tasks import OPEN_TASK_STATES
from storage.uow import UnitOfWork, UnitOfWorkFactory

OUT = ROOT / "bench" / "out"
NOW = datetime(2026, 1, 12, 9, 0, tzinfo=UTC)
SEED = 1
FILTERS = ReportFilter(period=Period.LAST_QUARTER, tz="Europe/Moscow", compare=True)
LEADER = Actor(id=0, telegram_id=0, name="bench", roles=frozenset({Role.LEADER}))
SCREENS = (
    ReportKind.SNAPSHOT,
    ReportKind.PERIOD,
    ReportKind.LOSSES,
    ReportKind.MANAGERS,
    ReportKind.VELOCITY,
    ReportKind.PLAN,
)
DAY = 86400
BUCKETS = list(range(VISIT_BUCKET_LIMIT))  # as the screens read them: a range per bucket


def url_of(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


# --- building -----------------------------------------------------------------------------


async def build(size: int, path: Path, url: str | None = None) -> dict[str, Any]:
    """Build the demo database (SQLite at ``path``, or PostgreSQL at ``url``)."""
    from bot import demo
    from services.sales.pipeline_config import load_config
    from services.sales.pipelines import sync_config
    from storage import migrate

    if url is None:
        for stale in path.parent.glob(path.name + "*"):
            stale.unlink()
    url = url or url_of(path)
    started = time.monotonic()
    await migrate.upgrade(url)
    engine = create_engine(url)
    try:
        async with UnitOfWork(create_session_factory(engine)) as uow:
            await sync_config(uow, load_config(demo.DEFAULT_PIPELINES_FILE))
        last = [time.monotonic()]

        def progress(done: int, total: int) -> None:
            if time.monotonic() - last[0] > 15 or done == total:
                last[0] = time.monotonic()
                elapsed = last[0] - started
                print(f"  {done:>9,} / {total:,} deals, {elapsed:5.0f} s", flush=True)

        report = await demo.generate(engine, size, seed=SEED, now=NOW, progress=progress)
        if url.startswith("postgresql"):
            async with engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.exec_driver_sql("VACUUM ANALYZE")
                size_bytes = await conn.scalar(
                    select(func.pg_database_size(func.current_database()))
                )
    finally:
        await engine.dispose()
    if url.startswith("sqlite"):
        await asyncio.to_thread(checkpoint, path)
        size_bytes = await asyncio.to_thread(lambda: path.stat().st_size)
    info = {
        "size": size,
        "seed": SEED,
        "now": NOW.isoformat(),
        "history_rows": report.history_rows,
        "leads": report.leads,
        "build_s": round(time.monotonic() - started, 1),
        "db_mb": round(int(size_bytes) / 2**20),
    }
    if url.startswith("sqlite"):
        await asyncio.to_thread(marker(path).write_text, json.dumps(info))
    return info


def checkpoint(path: Path) -> None:
    """Fold the write-ahead log into the database file, as a long-running bot would have."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def marker(path: Path) -> Path:
    return path.with_suffix(".json")


def built(size: int, path: Path) -> dict[str, Any] | None:
    try:
        info: dict[str, Any] = json.loads(marker(path).read_text())
    except (OSError, ValueError):
        return None
    ok = path.exists() and info.get("size") == size and info.get("now") == NOW.isoformat()
    return info if ok else None


# --- measuring (in a subprocess per size) -------------------------------------------------


def _count(*where: Any) -> Select[tuple[int]]:
    return select(func.count()).select_from(FunnelFact).where(*where)


async def floors(uow: UnitOfWork) -> dict[ReportKind, list[Select[Any]]]:
    """Per screen: one COUNT(*) per index range it reads (its own WHERE, both periods).

    Left out, on every screen: the per-process cached configuration and staff lookups (a
    few rows), and the sorted slice of the one duration bucket that holds each median or
    75th percentile (a few hundred rows at 1M): the floor is, if anything, low."""
    f, v, d = FunnelFact, StageVisit, StageVisitDay
    pmap = await analytics.pipeline_map(uow, FILTERS)
    sales = pmap.rules.pipeline.id
    flow_ids = list(pmap.rank)  # flow stages, archived ones too
    active = [s.id for s in pmap.flow if s.kind == StageKind.ACTIVE]
    leads = await uow.repo.pipelines.by_role("leads")
    assert leads is not None
    staff = sorted(e.id for e in await uow.repo.employees.all())
    span = analytics.resolve_period(FILTERS, NOW)
    spans = [span, analytics.previous_range(span, NOW, FILTERS.tz)]
    periods = [analytics.epoch(s) for s in spans]

    def cohort(since: int, until: int) -> Any:
        return (f.entered_ts >= since, f.entered_ts < until)

    def stays(since: int, until: int) -> list[Select[Any]]:
        first, end = -(-since // DAY), until // DAY
        queries: list[Select[Any]] = [
            select(func.count())
            .select_from(d)
            .where(
                d.pipeline_id == sales,
                d.stage_id.in_(active),
                d.bucket.in_(BUCKETS),
                d.day >= first,
                d.day < end,
            )
        ]
        for low, high in ((since, first * DAY), (end * DAY, until)):
            if low < high:
                queries.append(
                    select(func.count())
                    .select_from(v)
                    .where(
                        v.pipeline_id == sales,
                        v.stage_id.in_(active),
                        v.bucket.in_(BUCKETS),
                        v.cohort_ts >= low,
                        v.cohort_ts < high,
                    )
                )
        return queries

    def happened(since: int, until: int, outcomes: tuple[str, ...]) -> list[Select[Any]]:
        return [
            _count(*where)
            for where in happened_ranges(sales, outcomes, flow_ids, since, until, None)
        ]

    def cells(pipeline: int, ids: list[int], since: int, until: int) -> Select[Any]:
        return _count(
            f.pipeline_id == pipeline,
            f.reached_stage_id.in_(ids),
            f.outcome.in_(OUTCOMES),
            f.flow_stage_id.in_(ids),
            *cohort(since, until),
        )

    result: dict[ReportKind, list[Select[Any]]] = {
        ReportKind.SNAPSHOT: [
            _count(f.pipeline_id == sales, f.outcome.in_((OUTCOME_OPEN, OUTCOME_FROZEN)))
        ],
        ReportKind.PERIOD: [],
        ReportKind.LOSSES: [],
        ReportKind.MANAGERS: [
            select(func.count())
            .select_from(Task)
            .where(
                Task.assignee_id.is_not(None),
                Task.status.in_(OPEN_TASK_STATES),
                Task.due_at < NOW,
            ),
            # First response (issue 26): the leads that came to a manager in the period,
            # and those among them without a stored time (still waiting).
            *(
                select(func.count()).select_from(Lead).where(*where)
                for where in (
                    (Lead.created_at >= span.start, Lead.created_at < min(span.end, NOW)),
                    (
                        Lead.created_at >= span.start,
                        Lead.created_at < min(span.end, NOW),
                        Lead.response_s.is_(None),
                    ),
                )
            ),
        ],
        ReportKind.VELOCITY: [],
        ReportKind.PLAN: plan_floor(sales, pmap, staff),
    }
    for since, until in periods:
        result[ReportKind.PERIOD] += [
            cells(sales, flow_ids, since, until),
            *stays(since, until),
            *happened(since, until, (OUTCOME_WON, OUTCOME_LOST, OUTCOME_FROZEN)),
        ]
        result[ReportKind.LOSSES] += happened(since, until, (OUTCOME_LOST, OUTCOME_FROZEN))
        for pipeline in (sales, leads.id):  # the deals, then the leads, manager by manager
            result[ReportKind.MANAGERS] += [
                _count(
                    f.pipeline_id == pipeline,
                    who,
                    f.outcome.in_(OUTCOMES),
                    *cohort(since, until),
                )
                for who in (f.manager_id.in_(staff), f.manager_id.is_(None))
            ]
        result[ReportKind.VELOCITY] += [
            *stays(since, until),
            _count(f.pipeline_id == sales, f.outcome == OUTCOME_WON, *cohort(since, until)),
        ]
    return result


def plan_floor(sales: int, pmap: Any, staff: list[int]) -> list[Select[Any]]:
    """The Plan screen's rows: the deals won this month (a range per manager of
    ix_funnel_facts_won_by) and the open deals expected to close by the month's end (a
    range per stage, typed or by the stage's rule, staff or nobody)."""
    month = plans.month_of(NOW, FILTERS.tz)
    since, until = plans.month_bounds(month, FILTERS.tz)
    won = won_ranges(sales, staff, int(since.timestamp()), int(until.timestamp()), None)
    active = [(s.id, plans.close_days_of(s)) for s in pmap.stages if s.kind == StageKind.ACTIVE]
    return [_count(*where) for where in won] + [
        select(func.count()).select_from(Deal).where(*where)
        for _, where in forecast_ranges(sales, active, until, staff, None)
    ]


async def backfill(engine: Any) -> None:
    """What the bot's scheduler does after migration 0024: store the first-response time
    of every lead touched before it (a database built by an earlier checkout)."""
    factory = UnitOfWorkFactory(create_session_factory(engine), FakeClock(NOW))
    while True:
        async with factory() as uow:
            if not await norms.backfill_response(uow, batch=20_000):
                return


async def measure(url: str, repeat: int) -> dict[str, Any]:
    from bot import demo
    from storage import migrate

    await migrate.upgrade(url)  # a database built by an earlier checkout gains new indexes
    engine = create_engine(url)
    await demo.plans_and_closes(engine, NOW)  # ... and the plans of its month (once)
    await backfill(engine)  # ... and its leads' stored first-response times (once)
    factory = UnitOfWorkFactory(create_session_factory(engine), FakeClock(NOW))
    times: dict[str, list[float]] = {}
    rows: dict[str, int] = {}
    try:
        async with factory() as uow:
            counts = await floors(uow)

            async def floor(kind: ReportKind) -> int:
                return sum([int(await uow.session.scalar(q) or 0) for q in counts[kind]])

            async def screen(kind: ReportKind) -> Any:
                return await screens.report_screen(uow, LEADER, kind, FILTERS)

            for kind in SCREENS:  # warm up: pages into the OS cache, caches filled
                rows[kind.value] = await floor(kind)
                await screen(kind)
            for _ in range(repeat):
                for kind in SCREENS:
                    for name, call in ((f"{kind.value} floor", floor), (kind.value, screen)):
                        started = time.perf_counter()
                        await call(kind)
                        times.setdefault(name, []).append(time.perf_counter() - started)
            period = await screen(ReportKind.PERIOD)
    finally:
        await engine.dispose()
    return {
        "rows": rows,
        "cohort": period.report.cohort,
        "ms": {k: sorted(x * 1000 for x in v) for k, v in times.items()},
    }


def spread(values: list[float]) -> tuple[float, float, float]:
    """Median, 10th and 90th percentile."""
    if len(values) == 1:
        return values[0], values[0], values[0]
    deciles = statistics.quantiles(values, n=10, method="inclusive")
    return statistics.median(values), deciles[0], deciles[-1]


def table(label: str, info: dict[str, Any], m: dict[str, Any]) -> list[str]:
    lines = [
        f"{label}: {info['size']:,} deals, {info['history_rows']:,} history rows, "
        f"period cohort {m['cohort']:,}; build {info['build_s']:.0f} s, {info['db_mb']} MB",
        f"  {'screen':<9} {'floor rows':>10} {'floor ms (p10-p90)':>22} "
        f"{'screen ms (p10-p90)':>24} {'ratio':>6}",
    ]
    worst = 0.0
    for kind in SCREENS:
        fm, f10, f90 = spread(m["ms"][f"{kind.value} floor"])
        sm, s10, s90 = spread(m["ms"][kind.value])
        ratio = sm / fm if fm else float("inf")
        worst = max(worst, ratio)
        lines.append(
            f"  {kind.value:<9} {m['rows'][kind.value]:>10,} "
            f"{fm:>8.1f} ({f10:6.1f}-{f90:6.1f}) {sm:>9.1f} ({s10:6.1f}-{s90:6.1f}) {ratio:>5.1f}x"
        )
    lines.append(f"  worst ratio {worst:.1f}x (goal <= 2x)")
    return lines


def run_measure(url: str, repeat: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--measure", url, "--repeat", str(repeat)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    measured: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return measured


# --- PostgreSQL ---------------------------------------------------------------------------


def pg_runs(sizes: list[int], repeat: int) -> list[str]:
    from tests.pg import PgServer

    server = PgServer.start()
    lines: list[str] = []
    try:
        for size in sizes:
            name = f"bench_funnel_{size}"
            asyncio.run(_create_db(server, name))
            print(f"building {size:,} deals on PostgreSQL ...", flush=True)
            info = asyncio.run(build(size, OUT / "unused", server.url(name)))
            print(f"  built in {info['build_s']:.0f} s, {info['db_mb']} MB", flush=True)
            measured = run_measure(server.url(name), repeat)
            lines += table(f"PostgreSQL {server.version}", info, measured)
            print("\n".join(lines[-(len(SCREENS) + 3) :]), flush=True)
    finally:
        server.stop()
    return lines


async def _create_db(server: Any, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(server.dsn())
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


# --- RSS: the real bot against a fake Bot API ---------------------------------------------

BARE_BOT = """
import asyncio, os, sys
from aiogram import Bot, Dispatcher, F
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.filters import Command

dp = Dispatcher()

@dp.message(Command("funnel"))
async def funnel(message):
    await message.answer("funnel")

@dp.callback_query()
async def tap(query):
    await query.answer()
    await query.message.edit_text("report " + (query.data or ""))

session = AiohttpSession(api=TelegramAPIServer.from_base(os.environ["TELEGRAM_API_URL"]))
asyncio.run(dp.start_polling(Bot(os.environ["BOT_TOKEN"], session=session)))
"""


class FakeBotApi:
    """Just enough of the Bot API for long polling: updates go out through getUpdates,
    everything the bot sends is recorded and answered with a plausible result."""

    def __init__(self) -> None:
        self.updates: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sent: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self.next_id = 1
        self.message_id = 100

    async def handle(self, request: Any) -> Any:
        from aiohttp import web

        method = request.match_info["method"].lower()
        data: dict[str, Any] = {}
        if request.can_read_body:
            if request.content_type == "application/json":
                data = await request.json()
            else:
                form = await request.post()
                data = {k: v for k, v in form.items() if isinstance(v, str)}
        if method == "getupdates":
            timeout = float(data.get("timeout") or 0)
            try:
                update = await asyncio.wait_for(self.updates.get(), timeout=max(timeout, 0.1))
                return web.json_response({"ok": True, "result": [update]})
            except TimeoutError:
                return web.json_response({"ok": True, "result": []})
        result: Any = True
        if method == "getme":
            result = {"id": 1, "is_bot": True, "first_name": "Bench", "username": "bench_bot"}
        elif method.startswith(("send", "edit")):
            self.message_id += 1
            result = {
                "message_id": self.message_id,
                "date": int(time.time()),
                "chat": {"id": int(data.get("chat_id") or 1), "type": "private"},
                "text": str(data.get("text") or ""),
            }
        await self.sent.put((method, data))
        return web.json_response({"ok": True, "result": result})

    def push(self, update: dict[str, Any]) -> None:
        update["update_id"] = self.next_id
        self.next_id += 1
        self.updates.put_nowait(update)


def _message_update(user_id: int, text: str) -> dict[str, Any]:
    user = {"id": user_id, "is_bot": False, "first_name": "Bench"}
    return {
        "message": {
            "message_id": 1,
            "date": int(time.time()),
            "chat": {"id": user_id, "type": "private"},
            "from": user,
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(text)}],
        }
    }


def _callback_update(user_id: int, data: str, message_id: int) -> dict[str, Any]:
    user = {"id": user_id, "is_bot": False, "first_name": "Bench"}
    return {
        "callback_query": {
            "id": str(time.monotonic_ns()),
            "from": user,
            "chat_instance": "bench",
            "data": data,
            "message": {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": {"id": user_id, "type": "private"},
                "from": {"id": 1, "is_bot": True, "first_name": "Bench"},
                "text": "report",
            },
        }
    }


def vm(pid: int, field: str) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise LookupError(field)


async def serve_funnel(command: list[str], env: dict[str, str], wait: float) -> dict[str, Any]:
    """Start `command` against a fake Bot API, send /funnel and tap every report; the
    process's peak and current RSS after the last answer."""
    from aiohttp import web

    from handlers.ui.callbacks import FunnelCb, FunnelReport

    api = FakeBotApi()
    app = web.Application()
    app.router.add_route("*", "/bot{token}/{method}", api.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    env = {**env, "TELEGRAM_API_URL": f"http://127.0.0.1:{port}", "BOT_TOKEN": "1:bench"}
    log = (OUT / "rss" / "process.log").open("ab")  # a pipe nobody reads would fill up
    proc = await asyncio.create_subprocess_exec(*command, env=env, stdout=log, stderr=log)
    user = int(env.get("BENCH_USER", "42"))
    started = time.monotonic()

    async def answer(kind: str) -> dict[str, Any]:
        """The next `kind` request to our user (reminders to demo staff go out meanwhile)."""
        while True:
            method, data = await asyncio.wait_for(api.sent.get(), wait)
            if method == kind and str(data.get("chat_id")) == str(user):
                return data

    try:
        api.push(_message_update(user, "/funnel"))
        await answer("sendmessage")  # the table under the chart
        for report in (
            FunnelReport.PERIOD,
            FunnelReport.LOSSES,
            FunnelReport.MANAGERS,
            FunnelReport.VELOCITY,
            FunnelReport.PLAN,
            FunnelReport.SNAPSHOT,
        ):
            api.push(_callback_update(user, FunnelCb(report=report).pack(), 101))
            await answer("editmessagetext")
        served = time.monotonic() - started
        return {"peak_mb": vm(proc.pid, "VmHWM"), "rss_mb": vm(proc.pid, "VmRSS"), "s": served}
    finally:
        proc.terminate()
        await proc.wait()
        log.close()
        await runner.cleanup()


FAKETIME_LIB = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


def voronka_command() -> list[str]:
    """The console script users run (with this checkout first on PYTHONPATH)."""
    script = Path(sys.executable).parent / "voronka"
    return [str(script)] if script.exists() else [sys.executable, "-m", "bot"]


def rss_run(path: Path) -> list[str]:
    import os

    work = OUT / "rss"
    work.mkdir(exist_ok=True)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS"))},
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": url_of(path),
        "ADMIN_IDS": "42",
        "LOG_LEVEL": "WARNING",
        "TIMEZONE": "Europe/Moscow",
    }
    bare = work / "bare_bot.py"
    bare.write_text(BARE_BOT)
    # The demo's "now" for both processes, so that /funnel's periods hold demo deals
    # (libfaketime preloaded into the process itself: its RSS is the one measured).
    if FAKETIME_LIB.exists():
        env |= {"LD_PRELOAD": str(FAKETIME_LIB), "FAKETIME": NOW.strftime("@%Y-%m-%d %H:%M:%S")}
    results = {}
    for name, command in (
        ("bare aiogram bot", [sys.executable, str(bare)]),
        ("voronka run", [*voronka_command(), "run"]),
    ):
        results[name] = asyncio.run(serve_funnel(command, env, wait=600))
    bot, bare_bot = results["voronka run"], results["bare aiogram bot"]
    return [
        f"RSS serving /funnel (database {path.name}): voronka run peak {bot['peak_mb']:.0f} MB "
        f"(now {bot['rss_mb']:.0f}), bare aiogram polling bot peak {bare_bot['peak_mb']:.0f} MB "
        f"(now {bare_bot['rss_mb']:.0f}): {bot['peak_mb'] / bare_bot['peak_mb']:.2f}x "
        f"(goal <= 1.25x); /funnel and 6 taps answered in {bot['s']:.1f} s",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--rebuild", action="store_true", help="build the databases again")
    parser.add_argument("--pg", default="", help="sizes to run on PostgreSQL too")
    parser.add_argument("--rss", type=int, default=0, help="size whose database the bot serves")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:  # the subprocess
        print(json.dumps(asyncio.run(measure(args.measure, args.repeat))))
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    for size in (int(s) for s in args.sizes.split(",") if s):
        path = OUT / f"funnel-{size}.db"
        info = None if args.rebuild else built(size, path)
        if info is None:
            print(f"building {size:,} deals into {path.relative_to(ROOT)} ...", flush=True)
            info = asyncio.run(build(size, path))
            print(f"  built in {info['build_s']:.0f} s, {info['db_mb']} MB", flush=True)
        measured = run_measure(url_of(path), args.repeat)
        lines += table("SQLite", info, measured)
        print("\n".join(lines[-(len(SCREENS) + 3) :]), flush=True)
    if args.pg:
        lines += pg_runs([int(s) for s in args.pg.split(",")], args.repeat)
    if args.rss:
        lines += rss_run(OUT / f"funnel-{args.rss}.db")
    print()
    print("\n".join(lines))
    print(f"(medians and p10-p90 of {args.repeat} interleaved runs; ratio = screen / floor)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
