"""Alembic "stairway": every revision upgrades, downgrades and upgrades again; at head the
database matches the models exactly (what `alembic check` verifies); and with rows in every
table, each revision's downgrade and upgrade keep the data (compared row by row)."""

from __future__ import annotations

from datetime import date, datetime
from datetime import time as time_of_day
from decimal import Decimal
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, String, Table, func, inspect, select
from sqlalchemy.engine import Connection

from storage import migrate
from storage.db import create_engine
from storage.enums import (
    LeadSource,
    LeadStatus,
    PipelineRole,
    ReminderState,
    StageKind,
    TaskStatus,
)
from storage.models import Base


def _diff(conn: Connection, metadata: MetaData) -> list[Any]:
    # Same options as storage/migrations/env.py, so this sees what autogenerate would.
    context = MigrationContext.configure(
        conn,
        opts={"compare_type": True, "render_as_batch": conn.dialect.name == "sqlite"},
    )
    return list(compare_metadata(context, metadata))


async def schema_diff(url: str, metadata: MetaData = Base.metadata) -> list[Any]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_diff, metadata)
    finally:
        await engine.dispose()


def _short(item: Any) -> str:
    """('add_table', Table('x', ...)) -> 'add_table x' (diff items can be nested lists)."""
    if isinstance(item, list):
        return "; ".join(_short(i) for i in item)
    op, *rest = item
    names = [getattr(r, "name", None) or str(r) for r in rest if r is not None]
    return f"{op} {' '.join(str(n) for n in names)}"[:200]


async def state(url: str) -> tuple[str | None, set[str]]:
    """(current revision, tables other than alembic_version)."""

    def read(conn: Connection) -> tuple[str | None, set[str]]:
        revision = MigrationContext.configure(conn).get_current_revision()
        return revision, set(inspect(conn).get_table_names()) - {"alembic_version"}

    result: tuple[str | None, set[str]] = await _run(url, read)
    return result


async def _run(url: str, work: Any) -> Any:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            return await conn.run_sync(work)
    finally:
        await engine.dispose()


async def test_stairway(empty_db_url: str) -> None:
    url = empty_db_url
    revisions = migrate.revisions(url)
    assert revisions, "no migrations found"
    assert await state(url) == (None, set())

    for previous, revision in zip([None, *revisions], revisions, strict=False):
        await migrate.upgrade(url, revision)
        upgraded = await state(url)
        assert upgraded[0] == revision
        await migrate.downgrade(url, previous or "base")
        downgraded = await state(url)
        assert downgraded[0] == previous
        if previous is None:
            assert downgraded[1] == set(), "downgrade to base left tables behind"
        await migrate.upgrade(url, revision)
        assert await state(url) == upgraded, f"{revision}: upgrade after downgrade differs"

    diff = await schema_diff(url)
    assert not diff, "models and migrations differ at head (a migration is missing?):\n" + (
        "\n".join(_short(item) for item in diff)
    )
    assert (await state(url))[1] == set(Base.metadata.tables)

    await migrate.downgrade(url, "base")
    assert await state(url) == (None, set())


async def test_head_is_idempotent(empty_db_url: str) -> None:
    await migrate.upgrade(empty_db_url)
    first = await state(empty_db_url)
    await migrate.upgrade(empty_db_url)
    assert await state(empty_db_url) == first
    assert first[0] == migrate.revisions(empty_db_url)[-1]


@pytest.mark.parametrize("change", ["extra_table", "missing_table", "extra_column"])
async def test_schema_check_catches_drift(empty_db_url: str, change: str) -> None:
    """The comparison above is not vacuous: a model the migrations don't match is reported."""
    await migrate.upgrade(empty_db_url)
    drifted = MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.tables.values():
        if change == "missing_table" and table.name == "job_runs":
            continue  # the database has a table the models no longer declare
        copy = table.to_metadata(drifted)
        if change == "extra_column" and table.name == "deals":
            copy.append_column(Column("colour", String(20)))
    if change == "extra_table":
        Table("widgets", drifted, Column("id", Integer, primary_key=True))

    # Relative to the real comparison, so this stays a test of the checker even while the
    # models drift (test_stairway reports that drift).
    baseline = {str(item) for item in await schema_diff(empty_db_url)}
    diff = [item for item in await schema_diff(empty_db_url, drifted) if str(item) not in baseline]

    expected = {
        "extra_table": ("add_table", "widgets"),
        "missing_table": ("remove_table", "job_runs"),
        "extra_column": ("add_column", "colour"),
    }[change]
    flat = [str(item) for item in diff]
    assert len(diff) == 1, flat
    assert expected[0] in flat[0] and expected[1] in flat[0], flat


