"""/funnel and /export.

/funnel (and the main menu's Funnel button) sends two messages: the chart (a photo) and,
under it, the text table with the pickers. A picker tap is one service call
(services.reports.report_screen); the table message is edited in place and the chart's
photo is replaced in place too (editMessageMedia on the photo whose id the buttons carry;
if that photo is gone, a new one is sent and the buttons point at it). Measurers are
refused by the service (PermissionDenied -> the error router's alert).

/export (and the Excel button under a report) builds the XLSX in services.export with a
progress message that is edited as rows are written, then sends the file as a document;
`/export csv` sends the deals as CSV the same way.
"""

from __future__ import annotations

import time
from datetime import tzinfo

from aiogram import F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    Message,
)
from aiogram.utils.callback_answer import CallbackAnswer

from handlers.funnel import plan, render
from handlers.funnel import views as view
from handlers.ui import fmt
from handlers.ui.callbacks import (
    DrillCb,
    ExportCb,
    FunnelCb,
    MenuAction,
    MenuCb,
    PlanAction,
    PlanCb,
)
from handlers.ui.context import Ctx
from handlers.ui.filters import staff_router
from handlers.ui.i18n import t, tn
from handlers.ui.keyboards import with_app
from services.permissions import Action, require
from services.reports import export
from services.reports import screens as reports
from services.reports.analytics import (
    ReportFilter,
)
from services.reports.drill import drill_down
from services.reports.export import ExportFilter
from services.reports.screens import ReportScreen
from storage.uow import UnitOfWorkFactory

EXPORT_CHUNK = 2000  # rows per progress step (tests make it small)
PROGRESS_EVERY = 1.0  # seconds between two edits of the progress message at most


def _filters(cb: FunnelCb | DrillCb, tz: tzinfo) -> ReportFilter:
    return ReportFilter(
        pipeline_id=cb.pipeline_id or None,
        period=view.PERIODS[cb.period],
        manager_id=cb.manager_id or None,
        tz=str(tz),
        compare=isinstance(cb, FunnelCb),  # a drill-down lists this period's deals only
    )


async def _screen(uow_factory: UnitOfWorkFactory, ctx: Ctx, cb: FunnelCb) -> ReportScreen:
    """A report is a long read: its own read-only unit of work (on SQLite: no write lock,
    and the queries run off the event loop's thread, storage/sqlite_driver.py)."""
    kind, filters = view.REPORTS[cb.report], _filters(cb, ctx.tz)
    async with uow_factory.read_only() as uow:
        return await reports.report_screen(uow, ctx.actor, kind, filters)


def _photo(png: bytes, screen: ReportScreen) -> BufferedInputFile:
    return BufferedInputFile(png, filename=f"{screen.kind.value}.png")


def _keyboard(
    screen: ReportScreen, cb: FunnelCb, lang: str, web_app_url: str | None
) -> InlineKeyboardMarkup:
    """The pickers, and the Mini App's dashboard under them when there is one."""
    return with_app(view.screen_keyboard(screen, cb, lang), web_app_url, lang, "dashboard")


async def _open(
    message: Message, ctx: Ctx, uow_factory: UnitOfWorkFactory, web_app_url: str | None
) -> None:
    cb = FunnelCb()
    screen = await _screen(uow_factory, ctx, cb)
    png = await render.chart(screen, ctx.lang, ctx.tz)
    photo = await message.answer_photo(_photo(png, screen))
    cb = cb.model_copy(update={"photo": photo.message_id})
    await message.answer(
        view.screen_text(screen, ctx.lang, ctx.tz),
        reply_markup=_keyboard(screen, cb, ctx.lang, web_app_url),
    )


async def funnel_command(
    message: Message, ctx: Ctx, uow_factory: UnitOfWorkFactory, web_app_url: str | None = None
) -> None:
    await _open(message, ctx, uow_factory, web_app_url)


async def funnel_menu(
    query: CallbackQuery,
    ctx: Ctx,
    uow_factory: UnitOfWorkFactory,
    web_app_url: str | None = None,
) -> None:
    if isinstance(query.message, Message):
        await _open(query.message, ctx, uow_factory, web_app_url)


async def funnel_pick(
    query: CallbackQuery,
    callback_data: FunnelCb,
    ctx: Ctx,
    uow_factory: UnitOfWorkFactory,
    web_app_url: str | None = None,
) -> None:
    cb, lang = callback_data, ctx.lang
    screen = await _screen(uow_factory, ctx, cb)
    message = query.message
    if not isinstance(message, Message):
        return
    if cb.menu != 1:  # the manager picker only changes the buttons: the chart stays
        png = await render.chart(screen, lang, ctx.tz)
        cb = cb.model_copy(update={"photo": await _replace_photo(message, cb.photo, png, screen)})
    markup = (
        _keyboard(screen, cb, lang, web_app_url)
        if cb.menu != 1
        else view.screen_keyboard(screen, cb, lang)
    )
    try:
        await message.edit_text(view.screen_text(screen, lang, ctx.tz), reply_markup=markup)
    except TelegramBadRequest as exc:
        if "not modified" not in exc.message:
            raise


