"""storage/sqlite_driver.py: where SQLite work runs, and waiting for another process's lock
without holding the event loop; and what storage/db.py promises on SQLite with either driver
(ours, or SQLAlchemy's stock aiosqlite adapter: SQLITE_DRIVER=aiosqlite). This module runs
its database tests with both (tests/conftest.py STOCK_DRIVER_MODULES)."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from services.sales import deals
from storage import sqlite_driver
from storage.db import SQLITE_BUSY_TIMEOUT_MS, SQLITE_DRIVERS, SqliteDriver, create_engine
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
def sqlite_only(backend: str, sqlite_driver_name: str) -> None:
    """Our driver's own behaviour (the stock adapter runs every call in its thread)."""
    if backend != "sqlite" or sqlite_driver_name != "voronka":
        pytest.skip("storage/sqlite_driver.py's own")


@pytest.fixture
def either_driver(backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite's")


DRIVERS = pytest.mark.parametrize("driver", SQLITE_DRIVERS)


def _other_writer_can_begin(path: str) -> bool:
    """Whether another process could take the write lock right now."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        assert sqlite_driver.is_busy(exc)
        return False
    finally:
        conn.close()
    return True


async def test_either_driver_gets_the_same_sqlite_setup(
    either_driver: None, sqlite_driver_name: str, engine: AsyncEngine
) -> None:
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert isinstance(raw.driver_connection, sqlite_driver.Connection) == (
            sqlite_driver_name == "voronka"
        )
        pragma = {
            name: (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar_one()
            for name in ("journal_mode", "foreign_keys", "busy_timeout")
        }
    # ours waits for another process's lock itself; the stock one leaves it to SQLite
    ours = sqlite_driver_name == "voronka"
    busy = sqlite_driver.SHORT_BUSY_MS if ours else SQLITE_BUSY_TIMEOUT_MS
    assert pragma == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": busy}


async def test_either_driver_writes_under_begin_immediate_and_reads_without_the_lock(
    either_driver: None, uow_factory: UnitOfWorkFactory, db_url: str, make_actor
) -> None:
    path = make_url(db_url).database
    assert path
    ann = await make_actor()
    async with uow_factory.peek() as uow:  # the first look of every update
        assert await uow.peek_update(7) is False
        assert _other_writer_can_begin(path)
    async with uow_factory.read_only() as uow:
        assert await uow.repo.employees.by_telegram_id(ann.telegram_id) is not None
        assert _other_writer_can_begin(path)
    async with uow_factory() as uow:
        uow.bind_update(7)
        assert await uow.repo.employees.by_telegram_id(ann.telegram_id) is not None
        assert not _other_writer_can_begin(path)  # the write lock from the first statement
        await uow.commit()
    assert _other_writer_can_begin(path)
    async with uow_factory.peek() as uow:
        assert await uow.peek_update(7) is True


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


@DRIVERS
async def test_streaming_past_the_prefetch(tmp_path: Path, driver: SqliteDriver) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'rows.db'}", sqlite_driver=driver)
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


@DRIVERS
async def test_waiting_for_another_writer_keeps_the_event_loop_free(
    tmp_path: Path, driver: SqliteDriver
) -> None:
    path = tmp_path / "locked.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}", sqlite_driver=driver)
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
        # The loop ran all along (ours waits with asyncio.sleep; SQLite's busy handler would
        # have slept in the loop's thread, and with the stock adapter sleeps in its own).
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


async def test_the_sqlite_driver_setting_reaches_every_engine(
    sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.app import prepare
    from bot.cli import migrate_and_sync
    from bot.settings import Settings
    from storage import migrate
    from storage.db import sqlite_driver_in_use, use_sqlite_driver

    monkeypatch.setenv("SQLITE_DRIVER", "aiosqlite")
    shutil.copyfile(sqlite_template, tmp_path / "v.db")
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'v.db'}")
    before = sqlite_driver_in_use()
    try:
        await migrate_and_sync(settings)  # the CLI's first step: the process's driver
        assert sqlite_driver_in_use() == "aiosqlite"
        seen: dict[str, str] = {}  # the migration child gets it (it may come from .env)

        async def child(*_args: object, env: dict[str, str]) -> object:
            seen.update(env)
            return SimpleNamespace(wait=lambda: asyncio.sleep(0, 0), returncode=0)

        monkeypatch.setattr(asyncio, "create_subprocess_exec", child)
        await migrate.upgrade_in_child("sqlite+aiosqlite:///x.db")
        assert seen[migrate.DRIVER_ENV] == "aiosqlite"
        use_sqlite_driver("voronka")
        monkeypatch.setattr(migrate, "upgrade", lambda url: asyncio.sleep(0))
        monkeypatch.setenv(migrate.URL_ENV, "sqlite+aiosqlite:///x.db")
        monkeypatch.setenv(migrate.DRIVER_ENV, "aiosqlite")
        await asyncio.to_thread(migrate.main)  # the child's side
        assert sqlite_driver_in_use() == "aiosqlite"
        use_sqlite_driver("voronka")  # prepare() follows its settings, not the process
        engine, _ = await prepare(settings, migrated=True)
        try:
            async with engine.connect() as conn:
                raw = await conn.get_raw_connection()
                assert not isinstance(raw.driver_connection, sqlite_driver.Connection)
        finally:
            await engine.dispose()
    finally:
        use_sqlite_driver(before)
    with pytest.raises(ValueError, match="unknown SQLite driver"):
        use_sqlite_driver("pysqlite")
