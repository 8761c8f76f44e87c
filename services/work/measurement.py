"""The measurement chain (Sales pipeline, docs DOMAIN.md).

Deal enters *Measurement scheduled* -> an ``assign_measurer`` task to the role head_measurer
(its card lists each active measurer with their load that day) -> `assign_measurer` moves
the deal to *Measurer assigned*, sets ``Deal.measurer_id`` and makes the ``measure`` task for
the measurer -> `accept` / `on_my_way` / `decline` (reason; the deal steps back, so a new
assign task goes to the heads, carrying the reason) -> `complete_measurement` (files and a
comment land on the deal card, the deal moves to *Measurement done*, the manager is told).

Deals move through services.sales.stage (`enter`), under the pipeline's rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from services import dates, timeline, validation
from services.common import check_version, commit, is_id
from services.errors import RuleViolation, ValidationError
from services.outbox import clients as client_messages
from services.outbox import queue as outbox
from services.outbox.payloads import MeasureDone, MeasurerLoad, TaskDeclined
from services.outbox.queue import Kind
from services.permissions import Action, Actor, require
from services.sales import stage as stage_core
from services.sales.pipelines import PipelineRules, rules_for
from services.tasks import (
    TaskCard,
    TaskInfo,
    card_of,
    close_and_cancel,
    create_task,
    essentials,
    load_task,
    loads_on,
    require_kind,
    require_open,
    task_deal,
    task_info,
)
from storage.enums import ActivityKind, Role, TaskKind, TaskStatus
from storage.models import Employee, Stage
from storage.uow import UnitOfWork

# Field jobs whose Accept / On my way are these steps: a measurement, an installation.
FIELD_KINDS = (TaskKind.MEASURE, TaskKind.INSTALL)
MEASURER_ASSIGNED = "measurer_assigned"
MEASUREMENT_DONE = "measurement_done"
ATTACHMENT_KINDS = frozenset({"photo", "document", "video"})
MAX_ATTACHMENTS = 50


@dataclass(frozen=True)
class AttachmentIn:
    """A file the measurer sent: Telegram ids, not bytes."""

    kind: str  # photo | document | video
    file_id: str
    file_unique_id: str | None = None
    caption: str | None = None


AttachmentLike = AttachmentIn | tuple[str, str, str | None, str | None]


async def measurer_loads(
    uow: UnitOfWork, actor: Actor, when: datetime | None
) -> list[MeasurerLoad]:
    """Active measurers and how many measurements each has on the local day of `when`."""
    require(actor, Action.ASSIGN_MEASURER)
    return await loads_on(uow, when)


SLOT_HOURS = (10, 13, 16)  # the measurement date's quick buttons: these hours of a day
SLOT_DAYS = 5  # working days offered (Sundays skipped), from tomorrow


@dataclass(frozen=True)
class SlotDay:
    """A day offered for a measurement: its local date, how far from today, and each
    active measurer's measurements that day."""

    day: date
    offset: int
    loads: tuple[MeasurerLoad, ...]


async def slot_days(uow: UnitOfWork, actor: Actor, deal_id: int, tz: str) -> list[SlotDay]:
    """The next working days with each measurer's load: what the manager sees when the
    measurement date is asked (the actor must be allowed to move the deal)."""
    await stage_core.load_for(uow, actor, deal_id, Action.DEAL_MOVE, None)
    today = dates.local_today(uow.clock, tz)
    out: list[SlotDay] = []
    offset = 0
    while len(out) < SLOT_DAYS:
        offset += 1
        day = today + timedelta(days=offset)
        if day.weekday() == 6:
            continue
        loads = await loads_on(uow, dates.at_local(day, 12, tz))
        out.append(SlotDay(day, offset, tuple(loads)))
    return out


def slot(uow: UnitOfWork, offset: int, index: int, tz: str) -> datetime:
    """The moment of a quick button: `offset` days from today, at SLOT_HOURS[index]
    (client input: refused when out of range)."""
    if not 1 <= offset <= 14 or not 0 <= index < len(SLOT_HOURS):
        raise ValidationError("when", "unknown_choice")
    day = dates.local_today(uow.clock, tz) + timedelta(days=offset)
    return dates.at_local(day, SLOT_HOURS[index], tz)


def _stage_after(rules: PipelineRules, code: str, current: Stage) -> Stage:
    """The stage called `code` in this pipeline, else the next one in the flow."""
    for s in rules.stages:
        if s.code == code:
            return s
    return rules.step(current)


