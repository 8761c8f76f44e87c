"""/funnel texts and keyboards, and the digest message (rendered by bot/notifier.py).

Phone first: only what is tabular goes in the monospace table (<pre>), at most WIDTH
characters a line so a 360-px phone shows it without wrapping; sentences stay outside it
and wrap as text. Nothing is cut with an ellipsis: a stage's table name is its configured
short name (``short`` / ``short_en``), a longer name is abbreviated by rule
(fmt.abbreviate), a money column is in one unit named in its header (fmt.money_column),
and a table drops its least important columns before it would cut a number. Every zero
or empty case is said in words. Each heading says what is counted: the deals that *came
in* during the period (the cohort), or what *happened* in it (by the date it happened).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta, tzinfo
from html import escape
from typing import Any

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from handlers.ui import fmt
from handlers.ui.callbacks import (
    DealAction,
    DealCb,
    DrillCb,
    DrillWhat,
    ExportCb,
    FunnelCb,
    FunnelPeriod,
    FunnelReport,
)
from handlers.ui.deal_card import list_button
from handlers.ui.discipline import team_lines
from handlers.ui.i18n import t, tn
from handlers.ui.keyboards import button
from services.dto import StageInfo, label
from services.outbox.payloads import Digest, DigestDeal, DigestPlan, PlanBehind
from services.reports import export
from services.reports.analytics import (
    LossReport,
    ManagerReport,
    Period,
    PeriodFunnel,
    SnapshotFunnel,
    VelocityReport,
)
from services.reports.drill import DrillKind, DrillPage
from services.reports.fulfilment import FulfilmentReport
from services.reports.screens import ReportKind, ReportScreen
from services.sales.plans import PlanReport, PlanRow

WIDTH = 32  # monospace characters a 360-px phone shows on a line of a message
NAME_MIN = 7  # the narrowest name column before a table drops a column
_LATE = timedelta(minutes=10)  # a digest sent this long after its time says so

REPORTS: dict[FunnelReport, ReportKind] = {
    FunnelReport.SNAPSHOT: ReportKind.SNAPSHOT,
    FunnelReport.PERIOD: ReportKind.PERIOD,
    FunnelReport.LOSSES: ReportKind.LOSSES,
    FunnelReport.MANAGERS: ReportKind.MANAGERS,
    FunnelReport.VELOCITY: ReportKind.VELOCITY,
    FunnelReport.PLAN: ReportKind.PLAN,
}
DRILLS: dict[DrillWhat, DrillKind] = {
    DrillWhat.STAGE: DrillKind.STAGE,
    DrillWhat.REACHED: DrillKind.REACHED,
    DrillWhat.REASON: DrillKind.REASON,
    DrillWhat.WON: DrillKind.WON,
}
PERIODS: dict[FunnelPeriod, Period] = {
    FunnelPeriod.THIS_WEEK: Period.THIS_WEEK,
    FunnelPeriod.LAST_WEEK: Period.LAST_WEEK,
    FunnelPeriod.THIS_MONTH: Period.THIS_MONTH,
    FunnelPeriod.LAST_MONTH: Period.LAST_MONTH,
    FunnelPeriod.THIS_QUARTER: Period.THIS_QUARTER,
}


@dataclass(frozen=True)
class Column:
    """A right-aligned column of a report table: its header and one cell per row."""

    header: str
    cells: Sequence[str]


def table(
    name_header: str, names: Sequence[str], columns: Sequence[Column], name_min: int = NAME_MIN
) -> str:
    """A phone-width table (at most WIDTH characters a line): the names on the left, the
    numbers right-aligned in columns as wide as their widest cell. The name column takes
    what is left, and a longer name is abbreviated by rule (fmt.abbreviate); numbers are
    never cut: columns are dropped from the right instead when the names would get too
    narrow (callers put the columns that matter most first)."""
    columns = list(columns)
    while True:
        widths = [max([len(c.header), *(len(v) for v in c.cells)]) for c in columns]
        room = WIDTH - sum(widths) - len(widths)
        if room >= min(name_min, max(len(n) for n in [name_header, *names])) or len(columns) <= 1:
            break
        columns.pop()
    longest = max((len(n) for n in [name_header, *names]), default=0)
    room = min(room, longest)
    lines = []
    for i, name in enumerate([name_header, *names]):
        cells = [
            (c.header if i == 0 else c.cells[i - 1]).rjust(w)
            for c, w in zip(columns, widths, strict=True)
        ]
        lines.append(" ".join([fmt.abbreviate(name, room).ljust(room), *cells]).rstrip())
    return "\n".join(lines)


def change(
    now: float | None, before: float | None, lang: str | None = None, digits: int = 0
) -> str:
    """The change against the previous period: +3, −2, 0 (empty when not compared)."""
    if now is None or before is None:
        return ""
    return fmt.signed(round(now - before, digits) if digits else now - before, lang, digits)


def _num(value: int, lang: str) -> str:
    return fmt.number(value, lang)


def _money(minor: int, lang: str) -> str:
    return fmt.money(minor, lang, compact=True)


def person(name: str, width: int = 11) -> str:
    """A person's name for a table: as it is, else the first name and the initial of the
    last one ("Anna S."), else abbreviated by rule."""
    if len(name) <= width:
        return name
    words = name.split()
    if len(words) > 1:
        brief = f"{words[0]} {words[-1][0]}."
        if len(brief) <= width:
            return brief
    return fmt.abbreviate(name, width)


def _stage(stage: StageInfo, lang: str) -> str:
    return ("★" if stage.is_key else "") + stage.short_label(lang)


@dataclass
class Body:
    """A report's message body: prose before the table, the table (<pre>), prose after."""

    before: list[str] = field(default_factory=list)
    table: str = ""
    after: list[str] = field(default_factory=list)


