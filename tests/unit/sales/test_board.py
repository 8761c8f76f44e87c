"""The board service (services/sales/board.py) on SQLite and PostgreSQL: columns with counts
and money, pages, scopes, days in stage and the stale mark from a stage's rot_after_days."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.errors import NotFound, PermissionDenied, ValidationError
from services.sales import board, deals
from services.sales.pipeline_config import ConfigError, parse_config
from services.sales.pipelines import sync_config
from tests.factories import cast, new_deal, order_at_installation

# The shipped pipelines without their own limits: each test sets the one it needs.
DEFAULT = re.sub(
    r"^\s*rot_after_days = \d+\n",
    "",
    (Path(__file__).resolve().parents[3] / "config" / "pipelines" / "default.toml").read_text(
        encoding="utf-8"
    ),
    flags=re.M,
)
STAGE = '  code = "data_collection"\n'


def with_rot(days: str) -> str:
    assert DEFAULT.count(STAGE) == 1
    return DEFAULT.replace(STAGE, STAGE + f"  rot_after_days = {days}\n")


async def test_rot_after_days_is_validated_and_synced_to_the_stage(uow_factory):
    with pytest.raises(ConfigError) as info:
        parse_config(with_rot("0"))
    assert any("rot_after_days" in p for p in info.value.problems)
    async with uow_factory() as uow:
        await sync_config(uow, parse_config(with_rot("3")))
    async with uow_factory() as uow:
        sales = await uow.repo.pipelines.by_role("sales")
        stages = {s.code: s for s in await uow.repo.pipelines.stages(sales.id)}
    assert stages["data_collection"].rot_after_days == 3
    assert stages["proposal_sent"].rot_after_days is None


async def test_columns_counts_money_days_and_stale(uow_factory, make_actor, clock):
    async with uow_factory() as uow:
        await sync_config(uow, parse_config(with_rot("3")))
    ann = await make_actor(roles=("manager",))
    old = await new_deal(uow_factory, ann, name="Старая", amount="100000")
    clock.advance(days=4)
    new = await new_deal(uow_factory, ann, name="Новая", amount="25000,50")
    async with uow_factory() as uow:
        result = await board.board(uow, ann)
    assert result.pipeline.role == "sales" and result.manager_id == ann.id
    assert [c.stage.code for c in result.columns] == [
        "data_collection",
        "proposal_sent",
        "measurement_scheduled",
        "measurer_assigned",
        "measurement_done",
        "contract_signed",
        "conditional_refusal",
    ]
    assert [t.kind for t in result.targets] == ["won", "lost"]
    first = result.columns[0]
    assert (first.count, first.amount, first.rot_after_days) == (2, 12_500_050, 3)
    assert [c.id for c in first.cards] == [old.id, new.id]  # longest in the stage first
    assert [(c.days_in_stage, c.stale) for c in first.cards] == [(4, True), (0, False)]
    assert not first.more
    assert all(c.count == 0 and not c.cards for c in result.columns[1:])
    assert {p.role for p in result.pipelines} == {
        "sales",
        "deferred",
        "installments",
        "fulfilment",
        "claims",
    }


async def test_the_board_shows_the_fulfilment_pipeline(uow_factory, make_actor, clock):
    staff = await cast(make_actor, "ann", "lee")
    _, order_id = await order_at_installation(uow_factory, clock, staff["ann"])
    async with uow_factory() as uow:
        fulfilment = await uow.repo.pipelines.by_role("fulfilment")
        assert fulfilment is not None
        result = await board.board(uow, staff["lee"], fulfilment.id)
    assert [c.stage.code for c in result.columns] == [
        "production_ordered",
        "in_production",
        "ready",
        "delivery_scheduled",
        "installation_scheduled",
        "installed",
    ]
    [(column, card)] = [(c, c.cards[0]) for c in result.columns if c.count]
    assert column.stage.code == "installation_scheduled" and card.id == order_id
    assert (column.count, column.amount) == (1, 10_000_000)
    assert [t.code for t in result.targets] == ["accepted", "cancelled"]


async def test_pages_scopes_and_refusals(uow_factory, make_actor):
    ann = await make_actor(roles=("manager",), name="Анна")
    bob = await make_actor(roles=("manager",), name="Борис")
    lea = await make_actor(roles=("leader",), name="Лена")
    measurer = await make_actor(roles=("measurer",), name="Марк")
    mine = [await new_deal(uow_factory, ann, name=f"Анна {i}") for i in range(3)]
    theirs = await new_deal(uow_factory, bob, name="Борис 1")
    async with uow_factory() as uow:
        everyone = await board.board(uow, lea, per_column=2)
        only_bob = await board.board(uow, lea, manager_id=bob.id)
        ann_asks_bob = await board.board(uow, ann, manager_id=bob.id)
        stage = everyone.columns[0].stage.id
        rest = await board.column(uow, lea, everyone.pipeline.id, stage, offset=2, limit=10)
    first = everyone.columns[0]
    assert first.count == 4 and len(first.cards) == 2 and first.more
    shown = [c.id for c in first.cards] + [c.id for c in rest]
    assert sorted(shown) == sorted([*(d.id for d in mine), theirs.id])
    assert [c.id for c in only_bob.columns[0].cards] == [theirs.id]
    assert only_bob.columns[0].cards[0].manager_name == "Борис"
    assert ann_asks_bob.manager_id == ann.id  # a manager's board is always her own
    assert sorted(c.id for c in ann_asks_bob.columns[0].cards) == sorted(d.id for d in mine)
    async with uow_factory() as uow:
        with pytest.raises(PermissionDenied):
            await board.board(uow, measurer)
        leads = await uow.repo.pipelines.by_role("leads")
        with pytest.raises(NotFound):
            await board.board(uow, lea, pipeline_id=leads.id)  # leads have their own cards
        with pytest.raises(NotFound):
            await board.board(uow, lea, pipeline_id=10_000)
        with pytest.raises(ValidationError):
            await board.board(uow, lea, per_column=0)
        with pytest.raises(ValidationError):
            await board.column(uow, lea, everyone.pipeline.id, stage, offset=-1)
        with pytest.raises(NotFound):
            await board.column(uow, lea, everyone.pipeline.id, 10_000)


async def test_deal_view_has_history_and_checks_the_right(uow_factory, make_actor):
    ann = await make_actor(roles=("manager",))
    bob = await make_actor(roles=("manager",))
    deal = await new_deal(uow_factory, ann, amount="50000")
    async with uow_factory() as uow:
        await deals.advance(uow, ann, deal.id, deal.version)
    async with uow_factory() as uow:
        view = await board.deal_view(uow, ann, deal.id)
    assert view.card.stage.code == "proposal_sent"
    assert [h.to_stage for h in view.history][:2] == ["КП отправлено", "Сбор данных"]
    async with uow_factory() as uow:
        with pytest.raises(PermissionDenied):
            await board.deal_view(uow, bob, deal.id)
