"""Builders for service tests: real rows made through the real services."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from services.dto import DealCard, LeadCard
from services.permissions import Actor
from services.sales import deals, leads
from services.sales.leads import LeadInput
from services.sales.pipeline_config import parse_config
from services.sales.pipelines import sync_config
from storage.models import Employee
from storage.uow import UnitOfWorkFactory

DEFAULT_PIPELINES = Path(__file__).resolve().parents[1] / "config" / "pipelines" / "default.toml"
_phone_seq = iter(range(1000, 10_000_000))


def next_phone() -> str:
    """A fresh valid Moscow mobile number for each call."""
    return f"+7916{next(_phone_seq):07d}"


async def new_staff(
    uow_factory: UnitOfWorkFactory, count: int, first: int = 730_000_001
) -> list[int]:
    """`count` active managers (telegram ids `first`, `first` + 1, ...), in one commit."""
    async with uow_factory() as uow:
        for i in range(count):
            uow.repo.add(
                Employee(
                    telegram_id=first + i,
                    name=f"M{i}",
                    roles=["manager"],
                    active=True,
                    created_at=uow.clock.now(),
                )
            )
        await uow.commit()
    return [first + i for i in range(count)]


async def new_lead(uow_factory: UnitOfWorkFactory, actor: Actor, **fields: Any) -> LeadCard:
    fields.setdefault("name", "Иван Петров")
    fields.setdefault("phone", next_phone())
    async with uow_factory() as uow:
        return await leads.create_lead(uow, actor, LeadInput(**fields))


async def qualify(uow_factory: UnitOfWorkFactory, actor: Actor, lead_id: int) -> None:
    async with uow_factory() as uow:
        questions = [q.code for q in await uow.repo.catalog.questions() if q.required]
    for code in questions:
        async with uow_factory() as uow:
            await leads.answer_question(uow, actor, lead_id, code, True)


async def new_deal(uow_factory: UnitOfWorkFactory, actor: Actor, **fields: Any) -> DealCard:
    """A converted lead: a deal at the entry stage of Sales."""
    lead = await new_lead(uow_factory, actor, **fields)
    await qualify(uow_factory, actor, lead.id)
    async with uow_factory() as uow:
        deal_id = await leads.convert(uow, actor, lead.id)
    async with uow_factory() as uow:
        return await deals.get_card(uow, actor, deal_id)


async def loose_sales(uow_factory: UnitOfWorkFactory) -> dict[str, int]:
    """Make Sales non-strict (stages may be skipped); returns its stage ids by code."""
    text = DEFAULT_PIPELINES.read_text(encoding="utf-8")
    text = re.sub(
        r'(code = "sales"\nrole = "sales"\n(?:.*\n)*?)strict = true', r"\1strict = false", text
    )
    async with uow_factory() as uow:
        await sync_config(uow, parse_config(text))
    async with uow_factory() as uow:
        sales = await uow.repo.pipelines.by_code("sales")
        assert sales is not None and not sales.strict
        return {s.code: s.id for s in await uow.repo.pipelines.stages(sales.id)}
