"""Clients: companies and their contacts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base


class Company(Base):
    __tablename__ = "companies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(300), index=True)
    created_at: Mapped[datetime]


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(300), index=True)
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id"))
    created_at: Mapped[datetime]
    # Their Telegram user id, once known (a Telegram Business chat, a shared contact).
    telegram_id: Mapped[int | None] = mapped_column(BigInteger, index=True)


# --- pipelines ----------------------------------------------------------------------------


# --- the client's own Telegram (issue 25) --------------------------------------------------


class ClientLink(Base):
    """A client's Telegram account linked to one of their contacts: through a one-time
    invite link from a deal card, or a request they left in the bot. A client is never an
    employee; what they may see and do is scoped to their linked contacts
    (services.permissions.ClientActor). One Telegram account may hold several contacts,
    a contact has at most one account."""

    __tablename__ = "client_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), unique=True
    )
    # Their Telegram user id: also the private chat the bot writes to.
    telegram_id: Mapped[int] = mapped_column(BigInteger, index=True)
    first_name: Mapped[str] = mapped_column(String(100))
    language: Mapped[str | None] = mapped_column(String(8))
    linked_at: Mapped[datetime]
    # /stop: no messages until they write /start again.
    stopped_at: Mapped[datetime | None]
    # Telegram answered 403: they blocked the bot; not retried until they write again.
    blocked_at: Mapped[datetime | None]


class ClientInvite(Base):
    """A one-time, expiring deep link (t.me/<bot>?start=c_<token>) bound to a contact, made
    from a deal card. Only the token's SHA-256 is kept."""

    __tablename__ = "client_invites"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("employees.id"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by_telegram_id: Mapped[int | None] = mapped_column(BigInteger)
