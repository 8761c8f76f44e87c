"""Tasks: made by people and automatically by stage rules; delivered through the outbox.

`create_task` is the one place a task row is made, so it is also where its messages are
queued (services/outbox/queue.py): the task card for its assignee(s) now — unless they made the
task themselves — and the reminder at its due time (a measurement: an hour before).

Measurement chain (Sales pipeline, docs DOMAIN.md):
  deal enters *Measurement scheduled* -> ``assign_measurer`` task to the role head_measurer
  (its card lists each active measurer with their load that day) -> `assign_measurer`
  moves the deal to *Measurer assigned*, sets ``Deal.measurer_id`` and makes the ``measure``
  task for the measurer -> `accept` / `on_my_way` / `decline` (reason; the deal steps back,
  so a new assign task goes to the heads, carrying the reason) -> `complete_measurement`
  (files and a comment land on the deal card, the deal moves to *Measurement done*, the
  manager is told).

A measurer sees a deal only through their own task (`task_card`); they can never open the
deal itself (services.permissions gives them no DEAL_VIEW). Every function takes
``(uow, actor, ...)``, loads the object and calls ``permissions.require`` on it: a forged
task id is refused.

Follow-ups: `set_next_contact` (a ``follow_up`` task for the deal's manager; in Deferred
demand the ``deferred_contact`` task), `create_manual_task` (for oneself, or a leader's for a
manager), `done`, `snooze`. Deferred demand's task offers `deferred_back_to_sales`,
`deferred_lost`, `defer_again`. System jobs (no actor; run by bot/scheduler.py):
`escalate_overdue`, `morning_summary`, `deferred_due_scan`.

Stage moves go through services.deals' own rules (`_enter`, `PipelineRules.check_move`);
that module is not changed here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, cast
from urllib.parse import quote_plus

from sqlalchemy import func, select

from services import dates, validation
from services.common import check_version, commit, employee_name, load
from services.errors import RuleViolation, ValidationError
from services.outbox import queue as outbox
from services.outbox.queue import Kind
from services.permissions import Action, Actor, require
from services.sales.pipelines import PipelineRules, rules_by_role, rules_for
from storage.enums import ActivityKind, Role, StageKind, TaskKind, TaskStatus
from storage.models import (
    Activity,
    Attachment,
    Contact,
    Deal,
    Employee,
    JobRun,
    Stage,
    Task,
)
from storage.repositories.tasks import TaskQueries
from storage.uow import UnitOfWork

if TYPE_CHECKING:
    from services.dto import DealCard

MEASURER_ASSIGNED = "measurer_assigned"
MEASUREMENT_DONE = "measurement_done"
OPEN_STATES = (TaskStatus.OPEN, TaskStatus.ACCEPTED, TaskStatus.IN_PROGRESS)
CLOSED_STATES = (TaskStatus.DONE, TaskStatus.DECLINED, TaskStatus.CANCELLED)
# Kinds whose card always goes to the assignee (it carries the buttons of the flow).
CARD_KINDS = (TaskKind.ASSIGN_MEASURER, TaskKind.MEASURE)
# Kinds closed only through their own flow, never by a plain "Done".
FLOW_KINDS = (TaskKind.ASSIGN_MEASURER, TaskKind.MEASURE)
ATTACHMENT_KINDS = frozenset({"photo", "document", "video"})
MAX_ATTACHMENTS = 50
STALE_EXCLUDED_ROLES = ("deferred", "installments", "leads")


@dataclass
class TaskPolicy:
    """Company-wide knobs create_task needs (it has no settings argument). bot/app.py sets
    them from Settings at start via `configure`."""

    timezone: str = "Europe/Moscow"
    measure_remind_before: timedelta = timedelta(hours=1)


policy = TaskPolicy()


def configure(
    *, timezone: str | None = None, measure_remind_before: timedelta | None = None
) -> None:
    if timezone is not None:
        dates.zone(timezone)  # refuse an unknown zone now, not at the first task
        policy.timezone = timezone
    if measure_remind_before is not None:
        policy.measure_remind_before = measure_remind_before


# --- read models --------------------------------------------------------------------------


@dataclass(frozen=True)
class MeasurerLoad:
    id: int
    name: str
    load: int  # measurements that day


@dataclass(frozen=True)
class TaskInfo:
    id: int
    version: int
    kind: str
    title: str
    title_en: str | None
    status: str
    due_at: datetime | None
    overdue: bool
    deal_id: int | None
    deal_title: str | None
    assignee_id: int | None
    assignee_role: str | None
    comment: str | None


@dataclass(frozen=True)
class TaskCard:
    """Everything a phone screen shows for one task (the measurer's card, the head's card)."""

    task: TaskInfo
    client_name: str | None = None
    phone: str | None = None
    address: str | None = None
    map_url: str | None = None
    measurement_at: datetime | None = None
    need: str | None = None
    manager_name: str | None = None
    manager_comment: str | None = None
    measurer_name: str | None = None
    measurers: tuple[MeasurerLoad, ...] = ()
    declined_by: str | None = None
    decline_reason: str | None = None
    attachments: int = 0


@dataclass(frozen=True)
class AttachmentIn:
    """A file the measurer sent: Telegram ids, not bytes."""

    kind: str  # photo | document | video
    file_id: str
    file_unique_id: str | None = None
    caption: str | None = None


AttachmentLike = AttachmentIn | tuple[str, str, str | None, str | None]


@dataclass
class SummaryStats:
    recipients: int = 0
    stale_deals: int = 0
    skipped: bool = False
    per_manager: dict[int, int] = field(default_factory=dict)


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat()


def map_url(address: str) -> str:
    """A map search for the address (opens the maps app on a phone)."""
    return "https://yandex.ru/maps/?text=" + quote_plus(address)


def _info(task: Task, now: datetime, deal_title: str | None = None) -> TaskInfo:
    return TaskInfo(
        id=task.id,
        version=task.version,
        kind=task.kind,
        title=task.title,
        title_en=(task.payload or {}).get("title_en"),
        status=task.status,
        due_at=task.due_at,
        overdue=task.due_at is not None and task.due_at < now and task.status in OPEN_STATES,
        deal_id=task.deal_id,
        deal_title=deal_title,
        assignee_id=task.assignee_id,
        assignee_role=task.assignee_role,
        comment=task.comment,
    )


# --- creating tasks and their messages ----------------------------------------------------


async def create_task(
    uow: UnitOfWork,
    *,
    kind: str,
    title: str,
    due_at: datetime | None,
    created_by_id: int | None,
    deal_id: int | None = None,
    lead_id: int | None = None,
    assignee_id: int | None = None,
    assignee_role: str | None = None,
    comment: str | None = None,
    payload: dict[str, Any] | None = None,
) -> Task:
    """The one place a task row is made (so delivery hooks live in one place too)."""
    task = Task(
        kind=kind,
        title=title,
        deal_id=deal_id,
        lead_id=lead_id,
        assignee_id=assignee_id,
        assignee_role=assignee_role,
        status=TaskStatus.OPEN,
        due_at=due_at,
        comment=comment,
        payload=payload or {},
        created_by_id=created_by_id,
        created_at=uow.clock.now(),
    )
    uow.repo.add(task)
    await uow.flush()
    await _schedule(uow, task, new=True)
    return task


async def on_stage_entry(
    uow: UnitOfWork, deal: Deal, stage: Stage, actor_id: int | None
) -> Task | None:
    """Create the stage's automatic task, if its configuration has one."""
    spec = stage.on_enter_task
    if not spec:
        return None
    kind = str(spec.get("kind") or TaskKind.CUSTOM)
    if await uow.repo.tasks.open_for_deal(deal.id, kind):
        return None  # re-entering the stage: the earlier task is still open
    to_manager = bool(spec.get("to_manager"))
    return await create_task(
        uow,
        kind=kind,
        title=str(spec["title"]),
        due_at=uow.clock.now() + timedelta(hours=float(spec.get("due_in_hours", 24))),
        created_by_id=actor_id,
        deal_id=deal.id,
        assignee_id=deal.manager_id if to_manager else None,
        assignee_role=None if to_manager else spec.get("to_role"),
        payload={"title_en": spec.get("title_en"), "stage": stage.code, "auto": True},
    )


