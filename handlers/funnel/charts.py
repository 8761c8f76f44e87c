"""Report pictures for a phone screen: PNG bytes from the analytics DTOs.

Matplotlib's object API with the Agg canvas (no pyplot, no global backend, safe in worker
threads). Pictures are 1080 px wide — what Telegram keeps of a photo — with text about 40 px
high, so they stay readable when a phone shrinks them to its width. Every row is one line
of text (name on the left, numbers on the right) over its bar.

Text comes in the reader's language: stage and reason names from the configuration
(``label(lang)``), the words from the catalog (``funnel.chart.*`` in
handlers/locales/<lang>/LC_MESSAGES/funnel.po), numbers, money, percentages and days from
handlers/ui/fmt.py, as in the text under the picture. Drawn here, in the front-end, because
a picture is presentation: the services hand over the reports (services/reports/analytics).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import TYPE_CHECKING, Any

from handlers.ui import fmt, i18n
from services.reports.analytics import (
    DateRange,
    LossReport,
    ManagerReport,
    PeriodFunnel,
    SnapshotFunnel,
    VelocityReport,
)
from services.sales.plans import PlanReport

if TYPE_CHECKING:  # matplotlib (~40 MB) is imported on the first chart, not at start
    from matplotlib.figure import Figure

    from services.reports.screens import ReportScreen

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


@dataclass(frozen=True)
class _Words:
    """The picture's words and numbers in one language (the catalog and handlers/ui/fmt)."""

    lang: str

    def __call__(self, key: str, **values: object) -> str:
        return i18n.t(key, self.lang, **values)

    def number(self, value: float, digits: int = 0) -> str:
        return fmt.number(value, self.lang, digits)

    def money(self, minor: int) -> str:
        return fmt.money(minor, self.lang, compact=True)

    def counted(self, key: str, count: int, minor: int) -> str:
        """A text about how many deals and their money ({count}, {money})."""
        return self(key, count=self.number(count), money=self.money(minor))

    def percent(self, ratio: float | None) -> str:
        return fmt.percent(ratio, self.lang)

    def period(self, span: DateRange) -> str:
        """The period in words ("December 2026", "Dec 1 – 7"), as under the picture."""
        return fmt.span(span.first_day, span.last_day, self.lang)

    def everyone(self, manager_name: str | None) -> str:
        return manager_name or i18n.t("funnel.everyone", self.lang)


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
        # A zero draws no bar at all (a sliver would read as "a little"); a tiny non-zero
        # share keeps a visible minimum.
        width = (x1 - x0) * (max(row.share, 0.012) if row.share > 0 else 0.0)
        start = -width / 2 if centered else x0
        if not centered:
            ax.barh(i + 0.66, x1 - x0, left=x0, height=0.4, color=TRACK)
        if width:
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


def funnel_chart(funnel: PeriodFunnel, lang: str, *, manager_name: str | None = None) -> bytes:
    """The period funnel as a PNG (see funnel_figure)."""
    return png(funnel_figure(funnel, lang, manager_name=manager_name))


def funnel_figure(funnel: PeriodFunnel, lang: str, *, manager_name: str | None = None) -> Figure:
    """Centred funnel bars, one per flow stage: how many reached it, the step's
    conversion, and their money; key stages starred, the key-stage win rate below."""
    t = _Words(lang)
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
        (t("funnel.chart.key", stage=_fit(s.stage.label(lang)), rate=t.percent(s.win_rate)), KEY)
        for s in funnel.key_steps
        if s.reached
    ]
    if funnel.lost:
        footer.append((t.counted("funnel.chart.lost", funnel.lost, funnel.lost_amount), LOSS))
    header = (
        t("funnel.chart.funnel", pipeline=funnel.pipeline.label(lang)),
        f"{t.period(funnel.range)} · {t.everyone(manager_name)}",
        t(
            "funnel.chart.summary",
            cohort=t.number(funnel.cohort),
            won=t.number(funnel.won),
            rate=t.percent(funnel.conversion),
            money=t.money(funnel.won_amount),
        ),
        t("funnel.chart.funnel_legend"),
    )
    return _render(header, rows, footer, centered=True, empty=t("funnel.chart.nothing"))


def loss_reasons_chart(
    report: LossReport, lang: str, *, manager_name: str | None = None, limit: int = 10
) -> bytes:
    """The loss reasons as a PNG (see loss_reasons_figure)."""
    return png(loss_reasons_figure(report, lang, manager_name=manager_name, limit=limit))


