"""The measurement chain on the phone: the head's choice of a measurer, then the measurer's
card — Accept, On my way, Can't make it (with a reason), Done with photos/documents/comment.

Every handler: read the callback/state -> one service call -> render (the task card:
handlers/ui/task_card.py). The ids in callback data are client input: the services load
the task and check the actor's right to it (a measurer tapping another measurer's task is
refused). Errors go to the error router (handlers/errors.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import F, Router
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message

from handlers.measurement import views as view
from handlers.ui import screen, task_card
from handlers.ui.callbacks import AssignCb, TaskAction, TaskCb
from handlers.ui.context import Ctx
from handlers.ui.error_text import error_text
from handlers.ui.filters import staff_router
from services.errors import ValidationError
from services.permissions import Actor
from services.tasks import TaskCard
from services.work import measurement
from services.work.measurement import AttachmentIn
from storage.uow import UnitOfWork


class MeasurementInput(StatesGroup):
    """Stored as "TaskInput:<name>" as before the tasks area was split (FSM data in Redis
    outlives a deploy: a measurer halfway through an upload keeps going)."""

    decline = State(group_name="TaskInput")  # the reason of "Can't make it"
    upload = State(group_name="TaskInput")  # photos/documents/comment, until "Finish"


async def assign(query: CallbackQuery, callback_data: AssignCb, ctx: Ctx) -> None:
    card = await measurement.assign_measurer(
        ctx.uow, ctx.actor, callback_data.task_id, callback_data.measurer_id
    )
    notice = ctx.t("tasks.assign.done", name=card.measurer_name or "")
    msg = screen.message_of(query)
    if msg is not None:  # the head sees what the measurer got, without its buttons
        await msg.edit_text(task_card.task_text(card, ctx.lang, ctx.tz, notice), reply_markup=None)


MeasureStep = Callable[[UnitOfWork, Actor, int], Awaitable[TaskCard]]
STEPS: dict[TaskAction, MeasureStep] = {
    TaskAction.ACCEPT: measurement.accept,
    TaskAction.ON_MY_WAY: measurement.on_my_way,
}


async def measure_step(query: CallbackQuery, callback_data: TaskCb, ctx: Ctx) -> None:
    card = await STEPS[callback_data.action](ctx.uow, ctx.actor, callback_data.task_id)
    await task_card.show(query, ctx, card)


async def decline_ask(query: CallbackQuery, callback_data: TaskCb, ctx: Ctx) -> None:
    step = MeasurementInput.decline
    await task_card.ask_for_task(
        query, ctx, step, callback_data.task_id, "tasks.ask.decline_reason"
    )


async def decline_input(message: Message, ctx: Ctx) -> None:
    data = await ctx.state.get_data()
    try:
        await measurement.decline(ctx.uow, ctx.actor, int(data["task_id"]), message.text or "")
    except ValidationError as exc:
        await screen.refused(message, ctx, exc, "tasks.ask.decline_reason")
        return
    await ctx.state.clear()
    reply = ctx.t("tasks.declined.sent")
    await screen.edit_or_send(message, data.get("card_msg"), reply, None)


# Albums arrive as several updates at once: one read-modify-write of the FSM data at a time
# per person (within this process).
_upload_locks: dict[int, asyncio.Lock] = {}


async def upload_start(query: CallbackQuery, callback_data: TaskCb, ctx: Ctx) -> None:
    task_id = callback_data.task_id
    await task_card.ask_for_task(
        query,
        ctx,
        MeasurementInput.upload,
        task_id,
        "tasks.ask.upload",
        data={"files": [], "comment": []},
        markup=view.finish_button(task_id, ctx.lang),
    )


def _file_of(message: Message) -> list[Any] | None:
    """(kind, file_id, file_unique_id, caption) of a photo/document/video message."""
    if message.photo:
        p = message.photo[-1]  # the largest size
        return ["photo", p.file_id, p.file_unique_id, message.caption]
    if message.document:
        d = message.document
        return ["document", d.file_id, d.file_unique_id, message.caption]
    if message.video:
        v = message.video
        return ["video", v.file_id, v.file_unique_id, message.caption]
    return None


async def upload_input(message: Message, ctx: Ctx) -> None:
    item = _file_of(message)
    if item is None and not message.text:
        await message.answer(error_text(ValidationError("attachments", "unknown_kind"), ctx.lang))
        return
    key = message.from_user.id if message.from_user else message.chat.id
    lock = _upload_locks.setdefault(key, asyncio.Lock())
    async with lock:
        data = await ctx.state.get_data()
        files: list[Any] = list(data.get("files") or [])
        comment: list[str] = list(data.get("comment") or [])
        if item is not None:
            files.append(item)
        else:
            comment.append(message.text or "")
        await ctx.state.update_data(files=files, comment=comment)
    await message.answer(
        ctx.t("tasks.upload.got", files=len(files), comment=len(comment)),
        reply_markup=view.finish_button(int(data["task_id"]), ctx.lang),
    )


async def upload_end(query: CallbackQuery, callback_data: TaskCb, ctx: Ctx) -> None:
    data = await ctx.state.get_data()
    mine = data.get("task_id") == callback_data.task_id
    files = [AttachmentIn(*f) for f in data.get("files") or []] if mine else []
    comment = "\n".join(data.get("comment") or []) if mine else ""
    card = await measurement.complete_measurement(
        ctx.uow, ctx.actor, callback_data.task_id, files, comment or None
    )
    await ctx.state.clear()
    notice = ctx.t("tasks.upload.done", count=card.attachments)
    msg = screen.message_of(query)
    if msg is not None:
        await msg.edit_text(task_card.task_text(card, ctx.lang, ctx.tz, notice), reply_markup=None)
    where = data.get("card_msg") if mine else None
    if where and msg is not None and msg.bot is not None and where[1] != msg.message_id:
        await msg.bot.edit_message_reply_markup(
            chat_id=where[0], message_id=where[1], reply_markup=None
        )


def setup() -> Router:
    """A fresh router for one Dispatcher (its handlers in dispatch order)."""
    router = staff_router("measurement")
    router.callback_query.register(assign, AssignCb.filter())
    router.callback_query.register(measure_step, TaskCb.filter(F.action.in_(set(STEPS))))
    router.callback_query.register(decline_ask, TaskCb.filter(F.action == TaskAction.DECLINE))
    router.message.register(decline_input, MeasurementInput.decline, F.text)
    router.callback_query.register(upload_start, TaskCb.filter(F.action == TaskAction.FINISH))
    router.message.register(upload_input, MeasurementInput.upload)
    router.callback_query.register(upload_end, TaskCb.filter(F.action == TaskAction.UPLOAD_END))
    return router