def _compared(span: Any, lang: str) -> str:
    return t("funnel.compare.to", lang, when=fmt.span(span.first_day, span.last_day, lang))


# --- the report text ----------------------------------------------------------------------


def _snapshot(r: SnapshotFunnel, lang: str) -> Body:
    body = Body()
    if not r.count:
        body.before.append(t("funnel.snapshot.none", lang))
    else:
        body.before.append(
            t(
                "funnel.snapshot.head",
                lang,
                count=_num(r.count, lang),
                money=_money(r.amount, lang),
                weighted=_money(r.weighted, lang),
            )
        )
        unit, amounts = fmt.money_column([s.amount for s in r.stages] + [r.amount], lang)
        body.table = table(
            t("funnel.col.stage", lang),
            [_stage(s.stage, lang) for s in r.stages] + [t("funnel.col.total", lang)],
            [
                Column(
                    t("funnel.col.deals", lang),
                    [_num(s.count, lang) for s in r.stages] + [_num(r.count, lang)],
                ),
                Column(unit, amounts),
                Column(
                    t("funnel.col.stuck", lang),
                    [_num(s.stuck, lang) for s in r.stages] + [_num(r.stuck, lang)],
                ),
            ],
        )
        body.after.append(t("funnel.snapshot.stuck", lang, days=r.stuck_days))
    if r.frozen:
        body.after.append(
            t(
                "funnel.snapshot.frozen",
                lang,
                count=_num(r.frozen, lang),
                money=_money(r.frozen_amount, lang),
            )
        )
    return body


def _happened(r: PeriodFunnel, lang: str) -> str:
    h = r.happened
    if not h.won and not h.refused:
        return t("funnel.happened.none", lang)
    return t(
        "funnel.happened",
        lang,
        won=_num(h.won, lang),
        won_money=_money(h.won_amount, lang),
        lost=_num(h.refused, lang),
        lost_money=_money(h.refused_amount, lang),
    )


