"""CallbackData of tasks, reminders and installments (prefixes start with "t").

Telegram allows 64 bytes: ints and one- or two-letter enums only. The ids are client input:
the services load the task/deal and check the actor's right to it every time (a measurer
pressing a forged task id gets a refusal). "Open deal" buttons use handlers.callbacks.DealCb.
Ints are `handlers.callbacks.Int` (0..2**31-1): a forged bigger or negative one fails to
unpack. `TASK_CALLBACKS` belongs in handlers.callbacks.ALL_CALLBACKS.
"""

from __future__ import annotations

from enum import StrEnum

from aiogram.filters.callback_data import CallbackData

from handlers.callbacks import Int
from services.dates import QuickChoice

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


class TaskCb(CallbackData, prefix="tk"):
    action: TaskAction
    task_id: Int
    arg: Int = 0


class AssignCb(CallbackData, prefix="ta"):
    """The head of measurers picks a measurer for an assign task."""

    task_id: Int
    measurer_id: Int


class NewTaskAction(StrEnum):
    """A manual task (/task): its due time and (a leader) its assignee."""

    WHEN = "w"  # arg: index into NEXT_CONTACT_CHOICES; len(...) = type a date
    FOR = "f"  # arg: employee id, 0 = myself
    CANCEL = "x"


class NewTaskCb(CallbackData, prefix="tt"):
    action: NewTaskAction
    arg: Int = 0


class TaskListScope(StrEnum):
    TODAY = "t"
    UPCOMING = "u"


class TaskListCb(CallbackData, prefix="tl"):
    scope: TaskListScope
    page: Int = 0


class NextContactCb(CallbackData, prefix="tn"):
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


class InstallmentCb(CallbackData, prefix="ti"):
    action: InstallmentAction
    deal_id: Int
    v: Int = 0
    arg: Int = 0


TASK_CALLBACKS: tuple[type[CallbackData], ...] = (
    TaskCb,
    AssignCb,
    TaskListCb,
    NewTaskCb,
    NextContactCb,
    InstallmentCb,
)
