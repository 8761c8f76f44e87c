"""Fakes for the reminder engine's tests: a notifier that records (and fails on demand) and a
timer that moves the FakeClock instead of sleeping."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from services.clock import FakeClock
from services.outbox.queue import Delivery, Sweeper
from storage.models import Reminder
from storage.uow import UnitOfWorkFactory

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class FakeTimer:
    """monotonic() and sleep() in virtual time on the FakeClock: nothing ever waits.

    A sleep parks the caller; a driver task lets everything runnable run, then moves the
    clock to the earliest wake-up and wakes that sleeper, and so on. So concurrent sleepers
    see time the way they would in real life, only without the waiting.
    """

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.slept: list[float] = []
        self._heap: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._driver: asyncio.Task[None] | None = None

    def monotonic(self) -> float:
        return self._us(self.clock.now()) / 1e6

    @staticmethod
    def _us(when: datetime) -> int:
        return (when - _EPOCH) // timedelta(microseconds=1)

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        target = self._us(self.clock.now()) + max(1, math.ceil(seconds * 1e6))
        heapq.heappush(self._heap, (target, next(self._seq), fut))
        if self._driver is None or self._driver.done():
            self._driver = loop.create_task(self._drive())
        await fut

    async def _drive(self) -> None:
        while self._heap:
            for _ in range(10):  # let every runnable task run until it blocks again
                await asyncio.sleep(0)
            target, _, fut = heapq.heappop(self._heap)
            if fut.done():
                continue
            if target > self._us(self.clock.now()):
                self.clock.set(_EPOCH + timedelta(microseconds=target))
            fut.set_result(None)


@dataclass
class RecordingNotifier:
    """Records every delivery (with the logical time it was made at); `script` holds
    exceptions (or callables) to raise/run on the next calls, in order."""

    timer: FakeTimer | None = None
    deliveries: list[Delivery] = field(default_factory=list)
    attempts: list[tuple[int, float]] = field(default_factory=list)  # (chat, time)
    sent_at: list[tuple[int, float]] = field(default_factory=list)
    script: deque[BaseException | Callable[[Delivery], Any] | None] = field(default_factory=deque)

    async def deliver(self, delivery: Delivery) -> None:
        now = self.timer.monotonic() if self.timer else 0.0
        self.attempts.append((delivery.chat_id, now))
        if self.script:
            step = self.script.popleft()
            if isinstance(step, BaseException):
                raise step
            if step is not None:
                result = step(delivery)
                if asyncio.iscoroutine(result):
                    await result
        self.deliveries.append(delivery)
        self.sent_at.append((delivery.chat_id, now))

    def items(self, recipient_id: int | None = None) -> list[Any]:
        return [
            item
            for d in self.deliveries
            if recipient_id is None or d.recipient_id == recipient_id
            for item in d.items
        ]

    def kinds(self, recipient_id: int | None = None) -> list[str]:
        return [i.kind for i in self.items(recipient_id)]

    def to(self, recipient_id: int) -> list[Delivery]:
        return [d for d in self.deliveries if d.recipient_id == recipient_id]


def make_sweeper(
    uow_factory: UnitOfWorkFactory,
    notifier: Any,
    clock: FakeClock,
    **kwargs: Any,
) -> tuple[Sweeper, FakeTimer]:
    timer = kwargs.pop("timer", None) or FakeTimer(clock)
    if isinstance(notifier, RecordingNotifier) and notifier.timer is None:
        notifier.timer = timer
    sweeper = Sweeper(
        uow_factory, notifier, clock, sleep=timer.sleep, monotonic=timer.monotonic, **kwargs
    )
    return sweeper, timer


async def reminders(uow_factory: UnitOfWorkFactory, **where: Any) -> list[Reminder]:
    async with uow_factory() as uow:
        stmt = select(Reminder).order_by(Reminder.id)
        for key, value in where.items():
            stmt = stmt.where(getattr(Reminder, key) == value)
        return list((await uow.session.scalars(stmt)).all())
