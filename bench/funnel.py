"""Funnel benchmark on SQLite: reports against the floor of one indexed COUNT.

    python bench/funnel.py [--sizes 10000,100000,1000000] [--repeat 9] [--rebuild] [--plans]

For each size it builds ``bench/out/funnel-<size>.db`` once (migrate, sync
config/pipelines/default.toml, ``services.demo`` with a fixed seed and "now"; a later run
reuses the file), then measures in a fresh subprocess, so that peak RSS is per size:

* floor     — ``SELECT count(*) FROM stage_history WHERE pipeline_id = <sales> AND at in
              <period>`` (covering index ix_stage_history_pipeline_at): the cheapest
              query that touches the period's history rows at all;
* snapshot  — ``analytics.snapshot`` (active deals per stage, amounts, forecast, stuck);
* period    — ``analytics.period_funnel`` (the cohort funnel with medians);
* losses, managers — the other two reports, for information;
* charts    — rendering the funnel, loss-reason and ranking PNGs.

The period is last quarter (Europe/Moscow) as of the demo's "now": a quarter of the year
the demo covers. Every query runs --repeat times, interleaved with the floor, through
the application's own engine set-up (storage.db) and services; the table shows medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import event, func, select

from services.clock import FakeClock
from services.permissions import Actor

# Only what a bot process answering /funnel imports: the measuring subprocess's RSS is the
# figure reported. (Building imports the demo generator, Alembic and the config loader.)
from services.reports import analytics, charts
from services.reports.analytics import Period, ReportFilter
from storage.db import create_engine, create_session_factory
from storage.enums import Role
from storage.models import StageHistory
from storage.uow import UnitOfWork, UnitOfWorkFactory

OUT = ROOT / "bench" / "out"
NOW = datetime(2026, 1, 12, 9, 0, tzinfo=UTC)
SEED = 1
FILTERS = ReportFilter(period=Period.LAST_QUARTER, tz="Europe/Moscow")
LEADER = Actor(id=0, telegram_id=0, name="bench", roles=frozenset({Role.LEADER}))
TIMED = ("floor", "snapshot", "period", "losses", "managers")


def url_of(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


# --- building -----------------------------------------------------------------------------


async def build(size: int, path: Path) -> dict[str, Any]:
    from services import demo
    from services.sales.pipeline_config import load_config
    from services.sales.pipelines import sync_config
    from storage import migrate

    for stale in path.parent.glob(path.name + "*"):
        stale.unlink()
    started = time.monotonic()
    await migrate.upgrade(url_of(path))
    engine = create_engine(url_of(path))
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
    finally:
        await engine.dispose()
    await asyncio.to_thread(checkpoint, path)
    info = {
        "size": size,
        "seed": SEED,
        "now": NOW.isoformat(),
        "history_rows": report.history_rows,
        "leads": report.leads,
        "build_s": round(time.monotonic() - started, 1),
        "db_mb": round(await asyncio.to_thread(lambda: path.stat().st_size) / 2**20),
    }
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


async def measure(path: Path, repeat: int, plans: bool) -> dict[str, Any]:
    engine = create_engine(url_of(path))
    factory = UnitOfWorkFactory(create_session_factory(engine), FakeClock(NOW))
    span = analytics.resolve_period(FILTERS, NOW)
    results: dict[str, Any] = {}
    async with factory() as uow:
        sales = await uow.repo.pipelines.by_role("sales")
    assert sales is not None
    count = (
        select(func.count())
        .select_from(StageHistory)
        .where(
            StageHistory.pipeline_id == sales.id,
            StageHistory.at >= span.start,
            StageHistory.at < span.end,
        )
    )

    async def floor(uow: UnitOfWork) -> int:
        return int(await uow.session.scalar(count) or 0)

    calls: dict[str, Callable[[UnitOfWork], Awaitable[Any]]] = {
        "floor": floor,
        "snapshot": lambda uow: analytics.snapshot(uow, LEADER, FILTERS),
        "period": lambda uow: analytics.period_funnel(uow, LEADER, FILTERS),
        "losses": lambda uow: analytics.loss_reasons(uow, LEADER, FILTERS),
        "managers": lambda uow: analytics.managers(uow, LEADER, FILTERS),
    }
    times: dict[str, list[float]] = {name: [] for name in calls}
    try:
        async with factory() as uow:
            for name, call in calls.items():  # warm up: pages into the OS cache
                results[name] = await call(uow)
            for _ in range(repeat):
                for name, call in calls.items():
                    started = time.perf_counter()
                    await call(uow)
                    times[name].append(time.perf_counter() - started)
            results["cohort_deals"] = results["period"].cohort
        if plans:
            results["plans"] = await explain(engine, factory, floor)
    finally:
        await engine.dispose()
    renders = {
        "funnel": lambda: charts.funnel_chart(results["period"]),
        "losses": lambda: charts.loss_reasons_chart(results["losses"]),
        "managers": lambda: charts.managers_chart(results["managers"]),
    }
    chart_times = {}
    for name, render in renders.items():
        render()  # first render loads fonts
        started = time.perf_counter()
        OUT.joinpath(f"{path.stem}-{name}.png").write_bytes(render())
        chart_times[name] = time.perf_counter() - started
    return {
        "floor_rows": results["floor"],
        "cohort_deals": results["cohort_deals"],
        "median_ms": {k: statistics.median(v) * 1000 for k, v in times.items()},
        "min_ms": {k: min(v) * 1000 for k, v in times.items()},
        "chart_ms": {k: v * 1000 for k, v in chart_times.items()},
        "peak_rss_mb": peak_rss_mb(),
        "plans": results.get("plans"),
    }


def peak_rss_mb() -> float:
    """This process's peak resident set. Linux's VmHWM belongs to the process image, while
    getrusage's ru_maxrss also counts the parent's size at fork (it survives the exec)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def explain(engine: Any, factory: UnitOfWorkFactory, floor: Any) -> dict[str, list[str]]:
    """SQLite's plans for the floor and every query the period funnel runs."""
    captured: list[tuple[str, Any]] = []

    def grab(conn: Any, cursor: Any, statement: str, params: Any, *args: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            captured.append((statement, params))

    event.listen(engine.sync_engine, "before_cursor_execute", grab)
    try:
        async with factory() as uow:
            await floor(uow)
            await analytics.period_funnel(uow, LEADER, FILTERS)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", grab)
    plans = {}
    async with engine.connect() as conn:
        for i, (statement, params) in enumerate(captured):
            name = f"{'floor' if i == 0 else 'period'} {i}: {' '.join(statement.split())[:60]}"
            rows = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params)
            plans[name] = [row[3] for row in rows if "SEARCH" in row[3] or "SCAN" in row[3]]
    return plans


