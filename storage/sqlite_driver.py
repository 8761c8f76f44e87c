"""An asyncio SQLite connection for SQLAlchemy that runs short work where it is asked.

SQLAlchemy's aiosqlite adapter sends every call to the connection's own thread: four round
trips per statement (open a cursor, execute, fetch all, close), one for the ROLLBACK with
which the pool resets a connection it takes back, one for every BEGIN. A round trip is two
thread wake-ups and a fight for the GIL; on a tap that was some thirty of them, and on a
busy machine each can wait milliseconds for a core. Meanwhile the statements themselves --
a primary-key read, an update of one row, an insert -- take microseconds.

This module is SQLAlchemy's ``async_creator`` for SQLite (storage/db.py): a connection with
aiosqlite's shape (``cursor()``, ``execute``, ``fetch*``, ``commit``, ``rollback``,
``close``, ``create_function``, ``_conn``, ``_tx``, ``stop``) that runs in two modes. That
shape is the part of aiosqlite SQLAlchemy's adapter reaches into, private names included:
tests/unit/core/test_sqlite_adapter_surface.py lists it and fails when the adapter changes, and
``SQLITE_DRIVER=aiosqlite`` switches back to the stock adapter (docs/architecture.md).
The two modes:

- **inline** (the default: writes, which one process makes one at a time anyway -- see the
  writer queue in storage/db.py -- and the first look of every update): the sqlite3 call is
  made right in the event loop's thread. A long run of statements gives the loop a turn
  every ``YIELD_EVERY_S``.
- **threaded** (``defer(..., threaded=True)``, chosen by storage/db.py for read-only units
  of work: reports, exports): every call goes to the connection's worker thread, so a long
  query never holds the loop. Even then a statement costs one round trip, not four:
  ``execute`` runs it and reads its first ``PREFETCH`` rows in one go; ``fetch*`` serve
  from those rows and go back to the thread only for a longer result (an export still
  streams).

In both modes the transaction's ``BEGIN`` (given to ``defer``) is sent together with its
first statement, and a transaction with no statement never sends one; ``rollback`` outside
a transaction returns at once. A ``BEGIN IMMEDIATE`` that finds another *process* writing
is not left to SQLite's busy handler (which would sleep in the loop's thread): the
connection's ``busy_timeout`` is short, and ``execute`` waits for the lock with
``asyncio.sleep`` and tries again, up to ``busy_timeout_s``.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from queue import SimpleQueue
from typing import Any

PREFETCH = 256  # rows read together with the statement
YIELD_EVERY_S = 0.02  # inline: the longest the loop goes without a turn
SHORT_BUSY_MS = 50  # the busy handler's own wait (WAL recovery blips), in the thread or not
RETRY_FIRST_S = 0.002  # the first wait for another process's write lock, then doubled
RETRY_MAX_S = 0.1

_STOP = object()
_Job = tuple[asyncio.Future[Any] | None, Callable[[], Any]]


def _resolve(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _work(jobs: SimpleQueue[_Job]) -> None:
    while True:
        future, job = jobs.get()
        result: Any = None
        error: BaseException | None = None
        try:
            result = job()
        except BaseException as exc:  # handed to the awaiting task
            error = exc
        if future is not None:
            try:
                future.get_loop().call_soon_threadsafe(_resolve, future, result, error)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass
        if result is _STOP:
            return


def is_busy(error: BaseException) -> bool:
    return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)


class _BeginBusy(Exception):
    """The deferred BEGIN found the database locked by another process; nothing ran."""

    def __init__(self, error: sqlite3.OperationalError) -> None:
        super().__init__(str(error))
        self.error = error


class Cursor:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._cursor: sqlite3.Cursor | None = None  # open only while rows remain unread
        self._rows: deque[Any] = deque()
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self.arraysize = 1

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    def _run(self, sql: str, parameters: Any, many: bool) -> None:
        conn = self._connection._conn
        begin = self._connection._pending
        if begin is not None:
            try:
                conn.execute(begin)
            except sqlite3.OperationalError as exc:
                if is_busy(exc):
                    raise _BeginBusy(exc) from exc
                raise
            self._connection._pending = None
        cursor = conn.cursor()
        if many:
            cursor.executemany(sql, parameters)
        else:
            cursor.execute(sql, parameters)
        self.description = cursor.description
        self.rowcount = cursor.rowcount
        self.lastrowid = cursor.lastrowid
        self._rows = deque()
        if cursor.description is not None:
            rows = cursor.fetchmany(PREFETCH)
            self._rows.extend(rows)
            if len(rows) == PREFETCH:
                self._cursor = cursor  # more may follow: keep it open
                return
        cursor.close()
        self._cursor = None

    async def _execute(self, sql: str, parameters: Any, many: bool) -> None:
        connection = self._connection
        deadline: float | None = None
        wait = RETRY_FIRST_S
        while True:
            try:
                await connection._call(self._run, sql, parameters, many)
                return
            except _BeginBusy as busy:
                now = time.monotonic()
                if deadline is None:
                    deadline = now + connection.busy_timeout_s
                if now >= deadline:
                    connection._pending = None
                    raise busy.error from None
                await asyncio.sleep(min(wait, deadline - now))
                wait = min(wait * 2, RETRY_MAX_S)

    async def execute(self, sql: str, parameters: Any = ()) -> Cursor:
        await self._execute(sql, parameters, False)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> Cursor:
        await self._execute(sql, list(parameters), True)
        return self

    def _more(self, size: int | None) -> list[Any]:
        cursor = self._cursor
        if cursor is None:
            return []
        rows = cursor.fetchall() if size is None else cursor.fetchmany(size)
        if size is None or len(rows) < size:
            cursor.close()
            self._cursor = None
        return rows

    async def fetchone(self) -> Any:
        if not self._rows and self._cursor is not None:
            self._rows.extend(await self._connection._call(self._more, PREFETCH))
        return self._rows.popleft() if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        size = size or self.arraysize
        if len(self._rows) < size and self._cursor is not None:
            self._rows.extend(await self._connection._call(self._more, size - len(self._rows)))
        return [self._rows.popleft() for _ in range(min(size, len(self._rows)))]

    async def fetchall(self) -> list[Any]:
        rows = list(self._rows)
        self._rows.clear()
        if self._cursor is not None:
            rows.extend(await self._connection._call(self._more, None))
        return rows

    def __aiter__(self) -> Cursor:
        return self

    async def __anext__(self) -> Any:
        row = await self.fetchone()
        if row is None:
            raise StopAsyncIteration
        return row

    async def close(self) -> None:
        self._rows.clear()
        cursor, self._cursor = self._cursor, None
        if cursor is not None:
            await self._connection._call(cursor.close)

    async def nextset(self) -> None:
        return None

    async def setinputsizes(self, *_sizes: Any) -> None:
        return None

    def setoutputsize(self, *_args: Any) -> None:
        return None


class _Jobs:
    """What SQLAlchemy's adapter reaches for as ``_tx`` (its isolation-level setter puts
    ``(future, function)`` there, as on aiosqlite's queue)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def put_nowait(self, item: _Job) -> None:
        self._connection._queue.put_nowait(item)


