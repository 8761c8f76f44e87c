"""Unit of work: read-only transactions take no write lock and cannot commit."""

from __future__ import annotations

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
