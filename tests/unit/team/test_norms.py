"""Daily norms (issue 26) counted from the timeline of one local day (Moscow), each kind,
met and missed, hand-computed: what happened at 23:59 the day before or at 00:00 the day
after does not count."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from services.policy import CompanyPolicy, parse_norms
from services.sales import deals, leads
from services.team.norms import last_full_day, norm_results
from services.work import followups
from storage.enums import ActivityKind, TaskKind
from storage.models import Task
from tests.factories import new_deal, new_lead

TZ = "Europe/Moscow"
MONDAY = date(2026, 1, 12)


def msk(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC) - timedelta(hours=3)


async def test_each_norm_counts_its_own_day(uow_factory, clock, make_actor):
    uow_factory.policy = CompanyPolicy(
        timezone=TZ,
        norms=parse_norms(
            "manager:calls=2,notes=1,next_contacts=1,leads_taken=1,measurements_booked=1"
        ),
    )
    ann = await make_actor(roles=("manager",), name="Ann")
    await make_actor(roles=("manager",), name="Bob")  # no activity: every norm missed
    await make_actor(roles=("leader",), name="Lee")  # no norms for leaders: not listed
    clock.set(msk(11, 20))  # Sunday: Ann's deal, its history is not Monday's
    deal = await new_deal(uow_factory, ann)
    lead = await new_lead(uow_factory, ann)
    clock.set(msk(11, 23, 59))  # the day before: not counted
    async with uow_factory() as uow:
        await deals.add_note(uow, ann, deal.id, "late call", ActivityKind.CALL)
    clock.set(msk(12, 0, 0))  # Monday 00:00: counted
    async with uow_factory() as uow:
        await deals.add_note(uow, ann, deal.id, "first call", ActivityKind.CALL)
    clock.set(msk(12, 10))
    async with uow_factory() as uow:
        await leads.add_note(uow, ann, lead.id, "second call", ActivityKind.CALL)  # + taken
    async with uow_factory() as uow:
        await deals.add_note(uow, ann, deal.id, "a note")
    async with uow_factory() as uow:
        card = await deals.get_card(uow, ann, deal.id)
        await followups.set_next_contact(uow, ann, deal.id, msk(13, 11), card.version)
    async with uow_factory() as uow:  # a measurement booked on Ann's deal
        uow.repo.add(
            Task(kind=TaskKind.MEASURE, title="m", deal_id=deal.id, created_at=clock.now())
        )
        await uow.commit()
    clock.set(msk(13, 0, 0))  # Tuesday 00:00: not Monday's
    async with uow_factory() as uow:
        await deals.add_note(uow, ann, deal.id, "tuesday note")
    async with uow_factory() as uow:
        results = await norm_results(uow, MONDAY)
    assert [(r.name, r.what, r.done, r.target, r.met) for r in results] == [
        ("Ann", "calls", 2, 2, True),
        ("Ann", "notes", 1, 1, True),
        ("Ann", "next_contacts", 1, 1, True),
        ("Ann", "leads_taken", 1, 1, True),
        ("Ann", "measurements_booked", 1, 1, True),
        ("Bob", "calls", 0, 2, False),
        ("Bob", "notes", 0, 1, False),
        ("Bob", "next_contacts", 0, 1, False),
        ("Bob", "leads_taken", 0, 1, False),
        ("Bob", "measurements_booked", 0, 1, False),
    ]
    async with uow_factory() as uow:  # Sunday: one call, the rest missed
        sunday = {
            r.what: r.done
            for r in await norm_results(uow, MONDAY - timedelta(days=1))
            if r.name == "Ann"
        }
    assert sunday["calls"] == 1 and sunday["notes"] == 0


async def test_the_norms_day_is_today_once_its_working_hours_are_over(uow_factory, clock):
    """A morning digest reports yesterday; an evening one (after WORK_HOURS end) the day
    just worked."""
    uow_factory.policy = CompanyPolicy(timezone=TZ)  # 09:00-19:00
    async with uow_factory() as uow:
        assert last_full_day(uow, at=msk(12, 8, 30)) == MONDAY - timedelta(days=1)
        assert last_full_day(uow, at=msk(12, 18, 59)) == MONDAY - timedelta(days=1)
        assert last_full_day(uow, at=msk(12, 19, 0)) == MONDAY
        assert last_full_day(uow, MONDAY - timedelta(days=3), at=msk(12, 20)) == date(2026, 1, 9)
        clock.set(msk(12, 21))
        assert last_full_day(uow) == MONDAY
