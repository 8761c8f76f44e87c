"""Must show 2 of issue 26: first response and daily norms are one computation
(services/team/norms.py) and /funnel's managers view, the daily digest, the Mini App
dashboard and the morning summary show the same numbers — hand-computed here, on SQLite
and PostgreSQL, with a fake clock."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from handlers.funnel.views import digest_lines, screen_text
from services.outbox.payloads import NormLine, SummaryMorning
from services.outbox.queue import Kind
from services.policy import CompanyPolicy, parse_norms
from services.reports import digests, screens
from services.reports.analytics import Period, ReportFilter
from services.sales import leads
from services.sales.leads import LeadInput
from services.work import jobs
from storage.enums import ActivityKind
from storage.models import Reminder
from tests.tg import harness, tg_user  # noqa: F401
from tests.webapp_kit import auth, client, sign_init_data

TZ = "Europe/Moscow"


def msk(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, day, hour - 3, minute, tzinfo=UTC)


@pytest.fixture
async def app(harness, db_url, uow_factory):  # noqa: F811
    async with client(harness, db_url, uow_factory) as session:
        yield session


@pytest.fixture
async def day(uow_factory, clock, make_actor):
    """Monday 12 January (Moscow): Ann's two leads answered in 5 and 30 working minutes
    (a call, a note), Bob's lead never touched. Norms: 2 calls and 1 lead taken a day."""
    uow_factory.policy = CompanyPolicy(
        timezone=TZ,
        first_response=timedelta(minutes=15),
        norms=parse_norms("manager:calls=2,leads_taken=1"),
    )
    ann = await make_actor(roles=("manager",), name="Анна")
    bob = await make_actor(roles=("manager",), name="Борис")
    lea = await make_actor(roles=("leader",), name="Лена")

    async def lead(actor, at, phone):
        clock.set(at)
        async with uow_factory() as uow:
            return (await leads.create_lead(uow, actor, LeadInput(name="К", phone=phone))).id

    async def note(actor, lead_id, at, kind):
        clock.set(at)
        async with uow_factory() as uow:
            await leads.add_note(uow, actor, lead_id, "говорили", kind)

    first = await lead(ann, msk(12, 10), "+79160000011")
    await note(ann, first, msk(12, 10, 5), ActivityKind.CALL)
    second = await lead(ann, msk(12, 11), "+79160000012")
    await note(ann, second, msk(12, 11, 30), ActivityKind.NOTE)
    await lead(bob, msk(12, 10), "+79160000013")
    clock.set(msk(13, 12))  # Tuesday noon: the figures are read
    return {"ann": ann, "bob": bob, "lea": lea}


# By hand: Ann median (5 + 30) / 2 = 17.5 -> 18 minutes, 1 of 2 in time (50%); Bob nothing
# answered, his lead's time is up: 0 of 1. Monday's norms: Ann calls 1/2 (missed), leads
# taken 2/1 (met); Bob 0/2 and 0/1.
RESPONSE = {"Анна": (2, 18, 1, 2), "Борис": (1, None, 0, 1)}
NORMS = [
    ("Анна", "calls", 1, 2),
    ("Анна", "leads_taken", 2, 1),
    ("Борис", "calls", 0, 2),
    ("Борис", "leads_taken", 0, 1),
]
LINES = [
    "Анна: медиана 18 мин, в срок 1 из 2 (50%)",
    "Борис: медиана ответов ещё нет, в срок 0 из 1 (0%)",
    "⚠️ Анна: ❌ звонки 1/2 · ✅ лиды в работу 2/1",
    "⚠️ Борис: ❌ звонки 0/2 · ❌ лиды в работу 0/1",
]


async def test_funnel_digest_and_mini_app_show_the_same_numbers(app, day, uow_factory, clock):
    lea = day["lea"]
    # /funnel, managers view
    async with uow_factory() as uow:
        screen = await screens.report_screen(
            uow, lea, screens.ReportKind.MANAGERS, ReportFilter(period=Period.THIS_MONTH, tz=TZ)
        )
    assert screen.team is not None
    funnel = {
        r.name: (r.leads, r.median_minutes, r.within, r.counted) for r in screen.team.response
    }
    assert funnel == RESPONSE
    assert [(n.name, n.what, n.done, n.target) for n in screen.team.norms] == NORMS
    chat = html.unescape(screen_text(screen, "ru", ZoneInfo(TZ)))

    # the daily digest (08:30 Monday -> 08:30 Tuesday)
    async with uow_factory() as uow:
        digest = await digests.compose_digest(
            uow, lea, "daily", msk(12, 8, 30), msk(13, 8, 30), tz=TZ
        )
    assert {r.name: (r.leads, r.median_minutes, r.within, r.counted) for r in digest.response} == (
        RESPONSE
    )
    assert [tuple(n) for n in digest.norms] == NORMS
    digest_text = html.unescape("\n".join(digest_lines(digest, "ru", ZoneInfo(TZ))))

    # the Mini App dashboard
    head = auth(sign_init_data(lea.telegram_id, clock.now()))
    body = await (await app.get("/app/api/funnel?report=managers", headers=head)).json()
    team = body["team"]
    assert {
        r["name"]: (r["leads"], r["median_minutes"], r["within"], r["counted"])
        for r in team["response"]
    } == RESPONSE
    assert [(n["name"], n["what"], n["done"], n["target"]) for n in team["norms"]] == NORMS
    assert [r["share"] for r in team["response"]] == [50, 0]

    for line in LINES:  # the same words everywhere
        assert line in chat and line in digest_text and line in team["lines"], line


