"""Test harness: real databases on SQLite and on a throwaway PostgreSQL.

Fixture contract (used by every test module; keep the names):

``backend``      "sqlite" | "pg" — parametrizes a test over both (the pg param carries
                 ``pytest.mark.pg``; ``-m "not pg"`` deselects it). In the modules of
                 ``STOCK_DRIVER_MODULES`` a third param, ``sqlite-aiosqlite`` (marked
                 ``stock_sqlite``), runs the test on SQLite again with SQLAlchemy's stock
                 aiosqlite adapter: ``backend`` is "sqlite" and every engine the test creates
                 without naming a driver uses that adapter (storage.db.use_sqlite_driver).
``sqlite_driver_name`` "voronka" | "aiosqlite": the SQLite driver of this test's engines.
``db_url``       a fresh database for this test, migrated to head, with the default
                 pipelines config synced. SQLite: ``sqlite+aiosqlite:///<tmp_path>/voronka.db``
                 (a copy of a session template file); PG: ``postgresql+asyncpg://.../t_<n>``
                 (``CREATE DATABASE ... TEMPLATE voronka_tpl``; dropped after the test).
``empty_db_url`` a fresh EMPTY database (no tables) on ``backend``: for migration tests.
``clock``        ``FakeClock()`` at its default start.
``engine``       an AsyncEngine on ``db_url`` (disposed after the test).
``uow_factory``  ``UnitOfWorkFactory(create_session_factory(engine), clock)``.
``make_actor``   ``await make_actor(roles=("manager",), name="Ann", telegram_id=None)``:
                 inserts an active Employee, returns ``Actor.of(employee)``.
``db_snapshot``  ``await db_snapshot()``: {table: sorted rows} of every table in the
                 database, to assert "nothing changed".

``VORONKA_TEST_PG``: ``auto`` (default: pg params are skipped when the server binaries are
missing), ``required`` (scripts/test: pg params FAIL if the server cannot start), ``off``
(pg params skipped). ``VORONKA_TEST_PG_URL`` uses an existing server instead of starting one.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from services.clock import FakeClock
from services.permissions import Actor
from services.sales.pipeline_config import load_config
from services.sales.pipelines import sync_config
from storage import migrate
from storage.db import (
    create_engine,
    create_session_factory,
    sqlite_driver_in_use,
    use_sqlite_driver,
)
from storage.models import Base, Employee
from storage.uow import UnitOfWork, UnitOfWorkFactory
from tests.dbdump import NOT_DATA
from tests.pg import URL_ENV, PgServer, PgUnavailable, connect_info, mode

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PIPELINES = PROJECT_ROOT / "config" / "pipelines" / "default.toml"

T = TypeVar("T")

_timings: dict[str, float] = {}
_pg_info: list[str] = []


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a private loop in a worker thread.

    Keeps session-scoped setup synchronous and off pytest-asyncio's loops entirely.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def build_database(url: str, config_path: Path = DEFAULT_PIPELINES) -> None:
    """Migrate ``url`` to head and sync the pipelines file into it."""
    await migrate.upgrade(url)
    engine = create_engine(url)
    try:
        async with UnitOfWork(create_session_factory(engine), FakeClock()) as uow:
            await sync_config(uow, load_config(config_path))
    finally:
        await engine.dispose()


# --- PostgreSQL server and template ------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The session's PostgreSQL server (started on first use), or skip/fail per the mode."""
    try:
        current = mode()
    except PgUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    if current == "off":
        pytest.skip("VORONKA_TEST_PG=off")
    external = os.environ.get(URL_ENV, "").strip()
    started = time.monotonic()
    problem = ""
    try:
        server = PgServer.from_url(external) if external else PgServer.start()
    except (PgUnavailable, OSError) as exc:
        problem = str(exc)
    else:
        try:
            run_async(_admin(server))  # can we connect?
        except (OSError, asyncpg.PostgresError) as exc:
            problem = f"cannot connect to {connect_info(server)}: {exc}"
            server.stop()
    if problem and current == "required":
        pytest.fail(
            f"VORONKA_TEST_PG=required but PostgreSQL is unavailable: {problem}", pytrace=False
        )
    if problem:
        pytest.skip(f"PostgreSQL unavailable (VORONKA_TEST_PG=auto): {problem}")
    _timings["pg_start"] = time.monotonic() - started
    _pg_info.append(server.version or connect_info(server))
    try:
        yield server
    finally:
        server.stop()


async def _admin(server: PgServer, *statements: str) -> None:
    conn = await asyncpg.connect(server.dsn(server.admin_database))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def _db_prefix(server: PgServer) -> str:
    # Our own server is private; on a shared one keep this run's names apart.
    return "" if server.owned else f"v{os.getpid()}_"


