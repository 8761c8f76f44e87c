"""Enumerations shared by storage and services (stored as short strings)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    LEADER = "leader"
    MANAGER = "manager"
    HEAD_MEASURER = "head_measurer"
    MEASURER = "measurer"


class PipelineRole(StrEnum):
    """What a pipeline is for (its ``role`` in the TOML file and the database)."""

    LEADS = "leads"
    SALES = "sales"
    DEFERRED = "deferred"
    INSTALLMENTS = "installments"
    REFUSAL = "refusal"
    CUSTOM = "custom"


class StageKind(StrEnum):
    ACTIVE = "active"
    WON = "won"
    LOST = "lost"
    FROZEN = "frozen"


class LeadSource(StrEnum):
    SITE = "site"
    CALL = "call"
    EMAIL = "email"
    MESSENGER = "messenger"
    IMPORT = "import"
    MANUAL = "manual"
    REFERRAL = "referral"


class LeadStatus(StrEnum):
    NEW = "new"
    QUALIFYING = "qualifying"
    CONVERTED = "converted"
    DISQUALIFIED = "disqualified"


class ActivityKind(StrEnum):
    NOTE = "note"
    CALL = "call"
    FILE = "file"
    SYSTEM = "system"
    MEASUREMENT = "measurement"
    PAYMENT = "payment"


class TaskKind(StrEnum):
    CUSTOM = "custom"
    CALL_BACK = "call_back"
    FOLLOW_UP = "follow_up"
    ASSIGN_MEASURER = "assign_measurer"
    MEASURE = "measure"
    DEFERRED_CONTACT = "deferred_contact"
    COLLECT_PAYMENT = "collect_payment"


class TaskStatus(StrEnum):
    OPEN = "open"
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    DECLINED = "declined"
    CANCELLED = "cancelled"


# "An open task": the one definition (services, repositories, reports and views use it).
OPEN_TASK_STATUSES = (TaskStatus.OPEN, TaskStatus.ACCEPTED, TaskStatus.IN_PROGRESS)


class ReminderState(StrEnum):
    PENDING = "pending"
    CLAIMED = "claimed"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"
