"""Webhook mode over real HTTP on 127.0.0.1: the secret, exactly-once effects of redelivered
updates, 500 → redelivery on an outage, /healthz, and a graceful shutdown that finishes the
update in flight. Runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
import pytest
from aiogram import Dispatcher, F
from aiogram.methods import DeleteWebhook, EditMessageText, SendMessage, SetWebhook
from aiogram.types import Message
from sqlalchemy import select

from bot.webhook import SECRET_HEADER, run_webhook
from handlers.ui.callbacks import DealAction, DealCb
from services.permissions import Actor
from services.sales import deals
from storage.db import create_engine, create_session_factory
from storage.models import Activity, ProcessedUpdate
from storage.uow import UnitOfWork, UnitOfWorkFactory
from tests.factories import new_deal
from tests.integration.webhook_kit import (
    SECRET,
    Updates,
    Worker,
    as_json,
    start_worker,
    webhook_settings,
)
from tests.tg import RecordingSession, make_bot, text_of, tg_user

StartWorker = Callable[..., Awaitable[Worker]]


@pytest.fixture
async def workers(db_url: str) -> AsyncIterator[StartWorker]:
    """`await workers(uow_factory, **kwargs)` starts a webhook worker; all stop at teardown."""
    async with AsyncExitStack() as stack:

        async def start(uow_factory: UnitOfWorkFactory, **kwargs: Any) -> Worker:
            settings = webhook_settings(db_url, **kwargs.pop("settings", {}))
            worker = await start_worker(settings, uow_factory, **kwargs)
            stack.push_async_callback(worker.stop)
            return worker

        yield start


def _next(deal_id: int, version: int) -> str:
    return DealCb(action=DealAction.NEXT, deal_id=deal_id, v=version).pack()


async def _history(uow_factory: UnitOfWorkFactory, deal_id: int) -> int:
    async with uow_factory() as uow:
        return len(await uow.repo.history.for_deal(deal_id))


async def _notes(uow_factory: UnitOfWorkFactory) -> list[str]:
    async with uow_factory() as uow:
        notes = select(Activity.text).where(Activity.kind == "note").order_by(Activity.id)
        return list((await uow.session.scalars(notes)).all())


async def test_same_update_posted_twice_has_one_effect(workers, uow_factory, make_actor):
    ann = await make_actor(roles=("manager",))
    deal = await new_deal(uow_factory, ann, amount="1000")
    worker = await workers(uow_factory)
    user = tg_user(ann.telegram_id)
    tap = Updates().tap(
        user, DealCb(action=DealAction.NEXT, deal_id=deal.id, v=deal.version).pack()
    )

    first = await worker.post_update(tap)
    sent_after_first = len(worker.session.requests)
    second = await worker.post_update(tap)

    assert first.status == 200 and second.status == 200
    assert await _history(uow_factory, deal.id) == 2  # created + one move, not two
    edits = [r for r in worker.session.requests if isinstance(r, EditMessageText)]
    assert len(edits) == 1 and "КП отправлено" in text_of(edits[0])
    assert len(worker.session.requests) == sent_after_first  # the redelivery did nothing
    async with uow_factory() as uow:
        assert await uow.session.get(ProcessedUpdate, tap.update_id) is not None


@pytest.mark.parametrize("secret", [None, "", "wrong-secret", SECRET + "x", SECRET[:-1]])
async def test_wrong_or_missing_secret_is_401_and_nothing_is_processed(
    workers, uow_factory, make_actor, db_snapshot, secret
):
    ann = await make_actor(roles=("manager",))
    deal = await new_deal(uow_factory, ann, amount="1000")
    worker = await workers(uow_factory)
    tap = Updates().tap(
        tg_user(ann.telegram_id),
        DealCb(action=DealAction.NEXT, deal_id=deal.id, v=deal.version).pack(),
    )
    before = await db_snapshot()

    reply = await worker.post_update(tap, secret=secret)

    assert reply.status == 401 and reply.body == {"error": "unauthorized"}
    assert await db_snapshot() == before
    assert worker.session.requests == []
    # The same update with the right secret does act (the 401 was about the secret only).
    assert (await worker.post_update(tap)).status == 200
    assert await _history(uow_factory, deal.id) == 2


async def test_malformed_update_is_400(workers, uow_factory, db_snapshot):
    worker = await workers(uow_factory)
    before = await db_snapshot()
    assert (await worker.post_update({"update_id": "not a number"})).status == 400
    assert (await worker.post_update([1, 2])).status == 400
    assert await db_snapshot() == before


async def test_outage_is_500_and_the_redelivery_applies_once(workers, uow_factory, make_actor):
    """A failure the error router would apologise for (the database went away) must not be
    acknowledged: Telegram then redelivers, and the update applies exactly once."""
    ann = await make_actor(roles=("manager",))
    deal = await new_deal(uow_factory, ann)
    failures = [ConnectionError("database connection lost")]

    def setup(dp: Dispatcher) -> None:
        @dp.message(F.text == "/flaky")
        async def flaky(message: Message, uow: UnitOfWork, actor: Actor) -> None:
            if failures:
                raise failures.pop()
            await deals.add_note(uow, actor, deal.id, "applied once")
            await message.answer("done")

    worker = await workers(uow_factory, setup=setup)
    update = Updates().message(tg_user(ann.telegram_id), "/flaky")

    crashed = await worker.post_update(update)
    assert crashed.status == 500
    assert await _notes(uow_factory) == []
    assert worker.session.requests == []  # no apology: the update is not lost

    redelivered = await worker.post_update(update)
    again = await worker.post_update(update)
    assert redelivered.status == 200 and again.status == 200
    assert await _notes(uow_factory) == ["applied once"]
    assert len([r for r in worker.session.requests if isinstance(r, SendMessage)]) == 1


async def test_a_bug_is_answered_by_the_error_router_not_redelivered(
    workers, uow_factory, make_actor
):
    """Contrast: a plain bug gets the apology and a 200 (redelivering would fail again)."""
    ann = await make_actor(roles=("manager",))

    def setup(dp: Dispatcher) -> None:
        @dp.message(F.text == "/bug")
        async def bug(message: Message) -> None:
            raise RuntimeError("a bug")

    worker = await workers(uow_factory, setup=setup)
    reply = await worker.post_update(Updates().message(tg_user(ann.telegram_id), "/bug"))
    assert reply.status == 200
    assert [type(r) for r in worker.session.requests] == [SendMessage]


async def test_healthz(workers, uow_factory):
    worker = await workers(uow_factory)
    reply = await worker.health()
    assert reply.status == 200
    assert reply.body == {"ok": True, "database": "ok", "in_flight": 0}


async def test_healthz_reports_an_unreachable_database(workers, tmp_path, clock):
    broken_engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/gone/voronka.db")
    shutil.rmtree(tmp_path / "gone")  # the engine made the directory; now the file can't be
    broken = UnitOfWorkFactory(create_session_factory(broken_engine), clock)
    try:
        worker = await workers(broken)
        reply = await worker.health()
    finally:
        await broken_engine.dispose()
    assert reply.status == 503
    assert reply.body == {"ok": False, "database": "error", "in_flight": 0}


async def test_graceful_shutdown_finishes_the_update_in_flight(workers, uow_factory, make_actor):
    ann = await make_actor(roles=("manager",))
    deal = await new_deal(uow_factory, ann)
    entered = asyncio.Event()
    gate = asyncio.Event()

    def setup(dp: Dispatcher) -> None:
        @dp.message(F.text == "/slow")
        async def slow(message: Message, uow: UnitOfWork, actor: Actor) -> None:
            entered.set()
            await gate.wait()
            await deals.add_note(uow, actor, deal.id, "finished during shutdown")
            await message.answer("saved")

    worker = await workers(uow_factory, setup=setup)
    user = tg_user(ann.telegram_id)
    updates = Updates()
    in_flight = asyncio.create_task(worker.post_update(updates.message(user, "/slow")))
    async with asyncio.timeout(10):
        await entered.wait()

    shutdown = asyncio.create_task(worker.server.close())
    async with asyncio.timeout(10):
        while not worker.state.closing:  # noqa: ASYNC110 (the listener closed; draining)
            await asyncio.sleep(0.01)
    assert not shutdown.done()  # waiting for the update in flight

    # Work arriving now is refused (503 on a kept-alive connection, or no connection at
    # all), never half-done: Telegram will deliver it again (to another worker).
    try:
        late = await worker.post_update(updates.message(user, "/slow"))
    except aiohttp.ClientConnectionError:
        pass
    else:
        assert late.status == 503

    gate.set()
    async with asyncio.timeout(10):
        reply = await in_flight
        await shutdown
    assert reply.status == 200
    assert await _notes(uow_factory) == ["finished during shutdown"]
    assert [r.text for r in worker.session.requests if isinstance(r, SendMessage)] == ["saved"]


async def test_shutdown_waits_for_an_update_whose_client_hung_up(workers, uow_factory, make_actor):
    """Telegram gave up waiting (closed the connection) while the update was processed: the
    update still finishes, and the shutdown waits for it (aiohttp alone would not: the
    connection is gone)."""
    ann = await make_actor(roles=("manager",))
    deal = await new_deal(uow_factory, ann)
    entered = asyncio.Event()
    gate = asyncio.Event()

    def setup(dp: Dispatcher) -> None:
        @dp.message(F.text == "/slow")
        async def slow(message: Message, uow: UnitOfWork, actor: Actor) -> None:
            entered.set()
            await gate.wait()
            await deals.add_note(uow, actor, deal.id, "finished after the hang-up")

    worker = await workers(uow_factory, setup=setup)
    posting = asyncio.create_task(
        worker.post_update(Updates().message(tg_user(ann.telegram_id), "/slow"))
    )
    async with asyncio.timeout(10):
        await entered.wait()
    posting.cancel()  # the client hangs up
    with pytest.raises(asyncio.CancelledError):
        await posting
    await worker.http.close()

    shutdown = asyncio.create_task(worker.server.close())
    async with asyncio.timeout(10):
        while not worker.state.closing:  # noqa: ASYNC110 (the listener closed; draining)
            await asyncio.sleep(0.01)
    gate.set()
    async with asyncio.timeout(10):
        await shutdown
    # Right when the shutdown is over (no waiting here), the effect is committed.
    assert await _notes(uow_factory) == ["finished after the hang-up"]


@pytest.mark.redis
async def test_run_webhook_registers_the_webhook_and_serves_until_stopped(
    db_url, redis_url, make_actor, uow_factory
):
    """The `voronka webhook` entry point end to end on a real port: it registers the webhook
    with the secret, serves updates and /healthz (Redis included), and returns on stop."""
    ann = await make_actor(roles=("manager",))
    deal = await new_deal(uow_factory, ann, amount="1000")
    port = _free_port()
    settings = webhook_settings(
        db_url, redis_url=redis_url, webhook_host="127.0.0.1", webhook_port=port
    )
    session = RecordingSession()
    stop = asyncio.Event()
    seen: dict[str, Any] = {}

    async def started(_runner: Any) -> None:
        base = f"http://127.0.0.1:{port}"
        tap = Updates().tap(tg_user(ann.telegram_id), _next(deal.id, deal.version))
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/healthz") as resp:
                seen["health"] = (resp.status, await resp.json())
            async with http.post(
                f"{base}{settings.webhook_path}",
                json=as_json(tap),
                headers={SECRET_HEADER: SECRET},
            ) as resp:
                seen["update"] = resp.status
        stop.set()

    async with asyncio.timeout(60):
        await run_webhook(
            settings, migrated=True, bot=make_bot(session), stop=stop, started=started
        )

    [registered] = [r for r in session.requests if isinstance(r, SetWebhook)]
    assert registered.url == "https://crm.example.test/telegram/webhook"
    assert registered.secret_token == SECRET
    assert "callback_query" in (registered.allowed_updates or [])
    assert not [r for r in session.requests if isinstance(r, DeleteWebhook)]
    assert seen["health"] == (200, {"ok": True, "database": "ok", "redis": "ok", "in_flight": 0})
    assert seen["update"] == 200
    async with uow_factory() as uow:
        assert len(await uow.repo.history.for_deal(deal.id)) == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
