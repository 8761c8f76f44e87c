"""The part of aiosqlite that SQLAlchemy's adapter reaches into, and storage/sqlite_driver.py
re-implements: this file fails when an upgrade of SQLAlchemy or aiosqlite changes it.

storage/sqlite_driver.py stands in for an aiosqlite connection under SQLAlchemy's aiosqlite
adapter (``sqlalchemy/dialects/sqlite/aiosqlite.py`` and the generic
``sqlalchemy/connectors/asyncio.py`` it builds on). The adapter uses private names of
aiosqlite (``_conn``, ``_tx``, ``_connection``), so nothing but this file notices when it
starts using another one or calls one differently. Three checks:

1. every attribute the adapter's source reaches for on the driver's connection and cursor
   (found by reading the source, not by hand) is in SURFACE below, and our driver provides
   each, awaitable or not as the adapter calls it, with a signature that takes its arguments;
2. the few behaviours the adapter counts on (``_tx`` runs a job in the connection's thread,
   ``_conn``'s ValueError when closed, aiosqlite's errors being sqlite3's);
3. a digest of each part of the adapter's source we rely on (code only: comments, docstrings
   and layout do not count). A change there fails with the part's name, whatever it is.

When this fails after an upgrade: read the named part of the new adapter against
storage/sqlite_driver.py (what it reaches for, how it calls it, which exceptions it expects),
fix the driver, then update SURFACE and PINNED here. Until then ``SQLITE_DRIVER=aiosqlite``
runs the bot on the stock adapter (docs/architecture.md, "The SQLite driver").
"""

from __future__ import annotations

import ast
import asyncio
import hashlib
import inspect
import sqlite3
import textwrap
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import aiosqlite
import pytest
from sqlalchemy.connectors import asyncio as sa_asyncio
from sqlalchemy.dialects.sqlite import aiosqlite as sa_aiosqlite
from sqlalchemy.dialects.sqlite import pysqlite as sa_pysqlite

from storage import sqlite_driver

ADAPTER_FILES = "sqlalchemy/dialects/sqlite/aiosqlite.py, sqlalchemy/connectors/asyncio.py"
WHAT_TO_DO = (
    "re-read it against storage/sqlite_driver.py (the attributes it reaches for on the "
    "connection and cursor, how it calls them, the exceptions it expects), fix the driver, "
    "then update SURFACE/PINNED in tests/unit/core/test_sqlite_adapter_surface.py; meanwhile "
    "SQLITE_DRIVER=aiosqlite runs on the stock adapter (docs/architecture.md, 'The SQLite "
    "driver')"
)


Call = tuple[tuple[Any, ...], dict[str, Any]]


def call(*args: Any, **kwargs: Any) -> Call:
    return args, kwargs


@dataclass(frozen=True)
class Use:
    """How the adapter uses one name: a plain attribute (`calls` None), or a method called
    with these arguments, awaited or not."""

    calls: tuple[Call, ...] | None = None
    awaited: bool = False


ATTR = Use()


def sync(*calls: Call) -> Use:
    return Use(calls or (call(),), awaited=False)


def awaited(*calls: Call) -> Use:
    return Use(calls or (call(),), awaited=True)


def _noop(*_args: Any) -> None:
    return None


# What the adapter does with the driver's objects (dotted: an attribute of an attribute).
SURFACE: dict[str, dict[str, Use]] = {
    "connection": {
        "_conn": ATTR,  # the sqlite3 connection; the isolation-level setter's job gets it
        "_tx": ATTR,
        "_tx.put_nowait": sync(call(("future", _noop))),  # (future, job) to run in-thread
        "_connection": ATTR,  # truthy while open (commit/rollback skip a closed one)
        "isolation_level": ATTR,
        "create_function": awaited(call("f", 1, _noop), call("f", 1, _noop, deterministic=True)),
        "commit": awaited(),
        "rollback": awaited(),
        "close": awaited(),
        "stop": sync(),  # forced terminate (has_terminate)
        "cursor": sync(),  # no arguments (_make_new_cursor)
    },
    "cursor": {
        "__aenter__": awaited(),
        "__aiter__": sync(),  # server-side cursor iteration, then __anext__
        "description": ATTR,
        "rowcount": ATTR,
        "arraysize": ATTR,  # read and set
        "lastrowid": ATTR,
        "execute": awaited(call("SELECT 1"), call("SELECT ?", (1,))),
        "executemany": awaited(call("SELECT ?", [(1,)])),
        "fetchone": awaited(),
        "fetchmany": awaited(call(size=2)),
        "fetchall": awaited(),
        "nextset": awaited(),
        "setinputsizes": awaited(call(), call(1, 2)),  # *inputsizes
        "close": awaited(),
    },
    "iterator": {"__anext__": awaited()},  # what cursor.__aiter__() returns
}

