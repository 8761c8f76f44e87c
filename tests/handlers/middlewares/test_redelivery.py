"""A redelivered Telegram update (webhook retry, polling restart) has no second effect."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from services.sales import deals
from storage.models import Activity, ProcessedUpdate
from storage.uow import DuplicateUpdate
from tests.factories import new_deal
from tests.tg import tg_user


async def test_same_update_twice_moves_once(harness, make_actor, uow_factory):
    ann = await make_actor(roles=("manager",))
    deal = await new_deal(uow_factory, ann, amount="1000")
    user = tg_user(ann.telegram_id)
    card = await harness.send(user, f"/deal {deal.id}")
    moved = await harness.tap(user, card.button("▶"), card)
    update = harness.last_update
    again = await harness.feed(update)
    assert "<b>КП отправлено</b>" in moved.last.text
    assert again.requests == []  # silently skipped: no alert, no edit
    async with uow_factory() as uow:
        assert len(await uow.repo.history.for_deal(deal.id)) == 2
        stored = await uow.session.get(ProcessedUpdate, update.update_id)
    assert stored is not None


async def test_racing_deliveries_commit_one_effect(make_actor, uow_factory):
    """Two deliveries of one update both pass the pre-check; the second commit is refused
    and takes its effect (a note) back with it."""
    ann = await make_actor(roles=("manager",))
    deal = await new_deal(uow_factory, ann)
    async with uow_factory() as first:
        first.bind_update(555)
        await deals.add_note(first, ann, deal.id, "first delivery")
    with pytest.raises(DuplicateUpdate):
        async with uow_factory() as second:
            second.bind_update(555)
            await deals.add_note(second, ann, deal.id, "second delivery")
    async with uow_factory() as uow:
        texts = (
            await uow.session.scalars(select(Activity.text).where(Activity.kind == "note"))
        ).all()
        ids = await uow.session.scalar(select(func.count()).select_from(ProcessedUpdate))
    assert texts == ["first delivery"] and ids == 1
