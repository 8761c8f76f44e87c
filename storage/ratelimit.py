"""Rate-limit counters of the site-form intake (services/intake/api.py): a fixed window per
source, counted in this process's memory (one worker) or in Redis (one counter shared by every
worker: ``INCR`` + ``EXPIRE`` in one MULTI, the key naming the window). ``limit`` <= 0: no
limit. Like every other store, they live in storage; the service only asks `hit(source)`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

from storage.uow import ClockLike


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    count: int  # requests of this source in the current window, this one included
    retry_after: int  # whole seconds until the window ends (at least 1)


class RateLimiter(Protocol):
    async def hit(self, source: str) -> RateDecision: ...


def _window(clock: ClockLike, window: int) -> tuple[int, int]:
    """(window number, whole seconds until it ends, at least 1)."""
    ts = clock.now().timestamp()
    number = int(ts // window)
    return number, max(1, math.ceil((number + 1) * window - ts))


class MemoryRateLimiter:
    """Fixed window per source in this process (one worker). ``limit`` <= 0: no limit."""

    def __init__(self, limit: int, clock: ClockLike, window: int = 60) -> None:
        self.limit = limit
        self.clock = clock
        self.window = window
        self._counts: dict[str, tuple[int, int]] = {}  # source -> (window, count)

    async def hit(self, source: str) -> RateDecision:
        number, retry_after = _window(self.clock, self.window)
        current, count = self._counts.get(source, (number, 0))
        count = count + 1 if current == number else 1
        self._counts[source] = (number, count)
        return RateDecision(self.limit <= 0 or count <= self.limit, count, retry_after)


class RedisLike(Protocol):
    """What RedisRateLimiter needs of ``redis.asyncio.Redis``."""

    def pipeline(self, transaction: bool = True) -> Any: ...


class RedisRateLimiter:
    """Fixed window per source, one counter in Redis shared by every worker:
    ``INCR key`` + ``EXPIRE key 2*window`` in one MULTI, the key naming the window."""

    def __init__(
        self,
        redis: RedisLike,
        limit: int,
        clock: ClockLike,
        window: int = 60,
        prefix: str = "voronka:intake:rate",
    ) -> None:
        self.redis = redis
        self.limit = limit
        self.clock = clock
        self.window = window
        self.prefix = prefix

    async def hit(self, source: str) -> RateDecision:
        number, retry_after = _window(self.clock, self.window)
        key = f"{self.prefix}:{source}:{number}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, 2 * self.window)
            count, _ = await pipe.execute()
        return RateDecision(self.limit <= 0 or int(count) <= self.limit, int(count), retry_after)
