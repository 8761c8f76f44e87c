"""Alembic "stairway": every revision upgrades, downgrades and upgrades again; at head the
database matches the models exactly (what `alembic check` verifies)."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, String, Table, inspect
from sqlalchemy.engine import Connection

from storage import migrate
from storage.db import create_engine
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

    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(read)
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
