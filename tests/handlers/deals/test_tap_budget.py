"""The round-trip budget of the tap managers make all day: a stage move through the real
dispatcher executes at most TAP_BUDGET SQL statements (BEGIN/COMMIT/ROLLBACK not counted),
on SQLite and on PostgreSQL. Today's count is asserted exactly, so a change that adds a
statement to the hot path has to say so here."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from handlers.ui.callbacks import DealAction, DealCb
from tests.factories import new_deal
from tests.tg import tg_user

TAP_BUDGET = 6
TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn, _cursor, statement, _params, _context, _many) -> None:
        if not statement.lstrip().upper().startswith(TRANSACTION_CONTROL):
            seen.append(" ".join(statement.split())[:120])

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def test_a_stage_move_stays_within_its_statement_budget(
    harness, make_actor, uow_factory, engine
):
    ann = await make_actor(roles=("manager",))
    deal = await new_deal(uow_factory, ann, name="Budget Client", amount="1000")
    user = tg_user(ann.telegram_id)
    card = await harness.send(user, f"/deal {deal.id}")  # warms the process cache
    forward = DealCb(action=DealAction.NEXT, deal_id=deal.id, v=deal.version).pack()
    with statements(engine) as seen:
        moved = await harness.tap(user, forward, card)
    assert "<b>КП отправлено</b>" in moved.last.text
    assert len(seen) <= TAP_BUDGET, "\n".join(seen)
    # the move really happened, once: its history row and the update id were written
    assert sum(s.startswith("INSERT INTO stage_history") for s in seen) == 1
    assert sum(s.startswith("INSERT INTO processed_updates") for s in seen) == 1


async def test_the_cache_sees_a_role_change_made_elsewhere(
    harness, make_actor, uow_factory, engine
):
    """The cached actor is dropped when employees change (another worker, the CLI): a
    deactivated manager's next tap is refused."""
    ann = await make_actor(roles=("manager",))
    deal = await new_deal(uow_factory, ann, amount="1000")
    user = tg_user(ann.telegram_id)
    card = await harness.send(user, f"/deal {deal.id}")
    assert "Сбор данных" in card.last.text
    async with engine.begin() as conn:  # not through any service: a trigger must notice
        await conn.exec_driver_sql(f"UPDATE employees SET active = false WHERE id = {ann.id}")
    refused = await harness.tap(
        user, DealCb(action=DealAction.NEXT, deal_id=deal.id, v=deal.version).pack(), card
    )
    assert refused.alert is not None
    async with uow_factory() as uow:
        assert len(await uow.repo.history.for_deal(deal.id)) == 1  # not moved