async def _replace_photo(message: Message, photo_id: int, png: bytes, screen: ReportScreen) -> int:
    """Put the new chart in place of the old one; returns the chart's message id."""
    if photo_id and message.bot is not None:
        try:
            await message.bot.edit_message_media(
                media=InputMediaPhoto(media=_photo(png, screen)),
                chat_id=message.chat.id,
                message_id=photo_id,
            )
            return photo_id
        except TelegramBadRequest:
            pass  # deleted, too old, not ours: send a fresh one
    sent = await message.answer_photo(_photo(png, screen))
    return sent.message_id


async def drill(
    query: CallbackQuery, callback_data: DrillCb, ctx: Ctx, uow_factory: UnitOfWorkFactory
) -> None:
    """The deals behind a tapped number: a new message under the report; its page buttons
    edit that message."""
    cb, lang = callback_data, ctx.lang
    filters, what = _filters(cb, ctx.tz), view.DRILLS[cb.what]
    async with uow_factory.read_only() as uow:
        page = await drill_down(uow, ctx.actor, what, filters, cb.key, cb.page)
    message = query.message
    if not isinstance(message, Message):
        return
    text, markup = view.drill_text(page, lang), view.drill_keyboard(page, cb, lang)
    if cb.edit:
        try:
            await message.edit_text(text, reply_markup=markup)
        except TelegramBadRequest as exc:
            if "not modified" not in exc.message:
                raise
    else:
        await message.answer(text, reply_markup=markup)


# --- export -------------------------------------------------------------------------------


async def _export(
    message: Message,
    ctx: Ctx,
    uow_factory: UnitOfWorkFactory,
    filters: ExportFilter,
    kind: str = "xlsx",
) -> None:
    """A long read: its own read-only unit of work, so on SQLite it holds no write lock
    while rows are written and progress edits go out to Telegram."""
    actor, lang = ctx.actor, ctx.lang
    require(actor, Action.REPORTS_OWN)  # before the progress message: measurers get nothing
    status = await message.answer(t("export.progress.start", lang))
    last = {"at": time.monotonic(), "percent": 0}

    async def progress(done: int, total: int) -> None:
        pct = 100 * done // total if total else 100
        now = time.monotonic()
        if pct >= 100 or pct - last["percent"] < 5 or now - last["at"] < PROGRESS_EVERY:
            return
        last.update(at=now, percent=pct)
        await status.edit_text(
            tn(
                "export.progress",
                total,
                lang,
                percent=pct,
                done=fmt.number(done, lang),
                total=fmt.number(total, lang),
            )
        )

    try:
        async with uow_factory.read_only() as uow:
            words = view.export_words(lang)
            data = await export.export_deals(
                uow, actor, filters, words, progress, kind=kind, lang=lang, chunk=EXPORT_CHUNK
            )
    except Exception:
        await status.delete()  # the error router says what went wrong
        raise
    today = uow_factory.clock.now().date().isoformat()
    await message.answer_document(
        BufferedInputFile(data, filename=f"voronka-deals-{today}.{kind}"),
        caption=t("export.caption", lang),
    )
    await status.edit_text(t("export.done", lang))


async def export_command(
    message: Message, command: CommandObject, ctx: Ctx, uow_factory: UnitOfWorkFactory
) -> None:
    """/export: the XLSX; /export csv: the deals as CSV."""
    kind = "csv" if (command.args or "").strip().lower() == "csv" else "xlsx"
    await _export(message, ctx, uow_factory, ExportFilter(tz=ctx.zone), kind)


async def export_button(
    query: CallbackQuery,
    callback_data: ExportCb,
    ctx: Ctx,
    uow_factory: UnitOfWorkFactory,
    callback_answer: CallbackAnswer,
) -> None:
    cb = callback_data
    filters = ExportFilter(
        pipeline_id=cb.pipeline_id or None,
        period=view.PERIODS[cb.period],
        manager_id=cb.manager_id or None,
        tz=ctx.zone,
    )
    require(ctx.actor, Action.REPORTS_OWN)
    # A big export outlives a callback query's life: answer the tap now, not after.
    callback_answer.disabled = True
    await query.answer()
    if isinstance(query.message, Message):
        await _export(query.message, ctx, uow_factory, filters)


def setup() -> Router:
    """A fresh router for one Dispatcher (its handlers in dispatch order)."""
    router = staff_router("funnel")
    router.message.register(funnel_command, Command("funnel"))
    router.callback_query.register(funnel_menu, MenuCb.filter(F.action == MenuAction.FUNNEL))
    router.callback_query.register(funnel_pick, FunnelCb.filter())
    router.callback_query.register(drill, DrillCb.filter())
    router.message.register(plan.plan_command, Command("plan"))
    router.callback_query.register(plan.plan_month, PlanCb.filter(F.action == PlanAction.MONTH))
    router.callback_query.register(plan.plan_who, PlanCb.filter(F.action == PlanAction.WHO))
    router.callback_query.register(plan.plan_save, PlanCb.filter(F.action == PlanAction.SAVE))
    router.callback_query.register(plan.plan_change, PlanCb.filter(F.action == PlanAction.CHANGE))
    router.message.register(plan.plan_typed, plan.PlanInput.numbers, F.text)
    router.message.register(export_command, Command("export"))
    router.callback_query.register(export_button, ExportCb.filter())
    return router