# --- the table ----------------------------------------------------------------------------


def table(rows: list[tuple[dict[str, Any], dict[str, Any]]]) -> str:
    head = (
        f"{'deals':>9} {'history':>10} {'cohort':>8} {'floor rows':>10} | "
        f"{'floor ms':>8} {'snapshot ms':>14} {'period ms':>14} "
        f"{'losses ms':>9} {'managers ms':>11} | {'charts ms':>9} {'peak RSS MB':>11}"
    )
    lines = [head, "-" * len(head)]
    for info, m in rows:
        ms = m["median_ms"]
        floor = ms["floor"]
        lines.append(
            f"{info['size']:>9,} {info['history_rows']:>10,} {m['cohort_deals']:>8,} "
            f"{m['floor_rows']:>10,} | {floor:>8.1f} "
            f"{ms['snapshot']:>7.1f} ({ms['snapshot'] / floor:3.1f}x) "
            f"{ms['period']:>7.1f} ({ms['period'] / floor:3.1f}x) "
            f"{ms['losses']:>9.1f} {ms['managers']:>11.1f} | "
            f"{sum(m['chart_ms'].values()):>9.0f} {m['peak_rss_mb']:>11.0f}"
        )
    if len(rows) > 1:
        (small, a), (large, b) = rows[0], rows[-1]
        growth = large["size"] / small["size"]
        parts = [
            f"{name} x{b['median_ms'][name] / a['median_ms'][name]:.0f}"
            for name in ("floor", "snapshot", "period")
        ]
        lines.append(
            f"growth {small['size']:,} -> {large['size']:,} deals (x{growth:.0f}): "
            + ", ".join(parts)
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--rebuild", action="store_true", help="build the databases again")
    parser.add_argument("--plans", action="store_true", help="print SQLite's query plans")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:  # the subprocess
        print(json.dumps(asyncio.run(measure(args.measure, args.repeat, args.plans))))
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        path = OUT / f"funnel-{size}.db"
        info = None if args.rebuild else built(size, path)
        if info is None:
            print(f"building {size:,} deals into {path.relative_to(ROOT)} ...", flush=True)
            info = asyncio.run(build(size, path))
            print(f"  built in {info['build_s']:.0f} s, {info['db_mb']} MB", flush=True)
        command = [sys.executable, __file__, "--measure", str(path), "--repeat", str(args.repeat)]
        if args.plans:
            command.append("--plans")
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        measured = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append((info, measured))
        print(f"measured {size:,}: {json.dumps(measured['median_ms'])}", flush=True)
        if args.plans:
            for name, plan in measured["plans"].items():
                print(f"  {name}\n      {' / '.join(plan)}")
    print()
    print(table(rows))
    print("(medians of", args.repeat, "interleaved runs; x = times the floor)")
    for info, _ in rows:
        print(f"build {info['size']:,}: {info['build_s']:.0f} s, {info['db_mb']} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
