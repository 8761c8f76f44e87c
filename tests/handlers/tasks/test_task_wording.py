"""Task cards say what kind of task they are (issue 12): a deferred-demand task shows the
client's need, not "What to measure"; at its time it is "due now", overdue only later."""

from __future__ import annotations

from datetime import timedelta

from handlers.ui.callbacks import TaskAction, TaskCb
from services.sales import deals
from services.tasks import DUE_NOW
from storage.enums import TaskKind
from tests.factories import new_deal
from tests.tg import tg_user


async def test_deferred_task_card_wording(harness, make_actor, uow_factory, clock):
    ann = await make_actor(roles=("manager",), name="Ann")
    deal = await new_deal(uow_factory, ann, amount="1000", need="Балкон под ключ")
    due = clock.now() + timedelta(days=3)
    async with uow_factory() as uow:
        await deals.defer(uow, ann, deal.id, due, deal.version)
    async with uow_factory() as uow:
        [task] = await uow.repo.tasks.open_for_deal(deal.id, TaskKind.DEFERRED_CONTACT)
    user = tg_user(ann.telegram_id)
    open_task = TaskCb(action=TaskAction.OPEN, task_id=task.id)

    clock.advance(days=3)  # exactly its time
    card = await harness.tap(user, open_task)
    text = card.last.text
    assert "Что замерить" not in text and "🔎 Запрос клиента: Балкон под ключ" in text
    assert "⏰ Пора" in text and "Просрочено" not in text

    clock.advance(minutes=DUE_NOW.total_seconds() / 60 - 1)  # still due now
    assert "Просрочено" not in (await harness.tap(user, open_task)).last.text
    clock.advance(minutes=2)  # now it is late
    assert "🔴 Просрочено" in (await harness.tap(user, open_task)).last.text
