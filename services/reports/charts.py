"""Report pictures for a phone screen: PNG bytes from the analytics DTOs.

Matplotlib's object API with the Agg canvas (no pyplot, no global backend, safe in worker
threads). Pictures are 1080 px wide — what Telegram keeps of a photo — with text about 40 px
high, so they stay readable when a phone shrinks them to its width. Every row is one line
of text (name on the left, numbers on the right) over its bar.

Text comes in the language asked for: stage and reason names from the configuration
(``label(lang)``), the rest from a small built-in ru/en table that a caller may override
(``labels=``) with its own catalog's strings.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from babel.numbers import format_compact_decimal, format_decimal

from services.reports.analytics import (
    DateRange,
    LossReport,
    ManagerReport,
    PeriodFunnel,
    SnapshotFunnel,
    VelocityReport,
)

if TYPE_CHECKING:  # matplotlib (~40 MB) is imported on the first chart, not at start
    from matplotlib.figure import Figure

WIDTH_IN = 7.2
DPI = 150  # 7.2 in x 150 = 1080 px
ROW_IN = 0.92
HEADER_IN = 1.8
FOOTER_IN = 0.5
NAME_CHARS = 24  # longer stage, reason or manager names are cut with an ellipsis

TEXT = "#1F2937"
MUTED = "#6B7280"
BAR = "#3B82F6"
WON = "#16A34A"
KEY = "#F59E0B"
LOSS = "#EF4444"
PEOPLE = "#0EA5E9"
TRACK = "#F3F4F6"

LABELS: dict[str, dict[str, str]] = {
    "ru": {
        "funnel": "Воронка «{pipeline}»",
        "summary": "Пришло {cohort} · выиграно {won} ({rate}) · {money}",
        "funnel_legend": "сделок · % от предыдущего этапа · сумма",
        "key": "★ После этапа «{stage}» выигрывают {rate}",
        "lost": "Потеряно сделок: {count}, на {money}",
        "everyone": "все менеджеры",
        "nothing": "За этот период сделок нет",
        "losses": "Причины отказов · «{pipeline}»",
        "losses_summary": "Всего отказов {count} на {money}",
        "losses_legend": "отказов · доля · сумма",
        "managers": "Рейтинг менеджеров · «{pipeline}»",
        "managers_summary": "Пришло {deals} · выиграно {won} · {money}",
        "managers_legend": "выиграно · сумма · конверсия",
        "no_reason": "Без причины",
        "no_manager": "Без менеджера",
    },
    "en": {
        "funnel": "Funnel: {pipeline}",
        "summary": "Came in {cohort} · won {won} ({rate}) · {money}",
        "funnel_legend": "deals · % of the previous stage · amount",
        "key": "★ After “{stage}” {rate} are won",
        "lost": "Deals lost: {count}, worth {money}",
        "everyone": "all managers",
        "nothing": "No deals in this period",
        "losses": "Loss reasons · {pipeline}",
        "losses_summary": "Refused {count}, worth {money}",
        "losses_legend": "refusals · share · amount",
        "managers": "Manager ranking · {pipeline}",
        "managers_summary": "Came in {deals} · won {won} · {money}",
        "managers_legend": "won · amount · conversion",
        "no_reason": "No reason",
        "no_manager": "No manager",
    },
}


@dataclass(frozen=True)
class _Text:
    lang: str
    words: Mapping[str, str]
    currency: str

    def __call__(self, key: str, **values: object) -> str:
        return self.words[key].format(**values)

    def number(self, value: float, digits: int = 0) -> str:
        """1 234 567,8 (ru) / 1,234,567.8 (en): Babel's (CLDR) separators."""
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(value, pattern, locale=self.lang)

    def money(self, minor: int) -> str:
        """Short roubles and the currency: 999 ₽, 12,3 тыс. ₽ / 12.3K ₽ (CLDR short forms)."""
        value = Decimal(int(minor)) / 100
        digits = 0
        for limit in (10**9, 10**6, 10**3):
            if abs(value) >= limit:
                digits = 1 if abs(value) / limit < 100 else 0
                break
        text = format_compact_decimal(value, locale=self.lang, fraction_digits=digits)
        return f"{text} {self.currency}"

    def percent(self, ratio: float | None) -> str:
        if ratio is None:
            return "—"
        value = ratio * 100
        return f"{self.number(value, 1 if 0 < value < 10 else 0)}%"

    def period(self, span: DateRange) -> str:
        fmt = "%d.%m.%Y" if self.lang == "ru" else "%Y-%m-%d"
        return f"{span.first_day.strftime(fmt)} – {span.last_day.strftime(fmt)}"


