"""Company policy: the knobs the services read (time zone, reminder offsets, grace periods,
escalation delay), as one immutable object.

It is built from the settings in bot/ (`bot.settings.company_policy`) and carried by the
unit of work like the clock (``UnitOfWorkFactory(..., policy=...)``); a unit of work made
without one (a test, a script) gets the defaults below. Services read it with `of(uow)`;
nothing mutates it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

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
    # Messages to clients (issue 25) are not sent between these local times (start, end;
    # the window may cross midnight); None: no quiet hours.
    client_quiet_hours: tuple[time, time] | None = (time(21, 0), time(9, 0))

    def __post_init__(self) -> None:
        dates.zone(self.timezone)  # refuse an unknown zone now, not at the first task

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


def parse_quiet_hours(text: str) -> tuple[time, time] | None:
    """ "21:00-09:00" -> (21:00, 09:00); "off" or "" -> None. ValueError if unreadable."""
    value = text.strip().lower()
    if value in ("", "off", "none", "no"):
        return None
    parts = value.replace("–", "-").split("-")
    if len(parts) != 2:
        raise ValueError("HH:MM-HH:MM, e.g. 21:00-09:00, or off")
    return time.fromisoformat(parts[0].strip()), time.fromisoformat(parts[1].strip())


DEFAULT = CompanyPolicy()


def of(uow: UnitOfWork) -> CompanyPolicy:
    """The policy the unit of work carries (the defaults when it carries none)."""
    carried = uow.policy
    return carried if isinstance(carried, CompanyPolicy) else DEFAULT
