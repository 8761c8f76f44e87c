"""Numbers, money and dates for people: the one formatter of the front-end.

Money comes in kopecks (as the services keep it) and goes out as text in the person's
language, by the locale's own rules (Babel / CLDR): the ru group separator is a no-break
space and the decimal sign a comma ("150 000 ₽", "1 000,50 ₽"), en uses commas and a point
("150,000 RUB"). Kopecks show only when there are any. `compact_money` is the short form of
reports and pictures (ru "380 thousand" abbreviated by CLDR, en "380K"),
`money(..., compact=True)` the same with the currency.

Dates and times too, in the reader's locale (CLDR's numeric forms): `day` (14.01.2026 /
1/14/2026), `when` (a moment in the company's timezone: 14.01.2026 12:00 / 1/14/2026
12:00 PM), `when_short` (without the year), `said` / `said_day` (a typed date said back in
words: "Fri, December 11, 10:00 AM", named in Russian too), `period` (a report's first
and last day).
Every function takes the reader's language; nothing here writes a date pattern by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from functools import lru_cache
from typing import Any

import phonenumbers
from babel.dates import format_date, format_interval, format_skeleton, format_time
from babel.numbers import format_compact_decimal, format_currency, format_decimal

from handlers.ui.i18n import DEFAULT_LANG, LANGUAGES

CURRENCY = "RUB"
NONE = "—"


def locale(lang: str | None) -> str:
    return lang if lang in LANGUAGES else DEFAULT_LANG


def _roubles(minor: int) -> Decimal:
    return Decimal(int(minor)) / 100


def money(minor: Any, lang: str | None, *, compact: bool = False) -> str:
    """12345600 -> '123 456 ₽' (ru) / '123,456 RUB' (en); with kopecks '123 456,50 ₽'."""
    if minor is None:
        return NONE
    if compact:
        return f"{compact_money(minor, lang)}\u00a0{currency(lang)}"
    return _money(int(minor), locale(lang))


@lru_cache(maxsize=4096)  # Babel parses the pattern and the locale on every call
def _money(minor: int, lang: str) -> str:
    pattern = "#,##0.00\u00a0¤" if minor % 100 else "#,##0\u00a0¤"
    return format_currency(_roubles(minor), CURRENCY, pattern, locale=lang, currency_digits=False)


@lru_cache(maxsize=8)
def currency(lang: str | None) -> str:
    """The currency sign in the language: '₽' (ru), 'RUB' (en)."""
    return format_currency(0, CURRENCY, "¤", locale=locale(lang))


def compact_money(minor: Any, lang: str | None) -> str:
    """Short roubles without the sign, CLDR's short forms: 950, 12.3K, 1.2M (en; ru alike).
    One decimal below 100 of the unit, none above."""
    if minor is None:
        return NONE
    value = _roubles(minor)
    digits = 0
    for limit in (10**9, 10**6, 10**3):
        if abs(value) >= limit:
            digits = 1 if abs(value) / limit < 100 else 0
            break
    return format_compact_decimal(value, locale=locale(lang), fraction_digits=digits)


def money_column(values: Sequence[int | None], lang: str | None) -> tuple[str, list[str]]:
    """Money for one table column, all in one unit so the cells stay short and comparable:
    (the unit with the currency, for the header — "K RUB", "M RUB" in English —, the cells). The
    unit is the largest of thousands, millions, billions that keeps the top value under
    1000; one decimal when it is under 100 ("55,2"), none above ("380"); nothing is cut."""
    top = max((abs(_roubles(v)) for v in values if v), default=Decimal(0))
    scale = 1
    for limit in (10**9, 10**6, 10**3):
        if top >= limit:
            scale = limit
            break
    digits = 1 if scale > 1 and top / scale < 100 else 0
    tiny = Decimal(1).scaleb(-max(digits, 1)) * scale  # shown as 0 at these digits

    def cell(v: int | None) -> str:
        if v is None:
            return NONE
        if v and abs(_roubles(v)) < tiny / 2:  # not nothing: say "under 0,1"
            return "<" + number(tiny / scale, lang, max(digits, 1))
        return number(_roubles(v) / scale, lang, digits) if v else "0"

    return (f"{_unit(scale, locale(lang))} {currency(lang)}".strip(), [cell(v) for v in values])


@lru_cache(maxsize=16)
def _unit(scale: int, lang: str) -> str:
    """CLDR's short word of a power of ten: "K", "M" (en; ru alike); 1: none."""
    if scale == 1:
        return ""
    return format_compact_decimal(scale, locale=lang).replace("1", "", 1).strip()