async def _recipients(uow: UnitOfWork, task: Task) -> list[int]:
    if task.assignee_id is not None:
        return [task.assignee_id]
    if task.assignee_role:
        return [e.id for e in await uow.repo.employees.with_role(task.assignee_role)]
    return []


async def _schedule(uow: UnitOfWork, task: Task, *, new: bool) -> None:
    """Queue the task's card (when new) and its due-time reminder for each recipient."""
    now = uow.clock.now()
    payload = await _payload(uow, task)
    recipients = await _recipients(uow, task)
    carded: set[int] = set()
    if new:
        for rid in recipients:
            if task.kind in CARD_KINDS or rid != task.created_by_id:
                await outbox.enqueue(
                    uow,
                    rid,
                    Kind.TASK_NEW,
                    payload,
                    now,
                    dedupe_key=f"task:{task.id}:new:{rid}",
                    task_id=task.id,
                    deal_id=task.deal_id,
                )
                carded.add(rid)
    if task.due_at is None:
        return
    before = policy.measure_remind_before if task.kind == TaskKind.MEASURE else timedelta(0)
    remind_at = task.due_at - before
    for rid in recipients:
        if remind_at <= now and rid in carded:
            continue  # the card just sent says it all
        await outbox.enqueue(
            uow,
            rid,
            Kind.TASK_DUE,
            payload,
            max(remind_at, now),
            dedupe_key=f"task:{task.id}:due:{rid}:{iso(task.due_at)}",
            task_id=task.id,
            deal_id=task.deal_id,
        )


