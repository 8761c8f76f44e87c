"""`voronka export-all`: every table a company owns as JSON Lines, with a README of the fields.

One ``<table>.jsonl`` per table in `OWNED` (one JSON object per row, keys = column names,
rows in primary-key order), plus ``README.md`` describing each file's fields (type, may be
empty, what it points to) and ``manifest.json`` (row counts, schema revision, when). Values:
moments as ISO 8601 with their offset (UTC), dates as ``YYYY-MM-DD``, money as whole
kopecks (as stored), lists and objects as JSON.

Every table is classified (`OWNED`, `MACHINERY`, `DERIVED`); tests/unit/core/test_export_all.py
fails on a new table nobody classified.
"""

from __future__ import annotations

import asyncio
import base64
import enum
import json
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Table, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.db import create_engine
from storage.models import Base

# Bookkeeping of the running bot, not anything a person entered.
MACHINERY = frozenset(
    {
        "processed_updates",  # Telegram update ids already applied
        "idempotency_keys",  # the intake API's replay protection
        "cache_epochs",  # per-process cache counters
        "bot_menus",  # digests of the command menus set in Telegram
        "job_runs",  # last runs of scheduled jobs, the bots' heartbeats
        "assignment_cursors",  # the round-robin position of lead assignment
        "reminders",  # the outbox: messages queued for sending
    }
)
# Kept by database triggers from stage_history, deals and leads (recomputed from them).
DERIVED = frozenset({"funnel_facts", "stage_visits", "stage_visit_days"})


def owned_tables() -> list[Table]:
    return [t for t in Base.metadata.sorted_tables if t.name not in MACHINERY | DERIVED]


def _json(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _describe(table: Table) -> Iterator[str]:
    model = next((m for m in Base.registry.mappers if m.local_table is table), None)
    doc = (model.class_.__doc__ or "").strip() if model is not None else ""
    yield f"## {table.name}.jsonl"
    yield ""
    if doc:
        yield " ".join(doc.split("\n\n")[0].split())
        yield ""
    yield "| field | type | empty allowed | refers to |"
    yield "|---|---|---|---|"
    for column in table.columns:
        try:
            kind = str(column.type.python_type.__name__)
        except NotImplementedError:
            kind = str(column.type)
        refs = ", ".join(f"{fk.column.table.name}.{fk.column.name}" for fk in column.foreign_keys)
        key = " (key)" if column.primary_key else ""
        yield f"| {column.name}{key} | {kind} | {'yes' if column.nullable else 'no'} | {refs} |"
    yield ""


async def _write_table(conn: AsyncConnection, table: Table, path: Path) -> int:
    count = 0
    order = list(table.primary_key.columns) or list(table.columns)
    result = await conn.stream(select(table).order_by(*order).execution_options(yield_per=1000))
    with path.open("w", encoding="utf-8") as out:
        async for row in result:
            out.write(json.dumps(dict(row._mapping), default=_json, ensure_ascii=False))
            out.write("\n")
            count += 1
    return count


def export_all(url: str, target: Path, at: datetime) -> dict[str, int]:
    """Write the export into `target` (a new or empty directory, or a ``.zip`` file);
    returns the row count of each file. Runs its own event loop (call it in a thread)."""
    if target.suffix == ".zip":
        with tempfile.TemporaryDirectory() as tmp:
            counts = export_all(url, Path(tmp) / "export", at)
            with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for path in sorted((Path(tmp) / "export").iterdir()):
                    archive.write(path, path.name)
            return counts
    if target.exists() and any(target.iterdir()):
        raise FileExistsError(f"{target} is not empty")
    target.mkdir(parents=True, exist_ok=True)
    try:
        revision, counts = asyncio.run(_write_tables(url, target))
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    manifest = {"exported_at": at.isoformat(), "schema": revision, "rows": counts}
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    lines = [
        "# Voronka export",
        "",
        f"Exported {at.isoformat()} from schema {revision}. One JSON object per line; "
        "keys are the fields below. Moments are ISO 8601 in UTC, money amounts are whole "
        "kopecks (12345600 is 123 456.00), `refers to` names the file and field an id "
        "points to. Row counts: manifest.json.",
        "",
        "Not exported: the bot's bookkeeping (" + ", ".join(sorted(MACHINERY)) + ") and "
        "report tables the database recomputes from stage_history, deals and leads ("
        + ", ".join(sorted(DERIVED))
        + "). Files people sent are referred to by Telegram file ids (activities); their "
        "stored copies are in the data directory's files folder, named by their SHA-256.",
        "",
    ]
    for table in owned_tables():
        lines.extend(_describe(table))
    (target / "README.md").write_text("\n".join(lines))
    return counts


async def _write_tables(url: str, target: Path) -> tuple[str, dict[str, int]]:
    engine = create_engine(url)
    counts: dict[str, int] = {}
    try:
        async with engine.connect() as conn:
            if engine.dialect.name == "postgresql":  # every table from one snapshot
                await conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
            revision = str(await conn.scalar(text("SELECT version_num FROM alembic_version")))
            for table in owned_tables():
                counts[table.name] = await _write_table(conn, table, target / f"{table.name}.jsonl")
            await conn.rollback()
    finally:
        await engine.dispose()
    return revision, counts
