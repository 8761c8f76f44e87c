"""The bulk loader: many rows into many tables on one connection, fast (``voronka demo``,
bot/demo.py). Dialect differences live here.

Per table and batch the rows go, by executemany, into a staging table (temporary, no
index, no constraint: cheap), then with one ``INSERT ... SELECT`` into the real table. One
statement per table and batch rather than one per row matters on SQLite: it runs each
statement that may fail half-way (foreign keys, several indexes, triggers) with a statement
journal, a cost per statement; and stage history rows fire the analytics triggers. On
SQLite the values are also turned into its storage format beforehand (`prepare`, which may
run in a worker thread) and handed to the driver as they are: SQLAlchemy's per-value bind
processing would otherwise be most of the time at a million deals. The rows' ids are the
caller's; on PostgreSQL `reset_sequences` moves the sequences past them afterwards.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    Integer,
    MetaData,
    Table,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storage.models import Base, Employee
from storage.types import UTCDateTime
from storage.uow import UnitOfWork


@dataclass(frozen=True)
class _Statement:
    model: type[Base]
    statement: Any  # SQL text for the SQLite driver, else a Core insert
    params: list[Any]
    names: list[str]  # the columns given


@dataclass(frozen=True)
class Prepared:
    """A batch as the loader sends it (see `BulkLoader.prepare`)."""

    statements: tuple[_Statement, ...]


class BulkLoader:
    """Bulk inserts into `models` (in an order that satisfies the foreign keys) on one
    connection; the caller commits (`commit`) between batches."""

    def __init__(self, conn: AsyncConnection, staging: dict[type[Base], Table], raw: bool) -> None:
        self.conn = conn
        self.staging = staging
        self.raw = raw  # SQLite: values in its storage format, straight to the driver

    @classmethod
    @asynccontextmanager
    async def open(
        cls, engine: AsyncEngine, models: Sequence[type[Base]]
    ) -> AsyncIterator[BulkLoader]:
        async with engine.connect() as conn:
            sqlite = conn.dialect.name == "sqlite"
            if sqlite:
                # For this bulk load only (this connection): a bigger page cache, and
                # statement journals (each insert that fires the analytics triggers opens
                # one) in memory.
                await conn.exec_driver_sql("PRAGMA cache_size = -131072")
                await conn.exec_driver_sql("PRAGMA temp_store = MEMORY")
            await conn.commit()
            metadata = MetaData()
            staging = {
                model: Table(
                    f"demo_{model.__tablename__}",
                    metadata,
                    Column("demo_n", Integer, primary_key=True),
                    *(Column(c.name, c.type) for c in model.__table__.columns),
                    prefixes=["TEMPORARY"],
                )
                for model in models
            }
            await conn.run_sync(metadata.create_all)
            yield cls(conn, staging, raw=sqlite)

    async def commit(self) -> None:
        await self.conn.commit()

    # --- small look-ups and inserts, straight into the real tables -------------------------

    async def employee_ids(self, telegram_ids: Collection[int]) -> dict[int, int]:
        """Telegram id -> employee id, of those that exist."""
        rows = await self.conn.execute(
            select(Employee.telegram_id, Employee.id).where(
                Employee.telegram_id.in_(list(telegram_ids))
            )
        )
        return {tid: eid for tid, eid in rows}

    async def insert(self, model: type[Base], rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            await self.conn.execute(insert(model), list(rows))

    # --- batches ----------------------------------------------------------------------------

    def prepare(self, rows: Mapping[type[Base], list[dict[str, Any]]]) -> Prepared:
        """Turn rows per model (each a dict of the same columns) into what `write` sends.
        No I/O: safe in a worker thread while `write` sends the previous batch."""
        statements = []
        for model, model_rows in rows.items():
            if not model_rows:
                continue
            names = list(model_rows[0])
            staging = self.staging[model]
            if self.raw:
                sql, params = _raw_statement(staging, names, model_rows)
                statements.append(_Statement(model, sql, params, names))
            else:
                statements.append(_Statement(model, insert(staging), model_rows, names))
        return Prepared(tuple(statements))

    async def write(self, batch: Prepared) -> None:
        """Each table's rows into its staging table, then into the table, in id order of
        arrival (the caller commits)."""
        for item in batch.statements:
            if isinstance(item.statement, str):
                await self.conn.exec_driver_sql(item.statement, item.params)
            else:
                await self.conn.execute(item.statement, item.params)
            columns = ", ".join(item.names)
            staging = self.staging[item.model].name
            await self.conn.execute(
                text(
                    f"INSERT INTO {item.model.__tablename__} ({columns}) "
                    f"SELECT {columns} FROM {staging} ORDER BY demo_n"
                )
            )
            await self.conn.execute(text(f"DELETE FROM {staging}"))

    async def reset_sequences(self, models: Sequence[type[Base]]) -> None:
        """PostgreSQL: explicit ids do not move a table's sequence; move each past the
        largest id (and commit). SQLite needs nothing."""
        if self.conn.dialect.name != "postgresql":
            return
        for model in models:
            table = model.__tablename__
            await self.conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT COALESCE(max(id), 0) + 1 FROM {table}), false)"
                )
            )
        await self.conn.commit()


async def row_count(uow: UnitOfWork, model: type[Base]) -> int:
    return int(await uow.session.scalar(select(func.count()).select_from(model)) or 0)


async def max_id(uow: UnitOfWork, model: type[Base]) -> int:
    """The largest id in the model's table (0 when empty)."""
    top = await uow.session.scalar(select(func.max(model.__table__.c.id)))
    return int(top or 0)


def _raw_statement(
    table: Table, names: list[str], rows: list[dict[str, Any]]
) -> tuple[str, list[tuple[Any, ...]]]:
    """An INSERT for the SQLite driver, with the values in SQLite's storage format."""
    get = itemgetter(*names)
    converters = [
        (i, convert)
        for i, name in enumerate(names)
        if (convert := _sqlite_value(table.c[name].type)) is not None
    ]
    params = []
    for row in rows:
        values = list(get(row)) if len(names) > 1 else [get(row)]
        for i, convert in converters:
            if values[i] is not None:
                values[i] = convert(values[i])
        params.append(tuple(values))
    marks = ", ".join("?" * len(names))
    return f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})", params


def _sqlite_value(kind: Any) -> Callable[[Any], Any] | None:
    """How SQLAlchemy would store a value of this column type in SQLite."""
    if isinstance(kind, UTCDateTime):  # the bulk rows' datetimes are all in UTC
        return lambda v: v.replace(tzinfo=None).isoformat(" ", "microseconds")
    if isinstance(kind, JSON):
        return json.dumps
    if isinstance(kind, Boolean):
        return int
    if isinstance(kind, Date):
        return lambda v: v.isoformat()
    return None
