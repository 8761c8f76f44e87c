"""Sales plans (issue 26): a month's plan per manager and for the company."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, text
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base


class Plan(Base):
    """How many sales (won deals) and how much money (won amount, kopecks) a manager — or,
    with ``employee_id`` NULL, the whole company — is to close in ``month`` (its first
    day). One row per (month, employee); setting it again replaces the numbers."""

    __tablename__ = "plans"
    __table_args__ = (
        Index("uq_plans_month_employee", "month", "employee_id", unique=True),
        # The company's plan: NULLs are distinct in a unique index, so a partial one.
        Index(
            "uq_plans_month_company",
            "month",
            unique=True,
            sqlite_where=text("employee_id IS NULL"),
            postgresql_where=text("employee_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[date] = mapped_column(Date)
    employee_id: Mapped[int | None] = mapped_column(ForeignKey("employees.id", ondelete="CASCADE"))
    sales_count: Mapped[int] = mapped_column(Integer, default=0)
    amount: Mapped[int] = mapped_column(BigInteger, default=0)
    set_by_id: Mapped[int | None] = mapped_column(ForeignKey("employees.id"))
    updated_at: Mapped[datetime]