def loss_reasons_figure(
    report: LossReport, lang: str, *, manager_name: str | None = None, limit: int = 10
) -> Figure:
    """Reasons, most frequent first: how many, their share of refusals, the money."""
    t = _Words(lang)
    top = max((r.count for r in report.rows), default=1) or 1
    no_reason = i18n.t("funnel.no_reason", lang)
    rows = [
        _Row(
            name=_fit(r.reason.label(lang) if r.reason else no_reason),
            numbers=f"{t.number(r.count)} · {t.percent(r.count / report.count)} · "
            f"{t.money(r.amount)}",
            share=r.count / top,
            color=LOSS,
        )
        for r in report.rows[:limit]
    ]
    header = (
        t("funnel.chart.losses", pipeline=report.pipeline.label(lang)),
        f"{t.period(report.range)} · {t.everyone(manager_name)}",
        t.counted("funnel.chart.losses_summary", report.count, report.amount),
        t("funnel.chart.losses_legend"),
    )
    return _render(header, rows, [], centered=False, empty=t("funnel.chart.nothing"))


def managers_chart(report: ManagerReport, lang: str, *, limit: int = 12) -> bytes:
    """The manager ranking as a PNG (see managers_figure)."""
    return png(managers_figure(report, lang, limit=limit))


def managers_figure(report: ManagerReport, lang: str, *, limit: int = 12) -> Figure:
    """The ranking: won deals, won money, conversion; bars by won deals (the first
    number). Deals nobody is responsible for are not a rank (the text under it says them)."""
    t = _Words(lang)
    shown = [r for r in report.rows if r.manager_id is not None][:limit]  # nobody: no rank
    top_won = max((r.won for r in shown), default=0) or 1
    rows = [
        _Row(
            name=f"{rank}. {_fit(r.name or '', NAME_CHARS - 4)}",
            numbers=f"{t.number(r.won)} · {t.money(r.won_amount)} · {t.percent(r.conversion)}",
            share=r.won / top_won,  # the bar measures the first number: deals won
            color=PEOPLE,
        )
        for rank, r in enumerate(shown, start=1)
    ]
    header = (
        t("funnel.chart.managers", pipeline=report.pipeline.label(lang)),
        t.period(report.range),
        t(
            "funnel.chart.managers_summary",
            deals=t.number(sum(r.deals for r in report.rows)),
            won=t.number(sum(r.won for r in report.rows)),
            money=t.money(sum(r.won_amount for r in report.rows)),
        ),
        t("funnel.chart.managers_legend"),
    )
    return _render(header, rows, [], centered=False, empty=t("funnel.chart.nothing"))


# --- the snapshot (/funnel's first picture) -----------------------------------------------


def snapshot_chart(
    snapshot: SnapshotFunnel,
    lang: str,
    *,
    manager_name: str | None = None,
    tz: tzinfo | None = None,
) -> bytes:
    """The snapshot as a PNG (see snapshot_figure)."""
    return png(snapshot_figure(snapshot, lang, manager_name=manager_name, tz=tz))


def snapshot_figure(
    snapshot: SnapshotFunnel,
    lang: str,
    *,
    manager_name: str | None = None,
    tz: tzinfo | None = None,
) -> Figure:
    """The snapshot (active deals per stage now): one bar per active stage, its
    length the stage's deals (the first number, as in the table), numbers: deals, amount,
    how many are stuck; conditional refusals in the footer."""
    t = _Words(lang)
    top_count = max((s.count for s in snapshot.stages), default=0) or 1
    rows = [
        _Row(
            name=("★ " if s.stage.is_key else "") + _fit(s.stage.label(lang)),
            numbers=f"{t.number(s.count)} · {t.money(s.amount)} · {t.number(s.stuck)}",
            share=s.count / top_count,  # the bar measures the first number: deals
            color=KEY if s.stage.is_key else BAR,
            name_color=KEY if s.stage.is_key else TEXT,
        )
        for s in snapshot.stages
    ]
    footer = []
    if snapshot.frozen:
        frozen = t.counted("funnel.chart.snapshot_frozen", snapshot.frozen, snapshot.frozen_amount)
        footer.append((frozen, MUTED))
    when = snapshot.as_of.astimezone(tz) if tz is not None else snapshot.as_of
    as_of = i18n.t("funnel.as_of", lang, date=fmt.span(when.date(), when.date(), lang))
    header = (
        t("funnel.chart.snapshot", pipeline=snapshot.pipeline.label(lang)),
        f"{as_of} · {t.everyone(manager_name)}",
        t(
            "funnel.chart.snapshot_summary",
            count=t.number(snapshot.count),
            money=t.money(snapshot.amount),
            weighted=t.money(snapshot.weighted),
        ),
        t("funnel.chart.snapshot_legend"),
    )
    return _render(
        header,
        rows if snapshot.count else [],
        footer,
        centered=False,
        empty=t("funnel.chart.snapshot_empty"),
    )


