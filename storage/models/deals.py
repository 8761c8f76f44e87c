"""Deals and what happens to them: stage history and activities (notes, calls...)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base, JSONDict


class Deal(Base):
    __tablename__ = "deals"
    __table_args__ = (
        Index("ix_deals_pipeline_stage", "pipeline_id", "stage_id"),
        Index(
            "ix_deals_board",
            "pipeline_id",
            "closed_at",
            "stage_id",
            "stage_entered_at",
            "amount",
            "manager_id",
        ),
        # Stale deals: one range per stage with a limit (services/work/rotting.py).
        Index("ix_deals_stage_entered", "stage_id", "stage_entered_at"),
        # The Plan view's forecast (services/sales/plans.py): open deals expected to close
        # by a day, one range per (stage, manager). A typed date ...
        Index(
            "ix_deals_expected_close",
            "pipeline_id",
            "stage_id",
            "manager_id",
            "expected_close_at",
            "amount",
            sqlite_where=text("expected_close_at IS NOT NULL"),
            postgresql_where=text("expected_close_at IS NOT NULL"),
        ),
        # ... else the stage's rule: entered the stage + its close_days (the NULL column
        # last makes it covering: SQLite reads a partial index's own WHERE columns).
        Index(
            "ix_deals_close_rule",
            "pipeline_id",
            "stage_id",
            "manager_id",
            "stage_entered_at",
            "amount",
            "expected_close_at",
            sqlite_where=text("expected_close_at IS NULL"),
            postgresql_where=text("expected_close_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id"))
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id"))
    parent_deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id"))
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id"))
    stage_id: Mapped[int] = mapped_column(ForeignKey("stages.id"))
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("employees.id"), index=True)
    measurer_id: Mapped[int | None] = mapped_column(ForeignKey("employees.id"))
    amount: Mapped[int | None] = mapped_column(BigInteger)
    need: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(String(500))
    measurement_at: Mapped[datetime | None]
    # An order (issue 24): the items to install (one line each), production and delivery.
    items: Mapped[list[str] | None]
    production_at: Mapped[datetime | None]
    delivery_at: Mapped[datetime | None]
    next_contact_at: Mapped[datetime | None] = mapped_column(index=True)
    # When the manager expects the deal to close (typed; None: the stage's rule decides).
    expected_close_at: Mapped[datetime | None]
    with_installments: Mapped[bool] = mapped_column(Boolean, default=False)
    loss_reason_id: Mapped[int | None] = mapped_column(ForeignKey("loss_reasons.id"))
    loss_comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime]
    stage_entered_at: Mapped[datetime]
    last_activity_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    # Lower-cased title, client, company and phone digits: case-insensitive search that
    # works for Cyrillic on SQLite too (its lower() is ASCII-only).
    search_text: Mapped[str] = mapped_column(String(1200), default="")
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class StageHistory(Base):
    """One row per stage entry of a deal or a lead (the first row has no from_stage)."""

    __tablename__ = "stage_history"
    __table_args__ = (
        CheckConstraint("(deal_id IS NULL) <> (lead_id IS NULL)", name="one_subject"),
        Index("ix_stage_history_pipeline_at", "pipeline_id", "at"),
        Index("ix_stage_history_to_stage_at", "to_stage_id", "at"),
        Index("ix_stage_history_deal_at", "deal_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    lead_id: Mapped[int | None] = mapped_column(
        ForeignKey("leads.id", ondelete="CASCADE"), index=True
    )
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id"))
    from_stage_id: Mapped[int | None] = mapped_column(ForeignKey("stages.id"))
    to_stage_id: Mapped[int] = mapped_column(ForeignKey("stages.id"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("employees.id"))
    at: Mapped[datetime]
    reason_id: Mapped[int | None] = mapped_column(ForeignKey("loss_reasons.id"))
    comment: Mapped[str | None] = mapped_column(Text)


class Activity(Base):
    """The timeline of a deal, a lead or a contact: one row per thing that happened to it
    (notes, calls, files, tasks done or snoozed, payments, plan changes, reassignments,
    intake, client messages...), written by the service that does the thing. Stage changes
    are `StageHistory` rows and task creations are `Task` rows: the timeline repository
    merges the three (storage/repositories/timeline.py), so the stage-move hot path writes
    no extra row.

    Files are rows with ``file_id`` (Telegram file ids, never bytes) and ``media_type``
    (photo, document, video, voice, audio, contact...). Client messages through Telegram
    Business carry their ``chat_id`` / ``message_id`` (and the connection in ``payload``).
    """

    __tablename__ = "activities"
    __table_args__ = (
        Index("ix_activities_deal_at", "deal_id", "at", "id"),
        Index("ix_activities_deal_kind_at", "deal_id", "kind", "at"),
        Index("ix_activities_deal_media", "deal_id", "media_type"),
        Index("ix_activities_lead_at", "lead_id", "at", "id"),
        Index("ix_activities_contact_at", "contact_id", "at", "id"),
        Index("ix_activities_chat_message", "chat_id", "message_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("employees.id"))
    at: Mapped[datetime]
    file_id: Mapped[str | None] = mapped_column(String(256))
    file_unique_id: Mapped[str | None] = mapped_column(String(128))
    media_type: Mapped[str | None] = mapped_column(String(16))
    caption: Mapped[str | None] = mapped_column(Text)
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    payload: Mapped[JSONDict | None] = mapped_column(default=None)