async def test_morning_summary_shows_a_manager_their_norms(day, uow_factory):
    async with uow_factory() as uow:
        await jobs.morning_summary(uow, TZ, force=True)
    async with uow_factory() as uow:
        rows = (
            await uow.session.scalars(select(Reminder).where(Reminder.kind == Kind.SUMMARY_MORNING))
        ).all()
    by_person = {r.recipient_id: SummaryMorning.model_validate(r.payload) for r in rows}
    assert by_person[day["ann"].id].norms == (
        NormLine("Анна", "calls", 1, 2),
        NormLine("Анна", "leads_taken", 2, 1),
    )
    assert by_person[day["bob"].id].norms == (
        NormLine("Борис", "calls", 0, 2),
        NormLine("Борис", "leads_taken", 0, 1),
    )
    assert day["lea"].id not in by_person  # norms are the managers' (the config says so)


async def test_stored_times_legacy_rows_and_the_backfill_agree(day, uow_factory):
    """Issue 26's response figures are an aggregate of `leads.response_s` (working seconds
    stored at the first touch); leads touched before it was stored (migration 0024) are
    computed the old way until the scheduler's back-fill stores theirs: the same numbers
    all along."""
    from sqlalchemy import update

    from services.team import norms
    from storage.models import Lead

    async def figures():
        async with uow_factory() as uow:
            got = await norms.response_times(uow, msk(12, 3), msk(13, 12))
        return {r.name: (r.leads, r.median_minutes, r.within, r.counted) for r in got}

    async with uow_factory() as uow:
        stored = sorted(
            (await uow.session.scalars(select(Lead.response_s).order_by(Lead.id))).all(),
            key=lambda v: (v is None, v),
        )
    assert stored == [5 * 60, 30 * 60, None]  # Ann's two touches; Bob's lead waits
    assert await figures() == RESPONSE
    async with uow_factory() as uow:  # as if touched before migration 0024
        await uow.session.execute(update(Lead).values(response_s=None))
        await uow.commit()
    assert await figures() == RESPONSE  # the legacy rows, the slow way
    async with uow_factory() as uow:
        assert await norms.backfill_response(uow, batch=1) == 1
    async with uow_factory() as uow:
        assert await norms.backfill_response(uow) == 1  # Bob's untouched lead is not one
    async with uow_factory() as uow:
        assert await norms.backfill_response(uow) == 0
        assert sorted(
            v for v in (await uow.session.scalars(select(Lead.response_s))).all() if v
        ) == [5 * 60, 30 * 60]
    assert await figures() == RESPONSE


async def test_medians_odd_and_even_per_manager(uow_factory, clock, make_actor):
    """The median is ranked in the database per manager: the middle time of an odd count,
    the mean of the two middle ones of an even count; a manager's leads outside the period
    do not count."""
    from services.team import norms

    uow_factory.policy = CompanyPolicy(timezone=TZ, first_response=timedelta(minutes=15))
    ann = await make_actor(roles=("manager",), name="Ann")
    bob = await make_actor(roles=("manager",), name="Bob")
    phones = iter(range(10_000))

    async def answered(actor, came, minutes):
        clock.set(came)
        async with uow_factory() as uow:
            lead = await leads.create_lead(
                uow, actor, LeadInput(name="К", phone=f"+7916{next(phones):07d}")
            )
        clock.set(came + timedelta(minutes=minutes))
        async with uow_factory() as uow:
            await leads.add_note(uow, actor, lead.id, "говорили", ActivityKind.CALL)

    for minutes in (40, 2, 9):  # Ann: 2, 9, 40 -> 9
        await answered(ann, msk(12, 10), minutes)
    for minutes in (1, 20, 4, 7):  # Bob: 1, 4, 7, 20 -> 5.5 -> 6 (half to even)
        await answered(bob, msk(12, 12), minutes)
    await answered(bob, msk(5, 10), 300)  # the week before: not in the period
    async with uow_factory() as uow:
        got = await norms.response_times(uow, msk(12, 3), msk(13, 12))
    assert [(r.name, r.leads, r.median_minutes, r.within, r.counted) for r in got] == [
        ("Ann", 3, 9, 2, 3),
        ("Bob", 4, 6, 3, 4),  # 20 minutes is over the 15
    ]