def signed(diff: float | int, lang: str | None, digits: int = 0) -> str:
    """A change: +3, −2,5 (a true minus sign), 0."""
    if not diff:
        return "0"
    return ("+" if diff > 0 else "−") + number(abs(diff), lang, digits)


def number(value: float | int | Decimal, lang: str | None, digits: int = 0) -> str:
    """1260 -> '1 260' (ru) / '1,260' (en); `digits` decimals at most."""
    pattern = "#,##0" + ("." + "#" * digits if digits else "")
    return format_decimal(value, pattern, locale=locale(lang))


def percent(ratio: float | None, lang: str | None) -> str:
    """0.125 -> '13%'; below 10 % one decimal: '4,5%' (ru) / '4.5%' (en)."""
    if ratio is None:
        return NONE
    value = ratio * 100
    return number(value, lang, 1 if 0 < value < 10 else 0) + "%"


def day(value: date | str | None, lang: str | None) -> str:
    """A calendar day in the reader's locale (CLDR's numeric date): 01.04.2026 (ru),
    4/1/2026 (en). A datetime counts by its own date; ISO text is accepted; text that is
    no date gives the dash."""
    found = _calendar_day(value)
    return NONE if found is None else _day(found, locale(lang))


def _calendar_day(value: date | str | None) -> date | None:
    """A day from a date, a datetime (its own date) or ISO text; None if none."""
    if isinstance(value, str):
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    if not value:
        return None
    return value.date() if isinstance(value, datetime) else value


@lru_cache(maxsize=1024)
def _day(value: date, lang: str) -> str:
    return format_skeleton("yMd", value, locale=lang)


def day_words(value: date | str | None, lang: str | None) -> str:
    """A calendar day with the month in words (CLDR's "yMMMd"; en: Feb 25, 2026; ru: the
    day, the month's short name, the year) -- never read the wrong way round. ISO text is
    accepted."""
    found = _calendar_day(value)
    return NONE if found is None else _day_words(found, locale(lang))


@lru_cache(maxsize=1024)
def _day_words(value: date, lang: str) -> str:
    return format_skeleton("yMMMd", value, locale=lang)


@lru_cache(maxsize=1024)
def _day_month(value: date, lang: str) -> str:
    return format_skeleton("Md", value, locale=lang)


@lru_cache(maxsize=4096)
def _time(value: time, lang: str) -> str:
    return format_time(value.replace(second=0, microsecond=0), "short", locale=lang)


def _moment(value: datetime | str | None) -> datetime | None:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return value or None


def when(value: datetime | str | None, tz: tzinfo, lang: str | None) -> str:
    """A moment in the company's timezone, in the reader's locale: 14.01.2026 12:00 (ru),
    1/14/2026 12:00 PM (en). ISO text is accepted; text that is no moment gives the dash."""
    moment = _moment(value)
    if moment is None:
        return NONE
    moment, code = moment.astimezone(tz), locale(lang)
    return f"{_day(moment.date(), code)} {_time(moment.time(), code)}"


def when_short(value: datetime | str | None, tz: tzinfo, lang: str | None) -> str:
    """A moment without the year (reminders, lists): 14.01 12:00 (ru), 1/14 12:00 PM (en).
    ISO text is accepted."""
    moment = _moment(value)
    if moment is None:
        return NONE
    moment, code = moment.astimezone(tz), locale(lang)
    return f"{_day_month(moment.date(), code)} {_time(moment.time(), code)}"


def time_of(hour: int, lang: str | None) -> str:
    """An hour of the day in the reader's locale: 16:00 (ru), 4:00 PM (en)."""
    return _time(time(hour), locale(lang))


def said_day(value: date, lang: str | None, this_year: int | None = None) -> str:
    """A day in words, as a typed date is said back: "Fri, December 11" (en; ru names
    them the same way); the year only when it is not `this_year`."""
    skeleton = "MMMMEd" if this_year in (None, value.year) else "yMMMMEd"
    return format_skeleton(skeleton, value, locale=locale(lang))


