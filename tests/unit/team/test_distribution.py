"""One distribution for every automatic channel (issue 26): round-robin and least-loaded
over 100 site-form leads with one manager on a day off (counts among those on duty differ
by at most 1, the absent one gets none), days off set by leaders only, an import without
a manager and a Business stranger's chat when its manager is off."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest

from services.errors import PermissionDenied, ValidationError
from services.intake import api as intake
from services.policy import CompanyPolicy
from services.sales import leads
from services.sales.leads import LeadInput
from services.team import distribution
from storage.models import Lead
from tests.factories import cast

TZ = "Europe/Moscow"
SITE = intake.IntakeSource("site", "site")
MONDAY = date(2026, 1, 12)  # the fake clock's day (09:00 UTC = 12:00 in Moscow)


@pytest.fixture
async def team(uow_factory, make_actor):
    people = await cast(make_actor, "lee")
    for name in ("M1", "M2", "M3", "M4"):
        people[name] = await make_actor(roles=("manager",), name=name)
    return people


async def day_off(uow_factory, leader, who, day=MONDAY) -> None:
    async with uow_factory() as uow:
        assert await distribution.set_absence(uow, leader, who.id, day)


async def hundred_leads(uow_factory) -> Counter[int]:
    got: Counter[int] = Counter()
    for i in range(100):
        result = await intake.receive(
            uow_factory, SITE, {"name": f"Client {i}", "phone": f"+7916{i:07d}"}
        )
        async with uow_factory() as uow:
            lead = await uow.repo.get(Lead, result.lead_id)
            got[lead.manager_id] += 1
    return got


@pytest.mark.parametrize("rule", ["round_robin", "least_loaded"])
async def test_fair_over_100_leads_with_one_manager_off(uow_factory, team, rule):
    uow_factory.policy = CompanyPolicy(timezone=TZ, distribution=rule)
    await day_off(uow_factory, team["lee"], team["M2"])
    got = await hundred_leads(uow_factory)
    on_duty = [team[n].id for n in ("M1", "M3", "M4")]
    assert team["M2"].id not in got and set(got) == set(on_duty)
    assert sum(got.values()) == 100
    assert sorted(got.values()) == [33, 33, 34]  # 100 = 34 + 33 + 33, by hand


async def test_least_loaded_evens_out_unequal_loads(uow_factory, clock, team):
    """M1 already holds 6 open leads: the 100 new ones bring everyone on duty to
    (6 + 100) / 3 -> 36, 35, 35 open leads; M1 gets 30, M3 and M4 35 each (hand-computed)."""
    uow_factory.policy = CompanyPolicy(timezone=TZ, distribution="least_loaded")
    m1 = team["M1"]
    for i in range(6):
        async with uow_factory() as uow:
            await leads.create_lead(uow, m1, LeadInput(name="Old", phone=f"+7925{i:07d}"))
    await day_off(uow_factory, team["lee"], team["M2"])
    got = await hundred_leads(uow_factory)
    assert got == Counter({m1.id: 30, team["M3"].id: 35, team["M4"].id: 35})


async def test_day_off_is_only_that_day_and_only_by_a_leader(uow_factory, clock, team):
    uow_factory.policy = CompanyPolicy(timezone=TZ)
    lee, m1, m2 = team["lee"], team["M1"], team["M2"]
    async with uow_factory() as uow:
        with pytest.raises(PermissionDenied):
            await distribution.set_absence(uow, m1, m2.id, MONDAY)
    async with uow_factory() as uow:
        with pytest.raises(ValidationError):  # a past day
            await distribution.set_absence(uow, lee, m2.id, MONDAY - timedelta(days=1))
    await day_off(uow_factory, lee, m2, MONDAY + timedelta(days=1))  # tomorrow
    async with uow_factory() as uow:
        assert m2.id in [e.id for e in await distribution.on_duty(uow)]
        assert await distribution.absences(uow, lee) == [(MONDAY + timedelta(days=1), m2.id, "M2")]
    clock.set(datetime(2026, 1, 13, 9, tzinfo=UTC))
    async with uow_factory() as uow:
        assert m2.id not in [e.id for e in await distribution.on_duty(uow)]
        assert await distribution.set_absence(
            uow, lee, m2.id, MONDAY + timedelta(days=1), absent=False
        )
    async with uow_factory() as uow:
        assert m2.id in [e.id for e in await distribution.on_duty(uow)]


async def test_assign_many_is_the_same_turns_as_one_by_one(uow_factory, team):
    uow_factory.policy = CompanyPolicy(timezone=TZ)
    async with uow_factory() as uow:
        many = [e.name for e in await distribution.assign_many(uow, 5)]
    assert many == ["M1", "M2", "M3", "M4", "M1"]  # rolled back: the pointer did not move
    async with uow_factory() as uow:
        singles = []
        for _ in range(5):
            chosen = await distribution.assign(uow)
            assert chosen is not None
            singles.append(chosen.name)
    assert singles == many
