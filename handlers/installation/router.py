"""Installation jobs on the phone: the head's crew choice and quality check, the installer's
job card — Accept, On my way, the checklist, photos before and after, Done (or part of it
done and the rest tomorrow), the client's signature.

Every handler: read the callback/state -> one service call (services/work/installation.py)
-> render (handlers/installation/views.py). The ids in callback data are client input: the
service loads the job and checks that it is this installer's own (another crew's job, a
manager or a measurer tapping an installer's button is refused by the error router).
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from handlers.installation import views as view
from handlers.ui import screen
from handlers.ui.callbacks import ClaimCb, JobAction, JobCb
from handlers.ui.context import Ctx
from handlers.ui.deal_card import open_button
from handlers.ui.error_text import error_text
from handlers.ui.filters import staff_router
from services.errors import ValidationError
from services.work import installation
from services.work.installation import PHASES, JobCard


class JobInput(StatesGroup):
    photos = State()  # before/after photos of a job, until "Back to the job"
    signature = State()  # the client's signature, as a picture or a file


async def _show(query: CallbackQuery, ctx: Ctx, card: JobCard, notice: str | None = None) -> None:
    await screen.edit(
        query, view.job_text(card, ctx.lang, ctx.tz, notice), view.job_keyboard(card, ctx.lang)
    )


async def open_job(query: CallbackQuery, callback_data: JobCb, ctx: Ctx) -> None:
    card = await installation.view(ctx.uow, ctx.actor, callback_data.task_id)
    msg = screen.message_of(query)
    text = view.job_text(card, ctx.lang, ctx.tz)
    if msg is not None:
        await msg.answer(text, reply_markup=view.job_keyboard(card, ctx.lang))


async def step(query: CallbackQuery, callback_data: JobCb, ctx: Ctx) -> None:
    """Accept, On my way, a checklist tick: one service call, the card redrawn."""
    task_id, action = callback_data.task_id, callback_data.action
    if action == JobAction.TICK:
        card = await installation.tick(ctx.uow, ctx.actor, task_id, callback_data.arg)
    else:
        name = "accept" if action == JobAction.ACCEPT else "on_my_way"
        card = await installation.step(ctx.uow, ctx.actor, task_id, name)
    await _show(query, ctx, card)


async def photos_ask(query: CallbackQuery, callback_data: JobCb, ctx: Ctx) -> None:
    phase = PHASES[min(callback_data.arg, len(PHASES) - 1)]
    await installation.view(ctx.uow, ctx.actor, callback_data.task_id, own=True)
    await screen.ask(
        query,
        ctx,
        JobInput.photos,
        ctx.t(f"job.ask.photos_{phase}"),
        data={"task_id": callback_data.task_id, "phase": phase},
        markup=view.back_keyboard(callback_data.task_id, ctx.lang),
    )


def _file_of(message: Message) -> tuple[str, str, str | None] | None:
    """(media type, file id, unique id) of a photo or a document message."""
    if message.photo:
        p = message.photo[-1]  # the largest size
        return "photo", p.file_id, p.file_unique_id
    if message.document:
        return "document", message.document.file_id, message.document.file_unique_id
    return None


async def photo_input(message: Message, ctx: Ctx) -> None:
    data = await ctx.state.get_data()
    task_id = int(data["task_id"])
    got = _file_of(message)
    if got is None or got[0] != "photo":
        await message.answer(error_text(ValidationError("phase", "photo_only"), ctx.lang))
        return
    card = await installation.add_photo(
        ctx.uow, ctx.actor, task_id, str(data["phase"]), got[1], got[2]
    )
    phase = str(data["phase"])
    await message.answer(
        ctx.t(f"job.photos.{phase}", got=card.photos[phase], needed=card.photos_needed[phase]),
        reply_markup=view.back_keyboard(task_id, ctx.lang),
    )


async def done(
    query: CallbackQuery, callback_data: JobCb, ctx: Ctx, web_app_url: str | None = None
) -> None:
    card = await installation.finish(ctx.uow, ctx.actor, callback_data.task_id)
    await screen.edit(query, view.job_text(card, ctx.lang, ctx.tz, ctx.t("job.done")), None)
    msg = screen.message_of(query)
    if msg is not None:
        await msg.answer(
            ctx.t("job.sign.offer"), reply_markup=view.sign_keyboard(card, ctx.lang, web_app_url)
        )


async def partial(query: CallbackQuery, callback_data: JobCb, ctx: Ctx) -> None:
    """Items to leave for another day: toggles kept in the FSM data (per job)."""
    card = await installation.view(ctx.uow, ctx.actor, callback_data.task_id, own=True)
    data = await ctx.state.get_data()
    left = set(data.get("left") or ()) if data.get("left_task") == card.task_id else set()
    if callback_data.action == JobAction.LEAVE and callback_data.arg < len(card.items):
        left ^= {callback_data.arg}
    await ctx.state.update_data(left=sorted(left), left_task=card.task_id)
    msg = screen.message_of(query)
    if msg is not None:
        await msg.edit_reply_markup(reply_markup=view.partial_keyboard(card, left, ctx.lang))


async def reschedule(query: CallbackQuery, callback_data: JobCb, ctx: Ctx) -> None:
    data = await ctx.state.get_data()
    card = await installation.view(ctx.uow, ctx.actor, callback_data.task_id, own=True)
    chosen = data.get("left") or () if data.get("left_task") == card.task_id else ()
    left = [card.items[i] for i in chosen if i < len(card.items)]
    card = await installation.finish(ctx.uow, ctx.actor, card.task_id, left)
    await ctx.state.update_data(left=[], left_task=None)
    notice = ctx.t("job.rescheduled", count=len(left)) if left else ctx.t("job.done")
    await screen.edit(query, view.job_text(card, ctx.lang, ctx.tz, notice), None)


async def sign_ask(query: CallbackQuery, callback_data: JobCb, ctx: Ctx) -> None:
    await installation.view(ctx.uow, ctx.actor, callback_data.task_id, own=True)
    await screen.ask(
        query,
        ctx,
        JobInput.signature,
        ctx.t("job.ask.signature"),
        data={"task_id": callback_data.task_id},
    )


async def signature_input(message: Message, ctx: Ctx) -> None:
    data = await ctx.state.get_data()
    got = _file_of(message)
    if got is None:
        await message.answer(error_text(ValidationError("attachments", "invalid"), ctx.lang))
        return
    await installation.sign_off(ctx.uow, ctx.actor, int(data["task_id"]), got[1], got[0])
    await ctx.state.clear()
    await message.answer(ctx.t("job.sign.saved"))


async def crew(query: CallbackQuery, callback_data: JobCb, ctx: Ctx) -> None:
    card = await installation.assign_crew(
        ctx.uow, ctx.actor, callback_data.task_id, callback_data.arg
    )
    notice = ctx.t("job.crew.done", name=card.installer_name or "")
    await screen.edit(query, view.job_text(card, ctx.lang, ctx.tz, notice), None)


async def check(query: CallbackQuery, callback_data: JobCb, ctx: Ctx) -> None:
    accepted = callback_data.arg == 1
    await installation.quality_check(ctx.uow, ctx.actor, callback_data.task_id, accepted)
    notice = ctx.t("job.check.accepted" if accepted else "job.check.claim")
    msg = screen.message_of(query)
    if msg is not None:
        await msg.edit_text(notice, reply_markup=None)


async def claim(query: CallbackQuery, callback_data: ClaimCb, ctx: Ctx) -> None:
    """A claim on an accepted order (its manager, a leader): a linked deal in Claims."""
    claim_id = await installation.open_claim(ctx.uow, ctx.actor, callback_data.deal_id)
    msg = screen.message_of(query)
    if msg is not None:
        await msg.answer(
            ctx.t("job.claim.opened", id=claim_id),
            reply_markup=InlineKeyboardMarkup(inline_keyboard=[[open_button(claim_id, ctx.lang)]]),
        )


STEPS = {JobAction.ACCEPT, JobAction.ON_MY_WAY, JobAction.TICK}


def setup() -> Router:
    """A fresh router for one Dispatcher (its handlers in dispatch order)."""
    router = staff_router("installation")
    router.callback_query.register(open_job, JobCb.filter(F.action == JobAction.OPEN))
    router.callback_query.register(step, JobCb.filter(F.action.in_(STEPS)))
    router.callback_query.register(photos_ask, JobCb.filter(F.action == JobAction.PHOTOS))
    router.message.register(photo_input, JobInput.photos)
    router.callback_query.register(done, JobCb.filter(F.action == JobAction.DONE))
    router.callback_query.register(
        partial, JobCb.filter(F.action.in_({JobAction.PARTIAL, JobAction.LEAVE}))
    )
    router.callback_query.register(reschedule, JobCb.filter(F.action == JobAction.RESCHEDULE))
    router.callback_query.register(sign_ask, JobCb.filter(F.action == JobAction.SIGN))
    router.message.register(signature_input, JobInput.signature)
    router.callback_query.register(crew, JobCb.filter(F.action == JobAction.CREW))
    router.callback_query.register(check, JobCb.filter(F.action == JobAction.CHECK))
    router.callback_query.register(claim, ClaimCb.filter())
    return router
