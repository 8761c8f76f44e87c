"""`voronka export-all` on the demo database: every owned table is there, with its rows."""

from __future__ import annotations

import asyncio
import json
import zipfile
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from bot import demo
from bot.cli import main
from storage import migrate
from storage.models import Base
from storage.portable import DERIVED, MACHINERY, export_all, owned_tables

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def test_every_table_is_classified_owned_or_not():
    names = {t.name for t in Base.metadata.sorted_tables}
    assert MACHINERY | DERIVED <= names  # no stale name
    assert not MACHINERY & DERIVED
    owned = {t.name for t in owned_tables()}
    assert owned == names - MACHINERY - DERIVED
    # the company's own data, by name: a table dropped from here would be lost on leaving
    assert {"deals", "leads", "contacts", "stage_history", "activities", "tasks"} <= owned
    assert {"payments", "installment_dues", "employees", "companies", "pipelines"} <= owned


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_export_all_of_the_demo_database(db_url, engine, tmp_path, monkeypatch):
    await demo.generate(engine, 40, seed=2, now=NOW)
    counts = {}
    async with engine.connect() as conn:
        for table in owned_tables():
            counts[table.name] = await conn.scalar(select(func.count()).select_from(table))
    # 40 sales deals, plus the Installment control copies of the won ones sold in parts
    assert counts["deals"] >= 40 and counts["stage_history"] > 40

    written = await asyncio.to_thread(export_all, db_url, tmp_path / "out", NOW)
    assert written == counts
    files = {p.name for p in (tmp_path / "out").iterdir()}
    assert files == {f"{name}.jsonl" for name in counts} | {"README.md", "manifest.json"}
    for name, n in counts.items():
        lines = (tmp_path / "out" / f"{name}.jsonl").read_text().splitlines()
        assert len(lines) == n, name
        if lines:  # every column of the table, as a JSON object
            table = Base.metadata.tables[name]
            assert set(json.loads(lines[0])) == {c.name for c in table.columns}
    readme = (tmp_path / "out" / "README.md").read_text()
    for name in counts:
        assert f"## {name}.jsonl" in readme
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["rows"] == counts and {manifest["schema"]} == migrate.head_revisions()
    deal = json.loads((tmp_path / "out" / "deals.jsonl").read_text().splitlines()[0])
    assert datetime.fromisoformat(deal["created_at"]) <= NOW  # ISO 8601 with its offset
    assert isinstance(deal["amount"], int)  # money in kopecks, as stored

    # the same through the command, into a zip; a non-empty folder is refused
    zipped = tmp_path / "all.zip"
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert await asyncio.to_thread(main, ["export-all", str(zipped)]) == 0
    with zipfile.ZipFile(zipped) as archive:
        names = set(archive.namelist())
        assert names == files
        assert archive.read("deals.jsonl").decode().count("\n") == counts["deals"]
    assert await asyncio.to_thread(main, ["export-all", str(tmp_path / "out")]) == 2
