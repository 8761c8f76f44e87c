"""Every CallbackData class of the UI, in one module.

Telegram allows 64 bytes of callback data: fields are ints and one- or two-letter enums
only, and a test packs each class at its maximum ids. Callback data is client input: the
ids in it are checked by the services every time (permissions, versions).
Prefixes starting with "t" belong to the task/reminder callbacks (handlers/callbacks_tasks.py).
"""

from __future__ import annotations

from enum import StrEnum

from aiogram.filters.callback_data import CallbackData


class MenuAction(StrEnum):
    NEW_LEAD = "nl"
    MY_DEALS = "md"
    TASKS = "tk"
    SEARCH = "s"
    FUNNEL = "f"
    TEAM = "tm"
    INVITE = "i"
    LANG = "lg"
    HOME = "h"


class MenuCb(CallbackData, prefix="m"):
    action: MenuAction


class WizardAction(StrEnum):
    SOURCE = "s"  # value: index into LeadSource
    LEGAL = "l"  # value: 1 legal entity, 0 person
    SKIP = "k"
    BACK = "b"
    CANCEL = "c"
    CONFIRM = "ok"
    FORCE = "f"  # create despite a duplicate
    OPEN_LEAD = "ol"  # value: lead id of the duplicate
    OPEN_DEAL = "od"  # value: deal id of the duplicate


class WizardCb(CallbackData, prefix="w"):
    action: WizardAction
    value: int = 0


class LeadAction(StrEnum):
    OPEN = "o"
    TOGGLE = "q"  # arg: question index
    DISQUALIFY = "x"
    REASON = "r"  # arg: loss reason id
    CONVERT = "c"


class LeadCb(CallbackData, prefix="l"):
    action: LeadAction
    lead_id: int
    v: int = 0
    arg: int = 0


class DealAction(StrEnum):
    OPEN = "o"
    NEXT = "n"
    BACK = "b"
    CHOOSE = "c"  # show the stage list (manual pipelines)
    TO_STAGE = "s"  # arg: stage id
    LOSE = "l"  # show reasons
    REASON = "r"  # arg: loss reason id
    REOPEN = "ro"
    DEFER = "d"  # show date choices
    DEFER_QUICK = "dq"  # arg: quick choice index
    DEFER_TYPE = "dt"  # ask for a typed date
    RETURN = "rs"
    NOTE = "nt"
    HISTORY = "h"  # arg: page
    REASSIGN = "a"  # show managers
    REASSIGN_TO = "at"  # arg: employee id
    CANCEL = "x"  # close a sub-menu, back to the card


class DealCb(CallbackData, prefix="d"):
    action: DealAction
    deal_id: int
    v: int = 0
    arg: int = 0


class ListCb(CallbackData, prefix="ls"):
    page: int = 0
    pipeline_id: int = 0
    stage_id: int = 0


class TeamAction(StrEnum):
    OPEN = "o"
    ROLE = "r"  # role: index into Role
    ACTIVE = "a"  # value: 1 activate, 0 deactivate
    LIST = "l"
    ATTEMPTS = "at"


class TeamCb(CallbackData, prefix="e"):
    action: TeamAction
    employee_id: int = 0
    value: int = 0


class InviteCb(CallbackData, prefix="i"):
    role: int  # index into Role


class LangCb(CallbackData, prefix="g"):
    lang: str  # "ru" | "en"


ALL_CALLBACKS: tuple[type[CallbackData], ...] = (
    MenuCb,
    WizardCb,
    LeadCb,
    DealCb,
    ListCb,
    TeamCb,
    InviteCb,
    LangCb,
)
