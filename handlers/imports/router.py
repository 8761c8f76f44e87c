"""Spreadsheet import: a document → the proposed column mapping → a dry-run report →
Import, with a progress message edited as it goes → a summary.

Every step is one service call (services.imports); the upload and its mapping live in the
database, so a tap may reach any worker. Rights (leaders and admins) and the job's owner
are checked by the service; its errors go to the error router.
"""

from __future__ import annotations

import asyncio
import logging
import time
from html import escape

from aiogram import F, Router
from aiogram.enums import ChatAction
from aiogram.exceptions import TelegramAPIError
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from handlers.ui import fmt, screen
from handlers.ui.callbacks import ImportAction, ImportCb
from handlers.ui.context import Ctx
from handlers.ui.filters import staff_router
from handlers.ui.i18n import has, t
from services.errors import ValidationError
from services.intake import imports
from services.intake.imports import Column, ImportView, Report, RowIssue, Target

log = logging.getLogger(__name__)

# Progress edits: Telegram allows about one edit a second per chat. Edit when 2 s or
# 5,000 rows have passed since the last edit, and never twice within a second.
PROGRESS_SECONDS = 2.0
PROGRESS_ROWS = 5000
PROGRESS_MIN_GAP = 1.0
WIDTH = 40  # characters a report line may take
HEADER_WIDTH = 16


# --- texts --------------------------------------------------------------------------------


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _target(target: Target | str, lang: str) -> str:
    return t(f"import.target.{target}", lang)


def _header(column: Column, lang: str) -> str:
    return _cut(column.header or t("import.column_n", lang, n=column.index + 1), HEADER_WIDTH)


def _file(view: ImportView, lang: str) -> str:
    return t("import.file", lang, name=escape(_cut(view.filename, WIDTH - 3)))


def _sample(column: Column, lang: str, width: int) -> str:
    return t("import.sample", lang, sample=escape(_cut(column.sample, width)))


def _column_label(column: Column, lang: str) -> str:
    target = _target(column.target, lang)
    return t("import.column", lang, n=column.index + 1, header=_header(column, lang), target=target)


def mapping_text(view: ImportView, lang: str) -> str:
    lines = [
        _file(view, lang),
        t("import.rows", lang, n=fmt.number(view.rows, lang)),
        t("import.mapping.title", lang),
    ]
    for column in view.columns:
        lines.append(escape(_column_label(column, lang)))
        if column.sample and column.target != Target.SKIP:
            lines.append("   " + _sample(column, lang, WIDTH - 6))
    lines.append("")
    if view.missing:
        lines.append("⚠️ " + t("import.mapping.missing", lang))
    lines.append(t("import.mapping.hint", lang))
    return "\n".join(lines)


def mapping_keyboard(view: ImportView, lang: str) -> InlineKeyboardMarkup:
    rows = [
        [_button(_column_label(c, lang), ImportAction.COLUMN, view.id, col=c.index)]
        for c in view.columns
    ]
    last = []
    if not view.missing:
        last.append(_button(t("import.btn.check", lang), ImportAction.CHECK, view.id))
    last.append(_button(t("import.btn.cancel", lang), ImportAction.CANCEL, view.id))
    rows.append(last)
    return InlineKeyboardMarkup(inline_keyboard=rows)


def targets_text(view: ImportView, column: Column, lang: str) -> str:
    lines = [
        _file(view, lang),
        escape(t("import.pick", lang, n=column.index + 1, header=_header(column, lang))),
    ]
    if column.sample:
        lines.append(_sample(column, lang, WIDTH - 3))
    return "\n".join(lines)


def targets_keyboard(view: ImportView, column: Column, lang: str) -> InlineKeyboardMarkup:
    buttons = []
    for index, target in enumerate(imports.TARGETS):
        label = t(f"import.pick.{target}", lang)
        if target == column.target:
            label = t("import.pick.current", lang, label=label)
        buttons.append(_button(label, ImportAction.SET, view.id, col=column.index, to=index))
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    rows.append([_button(t("import.btn.back", lang), ImportAction.MAPPING, view.id)])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def reason(issue: RowIssue, lang: str) -> str:
    for key in (f"import.reason.{issue.field}.{issue.code}", f"import.reason.{issue.code}"):
        if has(key, lang) or has(key):
            return t(key, lang, field=_target(issue.field, lang))
    return t("import.reason.any", lang, field=_target(issue.field, lang))


