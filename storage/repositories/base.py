"""The repository base: a typed query object over one session. Repositories never commit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar, cast

from sqlalchemy import ColumnElement, CursorResult, Table, func, or_, update
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from storage.models import Base

M = TypeVar("M", bound=Base)


class Repo:
    """Base of every repository: holds the unit of work's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def dialect(self) -> str:
        """ "sqlite" or "postgresql": the one place a repository asks which database it has."""
        return self.session.get_bind().dialect.name

    async def insert_or_ignore(
        self,
        table: Table,
        values: Mapping[str, Any],
        conflict_on: Sequence[str] | None = None,
    ) -> bool:
        """``INSERT ... ON CONFLICT [(conflict_on)] DO NOTHING`` on either backend; True when
        the row went in."""
        dialect = self.dialect
        stmt: Any
        if dialect == "postgresql":
            stmt = pg_dialect.insert(table).values(**values)
        elif dialect == "sqlite":
            stmt = sqlite_dialect.insert(table).values(**values)
        else:  # pragma: no cover - only the two supported backends
            raise RuntimeError(f"unsupported database {dialect}")
        stmt = stmt.on_conflict_do_nothing(index_elements=conflict_on)
        result = cast(CursorResult[Any], await self.session.execute(stmt))
        return bool(result.rowcount == 1)

    async def claim_unused(self, model: type[M], ident: int, **values: Any) -> bool:
        """Mark a one-time row (an invite) used with `values`, if nobody used it yet: only
        one ``UPDATE ... WHERE id = ? AND used_at IS NULL`` still finds it unused (on
        PostgreSQL a concurrent one waits for that commit, then matches no row). False: it
        was used already."""
        table = cast(Table, model.__table__)
        result = cast(
            CursorResult[Any],
            await self.session.execute(
                update(table).where(table.c.id == ident, table.c.used_at.is_(None)).values(**values)
            ),
        )
        return bool(result.rowcount == 1)


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
