"""Integration fixtures: a throwaway Redis server (tests/redis_server.py) next to the
PostgreSQL of tests/conftest.py, and helpers for the webhook server tests.

``redis_server``  the session's Redis (started on first use), or skip/fail per
                  ``VORONKA_TEST_REDIS`` (auto | required | off, like VORONKA_TEST_PG).
``redis_url``     ``redis://127.0.0.1:<port>/0``, flushed before the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis

from tests.redis_server import RedisServer, RedisUnavailable, mode


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    try:
        current = mode()
    except RedisUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    if current == "off":
        pytest.skip("VORONKA_TEST_REDIS=off")
    try:
        server = RedisServer.start()
    except (RedisUnavailable, OSError) as exc:
        if current == "required":
            pytest.fail(
                f"VORONKA_TEST_REDIS=required but Redis is unavailable: {exc}", pytrace=False
            )
        pytest.skip(f"Redis unavailable (VORONKA_TEST_REDIS=auto): {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def redis_url(redis_server: RedisServer) -> AsyncIterator[str]:
    url = redis_server.url(0)
    client = Redis.from_url(url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()
    yield url
