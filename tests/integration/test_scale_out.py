"""Scale-out: two webhook workers on one PostgreSQL database and one Redis.

Each worker is a real aiohttp server on 127.0.0.1 with its own engine, its own dispatcher
(build_dispatcher) and its own bot (a RecordingSession); they share the database, the FSM
storage (RedisStorage), the per-chat event lock (RedisEventIsolation) and the intake rate
counter. A load balancer may hand any update or request to either of them.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest
from aiogram import Bot
from aiogram.fsm.storage.base import StorageKey
from aiogram.fsm.storage.memory import MemoryStorage, SimpleEventIsolation
from aiogram.fsm.storage.redis import RedisStorage
from aiogram.methods import AnswerCallbackQuery, EditMessageText, SendMessage
from sqlalchemy import select

from bot.notifier import BotNotifier
from bot.webhook import SweepKicker, make_isolation
from handlers.ui.callbacks import DealAction, DealCb
from services.clock import FakeClock
from services.intake import api as intake
from services.outbox.payloads import TaskPayload
from services.outbox.queue import Delivery, Kind, Sweeper, enqueue
from storage.db import create_engine, create_session_factory
from storage.enums import ReminderState
from storage.models import Activity, Employee, Lead, Reminder
from storage.uow import UnitOfWorkFactory
from tests.factories import new_deal
from tests.integration.test_outbox_pg import NoLimit, OverlappingFirstClaim, pending
from tests.integration.webhook_kit import Updates, Worker, start_worker, webhook_settings
from tests.pg import PgServer
from tests.tg import BOT_ID, tg_user

pytestmark = [pytest.mark.pg, pytest.mark.redis]


@pytest.fixture
def backend(pg_server: PgServer) -> str:
    """This module runs on PostgreSQL only (SQLite is one process by design)."""
    return "pg"


StartPair = Callable[..., Awaitable[tuple[Worker, Worker]]]


@pytest.fixture
async def start_pair(db_url: str, clock: FakeClock, redis_url: str) -> AsyncIterator[StartPair]:
    """`await start_pair(fsm="redis"|"memory", **settings)`: two workers, stopped at teardown."""
    async with AsyncExitStack() as stack:

        async def start(
            fsm: str = "redis", kicker: Any = None, **overrides: Any
        ) -> tuple[Worker, Worker]:
            pair = []
            for name in ("A", "B"):
                engine = create_engine(db_url)
                stack.push_async_callback(engine.dispose)
                uow_factory = UnitOfWorkFactory(create_session_factory(engine), clock)
                settings = webhook_settings(db_url, redis_url=redis_url, **overrides)
                extra: dict[str, Any] = {}
                if fsm == "redis":
                    storage = RedisStorage.from_url(redis_url)
                    stack.push_async_callback(storage.close)
                    extra = {
                        "storage": storage,
                        "isolation": make_isolation(storage),
                        "redis": storage.redis,
                        "limiter": intake.RedisRateLimiter(
                            storage.redis, settings.intake_rate_limit, clock
                        ),
                    }
                else:
                    extra = {"storage": MemoryStorage(), "isolation": SimpleEventIsolation()}
                worker = await start_worker(
                    settings, uow_factory, name=name, kicker=kicker, **extra
                )
                stack.push_async_callback(worker.stop)
                pair.append(worker)
            return pair[0], pair[1]

        yield start


async def _notes(uow_factory: UnitOfWorkFactory) -> list[str]:
    async with uow_factory() as uow:
        notes = select(Activity.text).where(Activity.kind == "note").order_by(Activity.id)
        return list((await uow.session.scalars(notes)).all())


def _cb(action: DealAction, deal_id: int, version: int = 0) -> str:
    return DealCb(action=action, deal_id=deal_id, v=version).pack()


# --- FSM wizard steps on different workers -------------------------------------------------


@pytest.mark.parametrize("fsm", ["redis", "memory"])
async def test_wizard_steps_on_different_workers_complete(start_pair, uow_factory, make_actor, fsm):
    """The deal card's note flow: the tap lands on one worker, the typed text on the other.
    With the FSM in Redis both notes are saved; with per-process memory (the control) the
    second worker never heard of the question and nothing is saved."""
    a, b = await start_pair(fsm=fsm)
    ann = await make_actor(roles=("manager",))
    deal = await new_deal(uow_factory, ann)
    user = tg_user(ann.telegram_id)
    updates = Updates()

    steps = [(a, b, "Клиент просит перезвонить в пятницу"), (b, a, "Перезвонил, ждёт КП")]
    for done, (tap_on, type_on, text) in enumerate(steps, start=1):
        tapped = await tap_on.post_update(updates.tap(user, _cb(DealAction.NOTE, deal.id)))
        typed = await type_on.post_update(updates.message(user, text))
        assert tapped.status == 200 and typed.status == 200
        if fsm == "memory":
            assert await _notes(uow_factory) == []
            return
        assert await _notes(uow_factory) == [text for _, _, text in steps[:done]]
    # Each worker re-rendered the card after the note typed to it.
    for worker in (a, b):
        assert any(isinstance(r, EditMessageText) for r in worker.session.requests)
    storage = a.dp.fsm.storage
    key = StorageKey(bot_id=BOT_ID, chat_id=user.id, user_id=user.id)
    assert await storage.get_state(key) is None  # the wizard finished and cleared its state


async def test_one_update_delivered_to_both_workers_acts_once(start_pair, uow_factory, make_actor):
    """Telegram redelivered an update that was still being processed, and the balancer sent
    the copy to the other worker: the chat lock serializes them, the second copy finds the
    update id committed and does nothing."""
    a, b = await start_pair()
    ann = await make_actor(roles=("manager",))
    deal = await new_deal(uow_factory, ann, amount="1000")
    tap = Updates().tap(tg_user(ann.telegram_id), _cb(DealAction.NEXT, deal.id, deal.version))

    replies = await asyncio.gather(a.post_update(tap), b.post_update(tap))

    assert [r.status for r in replies] == [200, 200]
    async with uow_factory() as uow:
        assert len(await uow.repo.history.for_deal(deal.id)) == 2  # created + one move
    requests = a.session.requests + b.session.requests
    assert len([r for r in requests if isinstance(r, EditMessageText)]) == 1
    assert not [r for r in requests if isinstance(r, AnswerCallbackQuery) and r.show_alert]


# --- the reminder sweep on both workers ----------------------------------------------------
# tests/integration/test_outbox_pg.py (the reminder engine's own test) proves two Sweepers
# on one database deliver 1,000 reminders exactly once. Here the same sweep runs the way
# `voronka webhook` runs it: inside each worker, kicked by an intake request, sending
# through that worker's own bot, next to its webhook traffic.


class Counting:
    """A Notifier that sends each delivery for real, then counts its items. `wait_for`: the
    first delivery waits (bounded) until that event is set; `started`: set after a send."""

    def __init__(
        self,
        inner: BotNotifier,
        seen: Counter[int],
        wait_for: asyncio.Event | None = None,
        started: asyncio.Event | None = None,
    ) -> None:
        self.inner = inner
        self.seen = seen
        self.wait_for = wait_for
        self.started = started

    async def deliver(self, delivery: Delivery) -> None:
        if self.wait_for is not None:
            async with asyncio.timeout(20):
                await self.wait_for.wait()
            self.wait_for = None
        await self.inner.deliver(delivery)
        for item in delivery.items:
            self.seen[item.id] += 1
        if self.started is not None:
            self.started.set()


async def test_1000_due_reminders_swept_by_two_workers_each_sent_once(
    start_pair, clock, uow_factory
):
    async with uow_factory() as uow:
        staff = [
            Employee(
                telegram_id=6_000_000 + i,
                name=f"P{i}",
                roles=["manager"],
                active=True,
                created_at=clock.now(),
            )
            for i in range(250)
        ]
        for e in staff:
            uow.repo.add(e)
        await uow.flush()
        for n in range(4):
            for e in staff:
                await enqueue(uow, e.id, Kind.TASK_DUE, TaskPayload(title=f"R{n}"), clock.now())
        await uow.commit()
        ids = set((await uow.session.scalars(select(Reminder.id))).all())
    assert len(ids) == 1000

    seen: Counter[int] = Counter()
    barrier = asyncio.Barrier(2)
    b_sent = asyncio.Event()
    made: list[str] = []

    def kicker(bot: Bot, worker_uow: UnitOfWorkFactory) -> SweepKicker:
        # Worker A holds its first message until B has sent one: both provably sweep at once.
        first = not made
        made.append("A" if first else "B")
        notifier = Counting(
            BotNotifier(bot),
            seen,
            wait_for=b_sent if first else None,
            started=None if first else b_sent,
        )
        sweeper = Sweeper(
            OverlappingFirstClaim(worker_uow, barrier),  # both first claims open at once
            notifier,
            clock,
            limiter=NoLimit(),
            max_recipients=15,
            max_in_flight=3,
        )
        return SweepKicker(sweeper.sweep_once)  # one claim per kick: one interval tick

    ann = await make_manager(uow_factory, clock)
    a, b = await start_pair(kicker=kicker, intake_manager_ids=[ann.telegram_id])
    assert made == ["A", "B"]

    async def ticks(worker: Worker) -> None:
        """Kick after kick (the interval job, back to back) until nothing is due."""
        assert worker.kicker is not None
        for _ in range(300):
            await worker.kicker.wait()
            if await pending(uow_factory) == 0:
                return
            worker.kicker.kick()

    # An intake request on each worker kicks its sweep (the lead's own notification joins
    # the backlog); then each worker keeps ticking on its own.
    posts = [
        w.post_lead({"name": f"Клиент {w.name}", "phone": f"+7916555400{i}"})
        for i, w in enumerate((a, b))
    ]
    assert [r.status for r in await asyncio.gather(*posts)] == [201, 201]
    async with asyncio.timeout(120):
        await asyncio.gather(ticks(a), ticks(b))

    async with uow_factory() as uow:
        all_ids = set((await uow.session.scalars(select(Reminder.id))).all())
        states = Counter((await uow.session.scalars(select(Reminder.state))).all())
    assert len(all_ids) == 1002 and set(seen) == all_ids, "lost reminders"
    assert max(seen.values()) == 1, [rid for rid, times in seen.items() if times > 1]
    assert states == {ReminderState.SENT.value: 1002}
    sent = {w.name: [r for r in w.session.requests if isinstance(r, SendMessage)] for w in (a, b)}
    assert sent["A"] and sent["B"], "both workers sent"
    # One message per person (their four items merged), via whichever worker claimed them;
    # Ann got her two intake leads.
    chats = Counter(m.chat_id for messages in sent.values() for m in messages)
    assert {chats[e.telegram_id] for e in staff} == {1}
    assert chats[ann.telegram_id] in (1, 2) and len(chats) == 251


async def make_manager(uow_factory: UnitOfWorkFactory, clock: FakeClock) -> Employee:
    async with uow_factory() as uow:
        ann = Employee(
            telegram_id=6_999_999,
            name="Ann",
            roles=["manager"],
            active=True,
            created_at=clock.now(),
        )
        uow.repo.add(ann)
        await uow.commit()
        return ann


# --- intake on both workers ----------------------------------------------------------------


async def test_intake_on_two_workers_shares_the_turns_and_the_rate_limit(
    start_pair, uow_factory, make_actor
):
    ann = await make_actor(roles=("manager",), name="Ann")
    bob = await make_actor(roles=("manager",), name="Bob")
    a, b = await start_pair(intake_rate_limit=6)

    posts = [
        (a if i % 2 else b).post_lead({"name": f"Клиент {i}", "phone": f"+791655530{i:02d}"})
        for i in range(10)
    ]
    replies = await asyncio.gather(*posts)

    # One counter in Redis: exactly 6 of the 10 got through, whichever worker took them.
    assert sorted(r.status for r in replies) == [201] * 6 + [429] * 4
    async with uow_factory() as uow:
        leads = list((await uow.session.scalars(select(Lead).order_by(Lead.id))).all())
    assert len(leads) == 6
    # One pointer in the database, locked per intake: strict turns in creation order.
    assert [lead.manager_id for lead in leads] == [ann.id, bob.id] * 3
