"""Working time: the company's working hours and days, in its time zone (issue 26).

The first-response clock counts working time only: a lead that comes at 18:55 with a
15-minute limit and hours 09:00-19:00 is due at 09:10 on the next working day. Pure
arithmetic, no database: `WorkHours.add` (a moment plus so much working time),
`WorkHours.elapsed` (the working time between two moments) and `WorkHours.is_open`.

Moments are aware datetimes; arithmetic is done in UTC, the windows are local wall times
(a day's window is its start and end on that local date, so a DST change moves it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from services import dates

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
# A lead's due moment is never further than this many calendar days on (a guard against a
# configuration with no working day, which the parser refuses anyway).
_MAX_DAYS = 400


def parse_hours(text: str) -> tuple[time, time]:
    """ "09:00-19:00" -> (09:00, 19:00); ValueError when malformed or not start < end."""
    found = _HOURS.match(text)
    if not found:
        raise ValueError("working hours as HH:MM-HH:MM, e.g. 09:00-19:00")
    h1, m1, h2, m2 = (int(g) for g in found.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
        raise ValueError("working hours as HH:MM-HH:MM, e.g. 09:00-19:00")
    start = time(h1, m1)
    end = time.max if h2 == 24 else time(h2, m2)
    if not start < end:
        raise ValueError("working hours must start before they end (e.g. 09:00-19:00)")
    return start, end


def parse_days(text: str) -> frozenset[int]:
    """ "mon-fri" or "mon,tue,thu" or "mon-fri,sat" -> weekday numbers (Monday 0)."""
    days: set[int] = set()
    for part in re.split(r"[,\s]+", text.strip().lower()):
        if not part:
            continue
        first, _, last = part.partition("-")
        if first not in DAY_NAMES or (last and last not in DAY_NAMES):
            raise ValueError("working days as mon-fri or mon,tue,wed (mon..sun)")
        a = DAY_NAMES.index(first)
        b = DAY_NAMES.index(last) if last else a
        span = range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)]
        days.update(span)
    if not days:
        raise ValueError("at least one working day, e.g. mon-fri")
    return frozenset(days)


@dataclass(frozen=True)
class WorkHours:
    start: time = time(9, 0)
    end: time = time(19, 0)
    days: frozenset[int] = frozenset(range(5))  # Monday..Friday
    timezone: str = "Europe/Moscow"

    @classmethod
    def parse(cls, hours: str, days: str, timezone: str) -> WorkHours:
        start, end = parse_hours(hours)
        dates.zone(timezone)
        return cls(start, end, parse_days(days), timezone)

    def window(self, day: date) -> tuple[datetime, datetime] | None:
        """The working window of a local day in UTC, or None on a day off."""
        if day.weekday() not in self.days:
            return None
        zone = dates.zone(self.timezone)
        start = datetime.combine(day, self.start, tzinfo=zone).astimezone(UTC)
        if self.end == time.max:
            end = datetime.combine(day + timedelta(days=1), time(), tzinfo=zone)
        else:
            end = datetime.combine(day, self.end, tzinfo=zone)
        return start, end.astimezone(UTC)

    def _local_day(self, moment: datetime) -> date:
        return moment.astimezone(dates.zone(self.timezone)).date()

    def is_open(self, moment: datetime) -> bool:
        """Within a working window (its start included, its end excluded)."""
        win = self.window(self._local_day(moment))
        return win is not None and win[0] <= moment < win[1]

    def add(self, moment: datetime, amount: timedelta) -> datetime:
        """The moment when `amount` of working time has passed since `moment`."""
        left = amount
        at = moment.astimezone(UTC)
        day = self._local_day(at)
        for _ in range(_MAX_DAYS):
            win = self.window(day)
            if win is not None and at < win[1]:
                at = max(at, win[0])
                if at + left <= win[1]:
                    return at + left
                left -= win[1] - at
            day += timedelta(days=1)
        raise ValueError("no working time within a year: check WORK_DAYS")

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """Working time between two moments (zero when `end` is not after `start`)."""
        total = timedelta()
        if end <= start:
            return total
        day, last = self._local_day(start), self._local_day(end)
        while day <= last:
            win = self.window(day)
            if win is not None:
                lo, hi = max(start, win[0]), min(end, win[1])
                if hi > lo:
                    total += hi - lo
            day += timedelta(days=1)
        return total


def response_seconds(hours: WorkHours, came: datetime, touched: datetime) -> int:
    """A lead's first-response time: whole working seconds from `came` to `touched`."""
    return int(hours.elapsed(came, touched).total_seconds())