async def _essentials(uow: UnitOfWork, deal: Deal) -> dict[str, Any]:
    contact = await uow.repo.get(Contact, deal.contact_id) if deal.contact_id else None
    note = await TaskQueries(uow.session).last_note(deal.id, ActivityKind.NOTE)
    return {
        "deal_title": deal.title,
        "client_name": contact.name if contact else None,
        "phone": contact.phone if contact else None,
        "address": deal.address,
        "measurement_at": iso(deal.measurement_at) if deal.measurement_at else None,
        "need": deal.need,
        "manager_name": await employee_name(uow, deal.manager_id),
        "manager_comment": note.text if note else None,
    }


async def _payload(uow: UnitOfWork, task: Task) -> dict[str, Any]:
    """What the notifier renders (it has no database): a snapshot taken now."""
    data: dict[str, Any] = {
        "task_kind": task.kind,
        "title": task.title,
        "title_en": (task.payload or {}).get("title_en"),
        "due_at": iso(task.due_at) if task.due_at else None,
        "comment": task.comment,
        "assignee_role": task.assignee_role,
        "created_by": await employee_name(uow, task.created_by_id),
    }
    deal = await uow.repo.get(Deal, task.deal_id) if task.deal_id else None
    if deal is not None:
        data.update(await _essentials(uow, deal))
        if task.kind == TaskKind.ASSIGN_MEASURER:
            loads = await _loads(uow, deal.measurement_at)
            data["measurers"] = [[m.id, m.name, m.load] for m in loads]
            declined = await TaskQueries(uow.session).last_declined_measure(deal.id)
            if declined is not None:
                data["declined_by"] = await employee_name(uow, declined.assignee_id)
                data["decline_reason"] = (declined.payload or {}).get("decline_reason")
    return data


# --- measurers ----------------------------------------------------------------------------


async def _loads(uow: UnitOfWork, when: datetime | None) -> list[MeasurerLoad]:
    measurers = await uow.repo.employees.with_role(Role.MEASURER)
    if when is None:
        return [MeasurerLoad(m.id, m.name, 0) for m in measurers]
    day = when.astimezone(dates.zone(policy.timezone)).date()
    start, end = dates.local_day_bounds(day, policy.timezone)
    counts = await TaskQueries(uow.session).measurer_loads([m.id for m in measurers], start, end)
    return [MeasurerLoad(m.id, m.name, counts.get(m.id, 0)) for m in measurers]


async def measurer_loads(
    uow: UnitOfWork, actor: Actor, when: datetime | None
) -> list[MeasurerLoad]:
    """Active measurers and how many measurements each has on the local day of `when`."""
    require(actor, Action.ASSIGN_MEASURER)
    return await _loads(uow, when)


async def _load_task(
    uow: UnitOfWork, actor: Actor, task_id: int, action: Action = Action.TASK_ACT
) -> Task:
    task = await load(uow, Task, task_id, "task")
    require(actor, action, task)
    return task


def _require_open(task: Task) -> None:
    if task.status not in OPEN_STATES:
        raise RuleViolation("task_closed", status=task.status)


def _require_kind(task: Task, *kinds: str) -> None:
    if task.kind not in kinds:
        raise RuleViolation("wrong_task_kind", kind=task.kind)


async def _task_deal(uow: UnitOfWork, task: Task) -> Deal:
    if task.deal_id is None:
        raise RuleViolation("task_without_deal")
    return await load(uow, Deal, task.deal_id, "deal")


def _stage_after(rules: PipelineRules, code: str, current: Stage) -> Stage:
    """The stage called `code` in this pipeline, else the next one in the flow."""
    for s in rules.stages:
        if s.code == code:
            return s
    _, nxt = rules.neighbours(current)
    if nxt is None:
        raise RuleViolation("no_next_stage", stage=current.name)
    return nxt


