"""Dump every table's rows: equal dumps mean an unchanged database."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.models import Base

# Delivery bookkeeping, not data anyone saved: every handled update that wrote something,
# the FSM included (a wizard step), records its id there (bot/middlewares.py).
NOT_DATA = frozenset({"processed_updates"})


async def dump(engine: AsyncEngine) -> dict[str, list[tuple[Any, ...]]]:
    result: dict[str, list[tuple[Any, ...]]] = {}
    async with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if table.name in NOT_DATA:
                continue
            rows = (await conn.execute(select(table))).all()
            result[table.name] = sorted((tuple(r) for r in rows), key=repr)
        await conn.rollback()
    return result
