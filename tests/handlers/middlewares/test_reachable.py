"""Someone who had blocked the bot writes again: they are reachable again."""

from __future__ import annotations

from storage.models import Employee
from tests.tg import tg_user


async def test_writing_again_clears_unreachable(harness, make_actor, uow_factory):
    ann = await make_actor(roles=("manager",))
    async with uow_factory() as uow:
        emp = await uow.repo.get(Employee, ann.id)
        emp.unreachable = True
        await uow.commit()
    answer = await harness.send(tg_user(ann.telegram_id), "/menu")
    assert "Главное меню" in answer.last.text
    async with uow_factory() as uow:
        assert (await uow.repo.get(Employee, ann.id)).unreachable is False
