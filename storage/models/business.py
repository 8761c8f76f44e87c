"""Telegram Business: a manager's account connected to Voronka, and the client chats seen
through it (which deal, lead or contact a chat belongs to; excluded by the manager or not;
when the client last wrote -- the reply window)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base


class BusinessConnection(Base):
    """One `business_connection` update's state (its id is Telegram's)."""

    __tablename__ = "business_connections"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    employee_id: Mapped[int | None] = mapped_column(ForeignKey("employees.id"), index=True)
    telegram_user_id: Mapped[int] = mapped_column(BigInteger)
    user_chat_id: Mapped[int] = mapped_column(BigInteger)
    can_reply: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    connected_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class BusinessChat(Base):
    """A client's chat with a connected manager: what it is linked to in the CRM."""

    __tablename__ = "business_chats"
    __table_args__ = (
        Index("ix_business_chats_employee_chat", "employee_id", "chat_id", unique=True),
        Index("ix_business_chats_chat", "chat_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    employee_id: Mapped[int] = mapped_column(ForeignKey("employees.id"))
    connection_id: Mapped[str] = mapped_column(ForeignKey("business_connections.id"))
    chat_id: Mapped[int] = mapped_column(BigInteger)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id", ondelete="SET NULL"))
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id", ondelete="SET NULL"))
    excluded: Mapped[bool] = mapped_column(Boolean, default=False)
    last_client_message_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