def _text(lang: str, labels: Mapping[str, str] | None, currency: str) -> _Text:
    base = LABELS.get(lang, LABELS["ru"])
    return _Text(lang if lang in LABELS else "ru", {**base, **(labels or {})}, currency)


def _fit(name: str, limit: int = NAME_CHARS) -> str:
    return name if len(name) <= limit else name[: limit - 1].rstrip() + "…"


@dataclass(frozen=True)
class _Row:
    name: str
    numbers: str
    share: float  # bar length, 0..1 of the widest
    color: str
    name_color: str = TEXT


def _render(
    header: tuple[str, str, str, str],
    rows: Sequence[_Row],
    footer: Sequence[tuple[str, str]],
    *,
    centered: bool,
    empty: str,
) -> Figure:
    """One picture: a header (title, subtitle, summary, legend of the numbers), a row
    (name and numbers on a line over a bar) per item, a footer."""
    title, subtitle, summary, legend = header
    count = max(len(rows), 1)
    height = HEADER_IN + count * ROW_IN + (FOOTER_IN * len(footer) + 0.25)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH_IN, height), dpi=DPI, facecolor="white")
    canvas = FigureCanvasAgg(fig)

    def y(inches_from_top: float) -> float:
        return 1 - inches_from_top / height

    renderer = canvas.get_renderer()  # type: ignore[no-untyped-call]
    left, right = 0.045, 0.955
    edge = right * WIDTH_IN * DPI
    lines: tuple[tuple[float, str, dict[str, Any]], ...] = (
        (0.22, title, {"fontsize": 21, "weight": "bold", "color": TEXT}),
        (0.78, subtitle, {"fontsize": 14, "color": MUTED}),
        (1.08, summary, {"fontsize": 15, "color": TEXT}),
        (1.42, legend, {"fontsize": 13, "color": MUTED, "style": "italic"}),
    )
    for top, line, style in lines:
        _shorten(fig.text(left, y(top), line, va="top", **style), edge, renderer)

    body_top = HEADER_IN
    ax = fig.add_axes((left, y(body_top + count * ROW_IN), right - left, count * ROW_IN / height))
    ax.set_xlim(-0.5 if centered else 0.0, 0.5 if centered else 1.0)
    ax.set_ylim(count, 0)
    ax.axis("off")
    if not rows:
        ax.text(0 if centered else 0.5, 0.5, empty, fontsize=17, color=MUTED, ha="center")
    for i, row in enumerate(rows):
        x0, x1 = ax.get_xlim()
        numbers = ax.text(x1, i + 0.08, row.numbers, fontsize=17, color=TEXT, va="top", ha="right")
        name = ax.text(x0, i + 0.08, row.name, fontsize=17, color=row.name_color, va="top")
        # A long name never runs into the numbers.
        _shorten(name, numbers.get_window_extent(renderer).x0 - 12, renderer)
        width = (x1 - x0) * max(row.share, 0.012)
        start = -width / 2 if centered else x0
        if not centered:
            ax.barh(i + 0.66, x1 - x0, left=x0, height=0.4, color=TRACK)
        ax.barh(i + 0.66, width, left=start, height=0.4, color=row.color)
    for n, (line, color) in enumerate(footer):
        top = body_top + count * ROW_IN + 0.12 + n * FOOTER_IN
        _shorten(fig.text(left, y(top), line, fontsize=15, color=color, va="top"), edge, renderer)
    return fig