# --- velocity (/funnel's Speed view) ------------------------------------------------------


def velocity_chart(report: VelocityReport, lang: str, *, manager_name: str | None = None) -> bytes:
    """Speed as a PNG (see velocity_figure)."""
    return png(velocity_figure(report, lang, manager_name=manager_name))


def velocity_figure(
    report: VelocityReport, lang: str, *, manager_name: str | None = None
) -> Figure:
    """Time in each stage (median bar, numbers median · p75 · stays) and the sales cycle."""
    t = _Words(lang)

    def days(seconds_or_days: float | None, unit: float = 1.0) -> str:
        if seconds_or_days is None:
            return fmt.NONE
        return t("funnel.chart.days", days=t.number(seconds_or_days / unit, 1))

    top = max((s.median_seconds or 0.0 for s in report.stages), default=0.0)
    rows = [
        _Row(
            name=_fit(s.stage.label(lang)),
            numbers=f"{days(s.median_seconds, 86400)} · {days(s.p75_seconds, 86400)} · "
            f"{t.number(s.stays)}",
            share=(s.median_seconds or 0.0) / top if top else 0.0,
            color=KEY if s.stage.is_key else BAR,
        )
        for s in report.stages
    ]
    cycle = report.cycle
    header = (
        t("funnel.chart.velocity", pipeline=report.pipeline.label(lang)),
        f"{t.period(report.range)} · {t.everyone(manager_name)}",
        t(
            "funnel.chart.velocity_summary",
            median=days(cycle.median_days),
            p75=days(cycle.p75_days),
            won=t.number(cycle.won),
        ),
        t("funnel.chart.velocity_legend"),
    )
    return _render(header, rows, [], centered=False, empty=t("funnel.chart.velocity_empty"))


def plan_chart(report: PlanReport, lang: str) -> bytes:
    """The month's plans as a PNG (see plan_figure)."""
    return png(plan_figure(report, lang))


def plan_figure(report: PlanReport, lang: str) -> Figure:
    """Plans: a bar per person (the company first) as long as the share of the plan done
    (a full bar: done), with sales done / planned, money done and the share."""
    t = _Words(lang)
    people = [(t("funnel.plan.company"), report.company)] if report.company is not None else []
    people += [(r.name or "", r) for r in report.rows]
    rows = [
        _Row(
            name=_fit(name),
            numbers=(
                f"{t.number(r.won)}/{t.number(r.plan_count) if r.plan_count else '—'} · "
                f"{t.money(r.won_amount)} · {t.percent(r.progress)}"
            ),
            share=min(r.progress or 0.0, 1.0),
            color=WON if (r.progress or 0.0) >= 1 else (LOSS if r.behind else PEOPLE),
        )
        for name, r in people
    ]
    header = (
        t("funnel.chart.plan", pipeline=report.pipeline.label(lang)),
        fmt.month(report.month, lang),
        t(
            "funnel.plan.days",
            past=report.days_past,
            left=report.days_left,
            total=report.days_total,
        ),
        t("funnel.chart.plan_legend"),
    )
    return _render(header, rows, [], centered=False, empty=t("funnel.chart.nothing"))


def draw(screen: ReportScreen, lang: str, tz: tzinfo) -> bytes:
    """The picture of a /funnel screen (drawn in the renderer process: render.py)."""
    report = screen.report
    who = screen.manager_name
    if isinstance(report, PlanReport):
        return plan_chart(report, lang)
    if isinstance(report, SnapshotFunnel):
        return snapshot_chart(report, lang, manager_name=who, tz=tz)
    if isinstance(report, PeriodFunnel):
        return funnel_chart(report, lang, manager_name=who)
    if isinstance(report, LossReport):
        return loss_reasons_chart(report, lang, manager_name=who)
    if isinstance(report, VelocityReport):
        return velocity_chart(report, lang, manager_name=who)
    return managers_chart(report, lang)
