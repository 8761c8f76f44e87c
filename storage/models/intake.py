"""Models of the lead intake API (re-exported by storage.models).

``idempotency_keys``   one row per (intake source, Idempotency-Key) that created (or matched)
                       a lead: the hash of the request it answered and the outcome, so a
                       retried form post gets the same answer and creates nothing. The row is
                       inserted first in the intake transaction, so a concurrent retry on
                       another worker waits on the primary key and then reads the winner's row.
``assignment_cursors`` the round-robin pointer (the last employee given a lead), shared by all
                       workers: the intake transaction locks the row (FOR UPDATE on PostgreSQL;
                       SQLite transactions are exclusive anyway) while it picks the next one.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_created_at", "created_at"),)

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))  # created | duplicate
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]


class AssignmentCursor(Base):
    __tablename__ = "assignment_cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_employee_id: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime]