def _period(r: PeriodFunnel, lang: str) -> Body:
    body = Body()
    before = r.previous
    if not r.cohort:
        body.before.append(t("funnel.period.none", lang))
    else:
        body.before.append(t("funnel.period.head", lang, cohort=_num(r.cohort, lang)))
        prev = {s.stage.id: s.reached for s in before.steps} if before else {}
        columns = [
            Column(t("funnel.col.reached", lang), [_num(s.reached, lang) for s in r.steps]),
            Column(
                t("funnel.col.step", lang),
                [fmt.percent(s.conversion, lang) if i else "" for i, s in enumerate(r.steps)],
            ),
        ]
        if before is not None:
            columns.append(
                Column(
                    t("funnel.col.change", lang),
                    [change(s.reached, prev.get(s.stage.id, 0), lang) for s in r.steps],
                )
            )
        body.table = table(
            t("funnel.col.stage", lang), [_stage(s.stage, lang) for s in r.steps], columns
        )
        if r.won:
            body.after.append(
                t(
                    "funnel.period.won",
                    lang,
                    won=_num(r.won, lang),
                    rate=fmt.percent(r.conversion, lang),
                    money=_money(r.won_amount, lang),
                )
            )
        else:
            body.after.append(t("funnel.period.won_none", lang))
        refused = r.lost + r.frozen
        body.after.append(
            t("funnel.period.rest", lang, lost=_num(refused, lang), open=_num(r.open, lang))
        )
        for s in r.key_steps:
            if s.reached:
                body.after.append(
                    t(
                        "funnel.period.key",
                        lang,
                        stage=s.stage.label(lang),
                        rate=fmt.percent(s.win_rate, lang),
                    )
                )
    if before is not None:
        body.after.append(
            _compared(before.range, lang)
            + " "
            + t(
                "funnel.compare.funnel",
                lang,
                cohort=_num(before.cohort, lang),
                won=_num(before.won, lang),
            )
        )
    body.after += [
        "",
        "<b>" + escape(t("funnel.happened.title", lang)) + "</b>",
        _happened(r, lang),
    ]
    return body


def _losses(r: LossReport, lang: str) -> Body:
    body = Body()
    basis = "came_in" if r.came_in else "happened"
    prev = (
        {row.reason.id if row.reason else None: row.count for row in r.previous.rows}
        if r.previous
        else None
    )
    if not r.rows:
        body.before.append(t(f"funnel.losses.none.{basis}", lang))
    else:
        body.before.append(
            t(
                f"funnel.losses.head.{basis}",
                lang,
                count=_num(r.count, lang),
                money=_money(r.amount, lang),
            )
        )
        unit, amounts = fmt.money_column([row.amount for row in r.rows], lang)
        columns = [
            Column(t("funnel.col.count", lang), [_num(row.count, lang) for row in r.rows]),
            Column(unit, amounts),
        ]
        if prev is not None:
            columns.append(
                Column(
                    t("funnel.col.change", lang),
                    [
                        change(row.count, prev.get(row.reason.id if row.reason else None, 0), lang)
                        for row in r.rows
                    ],
                )
            )
        names = [
            row.reason.label(lang) if row.reason else t("funnel.no_reason", lang) for row in r.rows
        ]
        share = [fmt.percent(row.count / r.count, lang) for row in r.rows]
        columns.append(Column(t("funnel.col.share", lang), share))  # the first to go
        body.table = table(t("funnel.col.reason", lang), names, columns, name_min=11)
        frozen = sum(row.frozen for row in r.rows)
        if frozen:
            body.after.append(t("funnel.losses.frozen", lang, count=_num(frozen, lang)))
    if r.previous is not None:
        body.after.append(
            _compared(r.previous.range, lang)
            + " "
            + t(
                "funnel.compare.losses",
                lang,
                count=_num(r.previous.count, lang),
                money=_money(r.previous.amount, lang),
            )
        )
    return body


