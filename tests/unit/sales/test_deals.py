"""Deals service: moves under pipeline rules, versions, refusals, deferral, permissions."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from services import errors
from services.errors import (
    MeasurerRequired,
    NotFound,
    PermissionDenied,
    RuleViolation,
    StaleVersion,
    ValidationError,
)
from services.sales import deals, pipelines
from services.sales import stage as stage_core
from storage.models import Task
from tests.factories import new_deal, with_measurer


async def stage_id(uow_factory, code: str, pipeline: str = "sales") -> int:
    async with uow_factory() as uow:
        p = await uow.repo.pipelines.by_code(pipeline)
        s = await uow.repo.pipelines.stage_by_code(p.id, code)
        return s.id


async def tasks_of(uow_factory, deal_id: int) -> list[Task]:
    async with uow_factory() as uow:
        return await uow.repo.tasks.open_for_deal(deal_id)


async def test_advance_one_step_and_back(uow_factory, make_actor):
    ann = await make_actor(roles=("manager",))
    card = await new_deal(uow_factory, ann, amount="100000")
    assert card.stage.code == "data_collection"
    assert card.next_stage is not None and card.next_stage.code == "proposal_sent"
    assert card.prev_stage is None
    async with uow_factory() as uow:
        card = await deals.advance(uow, ann, card.id, card.version)
    assert card.stage.code == "proposal_sent"
    assert card.prev_stage is not None and card.prev_stage.code == "data_collection"
    async with uow_factory() as uow:
        card = await deals.step_back(uow, ann, card.id, card.version)
    assert card.stage.code == "data_collection"
    async with uow_factory() as uow:
        rows = await uow.repo.history.for_deal(card.id)
    assert [r.actor_id for r in rows] == [ann.id] * 3


async def test_strict_pipeline_refuses_skipping(uow_factory, make_actor, db_snapshot):
    ann = await make_actor(roles=("manager",))
    card = await new_deal(uow_factory, ann, amount="100000")
    target = await stage_id(uow_factory, "contract_signed")
    before = await db_snapshot()
    with pytest.raises(errors.StrictOrder) as strict:
        async with uow_factory() as uow:
            await deals.move_to(uow, ann, card.id, target, card.version)
    assert strict.value.rule == "no_skipping" and strict.value.key == "rule.no_skipping"
    lost = await stage_id(uow_factory, "lost")
    with pytest.raises(errors.ReasonRequired) as err:
        async with uow_factory() as uow:
            await deals.move_to(uow, ann, card.id, lost, card.version)
    assert err.value.rule == "reason_required"
    other_pipeline_stage = await stage_id(uow_factory, "waiting", "deferred")
    with pytest.raises(NotFound):
        async with uow_factory() as uow:
            await deals.move_to(uow, ann, card.id, other_pipeline_stage, card.version)
    with pytest.raises(NotFound):
        async with uow_factory() as uow:
            await deals.move_to(uow, ann, card.id, 999_999, card.version)
    assert await db_snapshot() == before


async def test_required_fields_are_asked_for(uow_factory, make_actor, clock, db_snapshot):
    ann = await make_actor(roles=("manager",))
    card = await new_deal(uow_factory, ann)  # no amount
    before = await db_snapshot()
    with pytest.raises(errors.FieldRequired) as required:
        async with uow_factory() as uow:
            await deals.advance(uow, ann, card.id, card.version)
    assert required.value.rule == "field_required" and required.value.params["field"] == "amount"
    assert required.value.fields == ["amount"]
    with pytest.raises(ValidationError):
        async with uow_factory() as uow:
            await deals.advance(uow, ann, card.id, card.version, fields={"amount": "-1"})
    assert await db_snapshot() == before
    async with uow_factory() as uow:
        card = await deals.advance(uow, ann, card.id, card.version, fields={"amount": "75 000"})
    assert card.stage.code == "proposal_sent" and card.amount == 7_500_000
    with pytest.raises(ValidationError) as past:
        async with uow_factory() as uow:
            await deals.advance(
                uow,
                ann,
                card.id,
                card.version,
                fields={"measurement_at": clock.now() - timedelta(hours=1), "address": "Мира 1"},
            )
    assert past.value.code == "in_the_past"
    async with uow_factory() as uow:
        card = await deals.advance(
            uow,
            ann,
            card.id,
            card.version,
            fields={"measurement_at": clock.now() + timedelta(days=1), "address": "Мира 1"},
        )
    assert card.stage.code == "measurement_scheduled" and card.address == "Мира 1"


async def test_entering_measurement_scheduled_creates_one_task_for_head(
    uow_factory, make_actor, clock
):
    ann = await make_actor(roles=("manager",))
    card = await new_deal(uow_factory, ann, amount="1000")
    fields = {"measurement_at": clock.now() + timedelta(days=2), "address": "Мира 1"}
    async with uow_factory() as uow:
        card = await deals.advance(uow, ann, card.id, card.version)
    async with uow_factory() as uow:
        card = await deals.advance(uow, ann, card.id, card.version, fields=fields)
    tasks = await tasks_of(uow_factory, card.id)
    assert [(t.kind, t.assignee_role, t.assignee_id) for t in tasks] == [
        ("assign_measurer", "head_measurer", None)
    ]
    assert tasks[0].due_at == clock.now() + timedelta(hours=2)
    async with uow_factory() as uow:  # back and forth again: still one open task
        card = await deals.step_back(uow, ann, card.id, card.version)
    async with uow_factory() as uow:
        card = await deals.advance(uow, ann, card.id, card.version)
    assert len(await tasks_of(uow_factory, card.id)) == 1


async def test_stale_version_is_refused(uow_factory, make_actor, db_snapshot):
    ann = await make_actor(roles=("manager",))
    card = await new_deal(uow_factory, ann, amount="1000")
    async with uow_factory() as uow:
        moved = await deals.advance(uow, ann, card.id, card.version)
    before = await db_snapshot()
    with pytest.raises(StaleVersion) as err:  # the same card tapped twice
        async with uow_factory() as uow:
            await deals.advance(uow, ann, card.id, card.version)
    assert err.value.current == moved.version
    assert await db_snapshot() == before


async def test_lose_reopen_and_conditional_refusal(uow_factory, make_actor, db_snapshot):
    ann = await make_actor(roles=("manager",))
    card = await new_deal(uow_factory, ann, amount="1000")
    async with uow_factory() as uow:
        card = await deals.advance(uow, ann, card.id, card.version)
    before = await db_snapshot()
    with pytest.raises(ValidationError) as err:
        async with uow_factory() as uow:
            await deals.lose(uow, ann, card.id, "made_up_reason", expected_version=card.version)
    assert err.value.field == "reason"
    assert await db_snapshot() == before

    async with uow_factory() as uow:
        card = await deals.lose(uow, ann, card.id, "thinking", "позвонить весной", card.version)
    assert card.stage.code == "conditional_refusal" and card.stage.kind == "frozen"
    assert not card.closed and card.can_reopen and card.loss_reason is not None
    assert card.loss_reason.startswith("Условный")
    with pytest.raises(RuleViolation) as frozen:
        async with uow_factory() as uow:
            await deals.advance(uow, ann, card.id, card.version)
    assert frozen.value.rule == "no_next_stage" or frozen.value.rule == "deal_frozen"
    async with uow_factory() as uow:
        card = await deals.reopen(uow, ann, card.id, card.version)
    assert card.stage.code == "proposal_sent" and card.loss_reason is None

    async with uow_factory() as uow:
        card = await deals.lose(uow, ann, card.id, "expensive", None, card.version)
    assert card.stage.code == "lost" and card.closed and card.loss_reason == "Дорого"
    with pytest.raises(RuleViolation) as closed:
        async with uow_factory() as uow:
            await deals.advance(uow, ann, card.id, card.version)
    assert closed.value.rule in ("no_next_stage", "deal_closed")
    async with uow_factory() as uow:
        history = await deals.history(uow, ann, card.id)
    assert history.items[0].to_stage == "Провал" and history.items[0].reason == "Дорого"


async def test_win_only_from_the_last_stage(uow_factory, make_actor, clock):
    ann = await make_actor(roles=("manager",))
    card = await new_deal(uow_factory, ann, amount="1000")
    with pytest.raises(RuleViolation):
        async with uow_factory() as uow:
            await deals.win(uow, ann, card.id, card.version)
    fields: stage_core.Fields | None = {
        "measurement_at": clock.now() + timedelta(days=1),
        "address": "Мира 1",
    }
    for _ in range(5):
        if card.stage.code == "measurement_scheduled":  # the next stage needs a measurer
            with pytest.raises(MeasurerRequired):
                async with uow_factory() as uow:
                    await deals.advance(uow, ann, card.id, card.version)
            card = await with_measurer(uow_factory, ann, card.id)
        async with uow_factory() as uow:
            card = await deals.advance(uow, ann, card.id, card.version, fields=fields)
        fields = None
    assert card.stage.code == "contract_signed"
    assert card.next_stage is not None and card.next_stage.code == "won"
    async with uow_factory() as uow:
        card = await deals.win(uow, ann, card.id, card.version)
    assert card.stage.kind == "won" and card.closed


async def test_defer_and_return_to_sales(uow_factory, make_actor, clock, db_snapshot):
    ann = await make_actor(roles=("manager",))
    card = await new_deal(uow_factory, ann, amount="1000")
    async with uow_factory() as uow:
        card = await deals.advance(uow, ann, card.id, card.version)
    before = await db_snapshot()
    with pytest.raises(ValidationError):
        async with uow_factory() as uow:
            await deals.defer(uow, ann, card.id, clock.now() - timedelta(days=1), card.version)
    assert await db_snapshot() == before
    when = clock.now() + timedelta(days=30)
    async with uow_factory() as uow:
        card = await deals.defer(uow, ann, card.id, when, card.version, "после ремонта")
    assert card.pipeline.code == "deferred" and card.next_contact_at == when
    assert card.can_return_to_sales
    tasks = await tasks_of(uow_factory, card.id)
    assert [(t.kind, t.assignee_id, t.due_at) for t in tasks] == [
        ("deferred_contact", ann.id, when)
    ]
    async with uow_factory() as uow:
        card = await deals.return_to_sales(uow, ann, card.id, card.version)
    assert card.pipeline.code == "sales" and card.stage.code == "proposal_sent"
    assert card.next_contact_at is None
    assert await tasks_of(uow_factory, card.id) == []


async def test_managers_act_only_on_their_own_deals(uow_factory, make_actor, db_snapshot):
    ann = await make_actor(roles=("manager",))
    bob = await make_actor(roles=("manager",))
    mila = await make_actor(roles=("measurer",))
    boss = await make_actor(roles=("leader",))
    card = await new_deal(uow_factory, ann, amount="1000")
    before = await db_snapshot()
    calls = [
        lambda uow, a: deals.get_card(uow, a, card.id),
        lambda uow, a: deals.advance(uow, a, card.id, card.version),
        lambda uow, a: deals.lose(uow, a, card.id, "expensive", None, card.version),
        lambda uow, a: deals.add_note(uow, a, card.id, "чужая заметка"),
        lambda uow, a: deals.history(uow, a, card.id),
        lambda uow, a: deals.reassign(uow, a, card.id, a.id, card.version),
    ]
    for actor in (bob, mila):
        for call in calls:
            with pytest.raises(PermissionDenied):
                async with uow_factory() as uow:
                    await call(uow, actor)
    with pytest.raises(PermissionDenied):  # a manager cannot reassign even their own deal
        async with uow_factory() as uow:
            await deals.reassign(uow, ann, card.id, bob.id, card.version)
    assert await db_snapshot() == before
    async with uow_factory() as uow:
        assert (await deals.list_deals(uow, bob)).total == 0
        assert (await deals.list_deals(uow, ann)).total == 1
        assert (await deals.list_deals(uow, boss)).total == 1
    async with uow_factory() as uow:
        moved = await deals.advance(uow, boss, card.id, card.version)
    assert moved.stage.code == "proposal_sent"


async def test_reassign_by_leader(uow_factory, make_actor):
    ann = await make_actor(roles=("manager",))
    bob = await make_actor(roles=("manager",), name="Bob")
    mila = await make_actor(roles=("measurer",))
    boss = await make_actor(roles=("leader",))
    card = await new_deal(uow_factory, ann)
    with pytest.raises(ValidationError):
        async with uow_factory() as uow:
            await deals.reassign(uow, boss, card.id, mila.id, card.version)
    async with uow_factory() as uow:
        card = await deals.reassign(uow, boss, card.id, bob.id, card.version)
    assert card.manager_id == bob.id and card.manager_name == "Bob"
    with pytest.raises(PermissionDenied):
        async with uow_factory() as uow:
            await deals.get_card(uow, ann, card.id)


async def test_notes_history_paging_and_search(uow_factory, make_actor):
    ann = await make_actor(roles=("manager",))
    card = await new_deal(uow_factory, ann, name="Пётр Сидоров", phone="+79165550011")
    with pytest.raises(ValidationError):
        async with uow_factory() as uow:
            await deals.add_note(uow, ann, card.id, "   ")
    async with uow_factory() as uow:
        card = await deals.add_note(uow, ann, card.id, "Клиент просит перезвонить")
    assert card.notes[0].text == "Клиент просит перезвонить"
    for _ in range(5):
        async with uow_factory() as uow:
            card = await deals.advance(uow, ann, card.id, card.version, fields={"amount": 10})
        async with uow_factory() as uow:
            card = await deals.step_back(uow, ann, card.id, card.version)
    async with uow_factory() as uow:
        first = await deals.history(uow, ann, card.id, page=0, per_page=4)
        last = await deals.history(uow, ann, card.id, page=99, per_page=4)
    assert first.total == 11 and first.pages == 3 and len(first.items) == 4
    assert last.page == 2 and len(last.items) == 3 and last.items[-1].from_stage is None
    for query in ("СИДОРОВ", "петр", "8 916 555-00-11", "5550011"):
        async with uow_factory() as uow:
            found = await deals.search(uow, ann, query)
        assert [d.id for d in found.items] == [card.id], query
    async with uow_factory() as uow:
        assert (await deals.search(uow, ann, "Иванов")).items == ()
    with pytest.raises(ValidationError):
        async with uow_factory() as uow:
            await deals.search(uow, ann, "x")


async def test_concurrent_moves_one_wins(uow_factory, make_actor, backend, monkeypatch, clock):
    """Another session commits between our load and our commit: ours is refused as stale
    (UPDATE ... WHERE version = ?). PostgreSQL only: on SQLite every transaction starts
    with BEGIN IMMEDIATE, so two writers can never interleave like this."""
    if backend == "sqlite":
        pytest.skip("SQLite serialises writers (BEGIN IMMEDIATE); no interleaving possible")
    ann = await make_actor(roles=("manager",))
    card = await new_deal(uow_factory, ann, amount="1000")
    real_rules_for = pipelines.rules_for  # what the stage core calls, patched there below
    interleaved: list[bool] = []

    async def rules_then_concurrent_write(uow, pipeline_id):
        if not interleaved:
            interleaved.append(True)
            clock.advance(minutes=1)  # so the note really updates the deal row
            async with uow_factory() as other:
                await deals.add_note(other, ann, card.id, "written meanwhile")
        return await real_rules_for(uow, pipeline_id)

    monkeypatch.setattr(stage_core, "rules_for", rules_then_concurrent_write)
    with pytest.raises(StaleVersion):
        async with uow_factory() as uow:
            await deals.advance(uow, ann, card.id, card.version)
    assert interleaved
    async with uow_factory() as uow:
        fresh = await deals.get_card(uow, ann, card.id)
    assert fresh.stage.code == "data_collection" and fresh.notes[0].text == "written meanwhile"


def test_only_the_stage_core_writes_stage_history_and_entry_tasks():
    """Every history row and every deal's birth goes through services/sales/stage.py."""
    root = Path(__file__).resolve().parents[3] / "services"
    sources = {str(p.relative_to(root)): p.read_text(encoding="utf-8") for p in root.rglob("*.py")}
    assert {name for name, text in sources.items() if "StageHistory(" in text} == {"sales/stage.py"}
    assert {name for name, text in sources.items() if "on_stage_entry(" in text} == {
        "sales/stage.py",
        "tasks.py",  # where it is defined
    }