@pytest.fixture(scope="session")
def pg_template(pg_server: PgServer) -> Iterator[str]:
    """Name of a PG database migrated and synced once, cloned for every test."""
    name = f"{_db_prefix(pg_server)}voronka_tpl"
    started = time.monotonic()
    run_async(_admin(pg_server, f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"'))
    run_async(build_database(pg_server.url(name)))
    _timings["pg_template"] = time.monotonic() - started
    try:
        yield name
    finally:
        if not pg_server.owned:
            run_async(_admin(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


_db_counter = itertools.count(1)


async def _pg_database(server: PgServer, template: str) -> str:
    name = f"{_db_prefix(server)}t_{next(_db_counter)}"
    await _admin(server, f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return name


# --- SQLite template ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "voronka.db"
    started = time.monotonic()
    run_async(build_database(f"sqlite+aiosqlite:///{path}"))
    # Leave WAL mode so the copies are one self-contained file (the engine turns WAL on again).
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")
    conn.close()
    assert not Path(f"{path}-wal").exists()
    _timings["sqlite_template"] = time.monotonic() - started
    return path


# --- per-test databases ------------------------------------------------------------------

STOCK_SQLITE = "sqlite-aiosqlite"  # the backend param: SQLite through the stock adapter
# The modules whose database tests run with SQLAlchemy's stock aiosqlite adapter too (the
# fallback SQLITE_DRIVER=aiosqlite must keep working: units of work, the writer queue, the
# services' statements). Paths under tests/; a missing one fails the run (moved? update it).
STOCK_DRIVER_MODULES = (
    "unit/core/test_uow.py",
    "unit/core/test_sqlite_driver.py",
    "unit/sales/test_deals.py",
    "unit/sales/test_leads.py",
    "unit/work/test_tasks_followups.py",
    "unit/work/test_tasks_measurement.py",
    "unit/work/test_installments.py",
    "unit/outbox/test_outbox.py",
)
TESTS_DIR = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "stock_sqlite: SQLite through SQLAlchemy's stock aiosqlite adapter"
    )
    missing = [m for m in STOCK_DRIVER_MODULES if not (TESTS_DIR / m).is_file()]
    if missing:
        raise pytest.UsageError(
            "tests/conftest.py STOCK_DRIVER_MODULES names missing test modules: "
            f"{', '.join(missing)} (moved or renamed? list their new paths)"
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The stock-adapter param runs only in STOCK_DRIVER_MODULES (the rest of the suite
    would take twice as long on SQLite for little more)."""
    chosen = {TESTS_DIR / m for m in STOCK_DRIVER_MODULES}
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        stock = callspec is not None and callspec.params.get("backend") == STOCK_SQLITE
        (dropped if stock and item.path not in chosen else keep).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("pg", id="pg", marks=pytest.mark.pg),
        pytest.param(STOCK_SQLITE, id=STOCK_SQLITE, marks=pytest.mark.stock_sqlite),
    ]
)
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    param: str = request.param
    if param == "pg":
        request.getfixturevalue("pg_server")  # starts it, or skips/fails per VORONKA_TEST_PG
    if param != STOCK_SQLITE:
        yield param
        return
    before = sqlite_driver_in_use()
    use_sqlite_driver("aiosqlite")
    try:
        yield "sqlite"
    finally:
        use_sqlite_driver(before)


@pytest.fixture
def sqlite_driver_name(backend: str) -> str:
    return sqlite_driver_in_use()


@pytest.fixture
async def db_url(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[str]:
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "voronka.db"
        await asyncio.to_thread(shutil.copyfile, template, target)
        yield f"sqlite+aiosqlite:///{target}"
        return
    server: PgServer = request.getfixturevalue("pg_server")
    tpl: str = request.getfixturevalue("pg_template")
    name = await _pg_database(server, tpl)
    try:
        yield server.url(name)
    finally:
        await _admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def empty_db_url(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[str]:
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    server: PgServer = request.getfixturevalue("pg_server")
    name = f"{_db_prefix(server)}e_{next(_db_counter)}"
    await _admin(server, f'CREATE DATABASE "{name}" TEMPLATE template0')
    try:
        yield server.url(name)
    finally:
        await _admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(db_url)
    try:
        yield eng
    finally:
        await eng.dispose()


@pytest.fixture
def uow_factory(engine: AsyncEngine, clock: FakeClock) -> UnitOfWorkFactory:
    return UnitOfWorkFactory(create_session_factory(engine), clock)


MakeActor = Callable[..., Awaitable[Actor]]


@pytest.fixture
def make_actor(uow_factory: UnitOfWorkFactory, clock: FakeClock) -> MakeActor:
    telegram_ids = itertools.count(100_000_001)

    async def make(
        roles: Iterable[str] = ("manager",),
        name: str = "Ann",
        telegram_id: int | None = None,
        **extra: Any,
    ) -> Actor:
        async with uow_factory() as uow:
            employee = Employee(
                telegram_id=telegram_id if telegram_id is not None else next(telegram_ids),
                name=name,
                roles=[str(r) for r in roles],
                active=True,
                created_at=clock.now(),
                **extra,
            )
            uow.repo.add(employee)
            await uow.commit()
            return Actor.of(employee)

    return make


Snapshot = dict[str, list[tuple[Any, ...]]]


def _dump(conn: Connection) -> Snapshot:
    result: Snapshot = {}
    for name in sorted(set(inspect(conn).get_table_names()) - NOT_DATA):
        table = Base.metadata.tables.get(name)
        stmt = select(table) if table is not None else text(f'SELECT * FROM "{name}"')
        rows = [tuple(row) for row in conn.execute(stmt)]
        result[name] = sorted(rows, key=repr)
    return result


@pytest.fixture
def db_snapshot(engine: AsyncEngine) -> Callable[[], Awaitable[Snapshot]]:
    async def snapshot() -> Snapshot:
        async with engine.connect() as conn:
            return await conn.run_sync(_dump)

    return snapshot


# --- reporting ---------------------------------------------------------------------------


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _timings:
        return
    parts = [f"{key} {seconds:.2f}s" for key, seconds in _timings.items()]
    info = f" ({_pg_info[0]})" if _pg_info else ""
    terminalreporter.write_line("test databases: " + ", ".join(parts) + info)
