"""Two sweepers on one PostgreSQL database at once (FOR UPDATE SKIP LOCKED): 1,000 due
reminders, each delivered exactly once. No sleeping: the senders' rate limiter is a no-op."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from sqlalchemy import func, select

from services.clock import FakeClock
from services.outbox import queue as outbox
from services.outbox.payloads import TaskPayload
from services.outbox.queue import Delivery, Kind, RateLimiter, Sweeper
from storage.db import create_engine, create_session_factory
from storage.models import Employee, Reminder
from storage.uow import UnitOfWork, UnitOfWorkFactory

pytestmark = pytest.mark.pg

PEOPLE = 250
PER_PERSON = 4


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """This module runs on PostgreSQL only (SQLite has one sweeper by design)."""
    request.getfixturevalue("pg_server")
    return "pg"


class NoLimit(RateLimiter):
    async def acquire(self, chat_id: int) -> None:
        await asyncio.sleep(0)  # let the other sweeper run: interleave as much as possible


class Collecting:
    def __init__(self, name: str, seen: Counter[int], by: dict[str, int]) -> None:
        self.name = name
        self.seen = seen
        self.by = by

    async def deliver(self, delivery: Delivery) -> None:
        await asyncio.sleep(0)
        for item in delivery.items:
            self.seen[item.id] += 1
        self.by[self.name] = self.by.get(self.name, 0) + len(delivery.items)


class OverlappingFirstClaim(UnitOfWorkFactory):
    """The first unit of work made (the sweeper's first claim) commits only when the other
    sweeper's first claim is ready to commit too: both claim transactions are open at once,
    each having read the due rows. Without row locks both would claim the same rows."""

    def __init__(self, base: UnitOfWorkFactory, barrier: asyncio.Barrier) -> None:
        super().__init__(base.session_factory, base.clock)
        self.barrier = barrier
        self.first = True

    def __call__(self) -> UnitOfWork:
        uow = super().__call__()
        if self.first:
            self.first = False
            plain_commit = uow.commit

            async def commit() -> None:
                await asyncio.wait_for(self.barrier.wait(), timeout=30)
                await plain_commit()

            uow.commit = commit  # type: ignore[method-assign]
        return uow


async def pending(uow_factory: UnitOfWorkFactory) -> int:
    async with uow_factory() as uow:
        return int(
            await uow.session.scalar(
                select(func.count())
                .select_from(Reminder)
                .where(Reminder.state.in_(["pending", "claimed"]))
            )
            or 0
        )


async def test_two_concurrent_sweepers_deliver_each_reminder_exactly_once(db_url: str):
    clock = FakeClock()
    engines = [create_engine(db_url), create_engine(db_url)]
    factories = [UnitOfWorkFactory(create_session_factory(e), clock) for e in engines]
    try:
        async with factories[0]() as uow:
            staff = [
                Employee(
                    telegram_id=5_000_000 + i,
                    name=f"P{i}",
                    roles=["manager"],
                    active=True,
                    created_at=clock.now(),
                )
                for i in range(PEOPLE)
            ]
            for e in staff:
                uow.repo.add(e)
            await uow.flush()
            for n in range(PER_PERSON):
                for e in staff:
                    task = TaskPayload(title=str(n))
                    await outbox.enqueue(uow, e.id, Kind.TASK_DUE, task, clock.now())
            await uow.commit()
        total = PEOPLE * PER_PERSON
        assert await pending(factories[0]) == total == 1000

        seen: Counter[int] = Counter()
        by: dict[str, int] = {}
        barrier = asyncio.Barrier(2)
        sweep_factories = [OverlappingFirstClaim(f, barrier) for f in factories]
        sweepers = [
            Sweeper(
                factory,
                Collecting(name, seen, by),
                clock,
                limiter=NoLimit(),
                max_recipients=15,
                max_in_flight=3,
            )
            for name, factory in zip(("a", "b"), sweep_factories, strict=True)
        ]

        async def run(sweeper: Sweeper) -> None:
            for _ in range(500):  # bounded
                await sweeper.sweep_once()
                if await pending(sweeper.uow_factory) == 0:  # type: ignore[arg-type]
                    return

        await asyncio.wait_for(asyncio.gather(*(run(s) for s in sweepers)), timeout=120)

        assert len(seen) == total, "lost reminders"
        assert max(seen.values()) == 1, f"sent twice: {[k for k, v in seen.items() if v > 1]}"
        assert by.get("a") and by.get("b"), f"both sweepers worked: {by}"
        async with factories[0]() as uow:
            states = Counter((await uow.session.scalars(select(Reminder.state))).all())
        assert states == {"sent": total}
    finally:
        for engine in engines:
            await engine.dispose()
