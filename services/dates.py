"""Typed dates and times (Russian and English) in the company's timezone.

`parse_when(text, clock, tz)` reads what a person types after "Next contact", "Snooze" or a
manual task's due time, relative to ``clock.now()`` in the zone ``tz`` (a zoneinfo name),
and returns an aware UTC datetime at minute precision. Anything it cannot read raises
``ValidationError("when", "unparseable")``; a moment not after now raises
``ValidationError("when", "in_the_past")``; more than five years ahead, ``"too_far"``.

A hand-written grammar (no dependency): the input is lower-cased and each component is
matched and cut out in turn; whatever is left must be filler words ("в", "at", "on"...),
so "завтра 10:00 blah" is refused instead of half-read. Components:

- relative: "через 2 часа", "через полчаса", "через неделю", "in 3 days", "in an hour", "+2h"
- a day: "сегодня"/"today", "завтра"/"tomorrow", "послезавтра"/"day after tomorrow",
  a weekday ("пн", "в пятницу", "monday", "next monday", "в следующий вторник"),
  "next week"/"на следующей неделе" (its Monday), "25.12", "25.12.2026", "25.12.26",
  "2026-12-25", "12/25" (month/day; day/month when the first number is over 12),
  "25 декабря", "25 dec 2026", "december 25", "dec 25th"
- a time: "14:30", "2:30pm", "3pm", "3 pm", "в 18", "at 15", "10 утра", "3 дня",
  "8 вечера", "noon"/"полдень", "midnight"/"полночь"

- a part of the day: "утром" (10:00), "днём" (13:00), "после обеда" (15:00), "вечером"
  (18:00), "morning", "afternoon", "evening" (the same hours); with an hour it says which
  half of the day ("вечером в 7" is 19:00)

An hour from 1 to 6 said alone ("в 5") is refused as ambiguous (``"ambiguous"``): 5 in the
morning or in the evening? "5 утра", "в 17", "5pm", "вечером в 5" are read.

Rules: a day without a time means 10:00 (`DEFAULT_HOUR`) for `parse_when`; `read_when`
(what people type for a measurement, an edited date) raises `TimeMissing` instead, so the
time is asked for; a time without a day means today,
or tomorrow when it has passed ("сегодня" said explicitly never rolls over); a day and month
without a year mean the next such date; a bare weekday is the first such day from today on
that is still ahead, "next <weekday>" the first one after today; "in N days/weeks/months"
keeps the current time of day unless a time is given.
"""

from __future__ import annotations

import re
from calendar import monthrange
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.clock import Clock
from services.errors import ValidationError

DEFAULT_HOUR = 10
MAX_AHEAD = timedelta(days=5 * 366)
MAX_INPUT = 100

# --- vocabulary ---------------------------------------------------------------------------

_MONTHS: dict[str, int] = {}
for _n, _names in enumerate(
    (
        ("января", "январь", "янв", "january", "jan"),
        ("февраля", "февраль", "фев", "february", "feb"),
        ("марта", "март", "мар", "march", "mar"),
        ("апреля", "апрель", "апр", "april", "apr"),
        ("мая", "май", "may"),
        ("июня", "июнь", "июн", "june", "jun"),
        ("июля", "июль", "июл", "july", "jul"),
        ("августа", "август", "авг", "august", "aug"),
        ("сентября", "сентябрь", "сент", "сен", "september", "sept", "sep"),
        ("октября", "октябрь", "окт", "october", "oct"),
        ("ноября", "ноябрь", "ноя", "november", "nov"),
        ("декабря", "декабрь", "дек", "december", "dec"),
    ),
    start=1,
):
    for _name in _names:
        _MONTHS[_name] = _n

_WEEKDAYS: dict[str, int] = {}
for _n, _names in enumerate(
    (
        ("понедельник", "пн", "monday", "mon"),
        ("вторник", "вт", "tuesday", "tues", "tue"),
        ("среда", "среду", "ср", "wednesday", "wed"),
        ("четверг", "чт", "thursday", "thurs", "thur", "thu"),
        ("пятница", "пятницу", "пт", "friday", "fri"),
        ("суббота", "субботу", "сб", "saturday", "sat"),
        ("воскресенье", "вс", "sunday", "sun"),
    )
):
    for _name in _names:
        _WEEKDAYS[_name] = _n


