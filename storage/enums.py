"""Enumerations shared by storage and services (stored as short strings)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    LEADER = "leader"
    MANAGER = "manager"
    HEAD_MEASURER = "head_measurer"
    MEASURER = "measurer"
    HEAD_INSTALLER = "head_installer"
    INSTALLER = "installer"


class PipelineRole(StrEnum):
    """What a pipeline is for (its ``role`` in the TOML file and the database)."""

    LEADS = "leads"
    SALES = "sales"
    DEFERRED = "deferred"
    INSTALLMENTS = "installments"
    FULFILMENT = "fulfilment"  # an order after the sale: production, delivery, installation
    CLAIMS = "claims"  # warranty claims on an installed order
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
    TELEGRAM = "telegram"  # a client who wrote to a manager's Telegram (Business) chat


class LeadStatus(StrEnum):
    NEW = "new"
    QUALIFYING = "qualifying"
    CONVERTED = "converted"
    DISQUALIFIED = "disqualified"


class ActivityKind(StrEnum):
    """Kinds of timeline rows (`activities`). STAGE and TASK are never stored there: the
    timeline repository reads them from `stage_history` and `tasks`."""

    NOTE = "note"
    CALL = "call"
    FILE = "file"
    SYSTEM = "system"
    MEASUREMENT = "measurement"
    PAYMENT = "payment"
    PLAN = "plan"  # an installment plan made or changed
    TASK_DONE = "task_done"
    TASK_SNOOZED = "task_snoozed"
    REASSIGNED = "reassigned"
    EDITED = "edited"  # a field corrected from the card: payload {field, old, new}
    INTAKE = "intake"  # a lead from the site form, an import, a Telegram chat
    MESSAGE_IN = "msg_in"  # a client's message through Telegram Business
    MESSAGE_OUT = "msg_out"  # the manager's reply from the deal card
    MESSAGE_EDITED = "msg_edited"
    MESSAGE_DELETED = "msg_deleted"
    CLIENT_OUT = "client_out"  # the bot wrote to the client's own Telegram: payload {kind, ...}
    CLIENT_IN = "client_in"  # the client answered in the bot: payload {answer, ...}
    STAGE = "stage"  # virtual: stage_history rows
    TASK = "task"  # virtual: task rows (created)


class TimelineFilter(StrEnum):
    """The history screen's filter buttons: each a set of kinds."""

    ALL = "all"
    STAGES = "stages"
    NOTES = "notes"
    FILES = "files"
    TASKS = "tasks"
    MONEY = "money"
    MESSAGES = "messages"


MESSAGE_KINDS = (
    ActivityKind.MESSAGE_IN,
    ActivityKind.MESSAGE_OUT,
    ActivityKind.MESSAGE_EDITED,
    ActivityKind.MESSAGE_DELETED,
)

FILTER_KINDS: dict[TimelineFilter, tuple[ActivityKind, ...]] = {
    TimelineFilter.ALL: tuple(ActivityKind),
    TimelineFilter.STAGES: (ActivityKind.STAGE,),
    TimelineFilter.NOTES: (
        ActivityKind.NOTE,
        ActivityKind.CALL,
        ActivityKind.MEASUREMENT,
        ActivityKind.SYSTEM,
        ActivityKind.REASSIGNED,
        ActivityKind.EDITED,
        ActivityKind.INTAKE,
    ),
    TimelineFilter.FILES: (ActivityKind.FILE,),
    TimelineFilter.TASKS: (ActivityKind.TASK, ActivityKind.TASK_DONE, ActivityKind.TASK_SNOOZED),
    TimelineFilter.MONEY: (ActivityKind.PAYMENT, ActivityKind.PLAN),
    # Business chats, and what the bot sent the client / the client answered (issue 25).
    TimelineFilter.MESSAGES: (*MESSAGE_KINDS, ActivityKind.CLIENT_OUT, ActivityKind.CLIENT_IN),
}


class TaskKind(StrEnum):
    CUSTOM = "custom"
    CALL_BACK = "call_back"
    FOLLOW_UP = "follow_up"
    ASSIGN_MEASURER = "assign_measurer"
    MEASURE = "measure"
    DEFERRED_CONTACT = "deferred_contact"
    COLLECT_PAYMENT = "collect_payment"
    ASSIGN_CREW = "assign_crew"  # the head of installation picks an installer for the day
    INSTALL = "install"  # the installer's job card
    QUALITY_CHECK = "quality_check"  # the head's check after the client's sign-off


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