async def assign_measurer(
    uow: UnitOfWork,
    actor: Actor,
    task_id: int,
    measurer_id: int,
    expected_version: int | None = None,
    comment: str | None = None,
) -> TaskCard:
    """The head's choice: deal -> Measurer assigned, the measurer gets their task card.

    Returns the new measure task's card.
    """
    task = await load_task(uow, actor, task_id)
    require(actor, Action.ASSIGN_MEASURER, task)
    require_kind(task, TaskKind.ASSIGN_MEASURER)
    require_open(task)
    check_version("task", task.version, expected_version)
    comment = validation.optional_text(comment, "comment")
    measurer = await uow.repo.get(Employee, measurer_id) if is_id(measurer_id) else None
    if measurer is None or not measurer.active or Role.MEASURER not in measurer.roles:
        raise ValidationError("measurer", "not_a_measurer")
    deal = await task_deal(uow, task)
    rules = await rules_for(uow, deal.pipeline_id)
    current = rules.stage(deal.stage_id)
    target = _stage_after(rules, MEASURER_ASSIGNED, current)
    rules.check_move(current, target)
    deal.measurer_id = measurer.id
    await stage_core.enter(uow, actor, deal, target)
    task.payload = {**(task.payload or {}), "measurer_id": measurer.id}
    await close_and_cancel(uow, task, TaskStatus.DONE)
    measure = await create_task(
        uow,
        kind=TaskKind.MEASURE,
        title=deal.title,
        due_at=deal.measurement_at,
        created_by_id=actor.id,
        deal_id=deal.id,
        assignee_id=measurer.id,
        comment=comment,
        payload={"assign_task_id": task.id},
    )
    await commit(uow, "deal")
    return await card_of(uow, measure)


async def accept(
    uow: UnitOfWork, actor: Actor, task_id: int, expected_version: int | None = None
) -> TaskCard:
    """The measurer (or the installer) takes the job."""
    task = await load_task(uow, actor, task_id)
    require_kind(task, *FIELD_KINDS)
    check_version("task", task.version, expected_version)
    if task.status != TaskStatus.OPEN:
        raise RuleViolation("task_not_open", status=task.status)
    task.status = TaskStatus.ACCEPTED
    await commit(uow, "task")
    return await card_of(uow, task)


async def on_my_way(
    uow: UnitOfWork, actor: Actor, task_id: int, expected_version: int | None = None
) -> TaskCard:
    task = await load_task(uow, actor, task_id)
    require_kind(task, *FIELD_KINDS)
    check_version("task", task.version, expected_version)
    if task.status not in (TaskStatus.OPEN, TaskStatus.ACCEPTED):
        raise RuleViolation("task_not_open", status=task.status)
    task.status = TaskStatus.IN_PROGRESS
    if task.deal_id is not None:  # the client hears "<first name> is on the way"
        job = "install" if task.kind == TaskKind.INSTALL else "measure"
        await client_messages.on_the_way(uow, await task_deal(uow, task), task.assignee_id, job)
    await commit(uow, "task")
    return await card_of(uow, task)


async def decline(
    uow: UnitOfWork,
    actor: Actor,
    task_id: int,
    reason: str,
    expected_version: int | None = None,
) -> TaskInfo:
    """ "Can't make it": the task goes back to the heads of measurers with the reason.

    The deal steps back to Measurement scheduled, whose rule makes a new assign task (its
    card carries who declined and why); if the deal has moved on meanwhile, the heads get a
    plain notice instead.
    """
    task = await load_task(uow, actor, task_id)
    require_kind(task, TaskKind.MEASURE)
    require_open(task)
    check_version("task", task.version, expected_version)
    text = validation.optional_text(reason, "reason", 500)
    if text is None:
        raise ValidationError("reason", "empty")
    now = uow.clock.now()
    task.payload = {**(task.payload or {}), "decline_reason": text}
    await close_and_cancel(uow, task, TaskStatus.DECLINED)
    await uow.flush()
    deal = await task_deal(uow, task)
    deal.measurer_id = None
    rules = await rules_for(uow, deal.pipeline_id)
    current = rules.stage(deal.stage_id)
    prev, _ = rules.neighbours(current)
    if current.code == MEASURER_ASSIGNED and prev is not None:
        rules.check_move(current, prev)
        await stage_core.enter(uow, actor, deal, prev, comment=text)
    else:
        for head in await uow.repo.employees.with_role(Role.HEAD_MEASURER):
            await outbox.enqueue(
                uow,
                head.id,
                Kind.TASK_DECLINED,
                TaskDeclined(
                    **(await essentials(uow, deal)).model_dump(),
                    declined_by=actor.name,
                    reason=text,
                ),
                now,
                dedupe_key=f"task:{task.id}:declined:{head.id}",
                deal_id=deal.id,
            )
    await commit(uow, "deal")
    return task_info(task, now, deal.title)


