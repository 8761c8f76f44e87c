"""The PostgreSQL pool is sized by settings (issue 21): SQLAlchemy's default 5 + 10 made a
busy worker queue for connections and reopen its overflow ones on every peak (what
dominated bench/load.py --backend pg's p99)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.pool import QueuePool

from bot.settings import Settings
from storage.db import PoolSettings, create_engine

URL = "postgresql+asyncpg://voronka:secret@127.0.0.1:5432/voronka"  # never connected


def _pool(**settings: Any) -> Any:
    engine = create_engine(URL, pool=Settings(_env_file=None, **settings).db_pool())
    return engine.sync_engine.pool


def test_the_default_pool_covers_a_busy_worker() -> None:
    pool = create_engine(URL).sync_engine.pool
    assert isinstance(pool, QueuePool)
    assert (pool.size(), pool._max_overflow) == (10, 0)  # not SQLAlchemy's 5 + 10
    assert not pool._pre_ping and pool._recycle == 1800  # no round trip per checkout
    assert PoolSettings() == Settings(_env_file=None).db_pool()


def test_the_pool_settings_reach_the_engine() -> None:
    pool = _pool(
        db_pool_size=40,
        db_max_overflow=0,
        db_pool_timeout=3,
        db_pool_recycle=-1,
        db_pool_pre_ping=True,
    )
    assert (pool.size(), pool._max_overflow, pool._timeout) == (40, 0, 3)
    assert pool._recycle == -1 and pool._pre_ping