# --- data: every table holds rows, each revision goes down and up, the rows survive -----

ROWS_PER_TABLE = 3
# Tables a migration fills from other tables (0003 rebuilds the funnel facts by replaying
# stage_history): recreated by an upgrade, they must come back with the same rows.
DERIVED = frozenset({"funnel_facts", "stage_visits", "stage_visit_days"})


# Columns whose values the database itself reads (the analytics triggers): domain values.
DOMAIN: dict[tuple[str, str], tuple[str, ...]] = {
    ("stages", "kind"): tuple(StageKind),
    ("pipelines", "role"): tuple(PipelineRole),
    ("leads", "status"): tuple(LeadStatus),
    ("leads", "source"): tuple(LeadSource),
    ("tasks", "status"): tuple(TaskStatus),
    ("reminders", "state"): tuple(ReminderState),
}


def _value(table: Table, column: Column[Any], n: int, refs: dict[str, list[Any]]) -> Any:
    """Row n's value for a column, from its reflected type (FKs point at existing rows)."""
    if column.name == "lead_id" and "deal_id" in table.c:
        return None  # CHECK one_subject: a deal's row, not a lead's
    for fk in column.foreign_keys:
        target = fk.column.table.name
        if target == table.name or not refs.get(target):
            return None  # self-reference, or a table with nothing to point at yet
        ids = refs[target]
        return ids[n % len(ids)]
    if (table.name, column.name) in DOMAIN:
        values = DOMAIN[table.name, column.name]
        return str(values[(n - 1) % len(values)])
    kind = column.type
    python: type | None
    try:
        python = kind.python_type
    except NotImplementedError:
        python = None
    if python is bool:
        return n % 2 == 0
    if python is int:
        return n
    if python is float:
        return n + 0.5
    if python is Decimal:
        return Decimal(n) + Decimal("0.25")
    if python is datetime:
        return datetime(2026, 1, n, 9, 30, n)  # naive UTC, as UTCDateTime stores it
    if python is date:
        return date(2026, 1, n)
    if python is time_of_day:
        return time_of_day(9, n)
    if python is bytes:
        return f"blob-{n}".encode()
    if python in (dict, list) or "JSON" in type(kind).__name__.upper():
        return {"n": n, "text": f"value {n}"}
    length = getattr(kind, "length", None) or 40
    return f"{n}-{column.name}-{table.name}"[:length]


def _fill(conn: Connection) -> None:
    """Rows in every empty table, parents first (triggers may fill some on the way)."""
    metadata = MetaData()
    metadata.reflect(conn)
    refs: dict[str, list[Any]] = {}
    for table in metadata.sorted_tables:
        if table.name == "alembic_version":
            continue
        key = next(iter(table.primary_key.columns), None)
        empty = not conn.execute(select(func.count()).select_from(table)).scalar()
        if empty and table.name not in DERIVED:  # derived rows come from their triggers
            for n in range(1, ROWS_PER_TABLE + 1):
                row = {c.name: _value(table, c, n, refs) for c in table.columns}
                if table.name == "stage_history":  # one deal's moves: 1 -> 2 -> 3
                    row["deal_id"] = refs["deals"][0]
                    row["from_stage_id"] = refs["stages"][n - 2] if n > 1 else None
                conn.execute(table.insert().values(**row))
        if key is not None:
            refs[table.name] = list(conn.execute(select(key).order_by(key)).scalars())


Dump = dict[str, tuple[tuple[str, ...], list[tuple[Any, ...]]]]


def _dump_all(conn: Connection) -> Dump:
    metadata = MetaData()
    metadata.reflect(conn)
    result: Dump = {}
    for table in metadata.sorted_tables:
        if table.name == "alembic_version":
            continue
        names = tuple(sorted(c.name for c in table.columns))
        rows = conn.execute(select(*(table.c[name] for name in names))).all()
        result[table.name] = (names, sorted((tuple(r) for r in rows), key=repr))
    return result


def _only(dump: tuple[tuple[str, ...], list[tuple[Any, ...]]], names: tuple[str, ...]) -> Any:
    """A table's rows restricted to `names` (the columns an older revision has)."""
    have, rows = dump
    index = [have.index(n) for n in names]
    return sorted((tuple(r[i] for i in index) for r in rows), key=repr)