def check_file_id(file_id: object) -> None:
    """A Telegram file id as the client sent it (ids, never bytes)."""
    if not isinstance(file_id, str) or not 0 < len(file_id) <= 256:
        raise ValidationError("attachments", "invalid")


def _attachment(raw: AttachmentLike) -> AttachmentIn:
    if isinstance(raw, AttachmentIn):
        item = raw
    else:
        if not isinstance(raw, tuple) or len(raw) != 4:
            raise ValidationError("attachments", "invalid")
        item = AttachmentIn(*raw)
    if item.kind not in ATTACHMENT_KINDS:
        raise ValidationError("attachments", "unknown_kind", kind=item.kind)
    check_file_id(item.file_id)
    if item.file_unique_id is not None and len(item.file_unique_id) > 128:
        raise ValidationError("attachments", "invalid")
    caption = validation.optional_text(item.caption, "caption", 1024)
    return AttachmentIn(item.kind, item.file_id, item.file_unique_id, caption)


async def complete_measurement(
    uow: UnitOfWork,
    actor: Actor,
    task_id: int,
    attachments: Sequence[AttachmentLike],
    comment: str | None,
    expected_version: int | None = None,
) -> TaskCard:
    """Done: files and comment on the deal card, deal -> Measurement done, manager told.

    `attachments`: (kind, file_id, file_unique_id, caption) tuples or `AttachmentIn`.
    At least one file or a comment. One commit.
    """
    task = await load_task(uow, actor, task_id)
    require_kind(task, TaskKind.MEASURE)
    require_open(task)
    check_version("task", task.version, expected_version)
    if len(attachments) > MAX_ATTACHMENTS:
        raise ValidationError("attachments", "too_many", max=MAX_ATTACHMENTS)
    files: list[AttachmentIn] = []
    seen: set[str] = set()
    for raw in attachments:
        item = _attachment(raw)
        key = item.file_unique_id or item.file_id
        if key not in seen:
            seen.add(key)
            files.append(item)
    text = validation.optional_text(comment, "comment", 3000)
    if not files and text is None:
        raise ValidationError("attachments", "empty")
    now = uow.clock.now()
    deal = await task_deal(uow, task)
    # The visit on the deal's timeline: each file with its caption (Telegram file ids)...
    for item in files:
        timeline.record(
            uow,
            ActivityKind.FILE,
            actor_id=actor.id,
            deal_id=deal.id,
            task_id=task.id,
            at=now,
            media_type=item.kind,
            file_id=item.file_id,
            file_unique_id=item.file_unique_id,
            caption=item.caption,
        )
    # ...then the visit itself, its comment (or how many files it brought): the newest row,
    # what the card shows first.
    timeline.record(
        uow,
        ActivityKind.MEASUREMENT,
        actor_id=actor.id,
        text=text or "",
        deal_id=deal.id,
        task_id=task.id,
        at=now,
        payload={
            "photos": sum(1 for f in files if f.kind == "photo"),
            "files": len(files),
        },
    )
    await close_and_cancel(uow, task, TaskStatus.DONE)
    rules = await rules_for(uow, deal.pipeline_id)
    current = rules.stage(deal.stage_id)
    if current.code == MEASURER_ASSIGNED:
        target = _stage_after(rules, MEASUREMENT_DONE, current)
        rules.check_move(current, target)
        await stage_core.enter(uow, actor, deal, target)
    deal.last_activity_at = now
    deal.updated_at = now
    if deal.manager_id is not None and deal.manager_id != actor.id:
        await outbox.enqueue(
            uow,
            deal.manager_id,
            Kind.MEASURE_DONE,
            MeasureDone(
                deal_title=deal.title,
                measurer=actor.name,
                photos=sum(1 for f in files if f.kind == "photo"),
                files=len(files),
                comment=text,
                moved=current.code == MEASURER_ASSIGNED,
            ),
            now,
            dedupe_key=f"task:{task.id}:done",
            deal_id=deal.id,
        )
    await commit(uow, "deal")
    return await card_of(uow, task)
