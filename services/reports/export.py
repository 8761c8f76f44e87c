"""``/export``: deals and their stage history as an XLSX workbook (or the deals as CSV).

Rows are streamed from the database (``yield_per``) into openpyxl's write-only workbook,
which keeps each sheet in a temporary file rather than in memory; only the finished file
is held as bytes. Two sheets: one row per deal, and one row per stage change. A manager
gets their own deals whatever the filter says (as for the reports); measurers are refused.
``/export csv`` gives the deals sheet as CSV (UTF-8 with a BOM, ``;``-separated, every
field quoted), for tools that do not read XLSX.

Words and numbers: the sheet names, column titles and outcomes are the caller's words, in
its reader's language (the front-end's catalog, ``export.*``; see WORDS), so this module
writes none. Amounts and moments stay typed cells (a number with a money format, a local
datetime): the spreadsheet shows them in its own reader's locale. The CSV keeps the forms
tools read back (``1234.50``, ``2026-01-14 12:00:00``).

Formula injection (OWASP "CSV Injection"): names, titles, phones and comments come from
people, the import and the public intake API. A text that a spreadsheet could read as a
formula (it starts with ``=``, ``+``, ``-``, ``@``, a tab or a CR) is written as text: in
the XLSX its cell is typed as a string (``t="inlineStr"``, never ``<f>``), the text kept
as it was; in the CSV it gets a leading ``'`` (the guidance's escape: Excel and LibreOffice
show it as text) and every field is quoted.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.dto import label
from services.errors import ValidationError
from services.permissions import Actor
from services.reports.analytics import Period, ReportFilter, resolve_period, scope_manager

if TYPE_CHECKING:  # openpyxl is imported on the first export, not at start
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from storage.repositories.export import DealScope, ExportNames
from storage.uow import UnitOfWork

Progress = Callable[[int, int], Awaitable[None] | None]
"""Called as rows are written: (rows written so far, rows in all)."""

MAX_DEALS = 100_000  # a Telegram document is at most 50 MB: ask for a shorter period
MONEY_FORMAT = "#,##0.00"

# The columns of the two sheets, by code; their titles are the caller's words.
DEAL_COLUMNS = (
    "id", "deal", "pipeline", "stage", "outcome", "manager", "client", "phone", "company",
    "amount", "created", "closed", "loss_reason", "installments", "source_deal",
)  # fmt: skip
CHANGE_COLUMNS = ("deal_id", "when", "from_stage", "to_stage", "who", "reason", "comment")
KINDS = ("active", "won", "lost", "frozen")
WORDS = (
    "sheet.deals",
    "sheet.history",
    *(f"col.{c}" for c in (*DEAL_COLUMNS, *CHANGE_COLUMNS)),
    *(f"kind.{k}" for k in KINDS),
    "yes",
)
"""Every word the file needs, by code: the caller passes them in the reader's language
(the front-end's catalog, ``export.<code>``), so no word of the file is written here."""

WIDTHS: dict[str, tuple[int, ...]] = {
    "deal": (8, 40, 18, 24, 10, 22, 24, 16, 24, 14, 18, 18, 24, 10, 10)
}
WIDTHS["change"] = (10, 18, 24, 24, 22, 24, 40)


@dataclass(frozen=True)
class ExportFilter:
    """Which deals: created in the period (None: any time), in one pipeline (None: all)."""

    pipeline_id: int | None = None
    period: Period | None = None
    start: date | None = None  # CUSTOM
    end: date | None = None  # CUSTOM
    manager_id: int | None = None
    tz: str = "UTC"


@dataclass(frozen=True)
class _Names:
    """The configured names in the reader's language (services.dto.label), and people."""

    pipelines: dict[int, str]
    stages: dict[int, tuple[str, str]]  # id -> (name, kind)
    employees: dict[int, str]
    reasons: dict[int, str]

    @classmethod
    def of(cls, names: ExportNames, lang: str) -> _Names:
        return cls(
            pipelines={i: label(lang, *pair) for i, pair in names.pipelines.items()},
            stages={i: (label(lang, n, en), kind) for i, (n, en, kind) in names.stages.items()},
            employees=names.employees,
            reasons={i: label(lang, *pair) for i, pair in names.reasons.items()},
        )


@dataclass(frozen=True)
class _Plan:
    words: Mapping[str, str]
    zone: ZoneInfo
    scope: DealScope
    total: int  # rows to write (deals, plus changes when they are exported)
    names: _Names


async def _plan(
    uow: UnitOfWork,
    actor: Actor,
    filters: ExportFilter,
    words: Mapping[str, str],
    lang: str,
    max_deals: int,
    *,
    history: bool,
) -> _Plan:
    manager_id = scope_manager(actor, filters.manager_id)
    if missing := [code for code in WORDS if code not in words]:
        raise ValueError(f"export words missing: {missing}")  # a programming error
    try:
        zone = ZoneInfo(filters.tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError("tz", "unknown") from exc
    scope = _scope(filters, manager_id, uow)
    repo = uow.repo.export
    deals_total = await repo.deal_count(scope)
    if deals_total > max_deals:
        raise ValidationError("export", "too_many", count=deals_total, limit=max_deals)
    changes_total = await repo.change_count(scope) if history else 0
    names = _Names.of(await repo.names(), lang)
    return _Plan(words, zone, scope, deals_total + changes_total, names)


def _reporter(total: int, progress: Progress | None) -> Callable[[int], Awaitable[None]]:
    done = 0

    async def advance(rows: int) -> None:
        nonlocal done
        done += rows
        if progress is not None:
            pending = progress(done, total)
            if pending is not None:
                await pending

    return advance


async def _deal_rows(uow: UnitOfWork, plan: _Plan, chunk: int) -> AsyncIterator[list[list[Any]]]:
    """The deals sheet, a database partition at a time (amounts in major units)."""
    names, words = plan.names, plan.words
    async for part in uow.repo.export.deal_rows(plan.scope, chunk):
        rows = []
        for row in part:
            (deal_id, title, pipeline_id, stage_id, manager, amount, created, closed) = row[:8]
            reason_id, installments, parent, contact, phone, company = row[8:]
            stage_name, kind = names.stages.get(stage_id, ("?", "active"))
            rows.append(
                [
                    deal_id,
                    title,
                    names.pipelines.get(pipeline_id, "?"),
                    stage_name,
                    words.get(f"kind.{kind}", kind),
                    names.employees.get(manager) if manager else None,
                    contact,
                    phone,
                    company,
                    None if amount is None else amount / 100,
                    _local(created, plan.zone),
                    _local(closed, plan.zone),
                    names.reasons.get(reason_id) if reason_id else None,
                    words["yes"] if installments else None,
                    parent,
                ]
            )
        yield rows


async def _change_rows(uow: UnitOfWork, plan: _Plan, chunk: int) -> AsyncIterator[list[list[Any]]]:
    names = plan.names
    async for part in uow.repo.export.change_rows(plan.scope, chunk):
        yield [
            [
                deal_id,
                _local(at, plan.zone),
                names.stages[from_id][0] if from_id in names.stages else None,
                names.stages.get(to_id, ("?", ""))[0],
                names.employees.get(actor_id) if actor_id else None,
                names.reasons.get(reason_id) if reason_id else None,
                comment,
            ]
            for deal_id, at, from_id, to_id, actor_id, reason_id, comment in part
        ]


async def export_deals(
    uow: UnitOfWork,
    actor: Actor,
    filters: ExportFilter,
    words: Mapping[str, str],
    progress: Progress | None = None,
    *,
    kind: str = "xlsx",
    lang: str = "ru",
    chunk: int = 2000,
    max_deals: int = MAX_DEALS,
) -> bytes:
    """The file's bytes: "xlsx" (deals and their history) or "csv" (the deals, UTF-8 with
    a BOM so Excel reads it as UTF-8), its sheet names, column titles and outcomes in
    ``words`` (a word per code of WORDS), the configured names (pipelines, stages, loss
    reasons) in ``lang``. ValidationError("export", "too_many") above ``max_deals``."""
    plan = await _plan(uow, actor, filters, words, lang, max_deals, history=kind != "csv")
    advance = _reporter(plan.total, progress)
    if kind == "csv":
        return await _csv(uow, plan, chunk, advance)
    return await _xlsx(uow, plan, chunk, advance)


async def export_deals_xlsx(
    uow: UnitOfWork,
    actor: Actor,
    filters: ExportFilter,
    words: Mapping[str, str],
    progress: Progress | None = None,
    **kw: Any,
) -> bytes:
    return await export_deals(uow, actor, filters, words, progress, kind="xlsx", **kw)


async def _xlsx(
    uow: UnitOfWork, plan: _Plan, chunk: int, advance: Callable[[int], Awaitable[None]]
) -> bytes:
    from openpyxl import Workbook

    words = plan.words
    book = Workbook(write_only=True)
    deals_sheet = _sheet(book, words["sheet.deals"], _titles(words, DEAL_COLUMNS), WIDTHS["deal"])
    changes_sheet = _sheet(
        book, words["sheet.history"], _titles(words, CHANGE_COLUMNS), WIDTHS["change"]
    )
    money = DEAL_AMOUNT_COLUMN
    async for rows in _deal_rows(uow, plan, chunk):
        for row in rows:
            row[money] = _money(deals_sheet, row[money])
            deals_sheet.append(_xlsx_row(deals_sheet, row))
        await advance(len(rows))
    async for rows in _change_rows(uow, plan, chunk):
        for row in rows:
            changes_sheet.append(_xlsx_row(changes_sheet, row))
        await advance(len(rows))
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


async def _csv(
    uow: UnitOfWork, plan: _Plan, chunk: int, advance: Callable[[int], Awaitable[None]]
) -> bytes:
    text = io.StringIO(newline="")
    writer = csv.writer(text, delimiter=";", quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow([csv_field(h) for h in _titles(plan.words, DEAL_COLUMNS)])
    async for rows in _deal_rows(uow, plan, chunk):
        writer.writerows([csv_field(v) for v in row] for row in rows)
        await advance(len(rows))
    return ("\ufeff" + text.getvalue()).encode("utf-8")


# What a spreadsheet may take for the start of a formula (OWASP CSV Injection), and "#",
# which openpyxl would otherwise take for an error value (#N/A) instead of text.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
DEAL_AMOUNT_COLUMN = DEAL_COLUMNS.index("amount")


def formula_like(value: object) -> bool:
    """Could a spreadsheet read this cell as a formula?"""
    return isinstance(value, str) and value.startswith(FORMULA_START)


def csv_field(value: object) -> str:
    """One CSV field: text that could be read as a formula gets a leading ' (the text
    itself is kept after it); numbers with a dot, times as YYYY-MM-DD HH:MM:SS."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, float):
        return f"{value:.2f}"
    text = str(value)
    return "'" + text if formula_like(text) else text


def _xlsx_row(sheet: WriteOnlyWorksheet, row: list[Any]) -> list[Any]:
    """Text cells that openpyxl would store as a formula (or an error value) are typed as
    strings: the cell shows the text, nothing is evaluated."""
    from openpyxl.cell import WriteOnlyCell

    for i, value in enumerate(row):
        if isinstance(value, str) and value.startswith((*FORMULA_START, "#")):
            cell = WriteOnlyCell(sheet, value=value)
            cell.data_type = "s"
            row[i] = cell
    return row


def _titles(words: Mapping[str, str], columns: Sequence[str]) -> list[str]:
    return [words[f"col.{c}"] for c in columns]


def _scope(filters: ExportFilter, manager_id: int | None, uow: UnitOfWork) -> DealScope:
    created = None
    if filters.period is not None:
        span = resolve_period(
            ReportFilter(
                period=filters.period, start=filters.start, end=filters.end, tz=filters.tz
            ),
            uow.clock.now(),
        )
        created = (span.start, span.end)
    return DealScope(filters.pipeline_id, manager_id, created)


def _sheet(
    book: Workbook, title: str, headers: Sequence[str], widths: Sequence[int]
) -> WriteOnlyWorksheet:
    sheet = book.create_sheet(title)
    for column, width in zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ", widths, strict=False):
        sheet.column_dimensions[column].width = width
    sheet.freeze_panes = "A2"
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    bold = Font(bold=True)
    row = []
    for header in headers:
        cell = WriteOnlyCell(sheet, value=header)
        cell.font = bold
        row.append(cell)
    sheet.append(row)
    return sheet


def _money(sheet: WriteOnlyWorksheet, amount: float | None) -> WriteOnlyCell | None:
    if amount is None:
        return None
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(sheet, value=amount)
    cell.number_format = MONEY_FORMAT
    return cell


def _local(moment: datetime | None, zone: ZoneInfo) -> datetime | None:
    """Excel has no time zones: the company's local time, without tzinfo."""
    return None if moment is None else moment.astimezone(zone).replace(tzinfo=None)