def _managers(r: ManagerReport, lang: str) -> Body:
    body = Body()
    ranked = [row for row in r.rows if row.manager_id is not None]
    nobody = next((row for row in r.rows if row.manager_id is None), None)
    prev = {row.manager_id: row.won for row in r.previous.rows} if r.previous else None
    if not any(row.deals or row.leads for row in r.rows):
        body.before.append(t("funnel.managers.none", lang))
        return body
    body.before.append(t("funnel.managers.head", lang))
    unit, amounts = fmt.money_column([row.won_amount for row in ranked], lang)
    columns = [
        Column(t("funnel.col.won", lang), [_num(row.won, lang) for row in ranked]),
        Column(unit, amounts),
    ]
    if prev is not None:
        columns.append(
            Column(
                t("funnel.col.change", lang),
                [change(row.won, prev.get(row.manager_id, 0), lang) for row in ranked],
            )
        )
    conversion = [fmt.percent(row.conversion, lang) for row in ranked]
    columns.append(Column(t("funnel.col.conv", lang), conversion))  # the first to go
    names = [f"{i}. {person(row.name or '')}" for i, row in enumerate(ranked, start=1)]
    body.table = table(t("funnel.col.manager", lang), names, columns, name_min=12)
    if r.previous is not None:
        body.after.append(
            _compared(r.previous.range, lang) + " " + t("funnel.compare.manager", lang)
        )
    if nobody is not None and (nobody.deals or nobody.leads):
        body.after.append(
            t(
                "funnel.managers.nobody",
                lang,
                deals=_num(nobody.deals, lang),
                won=_num(nobody.won, lang),
            )
        )
    body.after += ["", "<b>" + escape(t("funnel.managers.leads_title", lang)) + "</b>"]
    for i, row in enumerate(ranked, start=1):
        if not row.leads and not row.overdue_tasks:
            continue
        response = (
            t("funnel.managers.no_response", lang)
            if row.median_response_seconds is None
            else _duration(row.median_response_seconds, lang)
        )
        body.after.append(
            t(
                "funnel.managers.row",
                lang,
                n=i,
                name=row.name or "",
                leads=_num(row.leads, lang),
                processed=_num(row.leads_processed, lang),
                response=response,
                overdue=_num(row.overdue_tasks, lang),
            )
        )
    return body


def _days(seconds: float | None, lang: str) -> str:
    """Days with one decimal at most (a compact table cell); — when there is nothing."""
    return fmt.NONE if seconds is None else fmt.number(seconds / 86400, lang, 1)


def _velocity(r: VelocityReport, lang: str) -> Body:
    body = Body()
    before = {s.stage.id: s for s in r.previous.stages} if r.previous else None

    def days(value: float | None) -> str:
        return fmt.NONE if value is None else fmt.number(value, lang, 1)

    if not any(s.stays for s in r.stages) and not r.cycle.won:
        body.before.append(t("funnel.velocity.none", lang))
    else:
        body.before.append(t("funnel.velocity.head", lang))
        columns = [
            Column(t("funnel.col.median", lang), [_days(s.median_seconds, lang) for s in r.stages]),
            Column(t("funnel.col.p75", lang), [_days(s.p75_seconds, lang) for s in r.stages]),
            Column(t("funnel.col.stays", lang), [_num(s.stays, lang) for s in r.stages]),
        ]
        if before is not None:
            cells = []
            for s in r.stages:
                old = before.get(s.stage.id)
                if old is None or s.median_seconds is None or old.median_seconds is None:
                    cells.append("")
                else:
                    cells.append(
                        change(s.median_seconds / 86400, old.median_seconds / 86400, lang, 1)
                    )
            columns.append(Column(t("funnel.col.change", lang), cells))
        body.table = table(
            t("funnel.col.stage", lang), [_stage(s.stage, lang) for s in r.stages], columns
        )
    cycle = r.cycle
    if cycle.won:
        body.after.append(
            t(
                "funnel.velocity.cycle",
                lang,
                median=days(cycle.median_days),
                p75=days(cycle.p75_days),
                won=_num(cycle.won, lang),
            )
        )
        for row in r.by_manager:
            if row.manager_id is None:
                continue
            body.after.append(
                t(
                    "funnel.velocity.manager",
                    lang,
                    name=row.name or "",
                    median=days(row.median_days),
                    won=_num(row.won, lang),
                )
            )
    else:
        body.after.append(t("funnel.velocity.cycle_none", lang))
    if r.previous is not None:
        prev = r.previous.cycle
        if (
            prev.won
            and cycle.won
            and prev.median_days is not None
            and cycle.median_days is not None
        ):
            text = t(
                "funnel.compare.velocity",
                lang,
                median=days(prev.median_days),
                change=change(cycle.median_days, prev.median_days, lang, 1),
            )
        else:
            text = t("funnel.compare.velocity_none", lang)
        body.after.append(_compared(r.previous.range, lang) + " " + text)
    return body


