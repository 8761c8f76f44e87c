"""Spreadsheet import at 50,000 rows: upload (parse), dry run and import, on a SQLite file.

    .venv/bin/python bench/import_50k.py [--rows 50000] [--broken 0.01] [--keep DIR] [--pg URL]

Generates a 50,000-row XLSX and the same rows as a CSV (';', UTF-8 with BOM, as Excel
writes it), then for each file, on a fresh migrated database with the default pipelines:
upload → dry run → import through services.imports (no Telegram), and prints the times
and rows per second. The import's progress callback is counted, not slept on. Then it
checks what landed: the leads, their history rows and the funnel facts the analytics
triggers keep. With --pg, the same runs also go to a fresh database on that server.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import openpyxl
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from services.clock import FakeClock
from services.intake import imports
from services.permissions import Actor
from services.sales.pipeline_config import load_config
from services.sales.pipelines import sync_config
from storage import migrate
from storage.db import create_engine, create_session_factory
from storage.models import Employee, Lead, StageHistory
from storage.models.analytics import FunnelFact
from storage.uow import UnitOfWorkFactory

HEADERS = ["ФИО", "Телефон", "E-mail", "Компания", "Источник", "Сумма", "Комментарий"]
FIRST = ["Иван", "Пётр", "Анна", "Мария", "Олег", "Елена", "Сергей", "Ольга", "Dmitry", "Kate"]
LAST = ["Иванов", "Петрова", "Смирнов", "Кузнецова", "Попов", "Соколова", "Lee", "Brown"]
SOURCES = ["Сайт", "Авито", "Звонок", "Рекомендация", "Выставка", ""]


def make_rows(n: int, broken: float = 0.0, seed: int = 6) -> list[list[Any]]:
    """`n` clients with unique phones; a `broken` share of the rows gets a bad phone and
    as many again repeat an earlier row's phone (reported as duplicates)."""
    rnd = random.Random(seed)
    rows: list[list[Any]] = []
    for i in range(n):
        if rows and rnd.random() < broken:
            rows.append(["Повтор", rows[rnd.randrange(len(rows))][1], "", "", "", "", ""])
            continue
        if rnd.random() < broken:
            rows.append([f"{rnd.choice(FIRST)}", "12-34", "", "", "", "", ""])
            continue
        company = f"ООО «Окна {i % 700}»" if rnd.random() < 0.3 else ""
        rows.append(
            [
                f"{rnd.choice(FIRST)} {rnd.choice(LAST)}",
                f"+7 9{16 + i // 10_000_000 % 10}{i % 10_000_000:07d}",
                f"client{i}@example.com" if rnd.random() < 0.7 else "",
                company,
                rnd.choice(SOURCES),
                rnd.randrange(20_000, 900_000),
                "Окна в квартиру, 3 шт." if rnd.random() < 0.5 else "",
            ]
        )
    return rows


def write_xlsx(path: Path, rows: list[list[Any]]) -> None:
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Клиенты")
    sheet.append(HEADERS)
    for row in rows:
        sheet.append(row)
    book.save(path)


def write_csv(path: Path, rows: list[list[Any]]) -> None:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(HEADERS)
    writer.writerows(rows)
    path.write_bytes(out.getvalue().encode("utf-8-sig"))


async def fresh_database(url: str) -> tuple[AsyncEngine, UnitOfWorkFactory]:
    await migrate.upgrade(url)
    engine = create_engine(url)
    factory = UnitOfWorkFactory(create_session_factory(engine), FakeClock())
    async with factory() as uow:
        await sync_config(uow, load_config(ROOT / "config" / "pipelines" / "default.toml"))
    return engine, factory


async def leader(factory: UnitOfWorkFactory) -> Actor:
    async with factory() as uow:
        emp = Employee(
            telegram_id=1, name="Lead", roles=["leader"], active=True, created_at=uow.clock.now()
        )
        uow.repo.add(emp)
        await uow.commit()
        return Actor.of(emp)


class Stopwatch:
    """Wall time and the process's CPU time (every thread: SQLite runs in aiosqlite's).
    On a busy machine the CPU time is the better estimate of the time on an idle one."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def lap(self) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        lap = (wall - self.wall, cpu - self.cpu)
        self.wall, self.cpu = wall, cpu
        return lap


async def run_one(url: str, name: str, data: bytes, label: str) -> dict[str, tuple[float, float]]:
    engine, factory = await fresh_database(url)
    actor = await leader(factory)

    async def read() -> bytes:
        return data

    times: dict[str, tuple[float, float]] = {}
    clock = Stopwatch()
    async with factory() as uow:
        view = await imports.upload(uow, actor, name, len(data), read)
    times["upload"] = clock.lap()
    async with factory() as uow:
        view = await imports.dry_run(uow, actor, view.id)
    times["dry run"] = clock.lap()
    report = view.report
    assert report is not None

    calls: list[tuple[int, int]] = []

    async def progress(done: int, total: int) -> None:
        calls.append((done, total))

    async with factory() as uow:
        view = await imports.run(uow, actor, view.id, progress)
    times["import"] = clock.lap()
    assert view.result is not None

    async with factory() as uow:
        leads = await uow.session.scalar(select(func.count()).select_from(Lead))
        history = await uow.session.scalar(select(func.count()).select_from(StageHistory))
        facts = await uow.session.scalar(select(func.count()).select_from(FunnelFact))
    await engine.dispose()
    rows = report.rows
    print(
        f"{label}: {len(data) / 1e6:.1f} MB, {rows} rows "
        f"({report.to_import} to import, {report.invalid} invalid, "
        f"{report.duplicates} duplicates)"
    )
    for step, (wall, cpu) in times.items():
        print(f"  {step:8} {wall:6.2f} s wall {rows / wall:7.0f} rows/s | {cpu:6.2f} s CPU")
    print(
        f"  imported {view.result.imported}; in the db: {leads} leads, {history} history rows,"
        f" {facts} funnel facts; progress calls: {len(calls)}"
    )
    assert leads == history == facts == view.result.imported == report.to_import
    return times


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--broken", type=float, default=0.0, help="share of bad rows, e.g. 0.01")
    parser.add_argument("--keep", type=Path, help="write the files and databases here")
    parser.add_argument("--pg", help="also run on this PostgreSQL server (a database URL)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        rows = make_rows(args.rows, args.broken)
        xlsx, csv_path = folder / "clients_50k.xlsx", folder / "clients_50k.csv"
        write_xlsx(xlsx, rows)
        write_csv(csv_path, rows)
        print(f"generated {args.rows} rows in {time.perf_counter() - started:.1f} s")
        for path in (xlsx, csv_path):
            db = folder / f"bench_{path.suffix[1:]}.db"
            db.unlink(missing_ok=True)
            data, kind = path.read_bytes(), path.suffix[1:]
            await run_one(f"sqlite+aiosqlite:///{db}", path.name, data, f"{kind} on SQLite")
            if args.pg:
                await run_one_pg(args.pg, path.name, data)


async def run_one_pg(server_url: str, filename: str, data: bytes) -> None:
    """A throwaway database on the given server (dropped afterwards)."""
    base, _, _ = server_url.rpartition("/")
    kind = filename.rsplit(".", 1)[-1]
    name = f"bench_import_{kind}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        await run_one(f"{base}/{name}", filename, data, f"{kind} on PostgreSQL")
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
