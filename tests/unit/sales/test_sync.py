"""Syncing the pipelines file into the database: idempotent, code is identity, no lost deals."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from services.clock import FakeClock
from services.errors import StageHasDeals
from services.sales.pipeline_config import CompanyConfig
from services.sales.pipelines import sync_config
from storage.models import Deal, Pipeline, Stage
from storage.uow import UnitOfWorkFactory
from tests.factories import bare_deal

CONFIG_DIR = Path(__file__).resolve().parents[3] / "config" / "pipelines"


def config_data(name: str = "default.toml") -> dict[str, Any]:
    return tomllib.loads((CONFIG_DIR / name).read_text(encoding="utf-8"))


def build(data: dict[str, Any]) -> CompanyConfig:
    return CompanyConfig.model_validate(data)


def pipeline_data(data: dict[str, Any], code: str) -> dict[str, Any]:
    found: dict[str, Any] = next(p for p in data["pipelines"] if p["code"] == code)
    return found


def without_stage(data: dict[str, Any], pipeline: str, stage: str) -> dict[str, Any]:
    data = copy.deepcopy(data)
    p = pipeline_data(data, pipeline)
    p["stages"] = [s for s in p["stages"] if s["code"] != stage]
    return data


async def sync(uow_factory: UnitOfWorkFactory, config: CompanyConfig) -> Any:
    async with uow_factory() as uow:
        return await sync_config(uow, config)


async def stage_row(uow_factory: UnitOfWorkFactory, pipeline: str, code: str) -> Stage:
    async with uow_factory() as uow:
        p = await uow.repo.pipelines.by_code(pipeline)
        assert p is not None
        s = await uow.repo.pipelines.stage_by_code(p.id, code)
        assert s is not None
        return s


async def add_deal(uow_factory: UnitOfWorkFactory, clock: FakeClock, stage: Stage) -> int:
    now = clock.now()
    async with uow_factory() as uow:
        deal = bare_deal(stage, now, "Окна на дачу")
        uow.repo.add(deal)
        await uow.commit()
        return deal.id


async def test_the_template_holds_the_default_config(uow_factory: UnitOfWorkFactory) -> None:
    async with uow_factory() as uow:
        pipelines = await uow.repo.pipelines.all()
        sales = await uow.repo.pipelines.by_role("sales")
        assert sales is not None
        stages = await uow.repo.pipelines.stages(sales.id)
    assert [p.code for p in pipelines] == [
        "leads",
        "sales",
        "deferred",
        "installments",
        "fulfilment",
        "claims",
    ]
    assert [s.code for s in stages][:2] == ["data_collection", "proposal_sent"]
    assert [s.code for s in stages if s.is_key] == ["measurement_done"]


async def test_second_sync_changes_nothing(
    uow_factory: UnitOfWorkFactory, db_snapshot: Any
) -> None:
    before = await db_snapshot()
    report = await sync(uow_factory, build(config_data()))
    assert not report.changed, report
    assert await db_snapshot() == before


async def test_switching_config_then_resyncing_is_a_no_op(
    uow_factory: UnitOfWorkFactory, db_snapshot: Any
) -> None:
    before = await db_snapshot()
    b2b = build(config_data("b2b.toml"))
    first = await sync(uow_factory, b2b)
    assert first.changed
    assert "new_clients" in first.pipelines_added
    after_first = await db_snapshot()
    assert after_first != before
    second = await sync(uow_factory, b2b)
    assert not second.changed, second
    assert await db_snapshot() == after_first
    async with uow_factory() as uow:
        live = [p.code for p in await uow.repo.pipelines.all()]
        everything = await uow.repo.pipelines.all(include_archived=True)
    assert live == ["qualification", "new_clients", "regular_clients", "refusals"]
    # The default pipelines were emptied of nothing and are archived, not deleted.
    assert {p.code for p in everything if p.archived} == {
        "leads",
        "sales",
        "deferred",
        "installments",
        "fulfilment",
        "claims",
    }


async def test_renaming_a_stage_keeps_its_deals(
    uow_factory: UnitOfWorkFactory, clock: FakeClock
) -> None:
    stage = await stage_row(uow_factory, "sales", "proposal_sent")
    deal_id = await add_deal(uow_factory, clock, stage)
    data = config_data()
    renamed = next(
        s for s in pipeline_data(data, "sales")["stages"] if s["code"] == "proposal_sent"
    )
    renamed["name"] = "Предложение у клиента"

    report = await sync(uow_factory, build(data))

    assert report.stages_renamed == ["sales.proposal_sent"]
    assert not report.stages_added and not report.stages_archived
    after = await stage_row(uow_factory, "sales", "proposal_sent")
    assert (after.id, after.name, after.archived) == (stage.id, "Предложение у клиента", False)
    async with uow_factory() as uow:
        deal = await uow.repo.get(Deal, deal_id)
        assert deal is not None
        assert deal.stage_id == stage.id


async def test_removing_a_stage_that_holds_a_deal_is_refused(
    uow_factory: UnitOfWorkFactory, clock: FakeClock, db_snapshot: Any
) -> None:
    stage = await stage_row(uow_factory, "sales", "measurer_assigned")
    await add_deal(uow_factory, clock, stage)
    before = await db_snapshot()
    # Also add a pipeline in the same file: nothing of it may be written either.
    data = without_stage(config_data(), "sales", "measurer_assigned")
    extra = copy.deepcopy(pipeline_data(data, "deferred"))
    extra.update(code="extra", role="custom", name="Ещё одна")
    data["pipelines"].append(extra)

    with pytest.raises(StageHasDeals) as info:
        await sync(uow_factory, build(data))

    assert info.value.rule == "stage_has_deals" and info.value.count == 1
    assert info.value.params["stage"] == "measurer_assigned"
    assert info.value.params["count"] == 1
    assert await db_snapshot() == before


async def test_removing_an_empty_stage_archives_it(
    uow_factory: UnitOfWorkFactory, clock: FakeClock
) -> None:
    busy = await stage_row(uow_factory, "sales", "proposal_sent")
    deal_id = await add_deal(uow_factory, clock, busy)
    gone = await stage_row(uow_factory, "sales", "measurer_assigned")

    report = await sync(
        uow_factory, build(without_stage(config_data(), "sales", "measurer_assigned"))
    )

    assert report.stages_archived == ["measurer_assigned"]
    async with uow_factory() as uow:
        row = await uow.repo.get(Stage, gone.id)
        assert row is not None and row.archived
        sales = await uow.repo.pipelines.by_code("sales")
        assert sales is not None
        live = [s.code for s in await uow.repo.pipelines.stages(sales.id)]
        deal = await uow.repo.get(Deal, deal_id)
        assert deal is not None and deal.stage_id == busy.id
    assert "measurer_assigned" not in live and "measurement_done" in live

    # Putting it back in the file brings the same row back (code is identity).
    again = await sync(uow_factory, build(config_data()))
    assert not again.stages_added
    back = await stage_row(uow_factory, "sales", "measurer_assigned")
    assert (back.id, back.archived) == (gone.id, False)


async def test_sync_never_duplicates_rows(uow_factory: UnitOfWorkFactory) -> None:
    for _ in range(2):
        await sync(uow_factory, build(config_data()))
    async with uow_factory() as uow:
        pipelines = (await uow.session.scalars(select(Pipeline))).all()
        stages = (await uow.session.scalars(select(Stage))).all()
    assert len(pipelines) == len(config_data()["pipelines"]) == 6
    assert len(stages) == sum(len(p["stages"]) for p in config_data()["pipelines"])


async def test_editing_stage_rules_is_reported_and_applied(
    uow_factory: UnitOfWorkFactory,
) -> None:
    data = config_data()
    stage = next(s for s in pipeline_data(data, "sales")["stages"] if s["code"] == "won")
    stage["probability"] = 99
    pipeline_data(data, "deferred")["strict"] = True

    report = await sync(uow_factory, build(data))

    assert report.changed
    assert report.stages_changed == ["sales.won"] and report.pipelines_changed == ["deferred"]
    assert not report.stages_renamed and not report.stages_added
    assert (await stage_row(uow_factory, "sales", "won")).probability == 99
    assert not (await sync(uow_factory, build(data))).changed


async def test_catalogs_follow_the_file_by_code(uow_factory: UnitOfWorkFactory) -> None:
    """Loss reasons and questions: a dropped one is deactivated (not deleted), a new one is
    added, the file's order is the order, and a resync changes nothing."""
    data = config_data()
    data["loss_reasons"] = [
        {"code": "new_reason", "name": "Новая причина", "name_en": "New reason"},
        *data["loss_reasons"][1:],
    ]
    data["qualification"] = list(reversed(data["qualification"]))
    dropped = config_data()["loss_reasons"][0]["code"]
    report = await sync(uow_factory, build(data))
    assert report.reasons_changed == 2  # the new one in the dropped one's place, the dropped one
    assert report.questions_changed == len(data["qualification"])  # every one moved
    async with uow_factory() as uow:
        reasons = await uow.repo.catalog.loss_reasons(include_inactive=True)
        active = [r.code for r in await uow.repo.catalog.loss_reasons()]
        questions = [q.code for q in await uow.repo.catalog.questions()]
    assert active == [r["code"] for r in data["loss_reasons"]]
    assert dropped in {r.code for r in reasons if not r.active}
    assert questions == [q["code"] for q in data["qualification"]]
    again = await sync(uow_factory, build(data))
    assert again.reasons_changed == 0 and again.questions_changed == 0