# Where the adapter's source holds each kind of driver object: an expression, or a parameter
# of one function ((function, parameter)) -> the kind in SURFACE.
ROOTS = {"self._connection": "connection", "self._cursor": "cursor"}
PARAM_ROOTS = {
    ("_make_new_cursor", "connection"): "connection",
    ("_aenter_cursor", "cursor"): "cursor",
    ("__iter__", "iterator"): "iterator",
}

# The parts of SQLAlchemy we rely on (module, qualified name) and their code's digest, as of
# the versions below. db.py's _connector also relies on pysqlite's create_connect_args.
PINNED_VERSIONS = {"sqlalchemy": "2.1.9", "aiosqlite": "0.22.1"}
PINNED: dict[tuple[str, str], str] = {
    ("sqlalchemy.dialects.sqlite.aiosqlite", "AsyncAdapt_aiosqlite_cursor"): "5b3accb69ef70396",
    ("sqlalchemy.dialects.sqlite.aiosqlite", "AsyncAdapt_aiosqlite_ss_cursor"): "a8f1b058fb9afb1f",
    ("sqlalchemy.dialects.sqlite.aiosqlite", "AsyncAdapt_aiosqlite_connection"): "55f9691287e28ed9",
    ("sqlalchemy.dialects.sqlite.aiosqlite", "AsyncAdapt_aiosqlite_dbapi"): "7952a907ba613c53",
    (
        "sqlalchemy.dialects.sqlite.aiosqlite",
        "SQLiteExecutionContext_aiosqlite",
    ): "b46fb2518c228f62",
    ("sqlalchemy.dialects.sqlite.aiosqlite", "SQLiteDialect_aiosqlite"): "f7babeaac2360ae9",
    ("sqlalchemy.connectors.asyncio", "AsyncAdapt_dbapi_cursor"): "69c92f6e99ed13a9",
    ("sqlalchemy.connectors.asyncio", "AsyncAdapt_dbapi_ss_cursor"): "04b68a727d1836c4",
    ("sqlalchemy.connectors.asyncio", "AsyncAdapt_dbapi_connection"): "0bc43859d1690548",
    ("sqlalchemy.connectors.asyncio", "AsyncAdapt_terminate"): "1f36c7e84763df01",
    (
        "sqlalchemy.dialects.sqlite.pysqlite",
        "SQLiteDialect_pysqlite.create_connect_args",
    ): "b1e05216de4859e8",
}
MODULES = {m.__name__: m for m in (sa_aiosqlite, sa_asyncio, sa_pysqlite)}


def _part(module: str, qualname: str) -> Any:
    obj: Any = MODULES[module]
    for name in qualname.split("."):
        obj = getattr(obj, name)
    return obj


