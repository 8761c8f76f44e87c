"""Bookkeeping: processed Telegram updates, last runs of scheduled jobs, cache epochs and
the commands menus last set in Telegram."""

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


class BotMenu(Base):
    """The commands menu last set in Telegram for one scope ("default", "default:en",
    "chat:<telegram id>"), as a hash of the bot, scope, language and commands: at start
    only the scopes whose hash changed are sent again (handlers/ui/commands.py)."""

    __tablename__ = "bot_menus"

    scope: Mapped[str] = mapped_column(String(40), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))
    set_at: Mapped[datetime]