def png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    return buffer.getvalue()


def _shorten(artist: Any, limit: float, renderer: Any) -> None:
    """Cut a text with an ellipsis until its right edge (pixels) is within ``limit``."""
    text = artist.get_text()
    while artist.get_window_extent(renderer).x1 > limit and len(text) > 4:
        text = text[:-2].rstrip("…").rstrip() + "…"
        artist.set_text(text)


# --- the three pictures -------------------------------------------------------------------


def funnel_chart(
    funnel: PeriodFunnel,
    lang: str = "ru",
    *,
    manager_name: str | None = None,
    currency: str = "₽",
    labels: Mapping[str, str] | None = None,
) -> bytes:
    """The period funnel as a PNG (see funnel_figure)."""
    return png(
        funnel_figure(funnel, lang, manager_name=manager_name, currency=currency, labels=labels)
    )


def funnel_figure(
    funnel: PeriodFunnel,
    lang: str = "ru",
    *,
    manager_name: str | None = None,
    currency: str = "₽",
    labels: Mapping[str, str] | None = None,
) -> Figure:
    """Centred funnel bars, one per flow stage: how many reached it, the step's
    conversion, and their money; key stages starred, the key-stage win rate below."""
    t = _text(lang, labels, currency)
    first = funnel.cohort or 1
    rows = []
    for i, step in enumerate(funnel.steps if funnel.cohort else ()):
        is_won = step.stage.kind == "won"
        star = "★ " if step.stage.is_key else ""
        conversion = t.percent(step.conversion if i else 1.0)
        rows.append(
            _Row(
                name=star + _fit(step.stage.label(lang), NAME_CHARS - len(star)),
                numbers=f"{t.number(step.reached)} · {conversion} · {t.money(step.reached_amount)}",
                share=step.reached / first,
                color=WON if is_won else KEY if step.stage.is_key else BAR,
                name_color=KEY if step.stage.is_key else TEXT,
            )
        )
    footer = [
        (t("key", stage=_fit(s.stage.label(lang)), rate=t.percent(s.win_rate)), KEY)
        for s in funnel.key_steps
        if s.reached
    ]
    if funnel.lost:
        footer.append(
            (t("lost", count=t.number(funnel.lost), money=t.money(funnel.lost_amount)), LOSS)
        )
    header = (
        t("funnel", pipeline=funnel.pipeline.label(lang)),
        f"{t.period(funnel.range)} · {manager_name or t('everyone')}",
        t(
            "summary",
            cohort=t.number(funnel.cohort),
            won=t.number(funnel.won),
            rate=t.percent(funnel.conversion),
            money=t.money(funnel.won_amount),
        ),
        t("funnel_legend"),
    )
    return _render(
        header,
        rows,
        footer,
        centered=True,
        empty=t("nothing"),
    )


def loss_reasons_chart(
    report: LossReport,
    lang: str = "ru",
    *,
    manager_name: str | None = None,
    currency: str = "₽",
    labels: Mapping[str, str] | None = None,
    limit: int = 10,
) -> bytes:
    """The loss reasons as a PNG (see loss_reasons_figure)."""
    return png(
        loss_reasons_figure(
            report, lang, manager_name=manager_name, currency=currency, labels=labels, limit=limit
        )
    )


