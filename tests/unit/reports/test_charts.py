"""Charts: bars in the report's order and proportions, text in the asked language, nothing
running off the picture or into its neighbour, a 1080 px PNG."""

from __future__ import annotations

import re
import struct
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from handlers.funnel import charts
from handlers.ui import fmt
from services.dto import PipelineInfo, StageInfo
from services.reports.analytics import (
    CycleSpeed,
    DateRange,
    FunnelStep,
    LossReport,
    LossRow,
    ManagerReport,
    ManagerRow,
    Period,
    PeriodFunnel,
    ReasonInfo,
    SnapshotFunnel,
    SnapshotStage,
    StageCount,
    StageSpeed,
    VelocityReport,
)

SPAN = DateRange(
    Period.LAST_QUARTER,
    date(2025, 10, 1),
    date(2025, 12, 31),
    datetime(2025, 9, 30, 21, tzinfo=UTC),
    datetime(2025, 12, 31, 21, tzinfo=UTC),
)
NAMES = [
    ("data_collection", "Сбор данных", "Data collection", "active", False),
    ("proposal_sent", "КП отправлено", "Proposal sent", "active", False),
    ("measurement_done", "Замер выполнен", "Measurement done", "active", True),
    ("won", "Успешная продажа", "Won", "won", False),
]
STAGES = tuple(
    StageInfo(i, code, ru, en, i, kind, key, 0, ())
    for i, (code, ru, en, kind, key) in enumerate(NAMES)
)
PIPELINE = PipelineInfo(1, "sales", "Продажа", "Sales", "sales", True, STAGES)


def funnel(reached: list[int], amounts: list[int]) -> PeriodFunnel:
    steps = tuple(
        FunnelStep(
            stage=stage,
            reached=n,
            reached_amount=amount,
            conversion=n / reached[i - 1] if i and reached[i - 1] else None,
            from_start=n / reached[0] if reached[0] else None,
            drop_off=0,
            win_rate=reached[-1] / n if n else None,
            open=0,
            lost=0,
            lost_amount=0,
            frozen=0,
            left=0,
            visits=0,
            median_seconds=None,
        )
        for i, (stage, n, amount) in enumerate(zip(STAGES, reached, amounts, strict=True))
    )
    return PeriodFunnel(
        PIPELINE, SPAN, None, steps, reached[0], amounts[0], reached[-1], amounts[-1],
        reached[0] - reached[-1], 123_456_789_00, 0, 0, 0,
    )  # fmt: skip


def texts(fig: Figure) -> list[Any]:
    return [*fig.texts, *(t for ax in fig.axes for t in ax.texts)]


def strings(fig: Figure) -> list[str]:
    return [t.get_text() for t in texts(fig)]


def bars(fig: Figure) -> list[tuple[float, float, float]]:
    """(left, width, y) of the coloured bars, top first (the grey tracks left out)."""
    (ax,) = fig.axes
    found = []
    for p in ax.patches:
        if to_hex(p.get_facecolor()) != charts.TRACK.lower():
            assert isinstance(p, Rectangle), p  # a bar, as barh draws it
            found.append((p.get_x(), p.get_width(), p.get_y()))
    return sorted(found, key=lambda b: b[2])


def assert_fits(fig: Figure) -> None:
    """Every text inside the picture; on each row the name ends before the numbers."""
    assert isinstance(fig.canvas, FigureCanvasAgg)  # the charts draw on Agg
    renderer = fig.canvas.get_renderer()
    width = fig.get_figwidth() * fig.dpi
    boxes = [t.get_window_extent(renderer) for t in texts(fig) if t.get_text()]
    assert all(0 <= b.x0 and b.x1 <= width for b in boxes)
    for a in boxes:
        for b in boxes:
            if a is not b and abs(a.y1 - b.y1) < 1:  # the same line
                assert a.x1 < b.x0 or b.x1 < a.x0, "texts on one line overlap"