def day_month(
    value: date | datetime | str | None, tz: tzinfo, lang: str | None, this_year: int | None = None
) -> str:
    """A day in words without the weekday, as a client reads a date: "December 25" (en; ru
    in its own words); the year only when it is not `this_year`. A moment counts by its day
    in the company's timezone; ISO text is accepted."""
    if isinstance(value, datetime) or (isinstance(value, str) and len(value) > 10):
        moment = _moment(value)
        found = moment.astimezone(tz).date() if moment is not None else None
    else:
        found = _calendar_day(value)
    if found is None:
        return NONE
    skeleton = "MMMMd" if this_year in (None, found.year) else "yMMMMd"
    return format_skeleton(skeleton, found, locale=locale(lang))


def said(
    value: datetime | str | None, tz: tzinfo, lang: str | None, now: datetime | None = None
) -> str:
    """A typed moment said back in words before it is used: "Fri, December 11, 10:00 AM"
    (en; ru in its own words and 24-hour time); the year only when it is not `now`'s."""
    moment = _moment(value)
    if moment is None:
        return NONE
    moment, code = moment.astimezone(tz), locale(lang)
    this_year = now.astimezone(tz).year if now is not None else None
    return f"{said_day(moment.date(), code, this_year)}, {_time(moment.time(), code)}"


def period(first: date, last: date, lang: str | None) -> str:
    """A report's days: 01.10.2025 – 31.12.2025 (ru), 10/1/2025 – 12/31/2025 (en)."""
    return f"{day(first, lang)} – {day(last, lang)}"


def phone(value: str | None, region: str = "RU") -> str:
    """A stored phone (E.164, "+79161234567") as people write it: the company's own
    country's numbers in its national format ("8 (916) 123-45-67"), others international
    ("+49 30 123456"); anything else as it is."""
    if not value:
        return NONE
    return _phone(value, region)


@lru_cache(maxsize=4096)
def _phone(value: str, region: str) -> str:
    try:
        parsed = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return value
    if not phonenumbers.is_valid_number(parsed):
        return value
    home = phonenumbers.region_code_for_number(parsed) == region
    style = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if home
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return str(phonenumbers.format_number(parsed, style))


def month(first: date, lang: str | None) -> str:
    """A calendar month, from its first day: "December 2026"."""
    last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    return span(first.replace(day=1), last, lang)


def span(first: date, last: date, lang: str | None) -> str:
    """A report's period in words, as a calendar names it (CLDR, the reader's language):
    "December 2026" for a whole month (a running one too), "4th quarter 2026" for a whole
    quarter, else the days: "Dec 1 – 7" (with the years when it crosses one)."""
    return _span(first, last, locale(lang))


@lru_cache(maxsize=256)
def _span(first: date, last: date, lang: str) -> str:
    next_day = last + timedelta(days=1)
    if first.day == 1 and next_day.day == 1:
        months = (next_day.year - first.year) * 12 + next_day.month - first.month
        if months == 1:
            return format_date(first, "LLLL y", locale=lang)
        if months == 3 and first.month % 3 == 1:
            return format_skeleton("yQQQQ", first, locale=lang)
    skeleton = "MMMd" if first.year == last.year else "yMMMd"
    if first == last:
        return format_skeleton(skeleton, first, locale=lang)
    return format_interval(first, last, skeleton, locale=lang).replace(" ", " ")


def abbreviate(text: str, width: int) -> str:
    """`text` in at most `width` characters by the rule of a printed table, never with an
    ellipsis: words are shortened to their first letters and a full stop, the last word
    first ("Measurement scheduled" -> "Measur. sch."), at least three letters a word, and
    the tail words of a long name go; if that is not enough, the first letters of the words
    ("M. s."); a single word that still does not fit keeps its first `width - 1` letters
    and a full stop."""
    if len(text) <= width:
        return text
    words = text.split()
    while True:
        shortened = _shorten_words(list(words), width)
        if len(shortened) <= width or len(words) <= 2:
            break
        words = words[:-1]  # the tail of a long name goes first
    if len(shortened) <= width:
        return shortened
    initials = " ".join(w[0] + "." for w in words)
    if len(words) > 1 and len(initials) <= width:
        return initials
    return text[: max(width - 1, 1)].rstrip() + "."


def _shorten_words(words: list[str], width: int) -> str:
    for i in reversed(range(len(words))):
        excess = len(" ".join(words)) - width
        if excess <= 0:
            break
        word = words[i].rstrip(":,;.")
        if len(word) > 4:
            keep = max(3, len(word) - 1 - excess)
            if keep < len(word):
                words[i] = word[:keep] + "."
    return " ".join(words)


def short(text: str, width: int = 28) -> str:
    """Cut to `width` characters with an ellipsis (button labels, list lines)."""
    return text if len(text) <= width else text[: width - 1] + "…"
