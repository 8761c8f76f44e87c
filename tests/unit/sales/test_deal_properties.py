"""Property tests: random pipelines, random sequences of moves.

- replaying the history rows always gives the deal's current stage;
- strict pipelines never skip a stage;
- every refused move leaves the database unchanged.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from services.clock import FakeClock
from services.errors import DomainError
from services.permissions import Actor
from services.sales import deals, leads
from services.sales.leads import LeadInput
from services.sales.pipeline_config import CompanyConfig
from services.sales.pipelines import rules_for, sync_config
from storage.db import create_engine, create_session_factory
from storage.models import Base, Deal, Employee
from storage.uow import UnitOfWorkFactory
from tests.dbdump import dump


@st.composite
def sales_pipeline(draw: st.DrawFn) -> dict[str, Any]:
    n_active = draw(st.integers(1, 6))
    stages: list[dict[str, Any]] = []
    for i in range(n_active):
        stage: dict[str, Any] = {"code": f"s{i}", "name": f"Этап {i}"}
        override = draw(st.sampled_from([None, True, False]))
        if override is not None:
            stage["strict"] = override
        if draw(st.booleans()) and draw(st.booleans()):
            stage["requires"] = ["amount"]
        stages.append(stage)
    stages.append({"code": "won", "name": "Успех", "kind": "won"})
    if draw(st.booleans()):
        stages.append({"code": "refusal", "name": "Условный отказ", "kind": "frozen"})
    stages.append({"code": "lost", "name": "Провал", "kind": "lost"})
    # Terminal and frozen stages may sit anywhere in the order.
    order = draw(st.permutations(range(len(stages))))
    return {
        "code": "sales",
        "name": "Продажа",
        "role": "sales",
        "strict": draw(st.booleans()),
        "stages": [stages[i] for i in order],
    }


def company(sales: dict[str, Any]) -> CompanyConfig:
    return CompanyConfig.model_validate(
        {
            "company": {"name": "Тест"},
            "loss_reasons": [
                {"code": "plain", "name": "Дорого"},
                {"code": "cond", "name": "Думает", "conditional": True},
            ],
            "pipelines": [
                {
                    "code": "leads",
                    "name": "Лиды",
                    "role": "leads",
                    "stages": [
                        {"code": "new", "name": "Новый"},
                        {"code": "ok", "name": "Ок", "kind": "won"},
                        {"code": "no", "name": "Нет", "kind": "lost"},
                    ],
                },
                sales,
                {
                    "code": "deferred",
                    "name": "Отложенный",
                    "role": "deferred",
                    "strict": False,
                    "stages": [
                        {"code": "wait", "name": "Ждём", "requires": ["next_contact_at"]},
                        {"code": "lost", "name": "Провал", "kind": "lost"},
                    ],
                },
            ],
        }
    )


OPS = st.one_of(
    st.tuples(st.just("advance"), st.booleans()),
    st.tuples(st.just("back"), st.just(False)),
    st.tuples(st.just("move"), st.integers(0, 12)),
    st.tuples(st.just("lose"), st.sampled_from(["plain", "cond", "bogus"])),
    st.tuples(st.just("reopen"), st.just(False)),
    st.tuples(st.just("win"), st.booleans()),
    st.tuples(st.just("defer"), st.booleans()),
    st.tuples(st.just("return"), st.just(False)),
    st.tuples(st.just("stale"), st.just(False)),
)


async def run_example(url: str, sales: dict[str, Any], ops: list[tuple[str, Any]]) -> None:
    engine = create_engine(url)
    clock = FakeClock()
    uf = UnitOfWorkFactory(create_session_factory(engine), clock)
    try:
        async with uf() as uow:  # a clean database for this example
            for table in reversed(Base.metadata.sorted_tables):
                await uow.session.execute(delete(table))
            await uow.commit()
        async with uf() as uow:
            await sync_config(uow, company(sales))
        async with uf() as uow:
            emp = Employee(
                telegram_id=1, name="M", roles=["manager"], active=True, created_at=clock.now()
            )
            uow.repo.add(emp)
            await uow.commit()
            actor = Actor.of(emp)
        async with uf() as uow:
            lead = await leads.create_lead(uow, actor, LeadInput(name="К", phone="+79161112233"))
        async with uf() as uow:
            deal_id = await leads.convert(uow, actor, lead.id)
        async with uf() as uow:
            all_stage_ids = []
            for p in await uow.repo.pipelines.all():
                all_stage_ids += [s.id for s in await uow.repo.pipelines.stages(p.id)]
            card = await deals.get_card(uow, actor, deal_id)

        for op, arg in ops:
            clock.advance(minutes=5)
            amount = {"amount": "1000"} if arg is True else None
            before = await dump(engine)
            try:
                async with uf() as uow:
                    v = card.version
                    if op == "advance":
                        card = await deals.advance(uow, actor, deal_id, v, amount)
                    elif op == "back":
                        card = await deals.step_back(uow, actor, deal_id, v)
                    elif op == "move":
                        target = all_stage_ids[arg % len(all_stage_ids)]
                        card = await deals.move_to(uow, actor, deal_id, target, v)
                    elif op == "lose":
                        card = await deals.lose(uow, actor, deal_id, arg, None, v)
                    elif op == "reopen":
                        card = await deals.reopen(uow, actor, deal_id, v)
                    elif op == "win":
                        card = await deals.win(uow, actor, deal_id, v, amount)
                    elif op == "defer":
                        when = clock.now() + (timedelta(days=3) if arg else -timedelta(days=1))
                        card = await deals.defer(uow, actor, deal_id, when, v)
                    elif op == "return":
                        card = await deals.return_to_sales(uow, actor, deal_id, v)
                    elif op == "stale":
                        card = await deals.advance(uow, actor, deal_id, v - 1)
            except DomainError:
                assert await dump(engine) == before, f"refused {op} changed the database"

        async with uf() as uow:
            history = await uow.repo.history.for_deal(deal_id)
            stored = await uow.repo.get(Deal, deal_id)
            assert stored is not None
            # 1. replaying history gives the current stage, and rows chain up
            assert history[-1].to_stage_id == stored.stage_id == card.stage.id
            assert history[0].from_stage_id is None
            for prev, row in zip(history, history[1:], strict=False):
                assert row.from_stage_id == prev.to_stage_id
            # 2. strict pipelines never skip
            rules = await rules_for(uow, history[0].pipeline_id)
            flow = [s.id for s in rules.flow]
            for row in history[1:]:
                if row.from_stage_id in flow and row.to_stage_id in flow:
                    target = rules.stage(row.to_stage_id)
                    i, j = flow.index(row.from_stage_id), flow.index(row.to_stage_id)
                    if rules.is_strict(target):  # (won is the flow's last step)
                        assert abs(j - i) == 1, (row.from_stage_id, row.to_stage_id)
    finally:
        await engine.dispose()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sales=sales_pipeline(), ops=st.lists(OPS, min_size=1, max_size=25))
def test_random_moves_keep_history_consistent(db_url, sales, ops):
    asyncio.run(run_example(db_url, sales, ops))