def _duration(seconds: float, lang: str) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return t("funnel.dur.m", lang, m=minutes)
    if minutes < 48 * 60:
        return t("funnel.dur.h", lang, h=minutes // 60)
    return t("funnel.dur.d", lang, d=minutes // 1440)


# --- plans (issue 26) ------------------------------------------------------------------------


def _done_of(won: int, plan: int | None, lang: str) -> str:
    return f"{_num(won, lang)}/{fmt.NONE if plan is None else _num(plan, lang)}"


def plan_pace(row: PlanRow | DigestPlan | PlanBehind, lang: str) -> str:
    """What is needed per remaining working day, in words."""
    count, money = row.pace_count, row.pace_amount
    if count is None and money is None:
        return t("funnel.plan.pace.none", lang)
    if not count and not money:
        return t("funnel.plan.pace.done", lang)
    parts = []
    if count:
        parts.append(tn("funnel.plan.pace.sales", count, lang, count=_num(count, lang)))
    if money:
        parts.append(_money(money, lang))
    return t("funnel.plan.pace", lang, what=" + ".join(parts))


def plan_done(
    won: int, money: int, plan_count: int | None, plan_money: int | None, lang: str
) -> str:
    """ "1/4 sales, 300K RUB of 1M RUB": done against the plan."""
    return t(
        "digest.plan.done",
        lang,
        sales=_done_of(won, plan_count, lang),
        money=_money(money, lang),
        plan=_money(plan_money, lang) if plan_money else fmt.NONE,
    )


def plan_line(row: PlanRow | DigestPlan, name: str, lang: str) -> str:
    """A person's (or the company's) forecast and pace, as a sentence."""
    return t(
        "funnel.plan.row",
        lang,
        name=("⚠️ " if row.behind else "") + name,
        weighted=_money(row.weighted, lang),
        count=_num(row.forecast, lang),
        pace=plan_pace(row, lang),
    )


def _plan(r: PlanReport, lang: str) -> Body:
    body = Body()
    rows: list[tuple[str, PlanRow]] = []
    if r.company is not None:
        rows.append((t("funnel.plan.company", lang), r.company))
    rows += [(person(row.name or ""), row) for row in r.rows]
    body.before.append(
        t("funnel.plan.days", lang, past=r.days_past, left=r.days_left, total=r.days_total)
    )
    if not any(row.has_plan for _, row in rows):
        body.before.append(t("funnel.plan.none", lang))
    if not rows:
        return body
    unit, money = fmt.money_column(
        [row.won_amount for _, row in rows] + [row.plan_amount for _, row in rows], lang
    )
    half = len(rows)
    body.table = table(
        t("funnel.col.who", lang),
        [name for name, _ in rows],
        [
            Column(
                t("funnel.col.sales", lang),
                [_done_of(row.won, row.plan_count, lang) for _, row in rows],
            ),
            Column(unit, [f"{money[i]}/{money[half + i]}" for i in range(half)]),
            Column("%", [fmt.percent(row.progress, lang) for _, row in rows]),
        ],
    )
    body.after += ["", t("funnel.plan.forecast_head", lang)]
    body.after += [plan_line(row, name, lang) for name, row in rows]
    return body


def report_body(screen: ReportScreen, lang: str) -> Body:
    report = screen.report
    if isinstance(report, PlanReport):
        return _plan(report, lang)
    if isinstance(report, SnapshotFunnel):
        return _snapshot(report, lang)
    if isinstance(report, PeriodFunnel):
        return _period(report, lang)
    if isinstance(report, LossReport):
        return _losses(report, lang)
    if isinstance(report, VelocityReport):
        return _velocity(report, lang)
    return _managers(report, lang)


def table_text(screen: ReportScreen, lang: str) -> str:
    """What goes inside <pre> (plain text, not escaped); empty when there is no table."""
    return report_body(screen, lang).table


def period_words(report: Any, lang: str, tz: tzinfo) -> str:
    """The screen's when: the day for the snapshot ("as of Dec 7"), else the period."""
    if isinstance(report, SnapshotFunnel):
        today = report.as_of.astimezone(tz).date()
        return t("funnel.as_of", lang, date=fmt.span(today, today, lang))
    if isinstance(report, PlanReport):
        return fmt.month(report.month, lang)
    span = report.range
    return fmt.span(span.first_day, span.last_day, lang)


def screen_text(screen: ReportScreen, lang: str, tz: tzinfo) -> str:
    """The /funnel message: heading (which report, what it counts), when and whose, prose,
    the table in <pre> (phone width), prose."""
    report = screen.report
    kind = screen.kind.value
    if isinstance(report, LossReport) and report.came_in:
        kind = "losses_came_in"
    title = t(f"funnel.title.{kind}", lang, pipeline=screen.pipeline.label(lang))
    who = screen.manager_name or t("funnel.everyone", lang)
    body = report_body(screen, lang)
    parts = [
        f"<b>{escape(title)}</b>",
        f"{escape(period_words(report, lang, tz))} · {escape(who)}",
        "",
    ]
    parts += [escape(line) for line in body.before]
    if body.table:
        parts.append(f"<pre>{escape(body.table)}</pre>")
    parts += [line if line.startswith("<b>") else escape(line) for line in body.after]
    if screen.team is not None:
        team = screen.team
        lines = team_lines(team.response, team.norms, team.limit_minutes, team.day, lang)
        parts += [escape(line) for line in lines]
    return "\n".join(parts).strip() + fulfilment_text(screen.fulfilment, lang)


def fulfilment_text(report: FulfilmentReport | None, lang: str) -> str:
    """Order fulfilment's figures under its funnel: lead time, crews' load and claims."""
    if report is None:
        return ""

    def days(value: float | None) -> str:
        return "—" if value is None else fmt.number(value, lang, 1)

    head = t(
        "funnel.fulfilment.lead_time",
        lang,
        median=days(report.median_days),
        p75=days(report.p75_days),
        orders=report.orders,
    )
    crews = [
        t(
            "funnel.fulfilment.crew",
            lang,
            name=escape(r.name),
            jobs=r.jobs,
            done=r.done,
            claims=r.claims,
        )
        for r in report.crews
    ]
    return "\n" + "\n".join([escape(head), *crews])


def export_words(lang: str) -> dict[str, str]:
    """The words of an /export file (sheet names, column titles, outcomes) in the reader's
    language: what services.reports.export asks for, from the catalog (``export.<code>``)."""
    return {code: t(f"export.{code}", lang) for code in export.WORDS}


# --- keyboards ----------------------------------------------------------------------------


def _mark(text: str, chosen: bool) -> str:
    return f"• {text}" if chosen else text


def screen_keyboard(screen: ReportScreen, cb: FunnelCb, lang: str) -> InlineKeyboardMarkup:
    state = cb.model_copy(update={"menu": 0})
    if cb.menu == 1 and screen.sees_all:
        return _manager_picker(screen, state, lang)
    views = [
        button(
            _mark(t(f"funnel.report.{r.value}", lang), r == cb.report),
            state.model_copy(update={"report": r}),
        )
        for r in FunnelReport
    ]
    rows: list[list[InlineKeyboardButton]] = [views[:3], views[3:]]  # a thumb's width each
    rows += drill_rows(screen, cb, lang)
    if cb.report not in (FunnelReport.SNAPSHOT, FunnelReport.PLAN):  # plan: this month
        periods = [
            button(
                _mark(t(f"funnel.when.{p.value}", lang), p == cb.period),
                state.model_copy(update={"period": p}),
            )
            for p in FunnelPeriod
        ]
        rows += [periods[:2], periods[2:]]
    if len(screen.pipelines) > 1 and cb.report != FunnelReport.PLAN:  # plan: the sales
        rows.append(
            [
                button(
                    _mark(p.label(lang), p.id == screen.pipeline.id),
                    state.model_copy(update={"pipeline_id": p.id}),
                )
                for p in screen.pipelines
            ]
        )
    if screen.sees_all:
        who = screen.manager_name or t("funnel.everyone", lang)
        rows.append(
            [button(t("funnel.btn.manager", lang, who=who), state.model_copy(update={"menu": 1}))]
        )
    rows.append(
        [
            button(
                t("funnel.btn.export", lang),
                ExportCb(
                    pipeline_id=screen.pipeline.id,
                    period=cb.period,
                    manager_id=screen.filters.manager_id or 0,
                ),
            )
        ]
    )
    return InlineKeyboardMarkup(inline_keyboard=rows)


def drill_rows(screen: ReportScreen, cb: FunnelCb, lang: str) -> list[list[InlineKeyboardButton]]:
    """A button per number of the report that is a set of deals (services/reports/drill.py)."""
    report = screen.report
    base = DrillCb(
        what=DrillWhat.STAGE,
        pipeline_id=screen.pipeline.id,
        period=cb.period,
        manager_id=screen.filters.manager_id or 0,
    )
    found: list[tuple[str, DrillWhat, int]] = []
    if isinstance(report, SnapshotFunnel):
        found = [
            (f"{s.stage.label(lang)} · {s.count}", DrillWhat.STAGE, s.stage.id)
            for s in report.stages
            if s.count
        ]
    elif isinstance(report, PeriodFunnel):
        found = [
            (f"{s.stage.label(lang)} · {s.reached}", DrillWhat.REACHED, s.stage.id)
            for s in report.steps
            if s.reached
        ]
    elif isinstance(report, LossReport):
        found = [
            (f"{row.reason.label(lang)} · {row.count}", DrillWhat.REASON, row.reason.id)
            for row in report.rows
            if row.reason is not None and row.count
        ]
    elif isinstance(report, ManagerReport | VelocityReport):
        people = report.rows if isinstance(report, ManagerReport) else report.by_manager
        found = [
            (f"{row.name} · {row.won}", DrillWhat.WON, row.manager_id)
            for row in people
            if row.manager_id is not None and row.won
        ]
    buttons = [
        button("🔎 " + fmt.short(label, 26), base.model_copy(update={"what": what, "key": key}))
        for label, what, key in found
    ]
    return [buttons[i : i + 2] for i in range(0, len(buttons), 2)]


def drill_text(page: DrillPage, lang: str) -> str:
    """The heading of a drill-down list: which number it is, with the report's filters."""
    if page.kind is DrillKind.STAGE and page.stage is not None:
        what = t("funnel.drill.stage", lang, stage=page.stage.label(lang))
    elif page.kind is DrillKind.REACHED and page.stage is not None:
        what = t("funnel.drill.reached", lang, stage=page.stage.label(lang))
    elif page.kind is DrillKind.REASON and page.reason is not None:
        what = t("funnel.drill.reason", lang, reason=page.reason.label(lang))
    else:
        what = t("funnel.drill.won", lang, name=page.manager_name or "")
    if page.range is not None:
        span = page.range
        when = fmt.period(span.first_day, span.last_day, lang)
    else:
        when = t("funnel.drill.now", lang)
    deals = page.deals
    lines = [
        f"🔎 <b>{escape(what)}</b>",
        f"{escape(page.pipeline.label(lang))} · {escape(when)}",
        t("funnel.drill.count", lang, total=deals.total, page=deals.page + 1, pages=deals.pages),
    ]
    if not deals.items:
        lines.append(t("funnel.empty", lang))
    return "\n".join(lines)


def drill_keyboard(page: DrillPage, cb: DrillCb, lang: str) -> InlineKeyboardMarkup:
    rows = [
        [button(list_button(item, lang), DealCb(action=DealAction.OPEN, deal_id=item.id))]
        for item in page.deals.items
    ]
    nav = []
    here = cb.model_copy(update={"edit": 1})
    if page.deals.page > 0:
        nav.append(button("◀", here.model_copy(update={"page": page.deals.page - 1})))
    if page.deals.page + 1 < page.deals.pages:
        nav.append(button("▶", here.model_copy(update={"page": page.deals.page + 1})))
    if nav:
        rows.append(nav)
    return InlineKeyboardMarkup(inline_keyboard=rows)


def _manager_picker(screen: ReportScreen, state: FunnelCb, lang: str) -> InlineKeyboardMarkup:
    current = screen.filters.manager_id or 0
    choices = [(0, t("funnel.everyone", lang)), *screen.managers]
    buttons = [
        button(_mark(name, mid == current), state.model_copy(update={"manager_id": mid}))
        for mid, name in choices
    ]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    rows.append([button(t("funnel.btn.back", lang), state)])
    return InlineKeyboardMarkup(inline_keyboard=rows)


# --- the digest (an outbox item's payload: services.outbox.payloads.Digest) ---------------


def _deal_line(item: DigestDeal, lang: str, refusal: bool) -> str:
    parts = [f"#{item.id} {escape(item.title)[:60]}", fmt.compact_money(item.amount, lang)]
    if refusal:
        reason = label(lang, item.reason, item.reason_en) if item.reason else None
        reason = reason or t("funnel.no_reason", lang)
        parts.append(("⏸ " if item.frozen else "") + escape(reason))
    if item.manager:
        parts.append(escape(item.manager))
    return "  • " + " · ".join(parts)


def _counted(key: str, count: int, amount: int, lang: str, **params: Any) -> str:
    """ "Won: 3, 1.2M RUB"; none: in words ("No refusals"); no money: the count alone
    (not "Refusals: 2, 0 RUB" for refusals nobody put an amount on)."""
    if not count:
        return t(f"{key}.none", lang, **params)
    if not amount:
        return t(f"{key}.count", lang, count=count, **params)
    return t(key, lang, count=count, money=fmt.money(amount, lang, compact=True), **params)


def digest_lines(p: Digest, lang: str, tz: tzinfo) -> list[str]:
    """The digest message: headline, what changed since the previous one, overdue tasks."""
    lines = [
        t(f"digest.header.{p.kind}", lang),
        t(
            "digest.window",
            lang,
            since=fmt.when_short(p.since, tz, lang),
            until=fmt.when_short(p.until, tz, lang),
        ),
    ]
    if p.moment is not None and p.until - p.moment > _LATE:
        lines.append(t("digest.late", lang, when=fmt.when_short(p.moment, tz, lang)))
    pipeline = label(lang, p.pipeline, p.pipeline_en)
    snapshot = (
        t(
            "digest.snapshot",
            lang,
            pipeline=escape(pipeline),
            count=p.active,
            money=fmt.money(p.active_amount, lang, compact=True),
            weighted=fmt.money(p.weighted, lang, compact=True),
        )
        if p.active
        else t("digest.snapshot.none", lang, pipeline=escape(pipeline))
    )
    lines += [
        "",
        snapshot,
        "",
        t("digest.leads", lang, count=p.leads),
    ]
    for lead_id, name, source in p.lead_names:
        lines.append(f"  • #{lead_id} {escape(name)[:60]} · {t(f'source.{source}', lang)}")
    lines.append(_counted("digest.won", p.won, p.won_amount, lang))
    lines += [_deal_line(d, lang, False) for d in p.wins]
    lines.append(_counted("digest.lost", p.lost, p.lost_amount, lang))
    for r in p.reasons:
        reason = label(lang, r.name, r.name_en) if r.name else t("funnel.no_reason", lang)
        lines.append(_counted("digest.reason", r.count, r.amount, lang, reason=escape(reason)))
    lines += [_deal_line(d, lang, True) for d in p.losses]
    lines.append(
        t(
            "digest.compare" if p.prev_won_amount else "digest.compare.no_money",
            lang,
            leads=change(p.leads, p.prev_leads, lang),
            won=change(p.won, p.prev_won, lang),
            lost=change(p.lost, p.prev_lost, lang),
            money=fmt.money(p.prev_won_amount, lang, compact=True),
        )
    )
    if p.cycle_won and p.cycle_median_days is not None:
        median, before = p.cycle_median_days, p.prev_cycle_median_days
        lines.append(
            t(
                "digest.speed",
                lang,
                median=fmt.number(median, lang, 1),
                won=p.cycle_won,
                change=change(median, before, lang, 1) or fmt.NONE,
            )
        )
    stale = p.stale_by_manager
    if stale:
        lines.append(t("digest.stale", lang, count=sum(n for _, n in stale)))
        for manager, n in stale[:10]:
            lines.append(f"  • {escape(manager or t('funnel.no_manager', lang))}: {n}")
    if p.plan_month is not None and p.plan:
        lines += [
            "",
            t("digest.plan", lang, month=fmt.month(p.plan_month, lang), left=p.plan_days_left),
        ]
        for row in p.plan:
            name = escape(row.name) if row.name is not None else t("funnel.plan.company", lang)
            done = plan_done(row.won, row.won_amount, row.plan_count, row.plan_amount, lang)
            lines.append(f"  • {done}; " + plan_line(row, name, lang))
    lines.append(t("digest.overdue", lang, count=p.overdue, new=p.overdue_new))
    for task in p.overdue_tasks:
        who = escape(task.assignee or "—")
        due = fmt.when_short(task.due_at, tz, lang)
        lines.append(f"  • {escape(task.title)[:60]} · {who} · {due}")
    team = team_lines(p.response, p.norms, p.response_limit, p.norms_day, lang)
    lines += [escape(line) for line in team]
    return lines
