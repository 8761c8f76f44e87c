"""Unit of work: read-only transactions take no write lock and cannot commit."""

from __future__ import annotations

import asyncio

import pytest

from services.sales import deals
from tests.factories import new_deal


async def test_read_only_uow_does_not_block_a_writer(uow_factory, make_actor):
    ann = await make_actor(roles=("manager",))
    card = await new_deal(uow_factory, ann)
    async with uow_factory.read_only() as reader:
        assert (await deals.get_card(reader, ann, card.id)).id == card.id  # reading...
        async with uow_factory() as writer:  # ...while someone writes and commits
            await deals.add_note(writer, ann, card.id, "written during a read")
        with pytest.raises(RuntimeError):
            await reader.commit()
    async with uow_factory.read_only() as uow:
        assert (await deals.get_card(uow, ann, card.id)).notes[0].text == "written during a read"


async def test_sqlite_writers_take_turns_in_arrival_order(uow_factory, make_actor, backend):
    """storage/db.py's writer queue: concurrent write transactions of one process get the
    write lock in the order they asked for it (without it they sleep in SQLite's busy
    handler and wake at random)."""
    if backend != "sqlite":
        pytest.skip("the writer queue is SQLite's; PostgreSQL has row locks")
    ann = await make_actor(roles=("manager",))
    cards = [await new_deal(uow_factory, ann, amount="1000") for _ in range(3)]
    order: list[int] = []

    async def write(i: int) -> None:
        async with uow_factory() as uow:
            await deals.add_note(uow, ann, cards[i % 3].id, f"note {i}")  # BEGIN IMMEDIATE
            order.append(i)

    await asyncio.gather(*(write(i) for i in range(24)))  # opens the pool's connections
    order.clear()
    await asyncio.gather(*(write(i) for i in range(24)))
    assert order == list(range(24))


async def test_process_cache_is_dropped_when_another_writer_changes_the_staff(
    uow_factory, make_actor, engine
):
    """The staff epoch is bumped by a trigger, whoever writes (here: raw SQL, no service)."""
    from services.team import employees

    ann = await make_actor(roles=("manager",), name="Ann")
    async with uow_factory() as uow:
        actor = await employees.actor_for(uow, ann.telegram_id)
        assert actor is not None and actor.name == "Ann"
    async with engine.begin() as conn:
        await conn.exec_driver_sql(f"UPDATE employees SET name = 'Anna' WHERE id = {ann.id}")
    async with uow_factory() as uow:
        actor = await employees.actor_for(uow, ann.telegram_id)
        assert actor is not None and actor.name == "Anna"