async def _round_trip(
    url: str, previous: str | None, revision: str, damage: Any = None
) -> list[str]:
    """Up to `revision`, rows in every table, down to `previous` (then `damage`, a sync
    function of a connection, if given: a stand-in for a lossy migration) and up again.
    Returns what differs."""
    problems: list[str] = []
    await migrate.upgrade(url, revision)
    seeded = await _run(url, _dump_all)  # what the upgrade itself puts in
    await _run(url, _fill)
    before = await _run(url, _dump_all)
    empty = [name for name, (_, rows) in before.items() if not rows]
    if empty:
        problems.append(f"{revision}: tables left without rows: {empty}")

    await migrate.downgrade(url, previous or "base")
    below = await _run(url, _dump_all)
    for name, (names, rows) in below.items():
        if rows != _only(before[name], names):
            problems.append(f"{revision} down: {name} changed")
    if damage is not None:
        await _run(url, damage)

    await migrate.upgrade(url, revision)
    after = await _run(url, _dump_all)
    if set(after) != set(before):
        problems.append(f"{revision} up: tables {sorted(set(after) ^ set(before))}")
    for name in below:
        if after.get(name) != before[name]:
            problems.append(f"{revision} up: {name} changed")
    for name in set(before) - set(below):  # the tables this revision creates
        if name in DERIVED:  # rebuilt from the history: the same rows as before
            if after.get(name) != before[name]:
                problems.append(f"{revision} up: {name} not rebuilt as it was")
        elif after.get(name) != seeded[name]:  # recreated as a fresh upgrade makes it
            problems.append(f"{revision} up: {name} differs from a fresh upgrade")
    return problems


async def test_data_survives_each_downgrade_and_upgrade(empty_db_url: str) -> None:
    """At every revision every table holds rows; going down one revision keeps the rows of
    the tables that revision does not own (every column compared), going up again keeps
    them too, and the tables it recreates come back as a fresh upgrade makes them (the
    derived analytics rebuilt from the history, row for row)."""
    revisions = migrate.revisions(empty_db_url)
    for previous, revision in zip([None, *revisions], revisions, strict=False):
        assert await _round_trip(empty_db_url, previous, revision) == []
    # At head the tables the last revision created came back empty (as a fresh upgrade makes
    # them); filled again, every table of the models holds rows.
    await _run(empty_db_url, _fill)
    counts = await _run(empty_db_url, _dump_all)
    assert set(counts) == set(Base.metadata.tables)
    assert all(rows for _, rows in counts.values())


@pytest.mark.parametrize(("loss", "table"), [("row", "job_runs"), ("value", "deals")])
async def test_data_comparison_catches_a_loss(empty_db_url: str, loss: str, table: str) -> None:
    """The comparison is not vacuous: a row lost, or a value changed, while below the last
    revision is reported."""
    revisions = migrate.revisions(empty_db_url)
    for previous, revision in zip([None, *revisions[:-1]], revisions[:-1], strict=False):
        await _round_trip(empty_db_url, previous, revision)

    def damage(conn: Connection) -> None:
        damaged = Table(table, MetaData(), autoload_with=conn)
        key = next(iter(damaged.primary_key.columns))
        first = select(func.min(key)).scalar_subquery()
        if loss == "row":
            conn.execute(damaged.delete().where(key == first))
        else:
            conn.execute(damaged.update().where(key == first).values(title="changed"))

    problems = await _round_trip(empty_db_url, revisions[-2], revisions[-1], damage)
    assert problems == [f"{revisions[-1]} up: {table} changed"]


async def test_a_downgrade_that_drops_data_names_it(
    empty_db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Going below 0011 loses stages.rot_after_days, below 0008 activities.payload (and
    more): each downgrade says so as it runs; one that drops nothing says nothing.
    (The chain: 0006, 0008, 0011, 0007, 0009, 0012.)"""
    await migrate.upgrade(empty_db_url, "0012")
    capsys.readouterr()
    await migrate.downgrade(empty_db_url, "0009")
    assert "downgrade 0012 drops: activities.payload 'dues'" in capsys.readouterr().err
    await migrate.downgrade(empty_db_url, "0007")  # 0009's: indexes only
    assert "drops" not in capsys.readouterr().err
    await migrate.downgrade(empty_db_url, "0008")  # 0007's, then 0011's
    said = capsys.readouterr().err
    assert "downgrade 0007 drops: table bot_menus" in said
    assert "downgrade 0011 drops: stages.rot_after_days" in said
    await migrate.downgrade(empty_db_url, "0006")
    said = capsys.readouterr().err
    assert "downgrade 0008 drops:" in said
    assert "payload" in said and "contacts.telegram_id" in said
