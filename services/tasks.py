"""Tasks: made by people and automatically by stage rules; delivered through the outbox.

`create_task` is the one place a task row is made, so it is also where its messages are
queued (services/outbox/queue.py): the task card for its assignee(s) now — unless they made the
task themselves — and the reminder at its due time (a measurement: `CompanyPolicy.
measure_remind_before` earlier). `on_stage_entry` makes a stage's automatic task.

Also here: the task card (`task_card`, `card_of`) and lists (`list_my_tasks`), manual tasks
(`create_manual_task`, for oneself or a leader's for a manager), `done` and `snooze`, and the
helpers the other work modules share (`load_task`, `require_open`, `close_and_cancel`...).

This module never moves a deal, so it imports nothing of services.sales but the pipelines:
services.sales.stage calls `on_stage_entry`, services.sales.deals calls `contact_task`. The
modules that move deals sit above both: work/measurement.py (the measurement chain),
work/followups.py (next contact, deferred-demand task buttons), work/installments.py and
work/jobs.py (the scheduled work).

A measurer sees a deal only through their own task (`task_card`); they can never open the
deal itself (services.permissions gives them no DEAL_VIEW). Every function takes
``(uow, actor, ...)``, loads the object and calls ``permissions.require`` on it: a forged
task id is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote_plus

from services import dates, policy, timeline, validation
from services.common import check_version, commit, employee_name, is_id, load
from services.errors import RuleViolation, ValidationError
from services.outbox import queue as outbox
from services.outbox.payloads import DealEssentials, MeasurerLoad, TaskPayload
from services.outbox.queue import Kind
from services.permissions import Action, Actor, require
from storage.enums import OPEN_TASK_STATUSES, ActivityKind, Role, TaskKind, TaskStatus
from storage.models import Contact, Deal, Employee, Stage, Task
from storage.uow import UnitOfWork

# Kinds whose card always goes to the assignee (it carries the buttons of the flow).
CARD_KINDS = (
    TaskKind.ASSIGN_MEASURER,
    TaskKind.MEASURE,
    TaskKind.ASSIGN_CREW,
    TaskKind.INSTALL,
    TaskKind.QUALITY_CHECK,
)
# Kinds closed only through their own flow, never by a plain "Done".
FLOW_KINDS = CARD_KINDS


# --- read models --------------------------------------------------------------------------


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
    due_now: bool = False  # its time has come, not yet overdue (DUE_NOW)


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


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat()


def map_url(address: str) -> str:
    """A map search for the address (opens the maps app on a phone)."""
    return "https://yandex.ru/maps/?text=" + quote_plus(address)


# A task is "due now" from its time until DUE_NOW later; only then is it overdue (the card
# and the reminders read this, so a reminder that fires on time never says "overdue").
DUE_NOW = timedelta(minutes=15)


def is_overdue(due_at: datetime | None, now: datetime) -> bool:
    return due_at is not None and due_at + DUE_NOW < now


def task_info(task: Task, now: datetime, deal_title: str | None = None) -> TaskInfo:
    return TaskInfo(
        id=task.id,
        version=task.version,
        kind=task.kind,
        title=task.title,
        title_en=(task.payload or {}).get("title_en"),
        status=task.status,
        due_at=task.due_at,
        overdue=is_overdue(task.due_at, now) and task.status in OPEN_TASK_STATUSES,
        due_now=task.due_at is not None
        and task.due_at <= now
        and not is_overdue(task.due_at, now)
        and task.status in OPEN_TASK_STATUSES,
        deal_id=task.deal_id,
        deal_title=deal_title,
        assignee_id=task.assignee_id,
        assignee_role=task.assignee_role,
        comment=task.comment,
    )


def reminder_card(task_id: int, deal_id: int | None, p: TaskPayload, now: datetime) -> TaskCard:
    """An open task's card as its reminder knows it (the payload: the notifier has no
    database), so the reminder is drawn with the card's own keyboard."""
    info = TaskInfo(
        id=task_id,
        version=0,
        kind=p.task_kind,
        title=p.title,
        title_en=p.title_en,
        status=TaskStatus.OPEN,
        due_at=p.due_at,
        overdue=is_overdue(p.due_at, now),
        deal_id=deal_id,
        deal_title=p.deal_title,
        assignee_id=None,
        assignee_role=p.assignee_role,
        comment=p.comment,
    )
    return _card(info, p, p.measurers, p.declined_by, p.decline_reason)


