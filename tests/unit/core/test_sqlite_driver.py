"""storage/sqlite_driver.py: where SQLite work runs, and waiting for another process's lock
without holding the event loop."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from services.sales import deals
from storage import sqlite_driver
from storage.db import create_engine
from storage.uow import UnitOfWorkFactory
from tests.factories import new_deal


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every call the driver sends to a connection's worker thread."""
    seen: list[str] = []
    real = sqlite_driver.Connection._hop

    async def counted(self: sqlite_driver.Connection, fn, *args):
        seen.append(getattr(fn, "__name__", repr(fn)))
        return await real(self, fn, *args)

    monkeypatch.setattr(sqlite_driver.Connection, "_hop", counted)
    return seen


@pytest.fixture
def sqlite_only(backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("the driver is SQLite's")


async def test_a_stage_move_makes_no_thread_round_trip(
    sqlite_only: None, uow_factory: UnitOfWorkFactory, make_actor, hops: list[str]
) -> None:
    ann = await make_actor(roles=("manager",))
    card = await new_deal(uow_factory, ann, amount="150000")
    hops.clear()
    async with uow_factory() as uow:
        moved = await deals.advance(uow, ann, card.id, card.version)
    assert moved.version == card.version + 1
    assert hops == []  # BEGIN IMMEDIATE, the statements and COMMIT all ran inline


async def test_a_long_read_runs_in_the_thread_one_trip_per_statement(
    sqlite_only: None, uow_factory: UnitOfWorkFactory, make_actor, hops: list[str]
) -> None:
    ann = await make_actor(roles=("manager",))
    card = await new_deal(uow_factory, ann)
    hops.clear()
    async with uow_factory.read_only() as uow:
        rows = (await uow.session.execute(text("SELECT id FROM deals"))).all()
        again = (await uow.session.execute(text("SELECT count(*) FROM stages"))).scalar_one()
    assert [r.id for r in rows] == [card.id] and again > 0
    # the plain BEGIN travels with the first statement: two statements, two trips, and the
    # ROLLBACK that ends the read
    assert hops == ["_run", "_run", "rollback"]


async def test_streaming_past_the_prefetch(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'rows.db'}")
    n = sqlite_driver.PREFETCH * 3 + 7
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (i INTEGER)"))
            await conn.execute(text("INSERT INTO t VALUES (:i)"), [{"i": i} for i in range(n)])
        async with engine.connect() as conn:
            streamed = [r.i async for r in await conn.stream(text("SELECT i FROM t ORDER BY i"))]
            fetched = (await conn.execute(text("SELECT i FROM t ORDER BY i"))).scalars().all()
        assert streamed == list(range(n)) and list(fetched) == list(range(n))
    finally:
        await engine.dispose()


def _hold_write_lock(path: Path, seconds: float, holding: threading.Event) -> None:
    """Another process's writer: BEGIN IMMEDIATE, hold it, commit."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    holding.set()
    threading.Event().wait(seconds)
    conn.execute("COMMIT")
    conn.close()


async def test_waiting_for_another_writer_keeps_the_event_loop_free(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (i INTEGER)"))
        holding = threading.Event()
        other = threading.Thread(target=_hold_write_lock, args=(path, 0.6, holding))
        other.start()
        await asyncio.to_thread(holding.wait)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        beat = asyncio.create_task(ticker())
        try:
            async with engine.begin() as conn:  # waits for the other writer, then writes
                await conn.execute(text("INSERT INTO t VALUES (1)"))
        finally:
            beat.cancel()
        other.join()
        # The loop ran all along (SQLite's busy handler would have slept in its thread:
        # no tick at all while it waited).
        assert ticks >= 5
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 1
    finally:
        await engine.dispose()


async def test_a_lock_held_past_the_busy_timeout_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "stuck.db"
    sqlite3.connect(path).close()
    holding = threading.Event()
    other = threading.Thread(target=_hold_write_lock, args=(path, 0.8, holding))
    other.start()
    await asyncio.to_thread(holding.wait)
    conn = await sqlite_driver.connector(str(path), busy_timeout_s=0.2, isolation_level=None)()
    try:
        conn.defer("BEGIN IMMEDIATE")
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await conn.execute("SELECT 1")
        assert not conn._conn.in_transaction  # nothing half-begun is left behind
    finally:
        await conn.close()
        other.join()
