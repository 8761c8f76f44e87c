"""Every /funnel view, in both languages, reads on a 360-px phone: for long stage, reason
and manager names and large sums, each <pre> line is at most 32 characters, nothing is cut
with an ellipsis, no line is a lone word, and zero or empty cases are said in words."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from handlers.funnel import views
from handlers.ui import fmt
from services.dto import PipelineInfo, StageInfo
from services.reports.analytics import (
    CycleSpeed,
    DateRange,
    FunnelStep,
    Happened,
    LossReport,
    LossRow,
    ManagerReport,
    ManagerRow,
    Period,
    PeriodFunnel,
    ReasonInfo,
    ReportFilter,
    SnapshotFunnel,
    SnapshotStage,
    StageSpeed,
    VelocityReport,
)
from services.reports.screens import ReportKind, ReportScreen
from services.sales.plans import PlanReport, PlanRow
from services.team.norms import NormResult, ResponseFigures, TeamFigures

TZ = ZoneInfo("Europe/Moscow")
BIG = 9_876_543_210_00  # 9.9 billion roubles, in kopecks
LONG = [  # (name, name_en, short, short_en): long names, some with a short one
    ("Согласование технического задания", "Agreement of the technical specification", None, None),
    ("Замер запланирован", "Measurement scheduled", "Замер запл.", "Measure set"),
    ("Коммерческое предложение отправлено", "Commercial proposal sent", None, None),
    ("Успешная продажа", "Won", None, None),
]


def stage(i: int, kind: str = "active") -> StageInfo:
    name, name_en, short, short_en = LONG[i]
    return StageInfo(
        id=i + 1,
        code=f"s{i}",
        name=name,
        name_en=name_en,
        position=i,
        kind=kind,
        is_key=i == 2,
        probability=20 * i,
        required_fields=(),
        short=short,
        short_en=short_en,
    )


STAGES = (stage(0), stage(1), stage(2), stage(3, "won"))
PIPELINE = PipelineInfo(
    1, "sales", "Продажа окон и дверей", "Windows and doors", "sales", True, STAGES
)
SPAN = DateRange(
    Period.THIS_MONTH,
    date(2026, 12, 1),
    date(2026, 12, 31),
    datetime(2026, 11, 30, 21, tzinfo=UTC),
    datetime(2026, 12, 31, 21, tzinfo=UTC),
)
BEFORE = DateRange(
    Period.THIS_MONTH,
    date(2026, 11, 1),
    date(2026, 11, 7),
    datetime(2026, 10, 31, 21, tzinfo=UTC),
    datetime(2026, 11, 7, 21, tzinfo=UTC),
)
REASONS = [
    ReasonInfo(
        1, "thinking", "Условный отказ: думает", "Conditional refusal: thinking it over", True
    ),
    ReasonInfo(2, "competitor", "Ушёл к конкуренту", "Chose a competitor", False),
]
PEOPLE = ["Viktoria Kuznetsova-Obolenskaya", "Alexander Konstantinopolsky"]  # people write names


def step(i: int, n: int, amount: int) -> FunnelStep:
    return FunnelStep(
        STAGES[i], n, amount, 0.45 if i else None, 0.3, 1, 0.05, n, 1, 1, 0, 0, 3, 86400.0
    )


def snapshot(n: int) -> SnapshotFunnel:
    stages = tuple(
        SnapshotStage(s, n * (i + 1), BIG // (i + 1) if n else 0, BIG // 3, n)
        for i, s in enumerate(STAGES[:3])
    )
    return SnapshotFunnel(
        PIPELINE, None, datetime(2026, 12, 7, 9, tzinfo=UTC), 14, stages, n, BIG if n else 0
    )


def period(n: int, previous: bool) -> PeriodFunnel:
    steps = tuple(step(i, n // (i + 1), BIG // (i + 1)) for i in range(4))
    before = period(n // 2, False) if previous else None
    won = steps[-1].reached
    happened = Happened(n // 7, BIG, n // 5, BIG // 2, 3, 0) if n else Happened()
    return PeriodFunnel(
        PIPELINE,
        BEFORE if not previous and n else SPAN,
        None,
        steps if n else (),
        n,
        BIG,
        won,
        BIG,
        n // 3,
        BIG,
        n // 4,
        2,
        0,
        happened,
        before,
    )


def losses(n: int, previous: bool) -> LossReport:
    rows = (
        tuple(LossRow(r, n * (i + 2), BIG // (i + 1), n, ()) for i, r in enumerate(REASONS))
        if n
        else ()
    )
    rows += (LossRow(None, 1, 0, 0, ()),) if n else ()
    before = losses(n // 2, False) if previous else None
    return LossReport(PIPELINE, SPAN, None, rows, before)


def managers(n: int, previous: bool) -> ManagerReport:
    rows = tuple(
        ManagerRow(
            i + 1,
            name,
            n,
            n // (i + 2),
            BIG // (i + 1),
            n // 3,
            0,
            n // 2,
            n * 2,
            n,
            n,
            4000.0 * (i + 1) if n else None,
            i,
        )
        for i, name in enumerate(PEOPLE)
    )
    rows += (ManagerRow(None, None, n, n // 9, BIG // 9, 0, 0, 0, 0, 0, 0, None, 0),)
    before = managers(n // 2, False) if previous else None
    return ManagerReport(PIPELINE, SPAN, rows, before)


def velocity(n: int, previous: bool) -> VelocityReport:
    stages = tuple(
        StageSpeed(s, n, 86400.0 * 0.7 * (i + 1) if n else None, 86400.0 * 12.5 if n else None)
        for i, s in enumerate(STAGES[:3])
    )
    cycle = CycleSpeed(None, None, n, 13.0 if n else None, 24.5 if n else None)
    people = (
        tuple(CycleSpeed(i + 1, name, n, 10.5, 12.0) for i, name in enumerate(PEOPLE)) if n else ()
    )
    before = velocity(n // 2 if n > 1 else 0, False) if previous else None
    return VelocityReport(PIPELINE, SPAN, None, stages, cycle, people, before)


def plan(n: int, previous: bool) -> PlanReport:
    """Plans with long names and large sums; no plans at all when n is 0."""

    def row(i: int | None, name: str | None, count: int | None, money: int | None) -> PlanRow:
        won = n // 3
        return PlanRow(
            i, name, count, money, won, BIG // 4, n, BIG, BIG // 3,
            max((count or 0) - won, 0) // 19 if count else None,
            (money or 0) // 19 if money else None, behind=i == 2,
        )  # fmt: skip

    rows = tuple(
        row(i + 1, name, n if n else None, BIG if n else None) for i, name in enumerate(PEOPLE)
    ) + ((row(3, "Jan", None, None),) if n else ())
    company = row(None, None, n * 3 if n else None, BIG * 3 if n else None) if n else None
    return PlanReport(PIPELINE, date(2026, 12, 1), SPAN.start, None, 23, 4, 19, rows, company)


BUILDERS = {
    ReportKind.SNAPSHOT: lambda n, prev: snapshot(n),
    ReportKind.PERIOD: period,
    ReportKind.LOSSES: losses,
    ReportKind.MANAGERS: managers,
    ReportKind.VELOCITY: velocity,
    ReportKind.PLAN: plan,
}


def screen(kind: ReportKind, report: object) -> ReportScreen:
    return ReportScreen(kind, ReportFilter(), report, PIPELINE, (PIPELINE,), (), None, True)  # type: ignore[arg-type]


def plain(text: str) -> list[str]:
    return [html.unescape(re.sub(r"<[^>]+>", "", line)) for line in text.splitlines()]


def pre_lines(text: str) -> list[str]:
    found = re.search(r"<pre>(.*?)</pre>", text, re.S)
    return html.unescape(found.group(1)).splitlines() if found else []


NUMBER_CUT = re.compile(r"\d…|…\d")


@pytest.mark.parametrize("lang", ["ru", "en"])
@pytest.mark.parametrize("kind", list(ReportKind))
@pytest.mark.parametrize(("size", "previous"), [(1_234_567, True), (37, False), (0, True)])
def test_every_view_reads_on_a_phone(
    kind: ReportKind, lang: str, size: int, previous: bool
) -> None:
    text = views.screen_text(screen(kind, BUILDERS[kind](size, previous)), lang, TZ)
    table = pre_lines(text)
    assert size == 0 or table, text  # a report with data has its table
    for line in table:
        assert len(line) <= views.WIDTH, f"{line!r} is {len(line)} wide\n{text}"
    assert "…" not in text, text  # nothing is cut, names neither
    assert not NUMBER_CUT.search(text)
    for line in plain(text):
        assert len(line.split()) != 1, f"a lone word: {line!r}\n{text}"
    if lang == "en":
        assert not re.search("[А-Яа-яЁё]", text), text  # an English reader sees no Russian
    assert "change  d" not in text and "тыс…" not in text


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_empty_and_zero_cases_are_words(lang: str) -> None:
    for kind in ReportKind:
        text = views.screen_text(screen(kind, BUILDERS[kind](0, True)), lang, TZ)
        body = [line for line in plain(text)[3:] if line]
        assert body, text
        # no bare "0 (0%) · 0"-style line: every body line says something in words
        assert all(re.search(r"[^\W\d_]{3,}", line) for line in body), text


def test_a_stage_short_name_and_the_money_unit_are_used() -> None:
    text = views.screen_text(screen(ReportKind.SNAPSHOT, snapshot(5)), "ru", TZ)
    rows = pre_lines(text)
    assert rows[0].split()[-3:-1] == ["млрд", "₽"]  # the unit in the header, not per cell
    assert any(r.startswith("Замер запл.") for r in rows)  # the configured short name
    assert any(r.startswith("Согласов. тех.") or r.startswith("Согл") for r in rows)  # abbreviated
    en = pre_lines(views.screen_text(screen(ReportKind.SNAPSHOT, snapshot(5)), "en", TZ))
    assert any(r.startswith("Measure set") for r in en) and "B RUB" in en[0]


def test_periods_are_named_as_a_calendar_names_them() -> None:
    assert fmt.span(date(2026, 12, 1), date(2026, 12, 31), "ru") == "декабрь 2026"
    assert fmt.span(date(2026, 12, 1), date(2026, 12, 7), "ru") == "1—7 дек."
    assert fmt.span(date(2026, 12, 1), date(2026, 12, 7), "en") == "Dec 1 – 7"
    assert fmt.span(date(2026, 10, 1), date(2026, 12, 31), "en") == "4th quarter 2026"
    text = views.screen_text(screen(ReportKind.LOSSES, losses(10, True)), "ru", TZ)
    assert "декабрь 2026 · все менеджеры" in text
    assert "Отказы, сделанные за период (по дате отказа" in text  # what is counted


def test_view_buttons_fit_a_thumb() -> None:
    from handlers.ui.callbacks import FunnelCb

    report = screen(ReportKind.PERIOD, period(10, True))
    markup = views.screen_keyboard(report, FunnelCb(), "ru")
    assert all(len(row) <= 3 for row in markup.inline_keyboard)


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_the_digest_says_refusals_without_money_in_words(lang: str) -> None:
    from services.outbox.payloads import Digest

    payload = {
        "kind": "daily",
        "since": "2026-01-12T04:00:00+00:00",
        "until": "2026-01-13T05:30:00+00:00",
        "pipeline": "Продажа",
        "pipeline_en": "Sales",
        "lost": 2,
        "lost_amount": 0,
        "reasons": [{"name": "Дорого", "name_en": "Too expensive", "count": 2, "amount": 0}],
        "cycle_won": 3,
        "cycle_median_days": 0.7,
        "prev_cycle_median_days": 55.2,
    }
    text = "\n".join(views.digest_lines(Digest.model_validate(payload), lang, TZ))
    assert re.search(r"\b0\s?(₽|RUB)", text) is None, text  # no "2, 0 RUB"
    assert ("Выигранных сделок нет" if lang == "ru" else "No deals won") in text
    assert ("0,7" if lang == "ru" else "0.7") in text and "−54" in text  # the locale's numbers


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_the_managers_view_with_response_and_norms_reads_on_a_phone(lang: str) -> None:
    """Issue 26: first response and yesterday's norms under the managers' table: prose
    lines (no <pre> line over 32 still), every name whole, nothing in the other language."""
    response = tuple(
        ResponseFigures(i + 1, name, 12, 10 - i, 95 + i * 700 if i else None, 12, 9 - i, 15)
        for i, name in enumerate(PEOPLE)
    )
    norms = tuple(
        NormResult(i + 1, name, what, done, 20)
        for i, name in enumerate(PEOPLE)
        for what, done in (("calls", 20 - i), ("next_contacts", 7), ("measurements_booked", 0))
    )
    team = TeamFigures(SPAN.start, SPAN.end, date(2026, 12, 6), 15, response, norms)
    shown = replace(screen(ReportKind.MANAGERS, managers(37, True)), team=team)
    text = views.screen_text(shown, lang, TZ)
    for line in pre_lines(text):
        assert len(line) <= views.WIDTH, f"{line!r} is {len(line)} wide\n{text}"
    assert "…" not in text and not NUMBER_CUT.search(text), text
    lines = plain(text)
    for name in PEOPLE:  # each manager once in the response block and once in the norms
        assert sum(line.startswith(name + ":") for line in lines) == 1, text
        assert sum(name + ":" in line and "/20" in line for line in lines) == 1, text
    if lang == "en":
        assert not re.search("[А-Яа-яЁё]", text), text
        assert "in time 9 of 12 (75%)" in text and "calls 20/20" in text
    else:
        assert "в срок 9 из 12 (75%)" in text and "звонки 20/20" in text