def _close(task: Task, status: TaskStatus, now: datetime) -> None:
    task.status = status
    task.done_at = now


async def _close_and_cancel(uow: UnitOfWork, task: Task, status: TaskStatus) -> None:
    _close(task, status, uow.clock.now())
    await outbox.cancel_pending(uow, task_id=task.id)


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
    task = await _load_task(uow, actor, task_id)
    require(actor, Action.ASSIGN_MEASURER, task)
    _require_kind(task, TaskKind.ASSIGN_MEASURER)
    _require_open(task)
    check_version("task", task.version, expected_version)
    comment = validation.optional_text(comment, "comment")
    measurer = await uow.repo.get(Employee, measurer_id) if _is_id(measurer_id) else None
    if measurer is None or not measurer.active or Role.MEASURER not in measurer.roles:
        raise ValidationError("measurer", "not_a_measurer")
    deal = await _task_deal(uow, task)
    rules = await rules_for(uow, deal.pipeline_id)
    current = rules.stage(deal.stage_id)
    target = _stage_after(rules, MEASURER_ASSIGNED, current)
    rules.check_move(current, target)
    deal.measurer_id = measurer.id
    await stage_core.enter(uow, actor, deal, target)
    task.payload = {**(task.payload or {}), "measurer_id": measurer.id}
    await _close_and_cancel(uow, task, TaskStatus.DONE)
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
    return await _card(uow, measure)


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


async def accept(
    uow: UnitOfWork, actor: Actor, task_id: int, expected_version: int | None = None
) -> TaskCard:
    """The measurer takes the job."""
    task = await _load_task(uow, actor, task_id)
    _require_kind(task, TaskKind.MEASURE)
    check_version("task", task.version, expected_version)
    if task.status != TaskStatus.OPEN:
        raise RuleViolation("task_not_open", status=task.status)
    task.status = TaskStatus.ACCEPTED
    await commit(uow, "task")
    return await _card(uow, task)


async def on_my_way(
    uow: UnitOfWork, actor: Actor, task_id: int, expected_version: int | None = None
) -> TaskCard:
    task = await _load_task(uow, actor, task_id)
    _require_kind(task, TaskKind.MEASURE)
    check_version("task", task.version, expected_version)
    if task.status not in (TaskStatus.OPEN, TaskStatus.ACCEPTED):
        raise RuleViolation("task_not_open", status=task.status)
    task.status = TaskStatus.IN_PROGRESS
    await commit(uow, "task")
    return await _card(uow, task)


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
    task = await _load_task(uow, actor, task_id)
    _require_kind(task, TaskKind.MEASURE)
    _require_open(task)
    check_version("task", task.version, expected_version)
    text = validation.optional_text(reason, "reason", 500)
    if text is None:
        raise ValidationError("reason", "empty")
    now = uow.clock.now()
    task.payload = {**(task.payload or {}), "decline_reason": text}
    await _close_and_cancel(uow, task, TaskStatus.DECLINED)
    await uow.flush()
    deal = await _task_deal(uow, task)
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
                {**await _essentials(uow, deal), "declined_by": actor.name, "reason": text},
                now,
                dedupe_key=f"task:{task.id}:declined:{head.id}",
                deal_id=deal.id,
            )
    await commit(uow, "deal")
    return _info(task, now, deal.title)


def _attachment(raw: AttachmentLike) -> AttachmentIn:
    if isinstance(raw, AttachmentIn):
        item = raw
    else:
        if not isinstance(raw, tuple) or len(raw) != 4:
            raise ValidationError("attachments", "invalid")
        item = AttachmentIn(*raw)
    if item.kind not in ATTACHMENT_KINDS:
        raise ValidationError("attachments", "unknown_kind", kind=item.kind)
    if not isinstance(item.file_id, str) or not 0 < len(item.file_id) <= 256:
        raise ValidationError("attachments", "invalid")
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
    task = await _load_task(uow, actor, task_id)
    _require_kind(task, TaskKind.MEASURE)
    _require_open(task)
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
    deal = await _task_deal(uow, task)
    for item in files:
        uow.repo.add(
            Attachment(
                deal_id=deal.id,
                task_id=task.id,
                kind=item.kind,
                file_id=item.file_id,
                file_unique_id=item.file_unique_id,
                caption=item.caption,
                uploaded_by_id=actor.id,
                at=now,
            )
        )
    uow.repo.add(
        Activity(
            deal_id=deal.id,
            kind=ActivityKind.MEASUREMENT,
            text=text or "",
            author_id=actor.id,
            at=now,
        )
    )
    await _close_and_cancel(uow, task, TaskStatus.DONE)
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
            {
                "deal_title": deal.title,
                "measurer": actor.name,
                "photos": sum(1 for f in files if f.kind == "photo"),
                "files": len(files),
                "comment": text,
                "moved": current.code == MEASURER_ASSIGNED,
            },
            now,
            dedupe_key=f"task:{task.id}:done",
            deal_id=deal.id,
        )
    await commit(uow, "deal")
    return await _card(uow, task)


