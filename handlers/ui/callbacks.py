"""Every CallbackData class of the UI, in one module.

Telegram allows 64 bytes of callback data: fields are ints and one- or two-letter enums
only, and a test packs each class at its maximum ids. Callback data is client input: the
ids in it are checked by the services every time (permissions, versions).
Prefixes starting with "t" belong to the task, reminder and installment callbacks.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Self

from aiogram.filters.callback_data import CallbackData
from pydantic import Field

from services.dates import QuickChoice

# Database ids and versions are 32-bit on PostgreSQL: a bigger (or negative) number in
# callback data can only be forged. It fails to unpack, so no handler matches it and the
# stale-button alert answers (instead of a database error).
MAX_INT = 2**31 - 1
Int = Annotated[int, Field(ge=0, le=MAX_INT)]


class Canonical(CallbackData, prefix=""):
    """The base of every callback class: data is accepted only in the exact form `pack()`
    makes. pydantic alone would read "1.0", "01", " 1" or "1\n" as 1, so a forged
    variant of a button could still match a handler; here it fails to unpack (no handler
    matches, the stale-button alert answers, nothing changes). Not a button itself."""

    @classmethod
    def unpack(cls, value: str) -> Self:
        data = super().unpack(value)
        if data.pack() != value:
            raise ValueError(f"callback data not in its canonical form: {value!r}")
        return data


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
    SETUP_PIPELINES = "sp"  # the first admin's setup guide: the pipelines configured
    SETUP_BUSINESS = "sb"  # the setup guide: how to connect Telegram Business


class MenuCb(Canonical, prefix="m"):
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
    KEEP = "kp"  # keep the value this step already holds (after Back)


class WizardCb(Canonical, prefix="w"):
    action: WizardAction
    value: Int = 0


class LeadAction(StrEnum):
    OPEN = "o"
    TOGGLE = "q"  # arg: question index
    DISQUALIFY = "x"
    REASON = "r"  # arg: loss reason id
    CONVERT = "c"
    EDIT = "e"  # show the fields that can be corrected (handlers/edit/router.py)
    EDIT_FIELD = "ef"  # arg: index into services.sales.edit.LEAD_FIELDS: ask the new value
    REASSIGN = "ra"  # arg: the manager's employee id (a late lead's escalation, issue 26)
    NOTE = "n"  # ask for a note (a first touch)
    CALL = "cl"  # ask what was said on a call (a first touch)


class LeadCb(Canonical, prefix="l"):
    action: LeadAction
    lead_id: Int
    v: Int = 0
    arg: Int = 0


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
    NEXT_CONTACT = "nc"  # show the next-contact choices (handlers/followups/router.py)
    FILES = "f"  # arg: page of the deal's files (sent back as media groups / documents)
    CALL = "cl"  # log a call: ask what was said
    REPLY = "rp"  # reply to the client's Telegram chat: ask for the text
    EXCLUDE_CHAT = "xc"  # stop recording the client's Telegram chat
    EDIT = "e"  # show the fields that can be corrected (handlers/edit/router.py)
    EDIT_FIELD = "ef"  # arg: index into services.sales.edit.DEAL_FIELDS: ask the new value
    EDIT_OK = "eo"  # arg: the field's index: the typed date said back is right
    FIELD_OK = "fo"  # a stage's required date said back is right: go on with the move
    FIELD_QUICK = "fq"  # a measurement date's quick button: arg = day offset * 10 + slot
    INVITE_CLIENT = "ic"  # a one-time link (and its QR code) for the client's own Telegram


class DealCb(Canonical, prefix="d"):
    action: DealAction
    deal_id: Int
    v: Int = 0
    arg: Int = 0


class ListCb(Canonical, prefix="ls"):
    page: Int = 0
    pipeline_id: Int = 0
    stage_id: Int = 0


class SearchCb(Canonical, prefix="sr"):
    """A page of /search results (the query is kept in the FSM storage: handlers/deals)."""

    page: Int = 0


class WhenCb(Canonical, prefix="wn"):
    """Under a typed date said back (handlers/ui/when.py): 1 right, 0 change it."""

    ok: Int = 0


class TeamAction(StrEnum):
    OPEN = "o"
    ROLE = "r"  # role: index into Role
    ACTIVE = "a"  # value: 1 activate, 0 deactivate
    LIST = "l"
    ATTEMPTS = "at"
    DAY_OFF = "d"  # value: the day (date.toordinal()): set or clear the manager's day off


class TeamCb(Canonical, prefix="e"):
    action: TeamAction
    employee_id: Int = 0
    value: Int = 0


class InviteCb(Canonical, prefix="i"):
    role: Int  # index into Role


class Lang(StrEnum):
    RU = "ru"
    EN = "en"


class LangCb(Canonical, prefix="g"):
    lang: Lang


class ImportAction(StrEnum):
    COLUMN = "c"  # col: show the targets for this column
    SET = "s"  # col, to: index into services.imports.TARGETS
    MAPPING = "m"  # back to the mapping
    CHECK = "k"  # dry run
    RUN = "r"
    CANCEL = "x"


class ImportCb(Canonical, prefix="im"):
    action: ImportAction
    job: Int  # import_jobs.id (the service checks it is the tapper's own)
    col: Int = 0
    to: Int = 0


class FunnelReport(StrEnum):
    SNAPSHOT = "s"
    PERIOD = "p"
    LOSSES = "l"
    MANAGERS = "m"
    VELOCITY = "v"
    PLAN = "n"  # plans and the forecast (issue 26)


class FunnelPeriod(StrEnum):
    THIS_WEEK = "tw"
    LAST_WEEK = "lw"
    THIS_MONTH = "tm"
    LAST_MONTH = "lm"
    THIS_QUARTER = "tq"


class FunnelCb(Canonical, prefix="fn"):
    """The /funnel screen's state: every picker button carries all of it."""

    report: FunnelReport = FunnelReport.SNAPSHOT
    pipeline_id: Int = 0  # 0: the sales pipeline
    period: FunnelPeriod = FunnelPeriod.THIS_MONTH
    manager_id: Int = 0  # 0: everyone (leaders); a manager always gets their own
    photo: Int = 0  # message id of the chart to edit in place (0: none yet)
    menu: Int = 0  # 1: the manager picker is open