def _alt(words: dict[str, int]) -> str:
    return "|".join(sorted(words, key=len, reverse=True))


_FILLERS = frozenset(
    {
        "в",
        "во",
        "на",
        "к",
        "at",
        "on",
        "the",
        "by",
        "of",
        "this",
        "г",
        "года",
        "год",
        "эту",
        "этот",
        "это",
        "in",
    }
)

# Parts of the day: the hour each stands for, and whether an hour said with it is in the
# afternoon ("вечером в 7": 19:00).
_DAY_PARTS: dict[str, tuple[int, bool]] = {
    "утром": (DEFAULT_HOUR, False),
    "с утра": (DEFAULT_HOUR, False),
    "morning": (DEFAULT_HOUR, False),
    "днем": (13, True),
    "днём": (13, True),
    "после обеда": (15, True),
    "afternoon": (15, True),
    "вечером": (18, True),
    "evening": (18, True),
}

_UNIT = (
    r"(?P<unit>минут[ауы]?|мин|minutes?|mins?|час(?:а|ов)?|ч|hours?|hrs?|h|"
    r"день|дн(?:я|ей)|сутки|суток|days?|d|недел[юиь]|нед|weeks?|wks?|w|"
    r"месяц(?:а|ев)?|мес|months?)"
)
_RELATIVE = re.compile(
    r"(?:(?<!\w)через|(?<!\w)in|\+)\s*(?P<n>\d{1,4}|an?|one|пол)?\s*" + _UNIT + r"(?!\w)"
)
_ISO = re.compile(r"(?<!\d)(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})(?!\d)")
_DOTTED = re.compile(r"(?<![\d.])(?P<d>\d{1,2})\.(?P<m>\d{1,2})(?:\.(?P<y>\d{4}|\d{2}))?(?![\d.])")
_SLASHED = re.compile(r"(?<![\d/])(?P<a>\d{1,2})/(?P<b>\d{1,2})(?:/(?P<y>\d{4}|\d{2}))?(?![\d/])")
_DAY_MONTH = re.compile(
    r"(?<!\w)(?P<d>\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<mon>"
    + _alt(_MONTHS)
    + r")\.?(?:\s+(?P<y>\d{4}))?(?!\w)"
)
_MONTH_DAY = re.compile(
    r"(?<!\w)(?P<mon>"
    + _alt(_MONTHS)
    + r")\.?\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?(?:\s+(?P<y>\d{4}))?(?![\w:])"
)
_AMPM = r"(?P<ap>am|pm|a\.m\.|p\.m\.)"
_DAYPART = r"(?P<dp>утра|дня|вечера|ночи)"
_CLOCK = re.compile(
    r"(?<![\d:])(?P<h>\d{1,2}):(?P<mi>\d{2})(?![\d:])(?:\s*" + _AMPM + r"|\s+" + _DAYPART + r")?"
)
_HOUR_AMPM = re.compile(r"(?<![\d:])(?P<h>\d{1,2})\s*" + _AMPM + r"(?!\w)")
_HOUR_DAYPART = re.compile(
    r"(?<![\d:])(?P<h>\d{1,2})\s*(?:ч(?:ас(?:а|ов)?)?\.?\s+)?" + _DAYPART + r"(?!\w)"
)
_PREP_HOUR = re.compile(
    r"(?<!\w)(?:в|во|at|к)\s+(?P<h>\d{1,2})(?:\s*(?:ч|час(?:а|ов)?|h|o'clock))?(?![\w:.])"
)
_PART_OF_DAY = re.compile(
    r"(?<!\w)(?P<w>" + "|".join(sorted(_DAY_PARTS, key=len, reverse=True)) + r")(?!\w)"
)
_NOON = re.compile(r"(?<!\w)(?P<w>noon|полдень|midnight|полночь)(?!\w)")
_AFTER_TOMORROW = re.compile(r"(?<!\w)(?:послезавтра|day after tomorrow)(?!\w)")
_TOMORROW = re.compile(r"(?<!\w)(?:завтра|tomorrow|tmrw|tmr)(?!\w)")
_TODAY = re.compile(r"(?<!\w)(?:сегодня|today|tonight)(?!\w)")
_NEXT_WEEK = re.compile(
    r"(?<!\w)(?:next week|на следующей неделе|на след\.? неделе|следующая неделя)(?!\w)"
)
_WEEKDAY = re.compile(
    r"(?<!\w)(?P<next>next|следующ(?:ий|ую|ее|ей|ая)|след\.?)?\s*(?P<wd>"
    + _alt(_WEEKDAYS)
    + r")\.?(?!\w)"
)