def loss_reasons_figure(
    report: LossReport,
    lang: str = "ru",
    *,
    manager_name: str | None = None,
    currency: str = "₽",
    labels: Mapping[str, str] | None = None,
    limit: int = 10,
) -> Figure:
    """Reasons, most frequent first: how many, their share of refusals, the money."""
    t = _text(lang, labels, currency)
    top = max((r.count for r in report.rows), default=1) or 1
    rows = [
        _Row(
            name=_fit(r.reason.label(lang) if r.reason else t("no_reason")),
            numbers=f"{t.number(r.count)} · {t.percent(r.count / report.count)} · "
            f"{t.money(r.amount)}",
            share=r.count / top,
            color=LOSS,
        )
        for r in report.rows[:limit]
    ]
    header = (
        t("losses", pipeline=report.pipeline.label(lang)),
        f"{t.period(report.range)} · {manager_name or t('everyone')}",
        t("losses_summary", count=t.number(report.count), money=t.money(report.amount)),
        t("losses_legend"),
    )
    return _render(
        header,
        rows,
        [],
        centered=False,
        empty=t("nothing"),
    )


def managers_chart(
    report: ManagerReport,
    lang: str = "ru",
    *,
    currency: str = "₽",
    labels: Mapping[str, str] | None = None,
    limit: int = 12,
) -> bytes:
    """The manager ranking as a PNG (see managers_figure)."""
    return png(managers_figure(report, lang, currency=currency, labels=labels, limit=limit))


def managers_figure(
    report: ManagerReport,
    lang: str = "ru",
    *,
    currency: str = "₽",
    labels: Mapping[str, str] | None = None,
    limit: int = 12,
) -> Figure:
    """The ranking: won deals, won money, conversion; bars by won money."""
    t = _text(lang, labels, currency)
    shown = report.rows[:limit]
    top_money = max((r.won_amount for r in shown), default=0)
    top_won = max((r.won for r in shown), default=0) or 1
    rows = [
        _Row(
            name=f"{rank}. {_fit(r.name or t('no_manager'), NAME_CHARS - 4)}",
            numbers=f"{t.number(r.won)} · {t.money(r.won_amount)} · {t.percent(r.conversion)}",
            share=r.won_amount / top_money if top_money else r.won / top_won,
            color=PEOPLE,
        )
        for rank, r in enumerate(shown, start=1)
    ]
    header = (
        t("managers", pipeline=report.pipeline.label(lang)),
        t.period(report.range),
        t(
            "managers_summary",
            deals=t.number(sum(r.deals for r in report.rows)),
            won=t.number(sum(r.won for r in report.rows)),
            money=t.money(sum(r.won_amount for r in report.rows)),
        ),
        t("managers_legend"),
    )
    return _render(
        header,
        rows,
        [],
        centered=False,
        empty=t("nothing"),
    )


# --- the snapshot (/funnel, handlers/funnel/router.py) ------------------------------------

SNAPSHOT_LABELS: dict[str, dict[str, str]] = {
    "ru": {
        "snapshot": "Срез «{pipeline}»",
        "snapshot_summary": "В работе {count} · {money} · прогноз {weighted}",
        "snapshot_legend": "сделок · сумма · зависли",
        "snapshot_frozen": "Условный отказ: {count} на {money}",
        "snapshot_as_of": "на {date}",
        "snapshot_empty": "Активных сделок нет",
    },
    "en": {
        "snapshot": "Snapshot: {pipeline}",
        "snapshot_summary": "In work {count} · {money} · forecast {weighted}",
        "snapshot_legend": "deals · amount · stuck",
        "snapshot_frozen": "Conditional refusal: {count} worth {money}",
        "snapshot_as_of": "as of {date}",
        "snapshot_empty": "No active deals",
    },
}


