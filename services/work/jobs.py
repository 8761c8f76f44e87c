"""The scheduled work (run by bot/scheduler.py, no person behind it).

`deferred_due_scan` moves deferred deals whose contact date came, as `permissions.SYSTEM`
through services.sales.stage; `escalate_overdue` tells the leaders of late tasks;
`morning_summary` sends each manager their day. Each commits and is safe to run twice
(dedupe keys, JobRun rows). Installment overdue checks live in work/installments.py
(`mark_overdue`). Defaults come from the unit of work's `CompanyPolicy`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services import dates, policy
from services.common import employee_name
from services.errors import RuleViolation
from services.outbox import queue as outbox
from services.outbox.payloads import NormLine, StaleDeal, SummaryMorning, TaskEscalated
from services.outbox.queue import Kind
from services.permissions import SYSTEM, Action, require
from services.sales import stage as stage_core
from services.sales.pipelines import rules_by_role
from services.tasks import iso
from services.team.norms import norm_results
from storage.enums import PipelineRole, Role, StageKind
from storage.models import JobRun
from storage.uow import UnitOfWork

# Pipelines whose quiet deals are no manager's to chase in the morning summary.
STALE_EXCLUDED_ROLES = (PipelineRole.DEFERRED, PipelineRole.INSTALLMENTS, PipelineRole.LEADS)
SUMMARY_JOB = "summary.morning"
SUMMARY_LIST = 15


@dataclass
class SummaryStats:
    recipients: int = 0
    stale_deals: int = 0
    skipped: bool = False
    per_manager: dict[int, int] = field(default_factory=dict)


async def deferred_due_scan(uow: UnitOfWork, limit: int = 500) -> int:
    """Deferred deals whose contact date came: waiting -> the next stage (Time to call).

    The deferred-contact task itself was made when the deal was deferred; its reminder goes
    out through the outbox at that moment. Commits; returns the number of deals moved.
    """
    try:
        rules = await rules_by_role(uow, PipelineRole.DEFERRED)
    except RuleViolation:
        return 0
    entry = rules.entry
    _, nxt = rules.neighbours(entry)
    if nxt is None or nxt.kind != StageKind.ACTIVE:
        return 0
    now = uow.clock.now()
    moved = 0
    for deal in await uow.repo.tasks.deals_due_in_stage(entry.id, now, limit):
        require(SYSTEM, Action.DEAL_MOVE, deal)
        await stage_core.enter(uow, SYSTEM, deal, nxt)
        moved += 1
    await uow.commit()
    return moved


async def escalate_overdue(uow: UnitOfWork, delay: timedelta | None = None) -> int:
    """Open tasks overdue by more than `delay` (default: the policy's escalation delay) go to
    every leader, once per due time. Commits; returns the number of tasks escalated.
    """
    if delay is None:
        delay = policy.of(uow).escalation_delay
    now = uow.clock.now()
    overdue = await uow.repo.tasks.overdue_unescalated(now - delay)
    if not overdue:
        return 0
    leaders = [e for e in await uow.repo.employees.with_role(Role.LEADER)]
    titles = await uow.repo.deals.titles([t.deal_id for t in overdue if t.deal_id is not None])
    for task in overdue:
        assert task.due_at is not None
        assignee = await employee_name(uow, task.assignee_id)
        payload = TaskEscalated(
            task_kind=task.kind,
            title=task.title,
            title_en=(task.payload or {}).get("title_en"),
            due_at=task.due_at,
            assignee=assignee,
            assignee_role=task.assignee_role,
            deal_title=titles.get(task.deal_id) if task.deal_id else None,
        )
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


async def morning_summary(
    uow: UnitOfWork,
    tz: str | None = None,
    stale_days: int | None = None,
    *,
    force: bool = False,
) -> SummaryStats:
    """Each manager's morning message: tasks today, overdue, and deals with no activity for
    `stale_days` in an active stage. Once per local day (JobRun + dedupe keys): a restart or
    a second worker sends nothing twice. Commits. `tz`, `stale_days`: the policy's unless
    given."""
    if stale_days is None:
        stale_days = policy.of(uow).stale_days
    zone = tz or policy.of(uow).timezone
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
    queries = uow.repo.tasks
    _, end_of_today = dates.local_day_bounds(today, zone)
    counts = await queries.open_counts(ids, end_of_today, now)
    stale = await queries.stale_deals(ids, now - timedelta(days=stale_days), STALE_EXCLUDED_ROLES)
    per_manager: dict[int, list[tuple[int, str, datetime]]] = defaultdict(list)
    for manager_id, deal_id, title, at in stale:
        per_manager[manager_id].append((deal_id, title, at))
    norms: dict[int, list[NormLine]] = defaultdict(list)
    for result in await norm_results(uow, today - timedelta(days=1), set(ids)):
        norms[result.employee_id].append(
            NormLine(result.name, result.what, result.done, result.target)
        )
    for manager in managers:
        tasks_today, overdue = counts.get(manager.id, (0, 0))
        stale_list = per_manager.get(manager.id, [])
        mine = norms.get(manager.id, [])
        if not tasks_today and not stale_list and not mine:
            continue
        payload = SummaryMorning(
            date=today,
            tasks_today=tasks_today,
            overdue=overdue,
            stale_days=stale_days,
            stale_total=len(stale_list),
            stale=tuple(StaleDeal(d, t, (now - at).days) for d, t, at in stale_list[:SUMMARY_LIST]),
            norms=tuple(mine),
        )
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
