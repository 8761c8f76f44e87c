"""Pipelines as data: stages, loss reasons, lead qualification questions."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base, JSONDict


class Pipeline(Base):
    __tablename__ = "pipelines"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32), default="custom")
    strict: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)


class Stage(Base):
    __tablename__ = "stages"
    __table_args__ = (UniqueConstraint("pipeline_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str | None] = mapped_column(String(200))
    # A report table's name for the stage (config `short` / `short_en`); None: abbreviated.
    short: Mapped[str | None] = mapped_column(String(16))
    short_en: Mapped[str | None] = mapped_column(String(16))
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16), default="active")
    is_key: Mapped[bool] = mapped_column(Boolean, default=False)
    strict: Mapped[bool | None] = mapped_column(Boolean)
    probability: Mapped[int] = mapped_column(Integer, default=0)
    required_fields: Mapped[list[str]] = mapped_column(default=list)
    on_enter_task: Mapped[JSONDict | None]
    # A deal in this stage longer than this many days is stale ("rotting"): one alert to
    # its manager, a mark on cards and lists (services/work/rotting.py). None: never.
    rot_after_days: Mapped[int | None] = mapped_column(Integer)
    # What the stage does besides its task (issue 24): `links` (deals made in other
    # pipelines on entry), `final_payment_percent`, `debt_blocks` (services/work/fulfilment.py).
    extras: Mapped[JSONDict | None]
    archived: Mapped[bool] = mapped_column(Boolean, default=False)


class LossReason(Base):
    __tablename__ = "loss_reasons"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str | None] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer, default=0)
    conditional: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Losing with this reason asks for a comment; the reason is offered for "leads",
    # "deals" or "any" (migration 0014).
    comment_required: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    applies_to: Mapped[str] = mapped_column(String(16), default="any", server_default="any")


class QualificationQuestion(Base):
    __tablename__ = "qualification_questions"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    text: Mapped[str] = mapped_column(String(300))
    text_en: Mapped[str | None] = mapped_column(String(300))
    position: Mapped[int] = mapped_column(Integer, default=0)
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


# --- leads and deals ----------------------------------------------------------------------