def test_funnel_bars_follow_the_stages_centred():
    fig = charts.funnel_figure(funnel([1260, 456, 59, 40], [0, 0, 0, 0]), "ru")
    found = bars(fig)
    widths = [w for _, w, _ in found]
    assert widths == pytest.approx([1.0, 456 / 1260, 59 / 1260, 40 / 1260])
    assert all(left == pytest.approx(-w / 2) for left, w, _ in found)  # centred: a funnel
    assert_fits(fig)


def test_funnel_text_in_russian_and_english():
    data = funnel([1260, 456, 59, 40], [252_000_000_00, 91_200_000_00, 11_800_000_00, 8_000_000_00])
    ru = strings(charts.funnel_figure(data, "ru", manager_name="Анна"))
    assert "Воронка «Продажа»" in ru and "★ Замер выполнен" in ru
    assert (
        "1\u00a0260 · 100% · 252\u00a0млн\u00a0₽" in ru and "59 · 13% · 11,8\u00a0млн\u00a0₽" in ru
    )
    assert "★ После этапа «Замер выполнен» выигрывают 68%" in ru
    assert any(s.endswith("· Анна") and s.startswith("4-й квартал 2025") for s in ru)
    en = strings(charts.funnel_figure(data, "en"))
    assert "Funnel: Sales" in en and "★ Measurement done" in en
    assert "1,260 · 100% · 252M\u00a0RUB" in en and "4th quarter 2025 · all managers" in en


def test_empty_funnel_says_so():
    fig = charts.funnel_figure(funnel([0, 0, 0, 0], [0, 0, 0, 0]), "ru")
    assert "За этот период сделок нет" in strings(fig) and bars(fig) == []


def test_png_is_phone_sized():
    data = charts.funnel_chart(funnel([10, 5, 2, 1], [1, 1, 1, 1]), "ru")
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width == 1080 and height > 1000


def test_loss_reasons_most_frequent_first():
    def reason(i: int, code: str, name: str) -> ReasonInfo:
        return ReasonInfo(i, code, name, code.title(), False)

    rows = (
        LossRow(
            reason(1, "expensive", "Дорого"), 30, 9_000_000, 0, (StageCount(STAGES[1], 30, 1),)
        ),
        LossRow(None, 12, 0, 0, ()),
        LossRow(reason(2, "competitor", "Ушёл к конкуренту"), 6, 1_500_000, 2, ()),
    )
    fig = charts.loss_reasons_figure(LossReport(PIPELINE, SPAN, None, rows), "ru")
    assert [round(w, 3) for _, w, _ in bars(fig)] == [1.0, 0.4, 0.2]
    found = strings(fig)
    assert "Без причины" in found and "30 · 62% · 90\u00a0тыс.\u00a0₽" in found
    assert "Всего отказов 48 на 105\u00a0тыс.\u00a0₽" in found
    assert_fits(fig)


def test_a_wide_name_is_cut_before_the_numbers():
    wide = ReasonInfo(1, "wide", "Ш" * 23, None, False)  # short enough, but wide
    row = LossRow(wide, 123_456, 123_456_789_000_00, 0, ())
    fig = charts.loss_reasons_figure(LossReport(PIPELINE, SPAN, None, (row,)), "ru")
    (name,) = [s for s in strings(fig) if s.startswith("Ш")]
    assert name.endswith("…") and len(name) < 23
    assert_fits(fig)


def test_manager_ranking_bars_by_deals_won_and_nobody_is_no_rank():
    def row(i: int, name: str | None, won: int, money: int, deals: int) -> ManagerRow:
        return ManagerRow(i, name, deals, won, money, 0, 0, 0, 0, 0, 0, None, 0)

    rows = (
        row(1, "Анна Смирнова", 10, 400_000_00, 100),
        row(2, "Константин Константинопольский-Щедрин", 12, 100_000_00, 120),
        row(3, None, 0, 0, 5),
    )
    fig = charts.managers_figure(ManagerReport(PIPELINE, SPAN, rows), "ru")
    # ranked by money (Anna first), bars by the first number, deals won: 10 of 12
    assert [round(w, 3) for _, w, _ in bars(fig)] == [0.833, 1.0]  # no bar for nobody
    found = strings(fig)
    assert "1. Анна Смирнова" in found and not any("Без менеджера" in s for s in found)
    assert any(s.startswith("2. Константин") and s.endswith("…") for s in found)
    assert "10 · 400\u00a0тыс.\u00a0₽ · 10%" in found
    assert_fits(fig)


