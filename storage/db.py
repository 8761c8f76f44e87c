"""Engine and session factory for SQLite (embedded default) and PostgreSQL.

SQLite: WAL, busy_timeout, foreign keys on, and every transaction opened with
``BEGIN IMMEDIATE``. The write lock is then taken when the transaction starts,
so a transaction that read first and writes later can never fail with
"database is locked" on the read->write upgrade (it waits on busy_timeout
instead). The pysqlite/aiosqlite driver's own BEGIN handling is switched off
(SQLAlchemy docs, "Serializable isolation / Savepoints / Transactional DDL").

Writers of one process queue fairly: before its BEGIN IMMEDIATE a write transaction takes
the engine's asyncio lock (FIFO, per event loop), released when it commits or rolls back.
Without it, every waiting connection sleeps in SQLite's busy handler in its own thread and
wakes at random: under load most taps pass in milliseconds while a few wait seconds. The
lock is awaited from inside SQLAlchemy's greenlet (`await_only`), so nothing above this
module knows about it. A writer that cannot get the lock in `WRITER_QUEUE_TIMEOUT_S` goes
ahead and waits on busy_timeout as before (a nested write unit of work would otherwise
wait for itself).

The connections come from storage/sqlite_driver.py (``voronka``, the default) or, with
``SQLITE_DRIVER=aiosqlite``, from SQLAlchemy's stock aiosqlite adapter: the way back if an
upgrade of SQLAlchemy or aiosqlite breaks our driver (docs/architecture.md, "The SQLite
driver"). Both get the same WAL, busy_timeout, BEGIN IMMEDIATE and writer queue; with the
stock adapter every BEGIN is its own statement and SQLite's busy handler does the waiting.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from sqlalchemy import event
from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import StaticPool
from sqlalchemy.util import await_only

from storage import sqlite_driver as voronka_driver

SQLITE_BUSY_TIMEOUT_MS = 15_000
WRITER_QUEUE_TIMEOUT_S = 10.0
SQLITE_POOL_SIZE = 100  # >= the people tapping at once: nobody queues for a connection
READ_ONLY = "voronka_read_only"  # execution option: a transaction that will not write
NO_BEGIN = "voronka_no_begin"  # with READ_ONLY: no BEGIN at all, each statement on its own
_HELD = "voronka_writer_lock"  # connection info: the writer lock this transaction holds

SqliteDriver = Literal["voronka", "aiosqlite"]
SQLITE_DRIVERS: tuple[SqliteDriver, ...] = get_args(SqliteDriver)
_default_driver: list[SqliteDriver] = ["voronka"]  # this process's, see use_sqlite_driver

log = logging.getLogger(__name__)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_file(url: str) -> Path | None:
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def use_sqlite_driver(driver: str) -> None:
    """The SQLite driver of every engine this process creates without naming one (the
    SQLITE_DRIVER setting, applied where the settings are read: bot/cli.py)."""
    _default_driver[0] = _known(driver)


def sqlite_driver_in_use() -> SqliteDriver:
    return _default_driver[0]


def _known(driver: str) -> SqliteDriver:
    for known in SQLITE_DRIVERS:
        if driver == known:
            return known
    raise ValueError(f"unknown SQLite driver {driver!r}: one of {', '.join(SQLITE_DRIVERS)}")


@dataclass(frozen=True)
class PoolSettings:
    """The connection pool of a PostgreSQL engine (DB_POOL_* settings, .env.example).

    Every update holds a connection while its handler runs, so the pool must cover the
    updates in flight: with SQLAlchemy's default (5 + 10 overflow) a busy worker queued for
    connections, and each overflow connection was closed on return and opened again (a
    PostgreSQL backend started per checkout) -- what dominated the load bench's p99. More
    connections than the server's cores can serve only adds contention: on 2 cores, 100
    people tapping (bench/load.py --backend pg, interleaved) gave p99 79-94 ms with 10 + 0,
    136-191 ms with 8 + 4 and 263-318 ms with 20 + 10. Updates beyond the pool wait their
    turn for a connection (`timeout`) instead of crowding the server."""

    size: int = 10  # connections kept open
    overflow: int = 0  # opened beyond `size` at a peak (closed when returned: churn)
    timeout: float = 10.0  # seconds to wait for a free connection, then an error
    recycle: float = 1800.0  # seconds before a connection is replaced (-1: never)
    # Test each connection before use: a round trip per checkout (two or three per update),
    # for what a restarted server costs anyway without it: the first statement on a dead
    # connection fails, SQLAlchemy drops the whole pool, and the update is answered 500
    # and delivered again (bot/webhook.py OUTAGES; polling leaves it unconfirmed).
    pre_ping: bool = False


def create_engine(
    url: str,
    *,
    echo: bool = False,
    sqlite_driver: SqliteDriver | None = None,
    pool: PoolSettings | None = None,
    **kwargs: Any,
) -> AsyncEngine:
    """An engine on `url`; on SQLite with `sqlite_driver` (default: this process's, see
    use_sqlite_driver); on PostgreSQL with the pool `pool` says (defaults: PoolSettings)."""
    if not is_sqlite(url):
        pool = pool or PoolSettings()
        kwargs.setdefault("pool_size", pool.size)
        kwargs.setdefault("max_overflow", pool.overflow)
        kwargs.setdefault("pool_timeout", pool.timeout)
        kwargs.setdefault("pool_recycle", pool.recycle)
        kwargs.setdefault("pool_pre_ping", pool.pre_ping)
        return create_async_engine(url, echo=echo, **kwargs)

    path = _sqlite_file(url)
    if path is None:
        # In-memory database: one shared connection, or every session sees an empty db.
        kwargs.setdefault("poolclass", StaticPool)
        kwargs.setdefault("connect_args", {"check_same_thread": False})
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A fixed set of connections, kept: the writer queue below is fair only among
        # connections that exist (opening one is a thread start whose end order is random),
        # and a waiter for a connection queues in order too.
        kwargs.setdefault("pool_size", SQLITE_POOL_SIZE)
        kwargs.setdefault("max_overflow", 0)
    if _known(sqlite_driver or sqlite_driver_in_use()) == "voronka":
        kwargs.setdefault("async_creator", _connector(url, kwargs.pop("connect_args", {})))
    engine = create_async_engine(url, echo=echo, **kwargs)
    _install_sqlite_hooks(engine, wal=path is not None)
    return engine


def _connector(url: str, extra: dict[str, Any]) -> Any:
    """storage/sqlite_driver.py's connect, with the sqlite3 arguments SQLAlchemy's aiosqlite
    dialect would have given aiosqlite for this URL (file, ``uri``, memory forms)."""
    args, kwargs = SQLiteDialect_aiosqlite().create_connect_args(make_url(url))
    return voronka_driver.connector(
        *args, busy_timeout_s=SQLITE_BUSY_TIMEOUT_MS / 1000, **{**kwargs, **extra}
    )


class _WriterQueue:
    """One asyncio.Lock per event loop (tests run many loops against one engine)."""

    def __init__(self) -> None:
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def lock(self) -> asyncio.Lock | None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a synchronous caller (Alembic offline, scripts): no queue
            return None
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock


async def _acquire(lock: asyncio.Lock) -> bool:
    try:
        await asyncio.wait_for(lock.acquire(), WRITER_QUEUE_TIMEOUT_S)
    except TimeoutError:
        log.warning(
            "SQLite writer queue: no turn in %ss, waiting on busy_timeout", WRITER_QUEUE_TIMEOUT_S
        )
        return False
    return True


def _install_sqlite_hooks(engine: AsyncEngine, *, wal: bool) -> None:
    queued = wal  # a file database; an in-memory one has a single connection anyway
    queue = _WriterQueue()

    def release(info: dict[str, Any]) -> None:
        lock = info.pop(_HELD, None)
        if lock is not None and lock.locked():
            lock.release()

    def _begin(conn: Any, sql: str, *, threaded: bool = False) -> None:
        # Sent with the transaction's first statement (storage/sqlite_driver.py), which waits
        # for another process's write lock without holding the event loop.
        driver = conn.connection.driver_connection
        if isinstance(driver, voronka_driver.Connection):
            driver.defer(sql, threaded=threaded)
            return
        try:
            conn.exec_driver_sql(sql)
        except BaseException:
            release(conn.info)
            raise

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        if wal:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        # Our driver waits for another process's lock itself (asyncio, not the busy handler
        # sleeping in the event loop's thread); SQLite's own handler only rides out blips.
        ours = isinstance(
            getattr(dbapi_connection, "driver_connection", None), voronka_driver.Connection
        )
        busy_ms = voronka_driver.SHORT_BUSY_MS if ours else SQLITE_BUSY_TIMEOUT_MS
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Read-only units of work (READ_ONLY option) take no write lock: plain BEGIN (or,
        # with NO_BEGIN, none: each statement is its own implicit transaction).
        options = conn.get_execution_options()
        if options.get(READ_ONLY, False):
            if not options.get(NO_BEGIN, False):
                _begin(conn, "BEGIN", threaded=True)  # a long read: off the event loop
            return
        lock = queue.lock() if queued else None
        if lock is not None and _HELD not in conn.info:
            turn = _acquire(lock)
            try:
                got = await_only(turn)
            except Exception:  # not inside SQLAlchemy's greenlet: no queue for this one
                turn.close()
                got = False
            if got:
                conn.info[_HELD] = lock
        _begin(conn, "BEGIN IMMEDIATE")

    # Released when the connection goes back to the pool -- a Session returns it right after
    # its COMMIT or ROLLBACK completed (the "commit" event would fire before the COMMIT ran,
    # and the next writer's BEGIN IMMEDIATE would meet a lock still held).
    @event.listens_for(engine.sync_engine.pool, "checkin")
    @event.listens_for(engine.sync_engine.pool, "invalidate")
    def _on_checkin(_dbapi_connection: Any, record: Any, *_exc: Any) -> None:
        release(record.info)  # a connection returned or dropped mid-transaction


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=True)