# --- reading tasks ------------------------------------------------------------------------


async def _card(uow: UnitOfWork, task: Task) -> TaskCard:
    now = uow.clock.now()
    deal = await uow.repo.get(Deal, task.deal_id) if task.deal_id else None
    info = _info(task, now, deal.title if deal else None)
    if deal is None:
        return TaskCard(task=info)
    ess = await _essentials(uow, deal)
    measurers: tuple[MeasurerLoad, ...] = ()
    declined_by = decline_reason = None
    if task.kind == TaskKind.ASSIGN_MEASURER:
        measurers = tuple(await _loads(uow, deal.measurement_at))
        declined = await TaskQueries(uow.session).last_declined_measure(deal.id)
        if declined is not None:
            declined_by = await employee_name(uow, declined.assignee_id)
            decline_reason = (declined.payload or {}).get("decline_reason")
    n_files = 0
    if task.kind == TaskKind.MEASURE:
        n_files = int(
            await uow.session.scalar(
                select(func.count()).select_from(Attachment).where(Attachment.task_id == task.id)
            )
            or 0
        )
    return TaskCard(
        task=info,
        client_name=ess["client_name"],
        phone=ess["phone"],
        address=deal.address,
        map_url=map_url(deal.address) if deal.address else None,
        measurement_at=deal.measurement_at,
        need=deal.need,
        manager_name=ess["manager_name"],
        manager_comment=ess["manager_comment"],
        measurer_name=await employee_name(uow, deal.measurer_id),
        measurers=measurers,
        declined_by=declined_by,
        decline_reason=decline_reason,
        attachments=n_files,
    )


async def task_card(uow: UnitOfWork, actor: Actor, task_id: int) -> TaskCard:
    """One task as its assignee (or a leader) sees it; a forged id is refused."""
    task = await _load_task(uow, actor, task_id, Action.TASK_VIEW)
    return await _card(uow, task)


Scope = Literal["today", "upcoming"]


async def list_my_tasks(
    uow: UnitOfWork,
    actor: Actor,
    scope: Scope = "today",
    tz: str | None = None,
    limit: int = 30,
) -> list[TaskInfo]:
    """/tasks: open tasks of the person (and of their roles, not yet taken).

    today: due before tomorrow (so overdue too) and undated; upcoming: due from tomorrow on.
    """
    if scope not in ("today", "upcoming"):
        raise ValidationError("scope", "unknown")
    zone = tz or policy.timezone
    today = dates.local_today(uow.clock, zone)
    _, end_of_today = dates.local_day_bounds(today, zone)
    queries = TaskQueries(uow.session)
    roles = [str(r) for r in actor.roles]
    if scope == "today":
        rows = await queries.mine(
            actor.id, roles, due_before=end_of_today, include_undated=True, limit=limit
        )
    else:
        rows = await queries.mine(actor.id, roles, due_from=end_of_today, limit=limit)
    now = uow.clock.now()
    titles = await _deal_titles(uow, [t.deal_id for t in rows if t.deal_id is not None])
    return [_info(t, now, titles.get(t.deal_id) if t.deal_id else None) for t in rows]


