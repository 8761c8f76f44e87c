"""Leads: first requests from a channel."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base, JSONDict


class Lead(Base):
    __tablename__ = "leads"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(300))
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    need: Mapped[str | None] = mapped_column(Text)
    is_legal_entity: Mapped[bool] = mapped_column(Boolean, default=False)
    company_name: Mapped[str | None] = mapped_column(String(300))
    amount: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="new", index=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id"))
    stage_id: Mapped[int] = mapped_column(ForeignKey("stages.id"), index=True)
    qualification: Mapped[JSONDict] = mapped_column(default=dict)
    loss_reason_id: Mapped[int | None] = mapped_column(ForeignKey("loss_reasons.id"))
    loss_comment: Mapped[str | None] = mapped_column(Text)
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("employees.id"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("employees.id"))
    # Back-pointer to the deal made on conversion; deals.lead_id is the enforced FK
    # (a second FK here would be a create-order cycle between the two tables).
    deal_id: Mapped[int | None] = mapped_column(Integer, index=True)
    created_at: Mapped[datetime] = mapped_column(index=True)
    first_action_at: Mapped[datetime | None]
    # Working seconds from created_at to first_action_at (WORK_HOURS; set at the first
    # touch, services/sales/leads.py); NULL while untouched or not yet back-filled.
    response_s: Mapped[int | None] = mapped_column(Integer)
    # When the leaders were told it got no first touch in time (services/work/response.py).
    late_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        # The first-response figures of a period (storage/repositories/response.py) read
        # this index alone: the leads that came, their manager, their stored time.
        Index(
            "ix_leads_came_response", "created_at", "manager_id", "response_s", "first_action_at"
        ),
        # ... and a manager's times of a period, for their median.
        Index("ix_leads_manager_came_response", "manager_id", "created_at", "response_s"),
        # What the first-response back-fill still has to do (services/team/norms.py).
        Index(
            "ix_leads_response_unfilled",
            "id",
            sqlite_where=text("first_action_at IS NOT NULL AND response_s IS NULL"),
            postgresql_where=text("first_action_at IS NOT NULL AND response_s IS NULL"),
        ),
    )
