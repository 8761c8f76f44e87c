"""Bookkeeping: processed Telegram updates and last runs of scheduled jobs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base


class ProcessedUpdate(Base):
    """Telegram update ids already applied (webhook redelivery protection)."""

    __tablename__ = "processed_updates"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime]


class JobRun(Base):
    """Last run of a scheduled job (digests), so a restart sends nothing twice."""

    __tablename__ = "job_runs"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_run_at: Mapped[datetime]


class CacheEpoch(Base):
    """A counter per cached area ("staff", "config"), bumped by database triggers on every
    write to that area's tables (migration 0006), so every process -- several workers, the
    CLI -- sees when its per-process cache is stale with one cheap read."""

    __tablename__ = "cache_epochs"

    name: Mapped[str] = mapped_column(String(16), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