def report_text(view: ImportView, report: Report, lang: str) -> str:
    lines = [
        _file(view, lang),
        t("import.report.title", lang),
        t("import.report.rows", lang, n=fmt.number(report.rows, lang)),
        t("import.report.to_import", lang, n=fmt.number(report.to_import, lang)),
        t("import.report.invalid", lang, n=fmt.number(report.invalid, lang)),
        t("import.report.duplicates", lang, n=fmt.number(report.duplicates, lang)),
        t("import.report.rule", lang),
    ]
    if report.issues:
        lines += ["", t("import.report.issues", lang)]
        for issue in report.issues:
            line = t("import.report.row", lang, row=issue.row) + " " + reason(issue, lang)
            lines.append(escape(_cut(line, WIDTH)))
        if report.invalid > len(report.issues):
            more = report.invalid - len(report.issues)
            lines.append(t("import.report.more", lang, n=fmt.number(more, lang)))
    if report.dupes:
        lines += ["", t("import.report.dupes", lang)]
        for dupe in report.dupes:
            if dupe.of_row is None:
                what = t("import.report.dupe_client", lang)
            else:
                what = t("import.report.dupe_row", lang, row=dupe.of_row)
            lines.append(escape(t("import.report.row", lang, row=dupe.row) + " " + what))
        if report.duplicates > len(report.dupes):
            more = report.duplicates - len(report.dupes)
            lines.append(t("import.report.more", lang, n=fmt.number(more, lang)))
    if not report.to_import:
        lines += ["", t("import.report.nothing", lang)]
    return "\n".join(lines)


def report_keyboard(view: ImportView, report: Report, lang: str) -> InlineKeyboardMarkup:
    first = []
    if report.to_import:
        label = t("import.btn.run", lang, n=fmt.number(report.to_import, lang))
        first.append(_button(label, ImportAction.RUN, view.id))
    first.append(_button(t("import.btn.mapping", lang), ImportAction.MAPPING, view.id))
    cancel = [_button(t("import.btn.cancel", lang), ImportAction.CANCEL, view.id)]
    return InlineKeyboardMarkup(inline_keyboard=[first, cancel])


def summary_text(view: ImportView, lang: str, seconds: float) -> str:
    result = view.result
    assert result is not None
    lines = [
        t("import.done.title", lang),
        _file(view, lang),
        t("import.done.imported", lang, n=fmt.number(result.imported, lang)),
        t("import.done.invalid", lang, n=fmt.number(result.invalid, lang)),
        t("import.done.duplicates", lang, n=fmt.number(result.duplicates, lang)),
    ]
    if result.new_duplicates:
        lines.append(
            t("import.done.new_duplicates", lang, n=fmt.number(result.new_duplicates, lang))
        )
    lines.append(t("import.done.time", lang, s=fmt.number(seconds, lang, 1)))
    return "\n".join(lines)


def _button(
    text: str, action: ImportAction, job: int, col: int = 0, to: int = 0
) -> InlineKeyboardButton:
    cb = ImportCb(action=action, job=job, col=col, to=to)
    return InlineKeyboardButton(text=text, callback_data=cb.pack())


def _column(view: ImportView, index: int) -> Column:
    if not 0 <= index < len(view.columns):
        raise ValidationError("column", "unknown")
    return view.columns[index]


# --- the document ---------------------------------------------------------------------------


async def upload(message: Message, ctx: Ctx) -> None:
    document = message.document
    assert document is not None

    async def read() -> bytes:
        # Called by the service once the right and the file type are checked.
        assert message.bot is not None
        await message.bot.send_chat_action(message.chat.id, ChatAction.TYPING)
        stream = await message.bot.download(document)
        assert stream is not None
        return stream.read()

    view = await imports.upload(
        ctx.uow, ctx.actor, document.file_name or "", document.file_size, read
    )
    await message.answer(
        mapping_text(view, ctx.lang), reply_markup=mapping_keyboard(view, ctx.lang)
    )


# --- mapping ------------------------------------------------------------------------------


async def show_mapping(query: CallbackQuery, callback_data: ImportCb, ctx: Ctx) -> None:
    view = await imports.get(ctx.uow, ctx.actor, callback_data.job)
    await screen.edit(query, mapping_text(view, ctx.lang), mapping_keyboard(view, ctx.lang))


async def pick_target(query: CallbackQuery, callback_data: ImportCb, ctx: Ctx) -> None:
    view = await imports.get(ctx.uow, ctx.actor, callback_data.job)
    column = _column(view, callback_data.col)
    await screen.edit(
        query, targets_text(view, column, ctx.lang), targets_keyboard(view, column, ctx.lang)
    )


