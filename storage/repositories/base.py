"""The repository base: a typed query object over one session. Repositories never commit."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import ColumnElement, func, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from storage.models import Base

M = TypeVar("M", bound=Base)


class Repo:
    """Base of every repository: holds the unit of work's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session


def same_phone_or_email(
    phone_col: InstrumentedAttribute[str | None],
    email_col: InstrumentedAttribute[str | None],
    phone: str | None,
    email: str | None,
) -> ColumnElement[bool] | None:
    """The condition "same phone, or same e-mail ignoring case"; None when both are empty."""
    conds: list[ColumnElement[bool]] = []
    if phone:
        conds.append(phone_col == phone)
    if email:
        conds.append(func.lower(email_col) == email.lower())
    return or_(*conds) if conds else None