# --- parsing ------------------------------------------------------------------------------


def zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError("timezone", "unknown", tz=tz) from exc


def _normalize(text: str) -> str:
    s = text.strip().lower().replace("ё", "е")
    s = re.sub(r"[,;!?«»\"()]", " ", s)
    s = re.sub(r"\s+", " ", s)
    return s.strip(" .")


@dataclass
class _Parts:
    day: date | None = None
    explicit_today: bool = False
    rolling_year: bool = False  # day and month given without a year
    weekday: int | None = None
    weekday_next: bool = False
    clock: time | None = None
    part_of_day: str | None = None
    bare_hour: int | None = None  # an hour said without minutes, am/pm or part of the day
    delta: timedelta | None = None
    months: int = 0
    relative_small: bool = False  # minutes/hours: a moment, not a day


def _bad() -> ValidationError:
    return ValidationError("when", "unparseable")


class _Scanner:
    def __init__(self, text: str) -> None:
        self.s = text

    def take(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        m = pattern.search(self.s)
        if m is None:
            return None
        self.s = self.s[: m.start()] + " " + self.s[m.end() :]
        return m

    def leftover(self) -> list[str]:
        return [w for w in re.split(r"[\s.]+", self.s) if w and w not in _FILLERS]


def _year(raw: str | None) -> int | None:
    if raw is None:
        return None
    y = int(raw)
    return 2000 + y if len(raw) == 2 else y


def _mkdate(y: int, m: int, d: int) -> date:
    try:
        return date(y, m, d)
    except ValueError as exc:
        raise _bad() from exc


def _hour(h: int, ap: str | None, dp: str | None) -> int:
    if ap is not None:
        if not 1 <= h <= 12:
            raise _bad()
        pm = ap.startswith("p")
        return (h % 12) + (12 if pm else 0)
    if dp is not None:
        if not 0 <= h <= 12:
            raise _bad()
        if dp == "утра":
            return h % 12
        if dp == "ночи":
            return 0 if h == 12 else h if h <= 5 else h + 12
        # дня / вечера: 1..12 in the afternoon or evening (12 дня is noon)
        return 12 if h == 12 else h + 12
    if not 0 <= h <= 23:
        raise _bad()
    return h


def _set_time(parts: _Parts, h: int, mi: int = 0) -> None:
    if parts.clock is not None or not 0 <= mi <= 59:
        raise _bad()
    parts.clock = time(h, mi)


def _part_of_day(parts: _Parts, word: str) -> None:
    """ "вечером": 18:00, or the afternoon half for an hour said with it ("вечером в 7")."""
    hour, afternoon = _DAY_PARTS[word]
    parts.part_of_day = word
    if parts.clock is None:
        parts.clock = time(hour)
    elif parts.bare_hour is not None and afternoon and 1 <= parts.bare_hour < 12:
        parts.clock = parts.clock.replace(hour=parts.bare_hour + 12)
    elif parts.bare_hour is None and afternoon != (parts.clock.hour >= 12):
        raise _bad()  # "10 утра вечером", "8pm утром": two different halves


def _day_of(today: date, year: int | None, month: int, day: int) -> tuple[date, bool]:
    """(the date, whether its year was inferred); an inferred year is this one, or the next
    in which the date exists (29 February)."""
    if year is not None:
        return _mkdate(year, month, day), False
    for y in range(today.year, today.year + 9):
        try:
            return date(y, month, day), True
        except ValueError:
            continue
    raise _bad()


def _set_day(parts: _Parts, day: date, rolling: bool = False) -> None:
    if parts.day is not None or parts.weekday is not None:
        raise _bad()
    parts.day = day
    parts.rolling_year = rolling


def _scan(text: str, today: date) -> _Parts:
    sc = _Scanner(text)
    parts = _Parts()

    m = sc.take(_RELATIVE)
    if m is not None:
        raw_n = m["n"]
        if raw_n is None or raw_n in ("a", "an", "one"):
            n_value = 1.0
        elif raw_n == "пол":
            n_value = 0.5
        else:
            n_value = float(int(raw_n))
        if n_value <= 0:
            raise _bad()
        unit = m["unit"]
        if unit.startswith(("мин", "min")):
            parts.delta, parts.relative_small = timedelta(minutes=n_value), True
        elif unit.startswith(("ч", "h")):
            parts.delta, parts.relative_small = timedelta(hours=n_value), True
        elif unit.startswith(("д", "су", "d")):
            parts.delta = timedelta(days=n_value)
        elif unit.startswith(("нед", "w")):
            parts.delta = timedelta(weeks=n_value)
        else:
            if n_value != int(n_value):
                raise _bad()
            parts.months = int(n_value)
            parts.delta = timedelta(0)
        if parts.delta is not None and parts.delta.total_seconds() % 60:
            raise _bad()

    if (m := sc.take(_ISO)) is not None:
        _set_day(parts, _mkdate(int(m["y"]), int(m["m"]), int(m["d"])))
    if (m := sc.take(_DOTTED)) is not None:
        _set_day(parts, *_day_of(today, _year(m["y"]), int(m["m"]), int(m["d"])))
    if (m := sc.take(_SLASHED)) is not None:
        a, b = int(m["a"]), int(m["b"])
        month, day_n = (b, a) if a > 12 else (a, b)
        _set_day(parts, *_day_of(today, _year(m["y"]), month, day_n))
    for pattern in (_DAY_MONTH, _MONTH_DAY):
        if (m := sc.take(pattern)) is not None:
            _set_day(parts, *_day_of(today, _year(m["y"]), _MONTHS[m["mon"]], int(m["d"])))

    if (m := sc.take(_CLOCK)) is not None:
        _set_time(parts, _hour(int(m["h"]), m["ap"], m["dp"]), int(m["mi"]))
    if (m := sc.take(_HOUR_AMPM)) is not None:
        _set_time(parts, _hour(int(m["h"]), m["ap"], None))
    if (m := sc.take(_HOUR_DAYPART)) is not None:
        _set_time(parts, _hour(int(m["h"]), None, m["dp"]))
    if (m := sc.take(_PREP_HOUR)) is not None:
        parts.bare_hour = int(m["h"])
        _set_time(parts, _hour(parts.bare_hour, None, None))
    if (m := sc.take(_NOON)) is not None:
        _set_time(parts, 12 if m["w"] in ("noon", "полдень") else 0)
    if (m := sc.take(_PART_OF_DAY)) is not None:
        _part_of_day(parts, m["w"])
    elif parts.bare_hour is not None and 1 <= parts.bare_hour <= 6:
        raise ValidationError("when", "ambiguous")

    if sc.take(_AFTER_TOMORROW) is not None:
        _set_day(parts, today + timedelta(days=2))
    if sc.take(_TOMORROW) is not None:
        _set_day(parts, today + timedelta(days=1))
    if sc.take(_TODAY) is not None:
        _set_day(parts, today)
        parts.explicit_today = True
    if sc.take(_NEXT_WEEK) is not None:
        _set_day(parts, today + timedelta(days=7 - today.weekday()))
    if (m := sc.take(_WEEKDAY)) is not None:
        if parts.day is not None:
            raise _bad()
        parts.weekday = _WEEKDAYS[m["wd"]]
        parts.weekday_next = m["next"] is not None

    if sc.leftover():
        raise _bad()
    nothing = parts.day is None and parts.weekday is None and parts.clock is None
    if nothing and parts.delta is None:
        raise _bad()
    if parts.delta is not None and (parts.day is not None or parts.weekday is not None):
        raise _bad()
    if parts.relative_small and parts.clock is not None:
        raise _bad()
    return parts


def _add_months(d: date, months: int) -> date:
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    return date(year, month, min(d.day, monthrange(year, month)[1]))


def _floor_minute(dt: datetime) -> datetime:
    return dt.replace(second=0, microsecond=0)


def _resolve(parts: _Parts, now_local: datetime) -> datetime:
    """A naive local datetime for the parts."""
    today = now_local.date()
    if parts.delta is not None:
        if parts.relative_small:
            return _floor_minute(now_local + parts.delta)
        moved = _add_months(now_local.date(), parts.months) + parts.delta
        if parts.clock is not None:
            return datetime.combine(moved, parts.clock)
        return _floor_minute(datetime.combine(moved, now_local.time()))
    clock = parts.clock
    if parts.weekday is not None:
        ahead = (parts.weekday - today.weekday()) % 7
        if parts.weekday_next and ahead == 0:
            ahead = 7
        day = today + timedelta(days=ahead)
        result = datetime.combine(day, clock or time(DEFAULT_HOUR))
        if result <= now_local and not parts.weekday_next:
            result += timedelta(days=7)
        return result
    if parts.day is None:
        assert clock is not None
        result = datetime.combine(today, clock)
        if result <= now_local:
            result += timedelta(days=1)
        return result
    day = parts.day
    if parts.rolling_year and day < today:
        day = _next_year(day)
    return datetime.combine(day, clock or time(DEFAULT_HOUR))


def _next_year(day: date) -> date:
    for years in range(1, 9):
        try:
            return day.replace(year=day.year + years)
        except ValueError:  # 29 February
            continue
    raise _bad()


def parse_when(text: str, clock: Clock, tz: str) -> datetime:
    """What a person typed -> an aware UTC datetime in the future (minute precision)."""
    if not isinstance(text, str) or len(text) > MAX_INPUT:
        raise _bad()
    normalized = _normalize(text)
    if not normalized:
        raise _bad()
    zi = zone(tz)
    now = clock.now()
    now_local = now.astimezone(zi).replace(tzinfo=None)
    parts = _scan(normalized, now_local.date())
    local = _resolve(parts, now_local)
    return check_when(local.replace(tzinfo=zi), clock)


def check_when(moment: datetime, clock: Clock) -> datetime:
    """The rules every typed moment meets, however it was typed (the chat's words, or a
    form's ISO date): after now, at most `MAX_AHEAD` ahead; returned in UTC."""
    now = clock.now()
    try:
        result = moment.astimezone(UTC)
        if result <= now:
            raise ValidationError("when", "in_the_past")
        if result - now > MAX_AHEAD:
            raise ValidationError("when", "too_far")
    except OverflowError as exc:  # year 9999 in a zone east of UTC
        raise ValidationError("when", "too_far") from exc
    return result


class TimeMissing(ValidationError):
    """A day was typed without a time ("в пятницу", "25.12"): ask for the time. `day` is
    the local day it names."""

    def __init__(self, day: date) -> None:
        super().__init__("when", "no_time", day=day.isoformat())
        self.day = day


def read_when(text: str, clock: Clock, tz: str, day: date | None = None) -> datetime:
    """Like `parse_when`, but a day without a time is not taken as 10:00: `TimeMissing`
    says which day was named, so the time can be asked for. `day`: the day named before
    (the answer to "what time?"): the text is then read as a time of that day, or as a whole
    new date ("fri 10am")."""
    if day is not None and isinstance(text, str):
        said = text.strip()
        if said.isdigit() and len(said) <= 2:  # "10" in answer to "what time?"
            said = "в " + said
        try:
            return read_when(f"{day.isoformat()} {said}", clock, tz)
        except TimeMissing:
            raise
        except ValidationError as exc:
            if exc.code != "unparseable":
                raise
    if not isinstance(text, str) or len(text) > MAX_INPUT:
        raise _bad()
    normalized = _normalize(text)
    if not normalized:
        raise _bad()
    now_local = clock.now().astimezone(zone(tz)).replace(tzinfo=None)
    parts = _scan(normalized, now_local.date())
    if parts.clock is None and parts.delta is None:
        local = _resolve(parts, now_local)
        if local.date() < now_local.date():
            raise ValidationError("when", "in_the_past")
        raise TimeMissing(local.date())
    return parse_when(text, clock, tz)


def parse_day(text: str, clock: Clock, tz: str, *, allow_today: bool = True) -> date:
    """A typed calendar day ("25.12", "25.12.2026", "завтра", "пт") -> a date, not in the past."""
    if not isinstance(text, str) or len(text) > MAX_INPUT:
        raise _bad()
    normalized = _normalize(text)
    if not normalized:
        raise _bad()
    today = clock.now().astimezone(zone(tz)).date()
    parts = _scan(normalized, today)
    if parts.clock is not None or parts.delta is not None:
        raise _bad()
    if parts.weekday is not None:
        ahead = (parts.weekday - today.weekday()) % 7
        if ahead == 0 and (parts.weekday_next or not allow_today):
            ahead = 7
        return today + timedelta(days=ahead)
    assert parts.day is not None
    day = parts.day
    if parts.rolling_year and day < today:
        day = _next_year(day)
    if day < today or (day == today and not allow_today):
        raise ValidationError("when", "in_the_past")
    if day - today > MAX_AHEAD:
        raise ValidationError("when", "too_far")
    return day


# --- quick choices ------------------------------------------------------------------------


class QuickChoice(StrEnum):
    """The buttons under "Next contact" and "Snooze" (short values: they go in callbacks)."""

    IN_1H = "1h"
    TOMORROW = "tm"
    IN_3D = "3d"
    NEXT_WEEK = "nw"
    IN_1M = "1m"


def quick(choice: QuickChoice | str, clock: Clock, tz: str) -> datetime:
    """in 1 h / tomorrow 10:00 / +3 days (same time) / next week's Monday 10:00 /
    in a month (10:00) -> aware UTC."""
    try:
        choice = QuickChoice(choice)
    except ValueError as exc:
        raise ValidationError("when", "unknown_choice") from exc
    zi = zone(tz)
    now = clock.now()
    now_local = now.astimezone(zi)
    today = now_local.date()
    morning = time(DEFAULT_HOUR)
    if choice is QuickChoice.IN_1H:
        return _floor_minute(now + timedelta(hours=1)).astimezone(UTC)
    if choice is QuickChoice.IN_3D:
        local = datetime.combine(today + timedelta(days=3), now_local.time().replace(tzinfo=None))
        return _floor_minute(local.replace(tzinfo=zi)).astimezone(UTC)
    if choice is QuickChoice.TOMORROW:
        day = today + timedelta(days=1)
    elif choice is QuickChoice.IN_1M:
        day = _add_months(today, 1)
    else:
        day = today + timedelta(days=7 - today.weekday())
    return datetime.combine(day, morning).replace(tzinfo=zi).astimezone(UTC)


def local_day_bounds(day: date, tz: str) -> tuple[datetime, datetime]:
    """[start, end) of a local calendar day, as aware UTC datetimes."""
    zi = zone(tz)
    start = datetime.combine(day, time(0)).replace(tzinfo=zi)
    end = datetime.combine(day + timedelta(days=1), time(0)).replace(tzinfo=zi)
    return start.astimezone(UTC), end.astimezone(UTC)


def local_today(clock: Clock, tz: str) -> date:
    return clock.now().astimezone(zone(tz)).date()


def at_local(day: date, hour: int, tz: str) -> datetime:
    """`hour`:00 local time on `day`, as aware UTC."""
    return datetime.combine(day, time(hour)).replace(tzinfo=zone(tz)).astimezone(UTC)


_PAID_DAY = re.compile(r"^(?P<d>\d{1,2})[./](?P<m>\d{1,2})(?:[./](?P<y>\d{4}|\d{2}))?$")
_PAID_WORDS = {"сегодня": 0, "today": 0, "вчера": 1, "yesterday": 1, "позавчера": 2}


def parse_paid_on(text: str, clock: Clock, tz: str) -> date:
    """A payment's day as typed ("20.01", "20.01.2026", "2026-01-20", "вчера", "today"):
    today or earlier. Without a year, the latest such day that is not in the future.
    (Added by the UI side, issue #4: parse_day refuses past days.)"""
    if not isinstance(text, str) or len(text) > MAX_INPUT:
        raise ValidationError("paid_on", "invalid")
    value = text.strip().lower()
    today = local_today(clock, tz)
    if value in _PAID_WORDS:
        return today - timedelta(days=_PAID_WORDS[value])
    iso = _ISO.fullmatch(value)
    m = _PAID_DAY.match(value)
    try:
        if iso:
            day = date(int(iso["y"]), int(iso["m"]), int(iso["d"]))
        elif m:
            year = _year(m["y"])
            day = date(year or today.year, int(m["m"]), int(m["d"]))
            if year is None and day > today:
                day = day.replace(year=today.year - 1)
        else:
            raise ValidationError("paid_on", "invalid")
    except ValueError as exc:
        raise ValidationError("paid_on", "invalid") from exc
    if day > today:
        raise ValidationError("paid_on", "in_the_future")
    return day