def every_picture(lang: str) -> dict[str, list[str]]:
    """The texts of all five /funnel pictures, drawn for a reader of `lang`."""
    money = [252_000_000_00, 91_200_000_00, 11_800_000_00, 8_000_000_00]
    reason = ReasonInfo(1, "expensive", "Дорого", "Too expensive", False)
    losses = LossReport(PIPELINE, SPAN, None, (LossRow(reason, 1234, 9_000_000, 0, ()),))
    people = ManagerReport(
        PIPELINE, SPAN, (ManagerRow(1, "Ann", 1500, 1234, 400_000_00, 0, 0, 0, 0, 0, 0, None, 0),)
    )
    snapshot = SnapshotFunnel(
        PIPELINE,
        None,
        datetime(2026, 1, 14, 22, tzinfo=UTC),
        7,
        tuple(SnapshotStage(s, 1260, 1_234_567_00, 100_00, 3) for s in STAGES[:3]),
        2,
        50_000_00,
    )
    speed = VelocityReport(
        PIPELINE,
        SPAN,
        None,
        tuple(StageSpeed(s, 1234, 2.5 * 86400, 10 * 86400) for s in STAGES[:3]),
        CycleSpeed(None, None, 1234, 12.5, 30.0),
        (),
    )
    return {
        "funnel": strings(charts.funnel_figure(funnel([1260, 456, 59, 40], money), lang)),
        "losses": strings(charts.loss_reasons_figure(losses, lang)),
        "managers": strings(charts.managers_figure(people, lang)),
        "snapshot": strings(charts.snapshot_figure(snapshot, lang, tz=ZoneInfo("Europe/Moscow"))),
        "speed": strings(charts.velocity_figure(speed, lang)),
    }


def test_an_english_reader_sees_english_words_numbers_and_dates():
    """Words from the en catalog, numbers, money and dates from handlers/ui/fmt in en:
    no Russian letter, no Russian number anywhere on the five pictures."""
    en = every_picture("en")
    for name, found in en.items():
        assert not [s for s in found if re.search("[\u0400-\u04ff]", s)], (name, found)
        assert not [s for s in found if re.search(r"\d\u00a0\d|\d,\d\D", s)], (name, found)
    assert "1,260 · 100% · 252M\u00a0RUB" in en["funnel"]
    assert "1,234 · 100% · 90K\u00a0RUB" in en["losses"] and "Too expensive" in en["losses"]
    assert "1,234 · 400K\u00a0RUB · 82%" in en["managers"]
    assert "as of Jan 15 · all managers" in en["snapshot"]
    assert "1,260 · 1.2M\u00a0RUB · 3" in en["snapshot"]
    assert "2.5 d · 10 d · 1,234" in en["speed"]
    assert "Sales cycle: median 12.5 d · 75% within 30 d · won 1,234" in en["speed"]
    ru = every_picture("ru")
    assert "на 15 янв. · все менеджеры" in ru["snapshot"]
    assert "2,5 дн · 10 дн · 1\u00a0234" in ru["speed"]


@pytest.mark.parametrize(
    ("lang", "minor", "money"),
    [
        ("ru", 99_900, "999\u00a0₽"),
        ("ru", 1_234_500, "12,3\u00a0тыс.\u00a0₽"),
        ("ru", 123_456_789_00, "123\u00a0млн\u00a0₽"),
        ("ru", 2_500_000_000_00, "2,5\u00a0млрд\u00a0₽"),
        ("en", 1_234_500, "12.3K\u00a0RUB"),
        ("en", 0, "0\u00a0RUB"),
    ],
)
def test_money(lang, minor, money):
    """A picture's money is the one formatter's short money (handlers/ui/fmt.py)."""
    assert fmt.money(minor, lang, compact=True) == money
