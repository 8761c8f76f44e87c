"""Dates and sums as people type them (issue 20): a table of phrases, Russian and English,
with what each must become — and each parsed date said back in words, as the bot repeats
it before using it. Ambiguous or impossible input is refused with its reason.

The clock: Monday 7 December 2026, 12:00 in Moscow.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from handlers.ui import fmt
from handlers.ui.error_text import error_text
from services import dates, validation
from services.clock import FakeClock
from services.errors import ValidationError

MSK = "Europe/Moscow"
NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)  # Mon 12:00 MSK
CYRILLIC = re.compile("[а-яё]", re.IGNORECASE)

# (typed, expected, said back in Russian). expected: "YYYY-MM-DD HH:MM" local; "?day": a
# day without a time (the time is asked for); "!code": refused with that code.
DATES: list[tuple[str, str, str | None]] = [
    ("в пятницу утром", "2026-12-11 10:00", "пт, 11 декабря, 10:00"),
    ("завтра вечером", "2026-12-08 18:00", "вт, 8 декабря, 18:00"),
    ("послезавтра днём", "2026-12-09 13:00", "ср, 9 декабря, 13:00"),
    ("в среду после обеда", "2026-12-09 15:00", "ср, 9 декабря, 15:00"),
    ("tomorrow evening", "2026-12-08 18:00", "вт, 8 декабря, 18:00"),
    ("next friday", "?2026-12-11", "пт, 11 декабря"),
    ("fri 10am", "2026-12-11 10:00", "пт, 11 декабря, 10:00"),
    ("в пятницу в 10", "2026-12-11 10:00", "пт, 11 декабря, 10:00"),
    ("завтра в 9 утра", "2026-12-08 09:00", "вт, 8 декабря, 09:00"),
    ("завтра утром", "2026-12-08 10:00", "вт, 8 декабря, 10:00"),
    ("сегодня вечером", "2026-12-07 18:00", "пн, 7 декабря, 18:00"),
    ("today evening", "2026-12-07 18:00", "пн, 7 декабря, 18:00"),
    ("this evening", "2026-12-07 18:00", "пн, 7 декабря, 18:00"),
    ("tomorrow morning", "2026-12-08 10:00", "вт, 8 декабря, 10:00"),
    ("tomorrow afternoon", "2026-12-08 15:00", "вт, 8 декабря, 15:00"),
    ("in the evening", "2026-12-07 18:00", "пн, 7 декабря, 18:00"),
    ("вечером", "2026-12-07 18:00", "пн, 7 декабря, 18:00"),
    ("утром", "2026-12-08 10:00", "вт, 8 декабря, 10:00"),
    ("днем", "2026-12-07 13:00", "пн, 7 декабря, 13:00"),
    ("после обеда", "2026-12-07 15:00", "пн, 7 декабря, 15:00"),
    ("friday morning", "2026-12-11 10:00", "пт, 11 декабря, 10:00"),
    ("next monday 3pm", "2026-12-14 15:00", "пн, 14 декабря, 15:00"),
    ("в следующий вторник в 15:30", "2026-12-08 15:30", "вт, 8 декабря, 15:30"),
    ("во вторник вечером в 7", "2026-12-08 19:00", "вт, 8 декабря, 19:00"),
    ("в субботу днём", "2026-12-12 13:00", "сб, 12 декабря, 13:00"),
    ("вс 12:00", "2026-12-13 12:00", "вс, 13 декабря, 12:00"),
    ("sun noon", "2026-12-13 12:00", "вс, 13 декабря, 12:00"),
    ("в четверг в полдень", "2026-12-10 12:00", "чт, 10 декабря, 12:00"),
    ("через 2 дня вечером", "2026-12-09 18:00", "ср, 9 декабря, 18:00"),
    ("через 3 часа", "2026-12-07 15:00", "пн, 7 декабря, 15:00"),
    ("через полчаса", "2026-12-07 12:30", "пн, 7 декабря, 12:30"),
    ("in 2 days at 9am", "2026-12-09 09:00", "ср, 9 декабря, 09:00"),
    ("in an hour", "2026-12-07 13:00", "пн, 7 декабря, 13:00"),
    ("+2h", "2026-12-07 14:00", "пн, 7 декабря, 14:00"),
    ("25.12 14:30", "2026-12-25 14:30", "пт, 25 декабря, 14:30"),
    ("25.12.2026 в 11", "2026-12-25 11:00", "пт, 25 декабря, 11:00"),
    ("25 декабря в 18:00", "2026-12-25 18:00", "пт, 25 декабря, 18:00"),
    ("25 декабря вечером", "2026-12-25 18:00", "пт, 25 декабря, 18:00"),
    ("dec 25 10am", "2026-12-25 10:00", "пт, 25 декабря, 10:00"),
    ("December 25th 6pm", "2026-12-25 18:00", "пт, 25 декабря, 18:00"),
    ("12/25 3pm", "2026-12-25 15:00", "пт, 25 декабря, 15:00"),
    ("2026-12-25 09:15", "2026-12-25 09:15", "пт, 25 декабря, 09:15"),
    ("1 января 12:00", "2027-01-01 12:00", "пт, 1 января 2027\u202fг., 12:00"),
    ("31.12 23:59", "2026-12-31 23:59", "чт, 31 декабря, 23:59"),
    ("в 15", "2026-12-07 15:00", "пн, 7 декабря, 15:00"),
    ("в 17:30", "2026-12-07 17:30", "пн, 7 декабря, 17:30"),
    ("at 9", "2026-12-08 09:00", "вт, 8 декабря, 09:00"),
    ("в 9 вечера", "2026-12-07 21:00", "пн, 7 декабря, 21:00"),
    ("8 вечера", "2026-12-07 20:00", "пн, 7 декабря, 20:00"),
    ("10 утра", "2026-12-08 10:00", "вт, 8 декабря, 10:00"),
    ("3 дня", "2026-12-07 15:00", "пн, 7 декабря, 15:00"),
    ("18:00", "2026-12-07 18:00", "пн, 7 декабря, 18:00"),
    ("9:30am", "2026-12-08 09:30", "вт, 8 декабря, 09:30"),
    ("завтра 10:00", "2026-12-08 10:00", "вт, 8 декабря, 10:00"),
    ("послезавтра в 8:00", "2026-12-09 08:00", "ср, 9 декабря, 08:00"),
    ("next week", "?2026-12-14", "пн, 14 декабря"),
    ("на следующей неделе утром", "2026-12-14 10:00", "пн, 14 декабря, 10:00"),
    ("в пятницу", "?2026-12-11", "пт, 11 декабря"),
    ("25.12", "?2026-12-25", "пт, 25 декабря"),
    ("завтра", "?2026-12-08", "вт, 8 декабря"),
    ("tomorrow", "?2026-12-08", "вт, 8 декабря"),
    ("завтра в 5", "!ambiguous", None),
    ("в 3", "!ambiguous", None),
    ("at 4", "!ambiguous", None),
    ("вчера", "!unparseable", None),
    ("30.02", "!unparseable", None),
    ("вчера утром", "!unparseable", None),
    ("10.12 утром в 9", "2026-12-10 09:00", "чт, 10 декабря, 09:00"),
    ("в пятницу в 25:00", "!unparseable", None),
    ("завтра blah", "!unparseable", None),
    ("сегодня в 10", "!in_the_past", None),
    ("10 утра вечером", "!unparseable", None),
    ("через 2 недели вечером", "2026-12-21 18:00", "пн, 21 декабря, 18:00"),
]

# (typed, kopecks or "!code")
SUMS: list[tuple[str, int | str]] = [
    ("150 000", 15_000_000),
    ("150000", 15_000_000),
    ("1500,50", 150_050),
    ("120 тыс", 12_000_000),
    ("120 тыс.", 12_000_000),
    ("7 тысяч", 700_000),
    ("150к", 15_000_000),
    ("150 К", 15_000_000),
    ("1,2 млн", 120_000_000),
    ("2 млн рублей", 200_000_000),
    ("150k", 15_000_000),
    ("1.2m", 120_000_000),
    ("1.2 million", 120_000_000),
    ("2.5k", 250_000),
    ("200 тр", 20_000_000),
    ("150 т.р.", 15_000_000),
    ("150 000 руб", 15_000_000),
    ("150 000 руб.", 15_000_000),
    ("150000₽", 15_000_000),
    ("₽ 9 900", 990_000),
    ("99 rub", 9_900),
    ("1 200 000,50", 120_000_050),
    ("1,200,000", 120_000_000),
    ("1.5 тыс. руб", 150_000),
    ("0", 0),
    ("1,200", "!ambiguous"),
    ("12.345", "!ambiguous"),
    ("сто тысяч", "!not_a_number"),
    ("150 $", "!not_a_number"),
    ("-5", "!negative"),
    ("1.234567891m", "!too_precise"),
    ("10000000000000 млн", "!too_large"),
]


def _clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.mark.parametrize(("typed", "expected", "said_ru"), DATES, ids=[d[0] for d in DATES])
def test_a_typed_date_is_read_and_said_back(typed: str, expected: str, said_ru: str | None):
    tz = ZoneInfo(MSK)
    if expected.startswith("!"):
        with pytest.raises(ValidationError) as refused:
            dates.read_when(typed, _clock(), MSK)
        assert refused.value.code == expected[1:]
        for lang in ("ru", "en"):  # the refusal is a sentence in the reader's language
            assert not error_text(refused.value, lang).endswith(refused.value.key)
        return
    if expected.startswith("?"):
        with pytest.raises(dates.TimeMissing) as asked:
            dates.read_when(typed, _clock(), MSK)
        assert asked.value.day == date.fromisoformat(expected[1:])
        assert fmt.said_day(asked.value.day, "ru", 2026) == said_ru
        assert not CYRILLIC.search(fmt.said_day(asked.value.day, "en", 2026))
        return
    at = dates.read_when(typed, _clock(), MSK)
    assert f"{at.astimezone(tz):%Y-%m-%d %H:%M}" == expected
    assert fmt.said(at, tz, "ru", NOW) == said_ru
    said_en = fmt.said(at, tz, "en", NOW)
    assert not CYRILLIC.search(said_en)
    assert f"{at.astimezone(tz):%a}" in said_en and str(at.astimezone(tz).day) in said_en


def test_the_table_is_big_enough():
    assert len(DATES) >= 60 and len(SUMS) >= 20
    assert sum(1 for _, e, _ in DATES if e.startswith("!")) >= 5  # refusals included
    english = [t for t, _, _ in DATES if not CYRILLIC.search(t) and re.search("[a-z]", t)]
    assert len(english) >= 20


def test_the_answer_to_what_time_completes_the_day():
    """'next friday' names a day; the answer to "what time?" completes it, or is a whole
    new date ("fri 10am") — never the next step's answer."""
    clock, tz = _clock(), ZoneInfo(MSK)
    with pytest.raises(dates.TimeMissing) as asked:
        dates.read_when("next friday", clock, MSK)
    day = asked.value.day
    for answer, expected in (
        ("10:00", "2026-12-11 10:00"),
        ("10", "2026-12-11 10:00"),
        ("утром", "2026-12-11 10:00"),
        ("evening", "2026-12-11 18:00"),
        ("fri 10am", "2026-12-11 10:00"),
        ("в субботу в 11", "2026-12-12 11:00"),
    ):
        at = dates.read_when(answer, clock, MSK, day=day)
        assert f"{at.astimezone(tz):%Y-%m-%d %H:%M}" == expected, answer
    for answer, code in (("в 5", "ambiguous"), ("blah", "unparseable")):
        with pytest.raises(ValidationError) as refused:
            dates.read_when(answer, clock, MSK, day=day)
        assert refused.value.code == code
    with pytest.raises(dates.TimeMissing):
        dates.read_when("в субботу", clock, MSK, day=day)


@pytest.mark.parametrize(("typed", "expected"), SUMS, ids=[s[0] for s in SUMS])
def test_a_typed_sum(typed: str, expected: int | str):
    if isinstance(expected, str):
        with pytest.raises(ValidationError) as refused:
            validation.amount(typed)
        assert refused.value.code == expected[1:]
        return
    assert validation.amount(typed) == expected