class PlanAction(StrEnum):
    MONTH = "m"  # a month picked: whose plan?
    WHO = "w"  # a manager (or the company, who=0) picked: type the numbers
    SAVE = "s"  # ✅ under the numbers said back
    CHANGE = "c"  # ✏️: type them again


class PlanCb(Canonical, prefix="pn"):
    """/plan (issue 26): a month's sales plan, set by a leader or an admin."""

    action: PlanAction
    month: Int = 0  # year * 100 + month
    who: Int = 0  # an employee id; 0: the company


class ExportCb(Canonical, prefix="fx"):
    """Export the deals the /funnel screen shows (pipeline, period, manager)."""

    pipeline_id: Int = 0
    period: FunnelPeriod = FunnelPeriod.THIS_MONTH
    manager_id: Int = 0


class DrillWhat(StrEnum):
    """Which set of deals a /funnel number stands for (services/reports/drill.py)."""

    STAGE = "s"  # key: stage id (snapshot: deals in it now, stuck first)
    REACHED = "r"  # key: stage id (the period's deals that reached it)
    REASON = "l"  # key: loss reason id
    WON = "w"  # key: manager id (their won deals of the period)


class DrillCb(Canonical, prefix="fd"):
    """Open the deals behind a number of /funnel: the report's filters, the set, a page."""

    what: DrillWhat
    pipeline_id: Int = 0
    period: FunnelPeriod = FunnelPeriod.THIS_MONTH
    manager_id: Int = 0
    key: Int = 0
    page: Int = 0
    edit: Int = 0  # 1: page through the list in its own message; 0: send the list


# --- tasks, reminders and installments (prefixes start with "t") ---------------------------

# Snooze buttons of a reminder: arg = index here.
SNOOZE_CHOICES: tuple[QuickChoice, ...] = (QuickChoice.IN_1H, QuickChoice.TOMORROW)
# "Next contact" / "Defer again" quick buttons: arg = index here.
NEXT_CONTACT_CHOICES: tuple[QuickChoice, ...] = (
    QuickChoice.IN_1H,
    QuickChoice.TOMORROW,
    QuickChoice.IN_3D,
    QuickChoice.NEXT_WEEK,
)


class TaskAction(StrEnum):
    OPEN = "o"  # show the task card
    DONE = "d"
    SNOOZE = "z"  # arg: index into SNOOZE_CHOICES
    ACCEPT = "a"  # measurer: accept
    DECLINE = "x"  # measurer: can't make it (ask for the reason)
    ON_MY_WAY = "w"  # measurer: on my way
    FINISH = "f"  # measurer: done -> photos/documents and a comment, then "Finish"
    UPLOAD_END = "fe"  # the "Finish" button of the upload
    BACK_TO_SALES = "bs"  # deferred demand
    LOST = "l"  # deferred demand: show loss reasons (arg: reason id when chosen)
    DEFER_AGAIN = "da"  # deferred demand: arg 0 shows the dates, arg i+1 picks
    #                     NEXT_CONTACT_CHOICES[i]
    DEFER_TYPE = "dt"  # deferred demand: ask for a typed date
    DUE = "du"  # ✏️ the due time: ask for it typed (handlers/edit/router.py)
    DUE_OK = "dk"  # the typed due time said back is right: moved


class TaskCb(Canonical, prefix="tk"):
    action: TaskAction
    task_id: Int
    arg: Int = 0


class AssignCb(Canonical, prefix="ta"):
    """The head of measurers picks a measurer for an assign task."""

    task_id: Int
    measurer_id: Int


