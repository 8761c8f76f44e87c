"""Company policy: the knobs the services read (time zone, reminder offsets, grace periods,
escalation delay), as one immutable object.

It is built from the settings in bot/ (`bot.settings.company_policy`) and carried by the
unit of work like the clock (``UnitOfWorkFactory(..., policy=...)``); a unit of work made
without one (a test, a script) gets the defaults below. Services read it with `of(uow)`;
nothing mutates it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from services import dates
from storage.uow import UnitOfWork


@dataclass(frozen=True)
class CompanyPolicy:
    timezone: str = "Europe/Moscow"
    # A measurer is reminded this long before the measurement (other tasks: at their time).
    measure_remind_before: timedelta = timedelta(hours=1)
    # An open task this late goes to the leaders.
    escalation_delay: timedelta = timedelta(hours=1)
    # An installment part unpaid this many days after its date is overdue.
    installment_grace_days: int = 3
    # An installment part is reminded this many days before its date.
    installment_reminder_days: int = 3
    # The morning summary lists deals with no activity for this many days.
    stale_days: int = 7
    # Record client chats that reach Voronka through managers' Telegram Business accounts.
    business_capture: bool = True
    # Whose Business chats are recorded: an employee with one of these roles (others are
    # told so when they connect, and nothing of theirs is read).
    business_roles: frozenset[str] = frozenset({"manager", "leader", "admin"})
    # Working days (0 = Monday): a plan's pace is per remaining working day.
    work_days: frozenset[int] = frozenset({0, 1, 2, 3, 4})

    def __post_init__(self) -> None:
        dates.zone(self.timezone)  # refuse an unknown zone now, not at the first task


DEFAULT = CompanyPolicy()


def of(uow: UnitOfWork) -> CompanyPolicy:
    """The policy the unit of work carries (the defaults when it carries none)."""
    carried = uow.policy
    return carried if isinstance(carried, CompanyPolicy) else DEFAULT