def _tree(obj: Any) -> ast.Module:
    tree = ast.parse(textwrap.dedent(inspect.getsource(obj)))
    for node in ast.walk(tree):  # docstrings are not code
        body = getattr(node, "body", None)
        if (
            isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return tree


def digest(obj: Any) -> str:
    return hashlib.sha256(ast.unparse(_tree(obj)).encode()).hexdigest()[:16]


def reached_for() -> dict[str, set[str]]:
    """kind -> the dotted names the adapter's source uses on that kind of driver object."""
    found: dict[str, set[str]] = {kind: set() for kind in SURFACE}
    for module, qualname in PINNED:
        for function in ast.walk(_tree(_part(module, qualname))):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            roots = dict(ROOTS)
            for (name, param), kind in PARAM_ROOTS.items():
                if function.name == name:
                    roots[param] = kind
            for node in ast.walk(function):
                if not isinstance(node, ast.Attribute):
                    continue
                text = ast.unparse(node)
                for root, kind in roots.items():
                    if text.startswith(root + "."):
                        found[kind].add(text.removeprefix(root + "."))
    return found


# --- 1. the names and their signatures ------------------------------------------------------


def test_the_adapter_reaches_for_nothing_the_surface_does_not_list() -> None:
    found = reached_for()
    for kind, names in found.items():
        unknown = sorted(names - set(SURFACE[kind]))
        assert not unknown, (
            f"SQLAlchemy's aiosqlite adapter ({ADAPTER_FILES}) now uses {unknown} on the "
            f"driver's {kind}: {WHAT_TO_DO}"
        )
    # and the scan still sees the private names it was written for (else it reads nothing)
    assert {"_conn", "_tx.put_nowait", "_connection", "stop"} <= found["connection"]
    assert {"execute", "fetchall", "close", "description"} <= found["cursor"]


def _check(kind: str, obj: Any) -> list[str]:
    problems = []
    for name, use in SURFACE[kind].items():
        target: Any = obj
        try:
            for part in name.split("."):
                target = getattr(target, part)
        except AttributeError:
            problems.append(f"{kind}.{name} is missing")
            continue
        if use.calls is None:
            continue
        if not callable(target):
            problems.append(f"{kind}.{name} is not callable")
            continue
        if inspect.iscoroutinefunction(target) != use.awaited:
            how = "a coroutine function" if use.awaited else "a plain method"
            problems.append(f"{kind}.{name} must be {how} (the adapter awaits it or not)")
        signature = inspect.signature(target)
        for args, kwargs in use.calls:
            try:
                signature.bind(*args, **kwargs)
            except TypeError as exc:
                problems.append(f"{kind}.{name}{signature} cannot take {args} {kwargs}: {exc}")
    return problems


async def test_our_driver_provides_every_name_as_the_adapter_calls_it() -> None:
    conn = await sqlite_driver.connector(":memory:", busy_timeout_s=1)()
    try:
        cursor = conn.cursor()
        problems = _check("connection", conn) + _check("cursor", cursor)
        problems += _check("iterator", cursor.__aiter__())
        await cursor.close()
    finally:
        await conn.close()
    assert not problems, "storage/sqlite_driver.py: " + "; ".join(problems)


# --- 2. the behaviours the adapter counts on ------------------------------------------------


async def test_tx_runs_a_job_on_the_connection_and_resolves_its_future() -> None:
    # The adapter's isolation-level setter: put_nowait((future, partial(set, conn._conn)))
    conn = await sqlite_driver.connector(":memory:", busy_timeout_s=1)()
    try:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        raw = conn._conn

        def set_iso() -> int:
            raw.isolation_level = None
            return 42

        conn._tx.put_nowait((future, set_iso))
        assert await asyncio.wait_for(future, 5) == 42
        assert conn.isolation_level is None
        assert conn._connection
    finally:
        await conn.close()


async def test_a_closed_connection_says_so_as_the_adapter_expects() -> None:
    conn = await sqlite_driver.connector(":memory:", busy_timeout_s=1)()
    await conn.close()
    assert not conn._connection  # the adapter's commit/rollback then do nothing
    with pytest.raises(ValueError) as raised:
        conn._conn  # noqa: B018
    # SQLAlchemy turns exactly these messages into a disconnect (OperationalError)
    assert raised.value.args[0].lower() in ("no active connection", "connection closed")
    await conn.close()  # a second close: no error (the adapter would swallow a ValueError)


def test_aiosqlite_errors_are_sqlite3s() -> None:
    # The adapter takes its DBAPI errors from the aiosqlite module; our driver raises
    # sqlite3's. They must be the same classes, or SQLAlchemy would not recognise ours.
    for name in ("DatabaseError", "Error", "IntegrityError", "OperationalError"):
        assert getattr(aiosqlite, name) is getattr(sqlite3, name), (
            f"aiosqlite.{name} is no longer sqlite3.{name} (aiosqlite {version('aiosqlite')}): "
            f"{WHAT_TO_DO}"
        )


# --- 3. the adapter's code, pinned ----------------------------------------------------------


@pytest.mark.parametrize("part", sorted(PINNED), ids=lambda p: p[1])
def test_the_adapter_code_we_rely_on_is_unchanged(part: tuple[str, str]) -> None:
    module, qualname = part
    got = digest(_part(module, qualname))
    assert got == PINNED[part], (
        f"{module}.{qualname} changed (SQLAlchemy {version('sqlalchemy')}, aiosqlite "
        f"{version('aiosqlite')}; pinned as of {PINNED_VERSIONS}, digest {PINNED[part]!r}, "
        f"now {got!r}): {WHAT_TO_DO}"
    )