async def _deal_titles(uow: UnitOfWork, ids: Sequence[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = await uow.session.execute(select(Deal.id, Deal.title).where(Deal.id.in_(set(ids))))
    return {int(i): str(t) for i, t in rows}


# --- follow-ups, manual tasks, done, snooze -----------------------------------------------


def _future(when: datetime, now: datetime, field_name: str = "when") -> datetime:
    if not isinstance(when, datetime) or when.tzinfo is None:
        raise ValidationError(field_name, "not_a_datetime")
    if when <= now:
        raise ValidationError(field_name, "in_the_past")
    return when.astimezone(UTC)


async def set_next_contact(
    uow: UnitOfWork,
    actor: Actor,
    deal_id: int,
    when: datetime,
    expected_version: int | None = None,
    comment: str | None = None,
) -> DealCard:
    """ "Next contact" on any open deal: a follow-up task for its manager, reminded at `when`.

    Replaces the deal's earlier open follow-up; in Deferred demand it reschedules the
    deferred-contact task instead.
    """
    deal, rules = await stage_core.load_for(uow, actor, deal_id, Action.DEAL_EDIT, expected_version)
    stage = rules.stage(deal.stage_id)
    if stage.kind in (StageKind.WON, StageKind.LOST):
        raise RuleViolation("deal_closed", stage=stage.name)
    now = uow.clock.now()
    when = _future(when, now)
    note = validation.optional_text(comment, "comment")
    kind = TaskKind.DEFERRED_CONTACT if rules.pipeline.role == "deferred" else TaskKind.FOLLOW_UP
    for old in await uow.repo.tasks.open_for_deal(deal.id, kind):
        await _close_and_cancel(uow, old, TaskStatus.CANCELLED)
    deal.next_contact_at = when
    deal.updated_at = now
    deal.last_activity_at = now
    await create_task(
        uow,
        kind=kind,
        title=deal.title,
        due_at=when,
        created_by_id=actor.id,
        deal_id=deal.id,
        assignee_id=deal.manager_id or actor.id,
        comment=note,
    )
    card: DealCard = await stage_core.finish(uow, actor, deal)
    return card


async def set_next_contact_quick(
    uow: UnitOfWork,
    actor: Actor,
    deal_id: int,
    choice: dates.QuickChoice | str,
    tz: str | None = None,
    expected_version: int | None = None,
) -> DealCard:
    when = dates.quick(choice, uow.clock, tz or policy.timezone)
    return await set_next_contact(uow, actor, deal_id, when, expected_version)


async def create_manual_task(
    uow: UnitOfWork,
    actor: Actor,
    title: str,
    due_at: datetime,
    assignee_id: int | None = None,
    deal_id: int | None = None,
    comment: str | None = None,
) -> TaskInfo:
    """A task with a due time for oneself, or (a leader) for a manager."""
    require(actor, Action.TASK_CREATE)
    text = validation.optional_text(title, "title", 500)
    if text is None:
        raise ValidationError("title", "empty")
    now = uow.clock.now()
    due = _future(due_at, now, "due_at")
    note = validation.optional_text(comment, "comment")
    target = actor.id if assignee_id is None else assignee_id
    if target != actor.id:
        require(actor, Action.TASK_CREATE_FOR_OTHERS)
        emp = await uow.repo.get(Employee, target) if _is_id(target) else None
        if emp is None or not emp.active or Role.MANAGER not in emp.roles:
            raise ValidationError("assignee", "not_a_manager")
    deal_title = None
    if deal_id is not None:
        deal = await load(uow, Deal, deal_id, "deal")
        require(actor, Action.DEAL_VIEW, deal)
        deal_title = deal.title
    task = await create_task(
        uow,
        kind=TaskKind.CUSTOM,
        title=text,
        due_at=due,
        created_by_id=actor.id,
        deal_id=deal_id,
        assignee_id=target,
        comment=note,
    )
    await commit(uow, "task")
    return _info(task, now, deal_title)


async def done(
    uow: UnitOfWork, actor: Actor, task_id: int, expected_version: int | None = None
) -> TaskInfo:
    """The "Done" button of a reminder."""
    task = await _load_task(uow, actor, task_id)
    _require_open(task)
    check_version("task", task.version, expected_version)
    if task.kind in FLOW_KINDS:
        raise RuleViolation("use_task_flow", kind=task.kind)
    now = uow.clock.now()
    await _close_and_cancel(uow, task, TaskStatus.DONE)
    deal_title = None
    if task.deal_id is not None:
        deal = await uow.repo.get(Deal, task.deal_id)
        if deal is not None:
            deal_title = deal.title
            deal.last_activity_at = now
            if deal.next_contact_at is not None and deal.next_contact_at == task.due_at:
                deal.next_contact_at = None
    await commit(uow, "task")
    return _info(task, now, deal_title)


async def snooze(
    uow: UnitOfWork,
    actor: Actor,
    task_id: int,
    until: datetime,
    expected_version: int | None = None,
) -> TaskInfo:
    """Move the task's due time (and its reminder); it may escalate again later."""
    task = await _load_task(uow, actor, task_id)
    _require_open(task)
    check_version("task", task.version, expected_version)
    now = uow.clock.now()
    until = _future(until, now, "until")
    previous = task.due_at
    task.due_at = until
    task.escalated_at = None
    await outbox.cancel_pending(uow, task_id=task.id, kinds=[Kind.TASK_DUE])
    deal_title = None
    if task.deal_id is not None:
        deal = await uow.repo.get(Deal, task.deal_id)
        if deal is not None:
            deal_title = deal.title
            if task.kind in (TaskKind.FOLLOW_UP, TaskKind.DEFERRED_CONTACT) and (
                deal.next_contact_at is None or deal.next_contact_at == previous
            ):
                deal.next_contact_at = until
    await uow.flush()
    await _schedule(uow, task, new=False)
    await commit(uow, "task")
    return _info(task, now, deal_title)


async def snooze_quick(
    uow: UnitOfWork,
    actor: Actor,
    task_id: int,
    choice: dates.QuickChoice | str,
    tz: str | None = None,
) -> TaskInfo:
    """Snooze buttons: 1 h, tomorrow 10:00 (any quick choice works)."""
    return await snooze(uow, actor, task_id, dates.quick(choice, uow.clock, tz or policy.timezone))


# --- deferred demand ----------------------------------------------------------------------


async def _deferred_task(uow: UnitOfWork, actor: Actor, task_id: int) -> Task:
    task = await _load_task(uow, actor, task_id)
    _require_kind(task, TaskKind.DEFERRED_CONTACT)
    _require_open(task)
    return task


async def deferred_back_to_sales(uow: UnitOfWork, actor: Actor, task_id: int) -> DealCard:
    """Deferred demand task button "Back to Sales"."""
    task = await _deferred_task(uow, actor, task_id)
    await _close_and_cancel(uow, task, TaskStatus.DONE)
    assert task.deal_id is not None
    card: DealCard = await deals.return_to_sales(uow, actor, task.deal_id, None)
    return card


async def deferred_lost(
    uow: UnitOfWork, actor: Actor, task_id: int, reason_code: str, comment: str | None = None
) -> DealCard:
    """Deferred demand task button "Lost" (a reason from the fixed list)."""
    task = await _deferred_task(uow, actor, task_id)
    await _close_and_cancel(uow, task, TaskStatus.DONE)
    assert task.deal_id is not None
    card: DealCard = await deals.lose(uow, actor, task.deal_id, reason_code, comment)
    return card


async def defer_again(
    uow: UnitOfWork, actor: Actor, task_id: int, when: datetime, comment: str | None = None
) -> DealCard:
    """Deferred demand task button "Defer again": a new date, the deal waits again."""
    task = await _deferred_task(uow, actor, task_id)
    assert task.deal_id is not None
    deal, rules = await stage_core.load_for(uow, actor, task.deal_id, Action.DEAL_MOVE, None)
    if rules.pipeline.role != "deferred":
        raise RuleViolation("not_deferred")
    current = rules.stage(deal.stage_id)
    if current.kind in (StageKind.WON, StageKind.LOST):
        raise RuleViolation("deal_closed", stage=current.name)
    now = uow.clock.now()
    when = _future(when, now)
    note = validation.optional_text(comment, "comment")
    await _close_and_cancel(uow, task, TaskStatus.DONE)
    deal.next_contact_at = when
    if current.id != rules.entry.id:
        rules.check_move(current, rules.entry)
        await stage_core.enter(uow, actor, deal, rules.entry, comment=note)
    else:
        deal.updated_at = now
        deal.last_activity_at = now
    await create_task(
        uow,
        kind=TaskKind.DEFERRED_CONTACT,
        title=deal.title,
        due_at=when,
        created_by_id=actor.id,
        deal_id=deal.id,
        assignee_id=deal.manager_id or actor.id,
        comment=note,
    )
    card: DealCard = await stage_core.finish(uow, actor, deal)
    return card


@dataclass(frozen=True)
class _SystemActor:
    """Who moves a deal when a scheduled job does: no employee (history actor_id NULL)."""

    id: None = None
    name: str = "system"


SYSTEM = cast(Actor, _SystemActor())


async def deferred_due_scan(uow: UnitOfWork, limit: int = 500) -> int:
    """Deferred deals whose contact date came: waiting -> the next stage (Time to call).

    The deferred-contact task itself was made when the deal was deferred; its reminder goes
    out through the outbox at that moment. Commits; returns the number of deals moved.
    """
    try:
        rules = await rules_by_role(uow, "deferred")
    except RuleViolation:
        return 0
    entry = rules.entry
    _, nxt = rules.neighbours(entry)
    if nxt is None or nxt.kind != StageKind.ACTIVE:
        return 0
    now = uow.clock.now()
    moved = 0
    for deal in await TaskQueries(uow.session).deals_due_in_stage(entry.id, now, limit):
        await stage_core.enter(uow, SYSTEM, deal, nxt)
        moved += 1
    await uow.commit()
    return moved


# --- escalation and the morning summary (system jobs) -------------------------------------


async def escalate_overdue(uow: UnitOfWork, delay: timedelta = timedelta(hours=1)) -> int:
    """Open tasks overdue by more than `delay` go to every leader, once per due time.

    Commits; returns the number of tasks escalated.
    """
    now = uow.clock.now()
    queries = TaskQueries(uow.session)
    overdue = await queries.overdue_unescalated(now - delay)
    if not overdue:
        return 0
    leaders = [e for e in await uow.repo.employees.with_role(Role.LEADER)]
    titles = await _deal_titles(uow, [t.deal_id for t in overdue if t.deal_id is not None])
    for task in overdue:
        assert task.due_at is not None
        assignee = await employee_name(uow, task.assignee_id)
        payload = {
            "task_kind": task.kind,
            "title": task.title,
            "title_en": (task.payload or {}).get("title_en"),
            "due_at": iso(task.due_at),
            "assignee": assignee,
            "assignee_role": task.assignee_role,
            "deal_title": titles.get(task.deal_id) if task.deal_id else None,
        }
        for leader in leaders:
            if leader.id == task.assignee_id:
                continue
            await outbox.enqueue(
                uow,
                leader.id,
                Kind.TASK_ESCALATED,
                payload,
                now,
                dedupe_key=f"esc:{task.id}:{leader.id}:{iso(task.due_at)}",
                task_id=task.id,
                deal_id=task.deal_id,
            )
        task.escalated_at = now
    await uow.commit()
    return len(overdue)


SUMMARY_JOB = "summary.morning"
SUMMARY_LIST = 15


async def morning_summary(
    uow: UnitOfWork,
    tz: str | None = None,
    stale_days: int = 7,
    *,
    force: bool = False,
) -> SummaryStats:
    """Each manager's morning message: tasks today, overdue, and deals with no activity for
    `stale_days` in an active stage. Once per local day (JobRun + dedupe keys): a restart or
    a second worker sends nothing twice. Commits."""
    zone = tz or policy.timezone
    now = uow.clock.now()
    today = dates.local_today(uow.clock, zone)
    stats = SummaryStats()
    last = await uow.repo.get(JobRun, SUMMARY_JOB)
    if last is not None and not force:
        if last.last_run_at.astimezone(dates.zone(zone)).date() >= today:
            stats.skipped = True
            return stats
    managers = await uow.repo.employees.with_role(Role.MANAGER)
    ids = [m.id for m in managers]
    queries = TaskQueries(uow.session)
    _, end_of_today = dates.local_day_bounds(today, zone)
    counts = await queries.open_counts(ids, end_of_today, now)
    stale = await queries.stale_deals(ids, now - timedelta(days=stale_days), STALE_EXCLUDED_ROLES)
    per_manager: dict[int, list[tuple[int, str, datetime]]] = defaultdict(list)
    for manager_id, deal_id, title, at in stale:
        per_manager[manager_id].append((deal_id, title, at))
    for manager in managers:
        tasks_today, overdue = counts.get(manager.id, (0, 0))
        stale_list = per_manager.get(manager.id, [])
        if not tasks_today and not stale_list:
            continue
        payload = {
            "date": today.isoformat(),
            "tasks_today": tasks_today,
            "overdue": overdue,
            "stale_days": stale_days,
            "stale_total": len(stale_list),
            "stale": [[d, t, (now - at).days] for d, t, at in stale_list[:SUMMARY_LIST]],
        }
        if await outbox.enqueue(
            uow,
            manager.id,
            Kind.SUMMARY_MORNING,
            payload,
            now,
            dedupe_key=f"summary:{today.isoformat()}:{manager.id}",
        ):
            stats.recipients += 1
            stats.stale_deals += len(stale_list)
            stats.per_manager[manager.id] = len(stale_list)
    if last is None:
        uow.repo.add(JobRun(name=SUMMARY_JOB, last_run_at=now))
    else:
        last.last_run_at = now
    await uow.commit()
    return stats


# services.sales.deals and .stage import this module (create_task, on_stage_entry): import
# them last, once everything they need from here exists.
from services.sales import deals  # noqa: E402
from services.sales import stage as stage_core  # noqa: E402