class JobAction(StrEnum):
    """An installation job's card (handlers/installation): the installer's steps, the head's
    crew choice and quality check."""

    OPEN = "o"  # show the job card
    ACCEPT = "a"
    ON_MY_WAY = "w"
    TICK = "k"  # arg: index into the checklist
    PHOTOS = "p"  # arg: 0 before, 1 after (then photos are sent)
    DONE = "d"
    PARTIAL = "pt"  # choose the items left for another day
    LEAVE = "l"  # arg: index into the items (toggle "left for later")
    RESCHEDULE = "r"  # finish today, the chosen items tomorrow
    SIGN = "s"  # the client's signature
    CREW = "c"  # arg: the installer's employee id
    CHECK = "q"  # arg: 1 accepted, 0 a claim


class JobCb(Canonical, prefix="jb"):
    action: JobAction
    task_id: Int
    arg: Int = 0


class ClaimCb(Canonical, prefix="jc"):
    """A claim on an order, from its card (handlers/installation)."""

    deal_id: Int


class ClientAction(StrEnum):
    """A client's own buttons (handlers/clients; issue 25): never a staff action."""

    ORDERS = "o"  # the list of their orders
    DEAL = "d"  # one order: its status and payment schedule (deal_id)


class ClientCb(Canonical, prefix="cl"):
    action: ClientAction
    deal_id: Int = 0


class NewTaskAction(StrEnum):
    """A manual task (/task): its due time and (a leader) its assignee."""

    WHEN = "w"  # arg: index into NEXT_CONTACT_CHOICES; len(...) = type a date
    FOR = "f"  # arg: employee id, 0 = myself
    CANCEL = "x"


class NewTaskCb(Canonical, prefix="tt"):
    action: NewTaskAction
    arg: Int = 0


class TaskListScope(StrEnum):
    TODAY = "t"
    UPCOMING = "u"


class TaskListCb(Canonical, prefix="tl"):
    scope: TaskListScope
    page: Int = 0


class NextContactCb(Canonical, prefix="tn"):
    """'Next contact' on a deal: arg = index into NEXT_CONTACT_CHOICES; arg equal to
    len(NEXT_CONTACT_CHOICES) = type a date."""

    deal_id: Int
    arg: Int = 0
    v: Int = 0


class InstallmentAction(StrEnum):
    PAY = "p"  # record a payment (ask the amount)
    FULL = "pf"  # pay the next due in full
    SCHEDULE = "s"  # show the plan
    RECEIVABLES = "r"  # /receivables page (deal_id = page)
    WIN = "w"  # "Won with installments": ask for the plan
    COUNT = "c"  # equal split: arg = number of payments (then the first due date)
    LINES = "l"  # type the amounts and dates, one line per payment


class InstallmentCb(Canonical, prefix="ti"):
    action: InstallmentAction
    deal_id: Int
    v: Int = 0
    arg: Int = 0


class TimelineSubject(StrEnum):
    DEAL = "d"
    LEAD = "l"


class TimelineFilterCode(StrEnum):
    """storage.enums.TimelineFilter, one letter each."""

    ALL = "a"
    STAGES = "s"
    NOTES = "n"
    FILES = "f"
    TASKS = "t"
    MONEY = "m"
    MESSAGES = "c"


class TimelineCb(Canonical, prefix="h"):
    """A page of a timeline: newest first (src 0), or after the row (src, rid)."""

    subject: TimelineSubject
    subject_id: Int
    f: TimelineFilterCode = TimelineFilterCode.ALL
    src: Int = 0  # storage.repositories.timeline SOURCE_*; others are refused there
    rid: Int = 0


# --- the client's answers in their own Telegram (issue 25) ------------------------------------


class ClientAnswer(StrEnum):
    CONFIRM = "ok"  # the appointment suits
    RESCHEDULE = "rs"  # propose other times (-> a task for the manager)
    PROPOSE = "pp"  # the typed time, said back: yes, propose it
    OTHER = "po"  # ... no, another time
    ACCEPT = "ac"  # all installed, no remarks
    REMARKS = "rm"  # there are remarks (-> a claim)
    RATE = "rt"  # arg: 1-5 stars


class ClientAnswerCb(Canonical, prefix="ca"):
    """A client's answer to a message about their deal (handlers/clients/answers.py); the
    deal is loaded and checked against the client's contacts every time."""

    action: ClientAnswer
    deal_id: Int
    arg: Int = 0


# Every class of the UI.
ALL_CALLBACKS: tuple[type[Canonical], ...] = (
    MenuCb,
    WizardCb,
    LeadCb,
    DealCb,
    ListCb,
    SearchCb,
    WhenCb,
    TeamCb,
    InviteCb,
    LangCb,
    ImportCb,
    FunnelCb,
    PlanCb,
    ExportCb,
    DrillCb,
    TaskCb,
    AssignCb,
    JobCb,
    ClaimCb,
    ClientCb,
    TaskListCb,
    NewTaskCb,
    NextContactCb,
    InstallmentCb,
    TimelineCb,
    ClientAnswerCb,
)
