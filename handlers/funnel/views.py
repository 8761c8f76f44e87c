"""/funnel texts and keyboards, and the digest message (rendered by bot/notifier.py).

Tables are monospace (<pre>) and at most WIDTH characters a line, so they fit a phone
screen without wrapping: names are cut with an ellipsis, money is compact in the locale's
own words (handlers.ui.fmt.compact_money).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
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
from handlers.ui.i18n import t
from handlers.ui.keyboards import button
from services.dto import label
from services.outbox.payloads import Digest, DigestDeal
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

WIDTH = 40
_LATE = timedelta(minutes=10)  # a digest sent this long after its time says so

REPORTS: dict[FunnelReport, ReportKind] = {
    FunnelReport.SNAPSHOT: ReportKind.SNAPSHOT,
    FunnelReport.PERIOD: ReportKind.PERIOD,
    FunnelReport.LOSSES: ReportKind.LOSSES,
    FunnelReport.MANAGERS: ReportKind.MANAGERS,
    FunnelReport.VELOCITY: ReportKind.VELOCITY,
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


def _cell(text: str, width: int, right: bool) -> str:
    if len(text) > width:
        text = text[: width - 1] + "…"
    return text.rjust(width) if right else text.ljust(width)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], widths: Sequence[int]) -> str:
    """Columns of fixed widths (the first left-aligned, the others right-aligned)."""
    lines = []
    for row in [list(headers), *rows]:
        cells = [_cell(str(v), w, i > 0) for i, (v, w) in enumerate(zip(row, widths, strict=True))]
        lines.append(" ".join(cells).rstrip())
    return "\n".join(lines)


def wrap(text: str) -> list[str]:
    return textwrap.wrap(text, WIDTH) or [""]


# --- the report text ----------------------------------------------------------------------


def _snapshot(r: SnapshotFunnel, lang: str) -> tuple[str, list[str]]:
    rows = [
        [
            ("★" if s.stage.is_key else "") + s.stage.label(lang),
            str(s.count),
            fmt.compact_money(s.amount, lang),
            str(s.stuck),
        ]
        for s in r.stages
    ]
    rows.append(
        [t("funnel.col.total", lang), str(r.count), fmt.compact_money(r.amount, lang), str(r.stuck)]
    )
    head = [t(f"funnel.col.{c}", lang) for c in ("stage", "deals", "amount", "stuck")]
    notes = [t("funnel.snapshot.forecast", lang, money=fmt.compact_money(r.weighted, lang))]
    notes.append(t("funnel.snapshot.stuck", lang, days=r.stuck_days))
    if r.frozen:
        notes.append(
            t(
                "funnel.snapshot.frozen",
                lang,
                count=r.frozen,
                money=fmt.compact_money(r.frozen_amount, lang),
            )
        )
    return table(head, rows, (17, 5, 8, 6)), notes


def change(now: float | None, before: float | None) -> str:
    """The change against the previous period: +3, −2, 0 (empty when not compared)."""
    if now is None or before is None:
        return ""
    diff = now - before
    if diff == 0:
        return "0"
    text = f"{abs(diff):g}" if isinstance(diff, float) else str(abs(diff))
    return ("+" if diff > 0 else "−") + text


def _compare_note(span_of: Any, lang: str) -> str:
    when = fmt.period(span_of.first_day, span_of.last_day, lang)
    return t("funnel.compare.period", lang, when=when)


def _period(r: PeriodFunnel, lang: str) -> tuple[str, list[str]]:
    before = r.previous
    prev_steps = {s.stage.id: s for s in before.steps} if before else {}
    rows = [
        [
            ("★" if s.stage.is_key else "") + s.stage.label(lang),
            str(s.reached),
            change(s.reached, prev_steps[s.stage.id].reached if s.stage.id in prev_steps else None),
            fmt.percent(s.conversion, lang) if i else "",
            fmt.compact_money(s.reached_amount, lang),
        ]
        for i, s in enumerate(r.steps)
    ]
    head = [t(f"funnel.col.{c}", lang) for c in ("stage", "deals", "change", "step", "amount")]
    notes = [
        t(
            "funnel.period.summary",
            lang,
            cohort=r.cohort,
            won=r.won,
            rate=fmt.percent(r.conversion, lang),
        ),
        t("funnel.period.won", lang, money=fmt.compact_money(r.won_amount, lang)),
        t("funnel.period.lost", lang, count=r.lost, money=fmt.compact_money(r.lost_amount, lang)),
    ]
    for s in r.key_steps:
        if s.reached:
            notes.append(
                t(
                    "funnel.period.key",
                    lang,
                    stage=s.stage.label(lang),
                    rate=fmt.percent(s.win_rate, lang),
                )
            )
    if before is not None:
        notes += [
            _compare_note(before.range, lang),
            t(
                "funnel.compare.funnel",
                lang,
                cohort=before.cohort,
                won=before.won,
                rate=fmt.percent(before.conversion, lang),
                money=fmt.compact_money(before.won_amount, lang),
                lost=before.lost,
            ),
        ]
    return table(head, rows, (14, 5, 4, 5, 8)), notes


def _losses(r: LossReport, lang: str) -> tuple[str, list[str]]:
    rows = [
        [
            ("⏸" if row.frozen else "")
            + (row.reason.label(lang) if row.reason else t("funnel.no_reason", lang)),
            str(row.count),
            fmt.percent(row.count / r.count if r.count else None, lang),
            fmt.compact_money(row.amount, lang),
        ]
        for row in r.rows
    ]
    head = [t(f"funnel.col.{c}", lang) for c in ("reason", "count", "share", "amount")]
    notes = [t("funnel.losses.total", lang, count=r.count, money=fmt.compact_money(r.amount, lang))]
    if not r.rows:
        notes = [t("funnel.empty", lang)]
    if r.previous is not None:
        prev = r.previous
        notes += [
            _compare_note(prev.range, lang),
            t(
                "funnel.compare.losses",
                lang,
                count=prev.count,
                change=change(r.count, prev.count) or "0",
                money=fmt.compact_money(prev.amount, lang),
            ),
        ]
    return table(head, rows, (18, 4, 5, 8)), notes


def _managers(r: ManagerReport, lang: str) -> tuple[str, list[str]]:
    rows = [
        [
            f"{i}. {row.name or t('funnel.no_manager', lang)}",
            str(row.won),
            fmt.compact_money(row.won_amount, lang),
            fmt.percent(row.conversion, lang),
        ]
        for i, row in enumerate(r.rows, start=1)
    ]
    head = [t(f"funnel.col.{c}", lang) for c in ("manager", "won", "amount", "conv")]
    notes = [t("funnel.managers.legend", lang)] if r.rows else [t("funnel.empty", lang)]
    prev_won = {row.manager_id: row.won for row in r.previous.rows} if r.previous else None
    if prev_won is not None and r.previous is not None:
        notes.append(_compare_note(r.previous.range, lang))
    for i, row in enumerate(r.rows, start=1):
        if prev_won is not None:
            before = prev_won.get(row.manager_id, 0)
            notes.append(
                t("funnel.compare.manager", lang, n=i, won=before, change=change(row.won, before))
            )
        response = (
            "—"
            if row.median_response_seconds is None
            else _duration(row.median_response_seconds, lang)
        )
        notes.append(
            t(
                "funnel.managers.row",
                lang,
                n=i,
                leads=row.leads,
                processed=row.leads_processed,
                response=response,
                overdue=row.overdue_tasks,
            )
        )
    return table(head, rows, (18, 4, 8, 5)), notes


def _days(seconds: float | None, lang: str) -> str:
    """Days with one decimal at most (a compact table cell); — when there is nothing."""
    return fmt.NONE if seconds is None else fmt.number(seconds / 86400, lang, 1)


def _velocity(r: VelocityReport, lang: str) -> tuple[str, list[str]]:
    before = {s.stage.id: s for s in r.previous.stages} if r.previous else {}
    rows = []
    for s in r.stages:
        old = before.get(s.stage.id)
        diff = ""
        if old is not None and s.median_seconds is not None and old.median_seconds is not None:
            diff = change(round(s.median_seconds / 86400, 1), round(old.median_seconds / 86400, 1))
        rows.append(
            [
                ("★" if s.stage.is_key else "") + s.stage.label(lang),
                _days(s.median_seconds, lang),
                _days(s.p75_seconds, lang),
                str(s.stays),
                diff,
            ]
        )
    head = [t(f"funnel.col.{c}", lang) for c in ("stage", "median", "p75", "stays", "change")]
    cycle = r.cycle

    def days(value: float | None) -> str:
        return fmt.NONE if value is None else fmt.number(value, lang, 1)

    notes = [
        t("funnel.velocity.legend", lang),
        t(
            "funnel.velocity.cycle",
            lang,
            median=days(cycle.median_days),
            p75=days(cycle.p75_days),
            won=cycle.won,
        ),
    ]
    for row in r.by_manager:
        notes.append(
            t(
                "funnel.velocity.manager",
                lang,
                name=row.name or t("funnel.no_manager", lang),
                median=days(row.median_days),
                won=row.won,
            )
        )
    if r.previous is not None:
        prev = r.previous.cycle
        notes += [
            _compare_note(r.previous.range, lang),
            t(
                "funnel.compare.velocity",
                lang,
                median=days(prev.median_days),
                won=prev.won,
                change=change(cycle.median_days, prev.median_days),
            ),
        ]
    return table(head, rows, (15, 5, 5, 5, 6)), notes


def _duration(seconds: float, lang: str) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return t("funnel.dur.m", lang, m=minutes)
    if minutes < 48 * 60:
        return t("funnel.dur.h", lang, h=minutes // 60)
    return t("funnel.dur.d", lang, d=minutes // 1440)


def table_text(screen: ReportScreen, lang: str) -> str:
    """What goes inside <pre> (plain text, not escaped)."""
    report = screen.report
    if isinstance(report, SnapshotFunnel):
        body, notes = _snapshot(report, lang)
    elif isinstance(report, PeriodFunnel):
        body, notes = _period(report, lang)
    elif isinstance(report, LossReport):
        body, notes = _losses(report, lang)
    elif isinstance(report, VelocityReport):
        body, notes = _velocity(report, lang)
    else:
        body, notes = _managers(report, lang)
    lines = [body, ""]
    for note in notes:
        lines.extend(wrap(note))
    return "\n".join(lines)


def screen_text(screen: ReportScreen, lang: str, tz: tzinfo) -> str:
    report = screen.report
    title = t(f"funnel.title.{screen.kind.value}", lang, pipeline=screen.pipeline.label(lang))
    who = screen.manager_name or t("funnel.everyone", lang)
    if isinstance(report, SnapshotFunnel):
        when = t("funnel.as_of", lang, date=fmt.day(report.as_of.astimezone(tz), lang))
    else:
        span = report.range
        when = fmt.period(span.first_day, span.last_day, lang)
    return (
        f"<b>{escape(title)}</b>\n{escape(when)} · {escape(who)}\n"
        f"<pre>{escape(table_text(screen, lang))}</pre>"
    ) + fulfilment_text(screen.fulfilment, lang)


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
    rows: list[list[InlineKeyboardButton]] = [
        [
            button(
                _mark(t(f"funnel.report.{r.value}", lang), r == cb.report),
                state.model_copy(update={"report": r}),
            )
            for r in FunnelReport
        ]
    ]
    rows += drill_rows(screen, cb, lang)
    if cb.report != FunnelReport.SNAPSHOT:
        periods = [
            button(
                _mark(t(f"funnel.when.{p.value}", lang), p == cb.period),
                state.model_copy(update={"period": p}),
            )
            for p in FunnelPeriod
        ]
        rows += [periods[:2], periods[2:]]
    if len(screen.pipelines) > 1:
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
    lines += [
        "",
        t(
            "digest.snapshot",
            lang,
            pipeline=escape(pipeline),
            count=p.active,
            money=fmt.money(p.active_amount, lang, compact=True),
            weighted=fmt.money(p.weighted, lang, compact=True),
        ),
        "",
        t("digest.leads", lang, count=p.leads),
    ]
    for lead_id, name, source in p.lead_names:
        lines.append(f"  • #{lead_id} {escape(name)[:60]} · {t(f'source.{source}', lang)}")
    lines.append(
        t("digest.won", lang, count=p.won, money=fmt.money(p.won_amount, lang, compact=True))
    )
    lines += [_deal_line(d, lang, False) for d in p.wins]
    lines.append(
        t("digest.lost", lang, count=p.lost, money=fmt.money(p.lost_amount, lang, compact=True))
    )
    for r in p.reasons:
        reason = label(lang, r.name, r.name_en) if r.name else t("funnel.no_reason", lang)
        lines.append(
            t(
                "digest.reason",
                lang,
                reason=escape(reason),
                count=r.count,
                money=fmt.money(r.amount, lang, compact=True),
            )
        )
    lines += [_deal_line(d, lang, True) for d in p.losses]
    lines.append(
        t(
            "digest.compare",
            lang,
            leads=change(p.leads, p.prev_leads),
            won=change(p.won, p.prev_won),
            lost=change(p.lost, p.prev_lost),
            money=fmt.compact_money(p.prev_won_amount, lang),
        )
    )
    if p.cycle_won and p.cycle_median_days is not None:
        median, before = p.cycle_median_days, p.prev_cycle_median_days
        lines.append(
            t(
                "digest.speed",
                lang,
                median=f"{median:g}",
                won=p.cycle_won,
                change=change(median, before) or "—",
            )
        )
    stale = p.stale_by_manager
    if stale:
        lines.append(t("digest.stale", lang, count=sum(n for _, n in stale)))
        for manager, n in stale[:10]:
            lines.append(f"  • {escape(manager or t('funnel.no_manager', lang))}: {n}")
    lines.append(t("digest.overdue", lang, count=p.overdue, new=p.overdue_new))
    for task in p.overdue_tasks:
        who = escape(task.assignee or "—")
        due = fmt.when_short(task.due_at, tz, lang)
        lines.append(f"  • {escape(task.title)[:60]} · {who} · {due}")
    return lines