def _card(
    info: TaskInfo,
    ess: DealEssentials,
    measurers: tuple[MeasurerLoad, ...],
    declined_by: str | None,
    decline_reason: str | None,
    *,
    measurer_name: str | None = None,
    attachments: int = 0,
) -> TaskCard:
    return TaskCard(
        task=info,
        client_name=ess.client_name,
        phone=ess.phone,
        address=ess.address,
        map_url=map_url(ess.address) if ess.address else None,
        measurement_at=ess.measurement_at,
        need=ess.need,
        manager_name=ess.manager_name,
        manager_comment=ess.manager_comment,
        measurer_name=measurer_name,
        measurers=measurers,
        declined_by=declined_by,
        decline_reason=decline_reason,
        attachments=attachments,
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


async def contact_task(
    uow: UnitOfWork, actor: Actor, deal: Deal, kind: str, when: datetime, comment: str | None
) -> Task:
    """The next contact with the deal's client: a `kind` task (a follow-up, or in Deferred
    demand the deferred-contact task) due at `when`, for the deal's manager, or for whoever
    set it when the deal has none."""
    return await create_task(
        uow,
        kind=kind,
        title=deal.title,
        due_at=when,
        created_by_id=actor.id,
        deal_id=deal.id,
        assignee_id=deal.manager_id or actor.id,
        comment=comment,
    )


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


# An order's dates (issue 24): the manager's reminder on the day, (title, English title).
DATE_REMINDERS = {
    "production_at": ("Срок производства: заказ готов?", "Production date: is the order ready?"),
    "delivery_at": ("Срок доставки: заказ доставлен?", "Delivery date: has it been delivered?"),
}


async def date_reminder(
    uow: UnitOfWork, deal: Deal, field: str, actor_id: int | None
) -> Task | None:
    """The manager's reminder on an order's production or delivery date (set when the deal
    entered the stage that needs it); a date set again moves the open reminder."""
    when = getattr(deal, field, None)
    if field not in DATE_REMINDERS or when is None or deal.manager_id is None:
        return None
    for task in await uow.repo.tasks.open_for_deal(deal.id, TaskKind.CUSTOM):
        if (task.payload or {}).get("date_field") == field:
            if task.due_at != when:
                task.due_at = when
                await outbox.cancel_pending(uow, task_id=task.id, kinds=[Kind.TASK_DUE])
                await uow.flush()
                await _schedule(uow, task, new=False)
            return task
    title, title_en = DATE_REMINDERS[field]
    return await create_task(
        uow,
        kind=TaskKind.CUSTOM,
        title=title,
        due_at=when,
        created_by_id=actor_id,
        deal_id=deal.id,
        assignee_id=deal.manager_id,
        payload={"title_en": title_en, "date_field": field, "auto": True},
    )


async def _recipients(uow: UnitOfWork, task: Task) -> list[int]:
    if task.assignee_id is not None:
        return [task.assignee_id]
    if task.assignee_role:
        return [e.id for e in await uow.repo.employees.with_role(task.assignee_role)]
    return []


async def _send_card(
    uow: UnitOfWork, task: Task, recipient_id: int, payload: TaskPayload, dedupe_key: str
) -> None:
    """The task's card to one recipient, now."""
    await outbox.enqueue(
        uow,
        recipient_id,
        Kind.TASK_NEW,
        payload,
        uow.clock.now(),
        dedupe_key=dedupe_key,
        task_id=task.id,
        deal_id=task.deal_id,
    )


async def _schedule(uow: UnitOfWork, task: Task, *, new: bool) -> None:
    """Queue the task's card (when new) and its due-time reminder for each recipient."""
    now = uow.clock.now()
    payload = await _payload(uow, task)
    recipients = await _recipients(uow, task)
    carded: set[int] = set()
    if new:
        for rid in recipients:
            if task.kind in CARD_KINDS or rid != task.created_by_id:
                await _send_card(uow, task, rid, payload, f"task:{task.id}:new:{rid}")
                carded.add(rid)
    if task.due_at is None:
        return
    before = policy.of(uow).measure_remind_before if task.kind == TaskKind.MEASURE else timedelta(0)
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


async def measurement_moved(uow: UnitOfWork, deal: Deal) -> None:
    """The deal's measurement moved (a new date or address): its open measure task follows
    the date (its reminder with it), and whoever holds the measurement gets the card again,
    marked as moved: the measurer, or the heads of measurers while the assign task is
    open."""
    for task in await uow.repo.tasks.open_for_deal(deal.id):
        if task.kind not in (TaskKind.MEASURE, TaskKind.ASSIGN_MEASURER):
            continue
        rescheduled = task.kind == TaskKind.MEASURE and task.due_at != deal.measurement_at
        if rescheduled:
            task.due_at = deal.measurement_at
            task.escalated_at = None
            await outbox.cancel_pending(uow, task_id=task.id, kinds=[Kind.TASK_DUE])
            await uow.flush()
        payload = (await _payload(uow, task)).model_copy(update={"moved": True})
        for rid in await _recipients(uow, task):
            await _send_card(uow, task, rid, payload, f"task:{task.id}:moved:{rid}:{deal.version}")
        if rescheduled:
            await _schedule(uow, task, new=False)


async def essentials(uow: UnitOfWork, deal: Deal) -> DealEssentials:
    contact = await uow.repo.get(Contact, deal.contact_id) if deal.contact_id else None
    note = await uow.repo.tasks.last_note(deal.id, ActivityKind.NOTE)
    return DealEssentials(
        deal_title=deal.title,
        client_name=contact.name if contact else None,
        phone=contact.phone if contact else None,
        address=deal.address,
        measurement_at=deal.measurement_at,
        need=deal.need,
        manager_name=await employee_name(uow, deal.manager_id),
        manager_comment=note.text if note else None,
    )


async def _last_decline(uow: UnitOfWork, deal_id: int) -> tuple[str | None, str | None] | None:
    """(who, why) of the deal's last declined measurement; None if nobody declined."""
    declined = await uow.repo.tasks.last_declined_measure(deal_id)
    if declined is None:
        return None
    reason = (declined.payload or {}).get("decline_reason")
    return await employee_name(uow, declined.assignee_id), reason


async def _payload(uow: UnitOfWork, task: Task) -> TaskPayload:
    """What the notifier renders (it has no database): a snapshot taken now."""
    deal = await uow.repo.get(Deal, task.deal_id) if task.deal_id else None
    ess = await essentials(uow, deal) if deal is not None else DealEssentials()
    measurers: tuple[MeasurerLoad, ...] = ()
    declined: tuple[str | None, str | None] | None = None
    if deal is not None and task.kind == TaskKind.ASSIGN_MEASURER:
        measurers = tuple(await loads_on(uow, deal.measurement_at))
        declined = await _last_decline(uow, deal.id)
    return TaskPayload(
        **ess.model_dump(),
        task_kind=task.kind,
        title=task.title,
        title_en=(task.payload or {}).get("title_en"),
        due_at=task.due_at,
        comment=task.comment,
        assignee_role=task.assignee_role,
        created_by=await employee_name(uow, task.created_by_id),
        measurers=measurers,
        declined_by=declined[0] if declined else None,
        decline_reason=declined[1] if declined else None,
    )


async def loads_on(
    uow: UnitOfWork,
    when: datetime | None,
    role: Role = Role.MEASURER,
    kind: TaskKind = TaskKind.MEASURE,
) -> list[MeasurerLoad]:
    """The active people of a field `role` (measurers, installers) and how many `kind` jobs
    each has on the local day of `when`."""
    measurers = await uow.repo.employees.with_role(role)
    if when is None:
        return [MeasurerLoad(m.id, m.name, 0) for m in measurers]
    day = when.astimezone(dates.zone(policy.of(uow).timezone)).date()
    start, end = dates.local_day_bounds(day, policy.of(uow).timezone)
    counts = await uow.repo.tasks.measurer_loads([m.id for m in measurers], start, end, kind)
    return [MeasurerLoad(m.id, m.name, counts.get(m.id, 0)) for m in measurers]


# --- loading and closing tasks (shared by the work modules) -------------------------------


async def load_task(
    uow: UnitOfWork, actor: Actor, task_id: int, action: Action = Action.TASK_ACT
) -> Task:
    task = await load(uow, Task, task_id, "task")
    require(actor, action, task)
    return task


def require_open(task: Task) -> None:
    if task.status not in OPEN_TASK_STATUSES:
        raise RuleViolation("task_closed", status=task.status)


def require_kind(task: Task, *kinds: str) -> None:
    if task.kind not in kinds:
        raise RuleViolation("wrong_task_kind", kind=task.kind)


async def task_deal(uow: UnitOfWork, task: Task) -> Deal:
    if task.deal_id is None:
        raise RuleViolation("task_without_deal")
    return await load(uow, Deal, task.deal_id, "deal")


def _close(task: Task, status: TaskStatus, now: datetime) -> None:
    task.status = status
    task.done_at = now


async def close_and_cancel(uow: UnitOfWork, task: Task, status: TaskStatus) -> None:
    _close(task, status, uow.clock.now())
    await outbox.cancel_pending(uow, task_id=task.id)


def future(when: datetime, now: datetime, field_name: str = "when") -> datetime:
    if not isinstance(when, datetime) or when.tzinfo is None:
        raise ValidationError(field_name, "not_a_datetime")
    if when <= now:
        raise ValidationError(field_name, "in_the_past")
    return when.astimezone(UTC)


# --- reading tasks ------------------------------------------------------------------------


async def card_of(uow: UnitOfWork, task: Task) -> TaskCard:
    now = uow.clock.now()
    deal = await uow.repo.get(Deal, task.deal_id) if task.deal_id else None
    info = task_info(task, now, deal.title if deal else None)
    if deal is None:
        return TaskCard(task=info)
    ess = await essentials(uow, deal)
    measurers: tuple[MeasurerLoad, ...] = ()
    declined_by = decline_reason = None
    if task.kind == TaskKind.ASSIGN_MEASURER:
        measurers = tuple(await loads_on(uow, deal.measurement_at))
        declined_by, decline_reason = await _last_decline(uow, deal.id) or (None, None)
    n_files = 0
    if task.kind == TaskKind.MEASURE:
        n_files = await uow.repo.tasks.attachment_count(task.id)
    return _card(
        info,
        ess,
        measurers,
        declined_by,
        decline_reason,
        measurer_name=await employee_name(uow, deal.measurer_id),
        attachments=n_files,
    )


async def task_card(uow: UnitOfWork, actor: Actor, task_id: int) -> TaskCard:
    """One task as its assignee (or a leader) sees it; a forged id is refused."""
    task = await load_task(uow, actor, task_id, Action.TASK_VIEW)
    return await card_of(uow, task)


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
    zone = tz or policy.of(uow).timezone
    today = dates.local_today(uow.clock, zone)
    _, end_of_today = dates.local_day_bounds(today, zone)
    queries = uow.repo.tasks
    roles = [str(r) for r in actor.roles]
    if scope == "today":
        rows = await queries.mine(
            actor.id, roles, due_before=end_of_today, include_undated=True, limit=limit
        )
    else:
        rows = await queries.mine(actor.id, roles, due_from=end_of_today, limit=limit)
    now = uow.clock.now()
    titles = await uow.repo.deals.titles([t.deal_id for t in rows if t.deal_id is not None])
    return [task_info(t, now, titles.get(t.deal_id) if t.deal_id else None) for t in rows]


# --- manual tasks, done, snooze -----------------------------------------------------------


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
    due = future(due_at, now, "due_at")
    note = validation.optional_text(comment, "comment")
    target = actor.id if assignee_id is None else assignee_id
    if target != actor.id:
        require(actor, Action.TASK_CREATE_FOR_OTHERS)
        emp = await uow.repo.get(Employee, target) if is_id(target) else None
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
    return task_info(task, now, deal_title)


async def done(
    uow: UnitOfWork, actor: Actor, task_id: int, expected_version: int | None = None
) -> TaskInfo:
    """The "Done" button of a reminder."""
    task = await load_task(uow, actor, task_id)
    require_open(task)
    check_version("task", task.version, expected_version)
    if task.kind in FLOW_KINDS:
        raise RuleViolation("use_task_flow", kind=task.kind)
    now = uow.clock.now()
    await close_and_cancel(uow, task, TaskStatus.DONE)
    _on_timeline(uow, actor, task, ActivityKind.TASK_DONE, task.title)
    deal_title = None
    if task.deal_id is not None:
        deal = await uow.repo.get(Deal, task.deal_id)
        if deal is not None:
            deal_title = deal.title
            deal.last_activity_at = now
            if deal.next_contact_at is not None and deal.next_contact_at == task.due_at:
                deal.next_contact_at = None
    await commit(uow, "task")
    return task_info(task, now, deal_title)


def _on_timeline(
    uow: UnitOfWork,
    actor: Actor,
    task: Task,
    kind: ActivityKind,
    text: str,
    payload: dict[str, Any] | None = None,
) -> None:
    """A task's step on its deal's (or lead's) timeline."""
    if task.deal_id is None and task.lead_id is None:
        return
    timeline.record(
        uow,
        kind,
        actor_id=actor.employee_id,
        text=text,
        deal_id=task.deal_id,
        lead_id=None if task.deal_id else task.lead_id,
        task_id=task.id,
        payload={"task_kind": task.kind, **_title_en(task), **(payload or {})},
    )


def _title_en(task: Task) -> dict[str, Any]:
    """A configured task's English title (the row's text is the Russian one)."""
    title_en = (task.payload or {}).get("title_en")
    return {"title_en": title_en} if title_en else {}


async def snooze(
    uow: UnitOfWork,
    actor: Actor,
    task_id: int,
    until: datetime,
    expected_version: int | None = None,
) -> TaskInfo:
    """Move the task's due time (and its reminder); it may escalate again later."""
    task = await load_task(uow, actor, task_id)
    require_open(task)
    check_version("task", task.version, expected_version)
    now = uow.clock.now()
    until = future(until, now, "until")
    previous = task.due_at
    task.due_at = until
    _on_timeline(
        uow, actor, task, ActivityKind.TASK_SNOOZED, task.title, {"until": until.isoformat()}
    )
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
    return task_info(task, now, deal_title)


async def snooze_quick(
    uow: UnitOfWork,
    actor: Actor,
    task_id: int,
    choice: dates.QuickChoice | str,
    tz: str | None = None,
) -> TaskInfo:
    """Snooze buttons: 1 h, tomorrow 10:00 (any quick choice works)."""
    return await snooze(
        uow, actor, task_id, dates.quick(choice, uow.clock, tz or policy.of(uow).timezone)
    )