async def set_target(query: CallbackQuery, callback_data: ImportCb, ctx: Ctx) -> None:
    cb = callback_data
    view = await imports.set_target(ctx.uow, ctx.actor, cb.job, cb.col, imports.target_of(cb.to))
    await screen.edit(query, mapping_text(view, ctx.lang), mapping_keyboard(view, ctx.lang))


# --- dry run, import, cancel ----------------------------------------------------------------


async def check(query: CallbackQuery, callback_data: ImportCb, ctx: Ctx) -> None:
    view = await imports.dry_run(ctx.uow, ctx.actor, callback_data.job)
    assert view.report is not None
    await screen.edit(
        query,
        report_text(view, view.report, ctx.lang),
        report_keyboard(view, view.report, ctx.lang),
    )


class Progress:
    """`on_progress` for the service: one message, sent when the import starts and edited
    when PROGRESS_SECONDS or PROGRESS_ROWS have passed, never twice within PROGRESS_MIN_GAP.

    The import's transaction is open meanwhile, so it never waits on Telegram: sends and
    edits run as background tasks (a new one only once the last has finished), and a
    failed one (a flood limit, a network hiccup) is skipped — it never aborts the import."""

    def __init__(self, anchor: Message, lang: str) -> None:
        self.anchor = anchor
        self.lang = lang
        self.started = False
        self.message: Message | None = None
        self.pending: asyncio.Task[None] | None = None
        self.last_at = 0.0
        self.last_done = 0

    async def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if self.started:
            if done >= total or (self.pending is not None and not self.pending.done()):
                return  # the summary replaces the last count; one request at a time
            elapsed = now - self.last_at
            due = elapsed >= PROGRESS_SECONDS or done - self.last_done >= PROGRESS_ROWS
            if not due or elapsed < PROGRESS_MIN_GAP:
                return
        self.started = True  # the service accepted the job: show the counter
        self.last_at, self.last_done = now, done
        text = t(
            "import.progress",
            self.lang,
            done=fmt.number(done, self.lang),
            total=fmt.number(total, self.lang),
        )
        self.pending = asyncio.create_task(self._show(text))
        await asyncio.sleep(0)  # let it start: the import's own statements may never yield

    async def _show(self, text: str) -> None:
        try:
            if self.message is None:
                self.message = await self.anchor.answer(text)
            else:
                await self.message.edit_text(text)
        except TelegramAPIError as exc:
            log.warning("import progress update skipped: %s", exc)

    async def finish(self, text: str) -> None:
        """The last word (summary or failure), in place of the counter when possible."""
        if self.pending is not None:
            await self.pending
        if self.message is not None:
            try:
                await self.message.edit_text(text)
                return
            except TelegramAPIError as exc:
                log.warning("import summary edit failed, sending it instead: %s", exc)
        await self.anchor.answer(text)


async def run(query: CallbackQuery, callback_data: ImportCb, ctx: Ctx) -> None:
    if not isinstance(query.message, Message):
        return
    progress = Progress(query.message, ctx.lang)
    started = time.monotonic()
    try:
        view = await imports.run(ctx.uow, ctx.actor, callback_data.job, progress)
    except Exception:
        if progress.started:  # the counter is showing: say that nothing was added
            await progress.finish(t("import.failed", ctx.lang))
        raise
    await progress.finish(summary_text(view, ctx.lang, time.monotonic() - started))
    try:  # the report's buttons are spent (a tap would only hear "already imported")
        await query.message.edit_reply_markup(reply_markup=None)
    except TelegramAPIError as exc:
        log.info("import report keyboard left in place: %s", exc)


async def cancel(query: CallbackQuery, callback_data: ImportCb, ctx: Ctx) -> None:
    view = await imports.cancel(ctx.uow, ctx.actor, callback_data.job)
    text = t("import.cancelled", ctx.lang, name=escape(_cut(view.filename, WIDTH)))
    await screen.edit(query, text, None)


def setup() -> Router:
    """A fresh router for one Dispatcher (its handlers in dispatch order)."""
    router = staff_router("imports")
    router.message.register(upload, F.document)
    router.callback_query.register(show_mapping, ImportCb.filter(F.action == ImportAction.MAPPING))
    router.callback_query.register(pick_target, ImportCb.filter(F.action == ImportAction.COLUMN))
    router.callback_query.register(set_target, ImportCb.filter(F.action == ImportAction.SET))
    router.callback_query.register(check, ImportCb.filter(F.action == ImportAction.CHECK))
    router.callback_query.register(run, ImportCb.filter(F.action == ImportAction.RUN))
    router.callback_query.register(cancel, ImportCb.filter(F.action == ImportAction.CANCEL))
    return router