class Connection:
    def __init__(
        self, connector: Callable[[], sqlite3.Connection], *, busy_timeout_s: float
    ) -> None:
        self._connector = connector
        self.busy_timeout_s = busy_timeout_s
        self._connection: sqlite3.Connection | None = None
        self._pending: str | None = None  # a deferred BEGIN, sent with the next statement
        self._threaded = False  # this transaction's calls go to the worker thread
        self._turn = time.monotonic()  # inline: when the loop last had a turn
        self._queue: SimpleQueue[_Job] = SimpleQueue()
        self._tx = _Jobs(self)
        self._stopping = False  # close or stop sent: the worker ends after it
        self._thread = threading.Thread(
            target=_work, args=(self._queue,), name="voronka-sqlite", daemon=True
        )

    async def _open(self) -> Connection:
        self._thread.start()
        self._connection = await self._hop(self._connector)
        return self

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._connection is None:
            raise ValueError("no active connection")
        return self._connection

    async def _hop(self, fn: Callable[..., Any], *args: Any) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((future, (lambda: fn(*args)) if args else fn))
        return await future

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._threaded:
            return await self._hop(fn, *args)
        result = fn(*args)
        now = time.monotonic()
        if now - self._turn > YIELD_EVERY_S:
            await asyncio.sleep(0)
            self._turn = time.monotonic()
        return result

    def _ended(self) -> None:
        self._pending = None
        self._threaded = False
        self._turn = time.monotonic()

    # --- what storage/db.py uses ------------------------------------------------------------

    def defer(self, sql: str, *, threaded: bool = False) -> None:
        """Send `sql` (a BEGIN) with the next statement; `threaded`: this transaction's calls
        run in the worker thread (a long read must not hold the event loop)."""
        self._pending = sql
        self._threaded = threaded
        self._turn = time.monotonic()

    # --- the aiosqlite-shaped surface SQLAlchemy's adapter uses ----------------------------

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> Cursor:
        return Cursor(self)

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> Cursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        try:
            if self._pending is None:  # else nothing ran: no transaction to end
                await self._call(self._conn.commit)
        finally:
            self._ended()

    async def rollback(self) -> None:
        try:
            if self._pending is None and self._connection is not None:
                if self._connection.in_transaction:  # the pool's reset of an idle one: no-op
                    await self._call(self._conn.rollback)
        finally:
            self._ended()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    def _close(self) -> object:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        return _STOP

    async def close(self) -> None:
        # Once only: the worker ends after the first close, maybe not yet when its future
        # resolved, and a second job would wait for it forever.
        if self._thread.is_alive() and not self._stopping:
            self._stopping = True
            await self._hop(self._close)

    def stop(self) -> None:
        """Close without waiting (SQLAlchemy's forced terminate)."""
        if not self._stopping:
            self._stopping = True
            self._queue.put_nowait((None, self._close))


def connector(
    database: str, *, busy_timeout_s: float, **kwargs: Any
) -> Callable[[], Awaitable[Connection]]:
    """An ``async_creator`` for SQLAlchemy: connections with these sqlite3 arguments."""
    kwargs["check_same_thread"] = False
    kwargs["timeout"] = SHORT_BUSY_MS / 1000  # sqlite3's busy handler: blips only (see above)

    async def connect() -> Connection:
        connection = Connection(
            lambda: sqlite3.connect(database, **kwargs), busy_timeout_s=busy_timeout_s
        )
        return await connection._open()

    return connect
