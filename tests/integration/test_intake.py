"""POST /api/leads over real HTTP on 127.0.0.1 (SQLite and PostgreSQL): leads land in the
Leads pipeline with a manager in turn, who is notified through the outbox; every refusal
(bad JSON, invalid fields, bad token, reused key, rate limit) leaves the database as it was."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

import pytest
from aiogram import Bot
from aiogram.methods import SendMessage
from redis.asyncio import Redis
from sqlalchemy import select

from bot.notifier import BotNotifier
from bot.webhook import SweepKicker
from services.intake import api as intake
from services.sales.pipelines import rules_by_role
from storage.enums import LeadStatus, ReminderState
from storage.models import Activity, Lead, Reminder
from storage.uow import UnitOfWorkFactory
from tests.integration.webhook_kit import (
    EMAIL_TOKEN,
    SITE_TOKEN,
    Worker,
    start_worker,
    webhook_settings,
)
from tests.outbox_fakes import make_sweeper
from tests.redis_server import RedisServer

StartWorker = Callable[..., Awaitable[Worker]]

ANN_TG = 500_001
BOB_TG = 500_002


@pytest.fixture
async def workers(db_url: str) -> AsyncIterator[StartWorker]:
    async with AsyncExitStack() as stack:

        async def start(uow_factory: UnitOfWorkFactory, **kwargs: Any) -> Worker:
            settings = webhook_settings(db_url, **kwargs.pop("settings", {}))
            worker = await start_worker(settings, uow_factory, **kwargs)
            stack.push_async_callback(worker.stop)
            return worker

        yield start


@pytest.fixture
async def managers(make_actor):
    ann = await make_actor(roles=("manager",), name="Ann", telegram_id=ANN_TG)
    bob = await make_actor(roles=("manager",), name="Bob", telegram_id=BOB_TG)
    return ann, bob


async def _leads(uow_factory: UnitOfWorkFactory) -> list[Lead]:
    async with uow_factory() as uow:
        return list((await uow.session.scalars(select(Lead).order_by(Lead.id))).all())


async def _reminders(uow_factory: UnitOfWorkFactory) -> list[Reminder]:
    async with uow_factory() as uow:
        return list((await uow.session.scalars(select(Reminder).order_by(Reminder.id))).all())


FORM = {
    "name": "Ирина Соколова",
    "phone": "8 (916) 123-45-67",
    "email": "irina@example.com",
    "message": "Три окна в квартиру, нужен замер",
    "utm_source": "yandex",  # unknown fields are ignored
}


# --- success ----------------------------------------------------------------------------


async def test_json_lead_lands_in_leads_pipeline_and_its_manager_is_notified(
    workers, uow_factory, clock, managers
):
    ann, _ = managers

    def kicker(bot: Bot, worker_uow: UnitOfWorkFactory) -> SweepKicker:
        # What run_webhook does: sweep now, through this worker's bot.
        sweeper, _ = make_sweeper(worker_uow, BotNotifier(bot), clock)
        return SweepKicker(sweeper.sweep_once)

    worker = await workers(uow_factory, kicker=kicker)

    reply = await worker.post_lead(
        {"name": "Пётр Иванов", "phone": "+7 916 000-11-22", "need": "Балкон", "amount": 150000}
    )

    assert reply.status == 201, reply.body
    [lead] = await _leads(uow_factory)
    assert reply.body == {"lead_id": lead.id, "status": "created"}
    async with uow_factory() as uow:
        rules = await rules_by_role(uow, "leads")
        history = await uow.repo.history.for_lead(lead.id)
    assert (lead.pipeline_id, lead.stage_id) == (rules.pipeline.id, rules.entry.id)
    assert [h.to_stage_id for h in history] == [rules.entry.id]
    assert (lead.source, lead.status, lead.manager_id) == ("site", LeadStatus.NEW, ann.id)
    assert (lead.phone, lead.need, lead.amount) == ("+79160001122", "Балкон", 15_000_000)
    assert lead.created_by_id is None  # the intake is a system actor

    # The kick sweeps at once: the manager's Telegram message is out (not at the next tick).
    assert worker.kicker is not None
    async with asyncio.timeout(10):
        await worker.kicker.wait()
    [message] = [r for r in worker.session.requests if isinstance(r, SendMessage)]
    assert message.chat_id == ANN_TG
    assert "Пётр Иванов" in message.text and "+79160001122" in message.text
    [row] = await _reminders(uow_factory)
    assert (row.recipient_id, row.kind) == (ann.id, intake.LEAD_NEW)
    assert row.state == ReminderState.SENT and row.due_at == clock.now()
    assert row.payload["lead_id"] == lead.id and row.payload["repeat"] is False


async def test_form_posts_take_managers_in_turn(workers, uow_factory, managers):
    ann, bob = managers
    worker = await workers(uow_factory)
    statuses = []
    for i in range(3):
        form = {**FORM, "phone": f"+7916555000{i}", "email": f"c{i}@example.com"}
        statuses.append((await worker.post_lead(form, form=True)).status)
    email = await worker.post_lead(
        {"name": "Почта", "email": "mail@example.com"}, token=EMAIL_TOKEN, form=True
    )

    assert statuses == [201, 201, 201] and email.status == 201
    leads = await _leads(uow_factory)
    assert [lead.manager_id for lead in leads] == [ann.id, bob.id, ann.id, bob.id]
    assert [lead.source for lead in leads] == ["site", "site", "site", "email"]
    assert leads[0].need == FORM["message"] and leads[0].email == "c0@example.com"
    reminders = await _reminders(uow_factory)
    assert [(r.recipient_id, r.kind) for r in reminders] == [
        (lead.manager_id, intake.LEAD_NEW) for lead in leads
    ]


async def test_configured_managers_only(workers, uow_factory, managers, make_actor):
    _, bob = managers
    carl = await make_actor(roles=("manager",), name="Carl", telegram_id=500_003)
    worker = await workers(uow_factory, settings={"intake_manager_ids": [BOB_TG, carl.telegram_id]})
    for i in range(3):
        assert (
            await worker.post_lead({**FORM, "phone": f"+7916555100{i}", "email": None})
        ).status == 201
    assert [lead.manager_id for lead in await _leads(uow_factory)] == [bob.id, carl.id, bob.id]


async def test_without_managers_the_lead_waits_and_leaders_are_told(
    workers, uow_factory, make_actor
):
    boss = await make_actor(roles=("leader",), name="Boss")
    admin = await make_actor(roles=("admin",), name="Admin")
    worker = await workers(uow_factory)
    assert (await worker.post_lead(FORM)).status == 201
    [lead] = await _leads(uow_factory)
    assert lead.manager_id is None
    notified = sorted(r.recipient_id or 0 for r in await _reminders(uow_factory))
    assert notified == [boss.id, admin.id]


async def test_an_open_lead_of_the_same_client_is_not_duplicated(workers, uow_factory, managers):
    ann, _ = managers
    worker = await workers(uow_factory)
    first = await worker.post_lead(FORM)
    again = await worker.post_lead({**FORM, "message": "Ещё хочу балконную дверь"})

    [lead] = await _leads(uow_factory)
    assert first.status == 201
    assert again.status == 200 and again.body == {"lead_id": lead.id, "status": "duplicate"}
    reminders = await _reminders(uow_factory)
    assert [(r.recipient_id, r.payload["repeat"]) for r in reminders] == [
        (ann.id, False),
        (ann.id, True),  # the manager hears the client wrote again
    ]
    assert reminders[1].payload["need"] == "Ещё хочу балконную дверь"
    async with uow_factory() as uow:  # both requests on the lead's timeline (issue 12)
        rows = await uow.session.scalars(
            select(Activity).where(Activity.lead_id == lead.id).order_by(Activity.id)
        )
        intake = [(a.kind, a.text, (a.payload or {}).get("repeat")) for a in rows]
    assert intake[0][0] == "intake" and intake[1:] == [("intake", "Ещё хочу балконную дверь", True)]


# --- refusals: nothing stored -----------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "status", "error"),
    [
        (b'{"name": "Ann", "phone": ', "application/json", 400, "bad_json"),
        (b"[1, 2, 3]", "application/json", 400, "bad_json"),
        (b'"just a string"', "application/json", 400, "bad_json"),
        (b"\xff\xfe{}", "application/json", 400, "bad_json"),
        (b"name=Ann&phone=%2B79161234567", "text/plain", 415, "unsupported_media_type"),
    ],
    ids=["truncated", "array", "string", "not-utf8", "text-plain"],
)
async def test_unreadable_bodies(
    workers, uow_factory, managers, db_snapshot, body, content_type, status, error
):
    worker = await workers(uow_factory)
    before = await db_snapshot()
    reply = await worker.post_lead(data=body, content_type=content_type)
    assert (reply.status, reply.body["error"]) == (status, error)
    assert await db_snapshot() == before


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"name": "Ann"}, {"phone": "contact_required"}),
        ({"name": "Ann", "phone": "   "}, {"phone": "contact_required"}),
        ({"name": "Ann", "phone": "12"}, {"phone": "invalid"}),
        ({"phone": "+79161234567"}, {"name": "empty"}),
        (
            {"name": "!!!", "email": "not-an-email", "amount": "много"},
            {"name": "invalid", "email": "invalid", "amount": "not_a_number"},
        ),
        ({"name": "Ann", "phone": ["+79161234567"]}, {"phone": "invalid"}),
        ({"name": "Ann", "phone": "+79161234567", "company": "???"}, {"company": "invalid"}),
        ({"name": "Ann", "phone": "+79161234567", "need": "x" * 2001}, {"need": "too_long"}),
    ],
    ids=[
        "missing-phone",
        "blank-phone",
        "bad-phone",
        "missing-name",
        "several",
        "phone-list",
        "bad-company",
        "long-need",
    ],
)
async def test_invalid_fields_are_422_with_field_names(
    workers, uow_factory, managers, db_snapshot, fields, errors
):
    worker = await workers(uow_factory)
    before = await db_snapshot()
    reply = await worker.post_lead(fields, key="k-1")
    assert reply.status == 422
    assert reply.body == {"error": "validation_failed", "errors": errors}
    assert await db_snapshot() == before  # no lead, no key stored, no notification


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer ", "Bearer wrong-token-0123456789", f"Basic {SITE_TOKEN}", SITE_TOKEN],
    ids=["none", "empty", "bearer-empty", "wrong", "basic", "no-scheme"],
)
async def test_bad_token_is_401(workers, uow_factory, managers, db_snapshot, authorization):
    worker = await workers(uow_factory)
    before = await db_snapshot()
    headers = {"Authorization": authorization} if authorization is not None else {}
    async with worker.http.post(worker.url("/api/leads"), json=FORM, headers=headers) as resp:
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert await resp.json() == {"error": "unauthorized"}
    assert await db_snapshot() == before


async def test_intake_off_without_tokens(workers, uow_factory, db_snapshot):
    worker = await workers(uow_factory, settings={"intake_tokens": None})
    before = await db_snapshot()
    reply = await worker.post_lead(FORM)
    assert (reply.status, reply.body) == (404, {"error": "intake_disabled"})
    assert await db_snapshot() == before


# --- idempotency --------------------------------------------------------------------------


async def test_replayed_idempotency_key_returns_the_same_lead(workers, uow_factory, managers):
    worker = await workers(uow_factory)
    first = await worker.post_lead(FORM, key="form-42")
    replay = await worker.post_lead(FORM, key="form-42")
    as_form = await worker.post_lead(FORM, key="form-42", form=True)  # same fields, other encoding

    assert first.status == 201 and "Idempotency-Replayed" not in first.headers
    for again in (replay, as_form):
        assert (again.status, again.body) == (first.status, first.body)
        assert again.headers["Idempotency-Replayed"] == "true"
    assert len(await _leads(uow_factory)) == 1
    assert len(await _reminders(uow_factory)) == 1  # one notification too

    # The key belongs to its source: the email source may use the same string.
    other = await worker.post_lead(
        {**FORM, "phone": "+79165550999", "email": None}, key="form-42", token=EMAIL_TOKEN
    )
    assert other.status == 201 and other.body["lead_id"] != first.body["lead_id"]


async def test_reused_key_with_other_fields_is_422(workers, uow_factory, managers, db_snapshot):
    worker = await workers(uow_factory)
    assert (await worker.post_lead(FORM, key="form-7")).status == 201
    before = await db_snapshot()
    reply = await worker.post_lead({**FORM, "name": "Кто-то другой"}, key="form-7")
    assert reply.status == 422
    assert reply.body == {
        "error": "idempotency_key_reused",
        "errors": {"idempotency_key": "reused"},
    }
    assert await db_snapshot() == before


@pytest.mark.parametrize("key", ["x" * 201, "with space", "кириллица"])
async def test_malformed_idempotency_key_is_400(workers, uow_factory, managers, db_snapshot, key):
    worker = await workers(uow_factory)
    before = await db_snapshot()
    headers = {"Authorization": f"Bearer {SITE_TOKEN}", "Idempotency-Key": key}
    async with worker.http.post(worker.url("/api/leads"), json=FORM, headers=headers) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"] == "bad_idempotency_key"
    assert await db_snapshot() == before


async def test_concurrent_retries_with_one_key_create_one_lead(workers, uow_factory, managers):
    """A form retried while the first post is still being handled: the retries wait for the
    first one's transaction and answer with its lead."""
    worker = await workers(uow_factory)
    replies = await asyncio.gather(*(worker.post_lead(FORM, key="burst") for _ in range(6)))
    assert {r.status for r in replies} == {201}
    assert len({r.body["lead_id"] for r in replies}) == 1
    assert sum(r.headers.get("Idempotency-Replayed") == "true" for r in replies) == 5
    assert len(await _leads(uow_factory)) == 1
    assert len(await _reminders(uow_factory)) == 1