def snapshot_chart(
    snapshot: SnapshotFunnel,
    lang: str = "ru",
    *,
    manager_name: str | None = None,
    currency: str = "₽",
    labels: Mapping[str, str] | None = None,
    tz: tzinfo | None = None,
) -> bytes:
    """The snapshot (active deals per stage now) as a PNG: one bar per active stage, its
    length the stage's money (the count when there is no money), numbers: deals, amount,
    how many are stuck; conditional refusals in the footer."""
    words = {**SNAPSHOT_LABELS.get(lang, SNAPSHOT_LABELS["ru"]), **(labels or {})}
    t = _text(lang, words, currency)
    top_money = max((s.amount for s in snapshot.stages), default=0)
    top_count = max((s.count for s in snapshot.stages), default=0) or 1
    rows = [
        _Row(
            name=("★ " if s.stage.is_key else "") + _fit(s.stage.label(lang)),
            numbers=f"{t.number(s.count)} · {t.money(s.amount)} · {t.number(s.stuck)}",
            share=s.amount / top_money if top_money else s.count / top_count,
            color=KEY if s.stage.is_key else BAR,
            name_color=KEY if s.stage.is_key else TEXT,
        )
        for s in snapshot.stages
    ]
    footer = []
    if snapshot.frozen:
        footer.append(
            (
                t(
                    "snapshot_frozen",
                    count=t.number(snapshot.frozen),
                    money=t.money(snapshot.frozen_amount),
                ),
                MUTED,
            )
        )
    when = snapshot.as_of.astimezone(tz) if tz is not None else snapshot.as_of
    day = when.strftime("%d.%m.%Y" if t.lang == "ru" else "%Y-%m-%d")
    header = (
        t("snapshot", pipeline=snapshot.pipeline.label(lang)),
        f"{t('snapshot_as_of', date=day)} · {manager_name or t('everyone')}",
        t(
            "snapshot_summary",
            count=t.number(snapshot.count),
            money=t.money(snapshot.amount),
            weighted=t.money(snapshot.weighted),
        ),
        t("snapshot_legend"),
    )
    figure = _render(
        header, rows if snapshot.count else [], footer, centered=False, empty=t("snapshot_empty")
    )
    return png(figure)


# --- velocity (/funnel's Speed view) ------------------------------------------------------

VELOCITY_LABELS: dict[str, dict[str, str]] = {
    "ru": {
        "velocity": "Скорость · «{pipeline}»",
        "velocity_summary": "Цикл сделки: медиана {median} · 75% за {p75} · выиграно {won}",
        "velocity_legend": "дней на этапе: медиана · 75% · сколько раз",
        "days": "{days} дн",
        "velocity_empty": "Нет завершённых этапов",
    },
    "en": {
        "velocity": "Speed · {pipeline}",
        "velocity_summary": "Sales cycle: median {median} · 75% within {p75} · won {won}",
        "velocity_legend": "days in stage: median · 75% · stays",
        "days": "{days} d",
        "velocity_empty": "No finished stays",
    },
}


def velocity_chart(
    report: VelocityReport,
    lang: str = "ru",
    *,
    manager_name: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> bytes:
    """Time in each stage (median bar, numbers median · p75 · stays) and the sales cycle."""
    words = {**VELOCITY_LABELS.get(lang, VELOCITY_LABELS["ru"]), **(labels or {})}
    t = _text(lang, words, "")

    def days(seconds_or_days: float | None, unit: float = 1.0) -> str:
        if seconds_or_days is None:
            return "—"
        return t(
            "days", days=t.number(seconds_or_days / unit, 1).removesuffix(",0").removesuffix(".0")
        )

    top = max((s.median_seconds or 0.0 for s in report.stages), default=0.0)
    rows = [
        _Row(
            name=_fit(s.stage.label(lang)),
            numbers=f"{days(s.median_seconds, 86400)} · {days(s.p75_seconds, 86400)} · {s.stays}",
            share=(s.median_seconds or 0.0) / top if top else 0.0,
            color=KEY if s.stage.is_key else BAR,
        )
        for s in report.stages
    ]
    cycle = report.cycle
    header = (
        t("velocity", pipeline=report.pipeline.label(lang)),
        f"{t.period(report.range)} · {manager_name or t('everyone')}",
        t(
            "velocity_summary",
            median=days(cycle.median_days),
            p75=days(cycle.p75_days),
            won=cycle.won,
        ),
        t("velocity_legend"),
    )
    return png(_render(header, rows, [], centered=False, empty=t("velocity_empty")))
