"""The reminder outbox: one row per message to send at `due_at`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base, JSONDict


class Reminder(Base):
    """The outbox: a message owed to someone at `due_at`. Swept, claimed, sent, marked."""

    __tablename__ = "reminders"
    __table_args__ = (
        Index("ix_reminders_state_due", "state", "due_at"),
        # One recipient: an employee, or a client's linked Telegram (issue 25).
        CheckConstraint("(recipient_id IS NULL) <> (client_link_id IS NULL)", name="one_recipient"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    due_at: Mapped[datetime]
    recipient_id: Mapped[int | None] = mapped_column(ForeignKey("employees.id"), index=True)
    # A message to a client (issue 25): their linked Telegram; then recipient_id is NULL.
    client_link_id: Mapped[int | None] = mapped_column(
        ForeignKey("client_links.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[JSONDict] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    dedupe_key: Mapped[str | None] = mapped_column(String(128), unique=True)


Index(
    "ix_reminders_task_id", Reminder.task_id
)  # cancel a task's pending reminders; ON DELETE CASCADE
