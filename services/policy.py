"""Company policy: the knobs the services read (time zone, reminder offsets, grace periods,
escalation delay), as one immutable object.

It is built from the settings in bot/ (`bot.settings.company_policy`) and carried by the
unit of work like the clock (``UnitOfWorkFactory(..., policy=...)``); a unit of work made
without one (a test, a script) gets the defaults below. Services read it with `of(uow)`;
nothing mutates it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta

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
    # Messages to clients (issue 25) are not sent between these local times (start, end;
    # the window may cross midnight); None: no quiet hours.
    client_quiet_hours: tuple[time, time] | None = (time(21, 0), time(9, 0))

    def __post_init__(self) -> None:
        dates.zone(self.timezone)  # refuse an unknown zone now, not at the first task
        if self.work_hours.timezone != self.timezone:  # one zone: the company's
            object.__setattr__(self, "work_hours", replace(self.work_hours, timezone=self.timezone))
        if self.distribution not in DISTRIBUTION_RULES:
            raise ValueError(f"distribution: one of {', '.join(DISTRIBUTION_RULES)}")

    def quiet_until(self, moment: datetime) -> datetime | None:
        """The end of the clients' quiet hours `moment` falls in (an aware UTC moment), or
        None when a client may be written to at `moment`."""
        if self.client_quiet_hours is None:
            return None
        start, end = self.client_quiet_hours
        if start == end:
            return None
        zone = dates.zone(self.timezone)
        local = moment.astimezone(zone)
        at = local.time().replace(tzinfo=None)
        inside = (start <= at < end) if start < end else (at >= start or at < end)
        if not inside:
            return None
        day = local.date() if at < end else local.date() + timedelta(days=1)
        return datetime.combine(day, end, zone).astimezone(moment.tzinfo)


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


def parse_quiet_hours(text: str) -> tuple[time, time] | None:
    """ "21:00-09:00" -> (21:00, 09:00); "off" or "" -> None. ValueError if unreadable."""
    value = text.strip().lower()
    if value in ("", "off", "none", "no"):
        return None
    parts = value.replace("–", "-").split("-")
    try:
        if len(parts) != 2:
            raise ValueError(text)
        return time.fromisoformat(parts[0].strip()), time.fromisoformat(parts[1].strip())
    except ValueError as exc:
        raise ValueError("HH:MM-HH:MM, e.g. 21:00-09:00, or off") from exc


DEFAULT = CompanyPolicy()


def of(uow: UnitOfWork) -> CompanyPolicy:
    """The policy the unit of work carries (the defaults when it carries none)."""
    carried = uow.policy
    return carried if isinstance(carried, CompanyPolicy) else DEFAULT
