"""Typed dates and times, Russian and English, in the company's timezone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from services import dates
from services.clock import FakeClock
from services.errors import ValidationError

MSK = "Europe/Moscow"
# The FakeClock's default: Monday 12 January 2026, 09:00 UTC = 12:00 in Moscow.


def msk(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(MSK)).astimezone(UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("завтра 10:00", msk(2026, 1, 13, 10, 0)),
        ("Завтра в 10:00", msk(2026, 1, 13, 10, 0)),
        ("сегодня в 18", msk(2026, 1, 12, 18, 0)),
        ("25.12 14:30", msk(2026, 12, 25, 14, 30)),
        ("25.12.2026", msk(2026, 12, 25, 10, 0)),
        ("25.12.26 9:05", msk(2026, 12, 25, 9, 5)),
        ("10.01", msk(2027, 1, 10, 10, 0)),  # already past this year: next year's
        ("через 2 часа", msk(2026, 1, 12, 14, 0)),
        ("через полчаса", msk(2026, 1, 12, 12, 30)),
        ("через час", msk(2026, 1, 12, 13, 0)),
        ("через 3 дня", msk(2026, 1, 15, 12, 0)),
        ("через 3 дня в 9:00", msk(2026, 1, 15, 9, 0)),
        ("через неделю", msk(2026, 1, 19, 12, 0)),
        ("пн 10:00", msk(2026, 1, 19, 10, 0)),  # today is Monday and 10:00 has passed
        ("пн 15:00", msk(2026, 1, 12, 15, 0)),  # ...but 15:00 has not
        ("в пятницу в 15", msk(2026, 1, 16, 15, 0)),
        ("в следующий вторник", msk(2026, 1, 13, 10, 0)),
        ("25 декабря 14:30", msk(2026, 12, 25, 14, 30)),
        ("1 марта", msk(2026, 3, 1, 10, 0)),
        ("3 дня", msk(2026, 1, 12, 15, 0)),  # three in the afternoon
        ("в 8 вечера", msk(2026, 1, 12, 20, 0)),
        ("завтра 10 утра", msk(2026, 1, 13, 10, 0)),
        ("послезавтра", msk(2026, 1, 14, 10, 0)),
        ("на следующей неделе", msk(2026, 1, 19, 10, 0)),
        ("tomorrow 3pm", msk(2026, 1, 13, 15, 0)),
        ("tomorrow at 3:30 pm", msk(2026, 1, 13, 15, 30)),
        ("in 3 days", msk(2026, 1, 15, 12, 0)),
        ("in 2 hours", msk(2026, 1, 12, 14, 0)),
        ("in an hour", msk(2026, 1, 12, 13, 0)),
        ("+2h", msk(2026, 1, 12, 14, 0)),
        ("next monday 9:00", msk(2026, 1, 19, 9, 0)),
        ("friday 11am", msk(2026, 1, 16, 11, 0)),
        ("12/25 2:30pm", msk(2026, 12, 25, 14, 30)),
        ("25/12/2026 14:30", msk(2026, 12, 25, 14, 30)),
        ("december 25 2:30pm", msk(2026, 12, 25, 14, 30)),
        ("dec 25th", msk(2026, 12, 25, 10, 0)),
        ("25 dec 2027", msk(2027, 12, 25, 10, 0)),
        ("2026-03-01 08:15", msk(2026, 3, 1, 8, 15)),
        ("noon", msk(2026, 1, 13, 12, 0)),  # today's noon has just passed
        ("13:00", msk(2026, 1, 12, 13, 0)),
        ("11:00", msk(2026, 1, 13, 11, 0)),  # a bare time already past: tomorrow
        ("29.02", msk(2028, 2, 29, 10, 0)),  # the next 29 February
    ],
)
def test_examples(text: str, expected: datetime) -> None:
    assert dates.parse_when(text, FakeClock(), MSK) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "garbage",
        "когда-нибудь",
        "завтра 10:00 blah",
        "25:00",
        "10:61",
        "31.02",
        "13/13",
        "32.01",
        "13pm",
        "tomorrow tomorrow",
        "завтра пн",
        "через 2 часа в 10:00",
        "in -3 days",
        "через 0 минут",
        "10.30",
        "x" * 500,
    ],
)
def test_garbage_is_refused_with_a_clear_code(text: str) -> None:
    with pytest.raises(ValidationError) as err:
        dates.parse_when(text, FakeClock(), MSK)
    assert (err.value.field, err.value.code) == ("when", "unparseable")
    assert err.value.key == "invalid.when.unparseable"  # what the handler re-asks with


@pytest.mark.parametrize(
    "text", ["сегодня в 8", "сегодня", "12.01.2026 11:59", "2020-01-01", "01.01.2026 10:00"]
)
def test_the_past_is_refused(text: str) -> None:
    with pytest.raises(ValidationError) as err:
        dates.parse_when(text, FakeClock(), MSK)
    assert err.value.code == "in_the_past"


def test_too_far_and_unknown_zone() -> None:
    with pytest.raises(ValidationError) as err:
        dates.parse_when("01.01.2040", FakeClock(), MSK)
    assert err.value.code == "too_far"
    with pytest.raises(ValidationError):
        dates.parse_when("завтра", FakeClock(), "Mars/Olympus")


def test_the_company_timezone_decides() -> None:
    clock = FakeClock(datetime(2026, 1, 12, 22, 30, tzinfo=UTC))  # 01:30 on the 13th in Moscow
    assert dates.parse_when("завтра 10:00", clock, MSK) == msk(2026, 1, 14, 10, 0)
    assert dates.parse_when("завтра 10:00", clock, "UTC") == datetime(
        2026, 1, 13, 10, 0, tzinfo=UTC
    )
    assert dates.parse_when("завтра 10:00", clock, "Asia/Vladivostok") == datetime(
        2026, 1, 14, 0, 0, tzinfo=UTC
    )


def test_quick_choices() -> None:
    clock = FakeClock(datetime(2026, 1, 14, 9, 17, 42, tzinfo=UTC))  # Wednesday 12:17 MSK
    q = dates.QuickChoice
    assert dates.quick(q.IN_1H, clock, MSK) == datetime(2026, 1, 14, 10, 17, tzinfo=UTC)
    assert dates.quick(q.TOMORROW, clock, MSK) == msk(2026, 1, 15, 10, 0)
    assert dates.quick(q.IN_3D, clock, MSK) == msk(2026, 1, 17, 12, 17)
    assert dates.quick(q.NEXT_WEEK, clock, MSK) == msk(2026, 1, 19, 10, 0)
    assert dates.quick(q.IN_1M, clock, MSK) == msk(2026, 2, 14, 10, 0)
    assert dates.quick("tm", clock, MSK) == msk(2026, 1, 15, 10, 0)
    with pytest.raises(ValidationError):
        dates.quick("zz", clock, MSK)
    sunday = FakeClock(datetime(2026, 1, 18, 20, 0, tzinfo=UTC))  # Sunday 23:00 MSK
    assert dates.quick(q.NEXT_WEEK, sunday, MSK) == msk(2026, 1, 19, 10, 0)


def test_parse_day() -> None:
    clock = FakeClock()
    assert dates.parse_day("25.12", clock, MSK) == date(2026, 12, 25)
    assert dates.parse_day("сегодня", clock, MSK) == date(2026, 1, 12)
    assert dates.parse_day("пт", clock, MSK) == date(2026, 1, 16)
    with pytest.raises(ValidationError):
        dates.parse_day("01.01.2026", clock, MSK)
    with pytest.raises(ValidationError):
        dates.parse_day("завтра 10:00", clock, MSK)


# --- round trips: any future minute, written the way people write it, reads back --------

RU_MONTHS = "января февраля марта апреля мая июня июля августа сентября октября ноября декабря"
EN_MONTHS = "january february march april may june july august september october november december"
RU_WD = ["пн", "вт", "ср", "чт", "пт", "сб", "вс"]
RU_WD_LONG = ["понедельник", "вторник", "среду", "четверг", "пятницу", "субботу", "воскресенье"]
EN_WD = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
ZONES = ["Europe/Moscow", "UTC", "Asia/Vladivostok", "America/New_York", "Europe/Berlin"]


def _h12(dt: datetime) -> str:
    hour = dt.hour % 12 or 12
    suffix = "am" if dt.hour < 12 else "pm"
    return f"{hour}:{dt.minute:02d}{suffix}" if dt.minute else f"{hour}{suffix}"


def spellings(target: datetime, now: datetime) -> list[str]:
    """Every supported way to write the local minute `target`, as seen at local `now`."""
    today = now.date()
    days = (target.date() - today).days
    hm = f"{target.hour}:{target.minute:02d}"
    out = [
        target.strftime("%d.%m.%Y ") + hm,
        target.strftime("%Y-%m-%d %H:%M"),
        target.strftime("%d/%m/%Y ") + hm if target.day > 12 else target.strftime("%m/%d/%Y ") + hm,
    ]
    if days < 300:
        ru_month = RU_MONTHS.split()[target.month - 1]
        en_month = EN_MONTHS.split()[target.month - 1]
        out += [
            f"{target.day}.{target.month} {hm}",
            f"{target.month}/{target.day} {_h12(target)}",
            f"{target.day} {ru_month} в {hm}",
            f"{en_month} {target.day} {_h12(target)}",
            f"{target.day} {en_month[:3]} at {hm}",
        ]
    if days == 0:
        out += [f"сегодня в {hm}", f"today {_h12(target)}"]
    if days == 1:
        out += [f"завтра {hm}", f"Завтра в {hm}", f"tomorrow {_h12(target)}"]
    if days == 2:
        out += [f"послезавтра в {hm}"]
    if 0 <= days <= 6:
        wd = target.weekday()
        out += [f"{RU_WD[wd]} {hm}", f"в {RU_WD_LONG[wd]} в {hm}", f"{EN_WD[wd]} {_h12(target)}"]
    if 1 <= days <= 7:
        out += [f"next {EN_WD[target.weekday()]} {hm}"]
    if target.minute == 0 and days == 1 and not 1 <= target.hour <= 6:
        out += [f"завтра в {target.hour}"]  # "завтра в 5": morning or evening? refused
    return out


def _local(utc: datetime, tz: str) -> datetime:
    return utc.astimezone(ZoneInfo(tz)).replace(tzinfo=None)


def _unambiguous(local: datetime, tz: str) -> bool:
    """True when the local wall time names exactly one instant (not in a DST gap/overlap)."""
    zi = ZoneInfo(tz)
    a = local.replace(tzinfo=zi, fold=0).astimezone(UTC)
    b = local.replace(tzinfo=zi, fold=1).astimezone(UTC)
    return a == b and _local(a, tz) == local


@settings(max_examples=300, deadline=None)
@given(
    now=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2029, 12, 31)),
    minutes=st.one_of(
        st.integers(min_value=1, max_value=8 * 24 * 60),
        st.integers(min_value=1, max_value=4 * 365 * 24 * 60),
    ),
    tz=st.sampled_from(ZONES),
)
@example(now=datetime(2026, 1, 12, 9, 0), minutes=60 * 22, tz=MSK)
@example(now=datetime(2026, 12, 31, 20, 59), minutes=1, tz=MSK)
def test_any_future_minute_written_any_way_reads_back(now, minutes, tz):
    now_utc = now.replace(tzinfo=UTC)
    clock = FakeClock(now_utc)
    now_local = _local(now_utc, tz)
    target_local = now_local.replace(second=0, microsecond=0) + timedelta(minutes=minutes)
    assume(_unambiguous(target_local, tz))
    target_utc = target_local.replace(tzinfo=ZoneInfo(tz)).astimezone(UTC)
    assume(target_utc > now_utc and target_utc - now_utc < timedelta(days=5 * 365))
    for text in spellings(target_local, now_local):
        assert dates.parse_when(text, clock, tz) == target_utc, text


@settings(max_examples=200, deadline=None)
@given(
    now=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2029, 12, 31)),
    n=st.integers(min_value=1, max_value=2000),
)
def test_relative_minutes_and_hours_read_back(now, n):
    now_utc = now.replace(tzinfo=UTC)
    clock = FakeClock(now_utc)
    base = now_utc.replace(second=0, microsecond=0)
    for text in (f"через {n} минут", f"in {n} minutes", f"+{n} min"):
        assert dates.parse_when(text, clock, MSK) == base + timedelta(minutes=n), text
    for text in (f"через {n} часов", f"in {n} hours", f"+{n}h"):
        assert dates.parse_when(text, clock, MSK) == base + timedelta(hours=n), text


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=40))
def test_any_text_is_a_future_minute_or_a_validation_error(text):
    clock = FakeClock()
    try:
        result = dates.parse_when(text, clock, MSK)
    except ValidationError as exc:
        assert exc.field == "when"
        assert exc.code in ("unparseable", "in_the_past", "too_far", "ambiguous")
    else:
        assert result > clock.now() and result.tzinfo is UTC and result.second == 0


def test_parse_paid_on_takes_today_or_earlier() -> None:
    clock = FakeClock()  # Monday 12 January 2026
    assert dates.parse_paid_on("10.01", clock, MSK) == date(2026, 1, 10)
    assert dates.parse_paid_on("20.12", clock, MSK) == date(2025, 12, 20)  # last December
    assert dates.parse_paid_on("2026-01-12", clock, MSK) == date(2026, 1, 12)
    assert dates.parse_paid_on("05.01.2026", clock, MSK) == date(2026, 1, 5)
    with pytest.raises(ValidationError) as future:
        dates.parse_paid_on("13.01.2026", clock, MSK)
    assert future.value.code == "in_the_future"
    for bad in ("когда-то", "31.02", ""):
        with pytest.raises(ValidationError):
            dates.parse_paid_on(bad, clock, MSK)
