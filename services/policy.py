"""Company policy: the knobs the services read (time zone, reminder offsets, grace periods,
escalation delay), as one immutable object.

It is built from the settings in bot/ (`bot.settings.company_policy`) and carried by the
unit of work like the clock (``UnitOfWorkFactory(..., policy=...)``); a unit of work made
without one (a test, a script) gets the defaults below. Services read it with `of(uow)`;
nothing mutates it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from services import dates
from services.worktime import WorkHours
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
    # Working hours (the first-response clock runs only inside them; issue 26).
    work_hours: WorkHours = WorkHours()
    # A new lead's first touch is due this much working time after it came (0: no limit).
    first_response: timedelta = timedelta(minutes=15)
    # How automatic channels give new leads out: "round_robin" or "least_loaded".
    distribution: str = "round_robin"
    # Daily norms per role: (role, what, per day); `what` is one of NORM_KINDS.
    norms: tuple[Norm, ...] = ()

    def __post_init__(self) -> None:
        dates.zone(self.timezone)  # refuse an unknown zone now, not at the first task
        if self.work_hours.timezone != self.timezone:  # one zone: the company's
            object.__setattr__(self, "work_hours", replace(self.work_hours, timezone=self.timezone))
        if self.distribution not in DISTRIBUTION_RULES:
            raise ValueError(f"distribution: one of {', '.join(DISTRIBUTION_RULES)}")


DISTRIBUTION_RULES = ("round_robin", "least_loaded")
# What a daily norm counts, all from the timeline of the day (company time zone):
# calls / notes logged (activities), next contacts set (follow-up tasks made), leads
# taken into work (first touches), measurements booked (measurement tasks on their deals).
NORM_KINDS = ("calls", "notes", "next_contacts", "leads_taken", "measurements_booked")


@dataclass(frozen=True)
class Norm:
    role: str
    what: str
    per_day: int


def parse_norms(text: str) -> tuple[Norm, ...]:
    """NORMS ("manager:calls=20,next_contacts=10;leader:calls=5") as Norm rows; ValueError
    naming what is wrong."""
    norms: list[Norm] = []
    for group in (g.strip() for g in text.split(";")):
        if not group:
            continue
        role, sep, items = group.partition(":")
        role = role.strip().lower()
        if not sep or not role:
            raise ValueError("ROLE:what=N,what=N;ROLE:... e.g. manager:calls=20,notes=10")
        for item in (i.strip() for i in items.split(",")):
            if not item:
                continue
            what, eq, number = (p.strip() for p in item.partition("="))
            if what not in NORM_KINDS:
                raise ValueError(f"{what!r}: one of {', '.join(NORM_KINDS)}")
            if not eq or not number.isdigit() or not 0 < int(number) <= 10_000:
                raise ValueError(f"{role}:{what}: a number of times a day, 1-10000")
            norms.append(Norm(role, what, int(number)))
    return tuple(norms)


DEFAULT = CompanyPolicy()


def of(uow: UnitOfWork) -> CompanyPolicy:
    """The policy the unit of work carries (the defaults when it carries none)."""
    carried = uow.policy
    return carried if isinstance(carried, CompanyPolicy) else DEFAULT