# --- rate limit ---------------------------------------------------------------------------


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def limiter_redis(request: pytest.FixtureRequest) -> str | None:
    """None for the in-process limiter, else the URL of the throwaway Redis."""
    if request.param == "memory":
        return None
    server: RedisServer = request.getfixturevalue("redis_server")
    return server.url(1)


@pytest.fixture
async def limiter(limiter_redis, clock) -> AsyncIterator[intake.RateLimiter]:
    if limiter_redis is None:
        yield intake.MemoryRateLimiter(3, clock)
        return
    client = Redis.from_url(limiter_redis)
    try:
        yield intake.RedisRateLimiter(client, 3, clock, prefix=f"test:{uuid.uuid4()}")
    finally:
        await client.aclose()


async def test_over_the_rate_limit_is_429_with_retry_after(
    workers, uow_factory, clock, managers, db_snapshot, limiter
):
    clock.set(clock.now().replace(second=15, microsecond=0))  # 45 s left in this minute
    worker = await workers(uow_factory, limiter=limiter)
    for i in range(3):
        reply = await worker.post_lead({**FORM, "phone": f"+7916555200{i}", "email": None})
        assert reply.status == 201
    before = await db_snapshot()

    over = await worker.post_lead({**FORM, "phone": "+79165552009", "email": None})
    assert over.status == 429
    assert over.headers["Retry-After"] == "45"
    assert over.body == {"error": "rate_limited", "retry_after": 45}
    assert await db_snapshot() == before
    # Per source: the email source has its own budget.
    other = await worker.post_lead({"name": "Почта", "email": "x@example.com"}, token=EMAIL_TOKEN)
    assert other.status == 201

    clock.advance(timedelta(seconds=45))  # the next minute
    again = await worker.post_lead({**FORM, "phone": "+79165552009", "email": None})
    assert again.status == 201
    assert len(await _leads(uow_factory)) == 5


async def test_concurrent_posts_of_one_client_without_a_key_create_one_lead(
    workers, uow_factory, managers
):
    """No Idempotency-Key (an old form retried by the browser): the duplicate check runs
    under the intake lock, so concurrent posts cannot both create a lead."""
    worker = await workers(uow_factory)
    replies = await asyncio.gather(*(worker.post_lead(FORM) for _ in range(4)))
    assert sorted(r.status for r in replies) == [200, 200, 200, 201]
    [lead] = await _leads(uow_factory)
    assert {r.body["lead_id"] for r in replies} == {lead.id}
