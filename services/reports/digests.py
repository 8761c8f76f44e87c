"""Scheduled digests to leaders: daily and weekly, "what changed since the previous one".

When: ``DIGEST_DAILY_AT`` ("08:30") every day and ``DIGEST_WEEKLY_AT`` ("Mon 09:00") once a
week, in the company's time zone. A check runs every minute (bot/digests.py) and at start;
`due_digests` decides from the ``job_runs`` row of each digest (its last run):

- a digest is due when its latest scheduled moment (today's 08:30, or yesterday's before
  08:30; this week's Monday 09:00 ...) is later than its last run;
- so a restart after the digest went out sends nothing (the last run is after the moment),
  and a restart after a missed moment sends it once, late (the last run is before it; after
  sending, it is not). Several missed moments give one digest covering them all;
- the first check ever (no row yet) only records "now": the first digest goes out at the
  next scheduled moment and covers the time since.

What: the window is [previous digest, now): new leads, won deals, refusals (lost, and parked
in conditional refusal) with their reasons and money, overdue tasks (all open ones past due,
and how many fell due in the window), plus the headline of the sales snapshot.

Delivery goes through the reminder outbox (services/outbox/queue.py: rate limits, crash safety),
kind ``digest.daily`` / ``digest.weekly``, one row per leader with the dedupe key
``digest:<kind>:<period>:<leader>``: the job-run update and the rows are one transaction,
and a second worker racing it adds nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.errors import ValidationError
from services.outbox import queue as outbox
from services.outbox.payloads import (
    Digest,
    DigestDeal,
    DigestPlan,
    DigestReason,
    DigestTask,
    NormLine,
    ResponseLine,
)
from services.permissions import Actor
from services.reports import analytics
from services.reports.analytics import ReportFilter
from services.sales import plans
from services.team.norms import last_full_day, team_figures
from services.work import rotting
from storage.enums import Role, StageKind
from storage.models import Employee, JobRun
from storage.uow import UnitOfWork

DAILY = "daily"
WEEKLY = "weekly"
KINDS = {DAILY: "digest.daily", WEEKLY: "digest.weekly"}  # outbox kinds and job-run names
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LIST_LIMIT = 10  # items listed per section (the counts are complete)


# --- when ---------------------------------------------------------------------------------


def parse_time(text: str) -> time:
    """ "08:30" -> 08:30 (24-hour clock)."""
    try:
        hours, minutes = text.strip().split(":")
        return time(int(hours), int(minutes))
    except ValueError as exc:
        raise ValidationError("digest_time", "invalid", value=text) from exc


def parse_weekly(text: str) -> tuple[int, time]:
    """ "Mon 09:00" -> (0, 09:00): a weekday (English, 3 letters or whole) and a time."""
    parts = text.strip().split()
    if len(parts) != 2 or parts[0][:3].lower() not in WEEKDAYS:
        raise ValidationError("digest_weekly", "invalid", value=text)
    return WEEKDAYS.index(parts[0][:3].lower()), parse_time(parts[1])


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError("tz", "unknown") from exc


def latest_moment(now: datetime, tz: str, at: time, weekday: int | None = None) -> datetime:
    """The latest scheduled moment not after ``now`` (UTC): ``at`` local time every day, or
    on ``weekday`` (0 = Monday) only."""
    zone = _zone(tz)
    local = now.astimezone(zone)
    day = local.date()
    if weekday is not None:
        day -= timedelta(days=(day.weekday() - weekday) % 7)
    step = timedelta(days=1 if weekday is None else 7)
    moment = datetime.combine(day, at, zone)
    while moment.astimezone(UTC) > now:
        day -= step
        moment = datetime.combine(day, at, zone)
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class DueDigest:
    kind: str  # DAILY or WEEKLY
    moment: datetime  # the scheduled moment it is for (UTC)
    since: datetime  # the window's start: the previous digest
    period: str  # the local date of the moment, for dedupe keys

    @property
    def name(self) -> str:
        return KINDS[self.kind]


def due_digests(
    now: datetime,
    tz: str,
    daily_at: time,
    weekly_at: time,
    weekday: int,
    last_runs: Mapping[str, datetime | None] | None = None,
) -> list[DueDigest]:
    """The digests to send now, given each one's last run (by job-run name; missing or None:
    never run, which is not due: see the module docstring)."""
    runs = last_runs or {}
    due = []
    for kind, at, day in ((DAILY, daily_at, None), (WEEKLY, weekly_at, weekday)):
        last = runs.get(KINDS[kind])
        if last is None:
            continue
        moment = latest_moment(now, tz, at, day)
        if last < moment:
            period = moment.astimezone(_zone(tz)).date().isoformat()
            due.append(DueDigest(kind, moment, last, period))
    return due


# --- what ---------------------------------------------------------------------------------


async def compose_digest(
    uow: UnitOfWork,
    leader: Actor,
    kind: str,
    since: datetime,
    until: datetime,
    *,
    tz: str = "UTC",
    moment: datetime | None = None,
) -> Digest:
    """What changed in [since, until), as the leader may see it (a leader: everyone)."""
    scope = analytics.scope_manager(leader, None)
    names = {e.id: e.name for e in await uow.repo.employees.all()}
    repo = uow.repo.digests
    leads = await repo.lead_count(since, until, scope)
    lead_rows = await repo.first_leads(since, until, scope, LIST_LIMIT)
    won, won_amount, wins = await _moves(uow, since, until, (StageKind.WON,), scope, names)
    lost, lost_amount, losses = await _moves(
        uow, since, until, (StageKind.LOST, StageKind.FROZEN), scope, names
    )
    reasons = await _reasons(uow, since, until, scope)
    overdue, overdue_new, overdue_tasks = await _overdue(uow, since, until, scope, names)
    snap = await analytics.snapshot(uow, leader, ReportFilter(tz=tz, manager_id=scope))
    before = since - (until - since)
    prev_leads = await repo.lead_count(before, since, scope)
    prev_won, prev_won_amount, _ = await _moves(uow, before, since, (StageKind.WON,), scope, names)
    prev_lost, prev_lost_amount, _ = await _moves(
        uow, before, since, (StageKind.LOST, StageKind.FROZEN), scope, names
    )
    today = until.astimezone(_zone(tz)).date()
    speed = await analytics.velocity(
        uow,
        leader,
        ReportFilter(
            period=analytics.Period.CUSTOM,
            start=today - timedelta(days=29),
            end=today,
            tz=tz,
            manager_id=scope,
            compare=True,
        ),
    )
    stale = await rotting.stale_per_manager(uow, scope)
    team = await team_figures(uow, leader, since, until, last_full_day(uow, at=until))
    month = await plans.plan_report(uow, leader, scope, tz=tz)
    return Digest(
        response=[
            ResponseLine(r.name, r.leads, r.median_minutes, r.within, r.counted)
            for r in team.response
        ],
        response_limit=team.limit_minutes,
        norms_day=team.day,
        norms=[NormLine(n.name, n.what, n.done, n.target) for n in team.norms],
        kind=kind,
        since=since,
        until=until,
        moment=moment or until,
        leads=leads,
        lead_names=lead_rows,
        won=won,
        won_amount=won_amount,
        wins=wins,
        lost=lost,
        lost_amount=lost_amount,
        losses=losses,
        reasons=reasons,
        overdue=overdue,
        overdue_new=overdue_new,
        overdue_tasks=overdue_tasks,
        pipeline=snap.pipeline.name,
        pipeline_en=snap.pipeline.name_en,
        active=snap.count,
        active_amount=snap.amount,
        weighted=snap.weighted,
        stuck=snap.stuck,
        prev_leads=prev_leads,
        prev_won=prev_won,
        prev_won_amount=prev_won_amount,
        prev_lost=prev_lost,
        prev_lost_amount=prev_lost_amount,
        cycle_median_days=speed.cycle.median_days,
        cycle_won=speed.cycle.won,
        prev_cycle_median_days=speed.previous.cycle.median_days if speed.previous else None,
        stale_by_manager=sorted(
            ((names.get(mid) if mid is not None else None, n) for mid, n in stale.items() if n),
            key=lambda x: (-x[1], x[0] or ""),
        ),
        plan_month=month.month,
        plan_days_left=month.days_left,
        plan=plan_rows(month),
    )


def plan_rows(report: plans.PlanReport) -> list[DigestPlan]:
    """The digest's plan lines: the company, then everyone with a plan (as /funnel's Plan
    view has them); none when nobody has a plan this month."""
    rows = [report.company] if report.company is not None else []
    rows += [r for r in report.rows if r.has_plan]
    if not any(r.has_plan for r in rows):
        return []
    return [
        DigestPlan(
            name=r.name if r.employee_id is not None else None,
            plan_count=r.plan_count,
            plan_amount=r.plan_amount,
            won=r.won,
            won_amount=r.won_amount,
            forecast=r.forecast,
            weighted=r.weighted,
            pace_count=r.pace_count,
            pace_amount=r.pace_amount,
            behind=r.behind,
        )
        for r in rows
    ]


async def _moves(
    uow: UnitOfWork,
    since: datetime,
    until: datetime,
    kinds: Sequence[str],
    scope: int | None,
    names: Mapping[int, str],
) -> tuple[int, int, list[DigestDeal]]:
    """Deals that entered a stage of these kinds in the window: count, money, the biggest."""
    count, amount, rows = await uow.repo.digests.moves(since, until, kinds, scope, LIST_LIMIT)
    items = [
        DigestDeal(
            id=deal_id,
            title=title,
            amount=None if money is None else int(money),
            manager=names.get(manager_id) if manager_id is not None else None,
            reason=reason.name if reason is not None else None,
            reason_en=reason.name_en if reason is not None else None,
            frozen=stage_kind == StageKind.FROZEN,
        )
        for deal_id, title, money, manager_id, stage_kind, reason in rows
    ]
    return count, amount, items


async def _reasons(
    uow: UnitOfWork, since: datetime, until: datetime, scope: int | None
) -> list[DigestReason]:
    found = await uow.repo.digests.refusal_reasons(since, until, scope)
    labels = {
        r.id: (r.name, r.name_en)
        for r in await uow.repo.catalog.loss_reasons(include_inactive=True)
    }
    result = []
    for rid, n, amount in found:
        name, name_en = labels.get(rid, (None, None)) if rid is not None else (None, None)
        result.append(DigestReason(name=name, name_en=name_en, count=n, amount=amount))
    result.sort(key=lambda r: (-r.count, -r.amount, r.name or ""))
    return result


async def _overdue(
    uow: UnitOfWork, since: datetime, until: datetime, scope: int | None, names: Mapping[int, str]
) -> tuple[int, int, list[DigestTask]]:
    total, new, rows = await uow.repo.digests.overdue_tasks(since, until, scope, LIST_LIMIT)
    tasks = [
        DigestTask(
            id=task_id,
            title=title,
            assignee=names.get(assignee) if assignee is not None else None,
            due_at=_aware(due_at) if due_at is not None else None,
        )
        for task_id, title, assignee, due_at in rows
    ]
    return total, new, tasks


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# --- the check ----------------------------------------------------------------------------


@dataclass
class DigestStats:
    initialized: list[str] = field(default_factory=list)  # job-run rows created
    sent: dict[str, int] = field(default_factory=dict)  # kind -> rows enqueued


async def send_due_digests(
    uow: UnitOfWork,
    *,
    tz: str,
    daily_at: time,
    weekly_at: time,
    weekday: int,
) -> DigestStats:
    """The every-minute check: enqueue the digests that are due for every active leader and
    record the run, in one transaction. Commits."""
    now = uow.clock.now()
    stats = DigestStats()
    names = list(KINDS.values())
    rows = await uow.repo.system.lock_runs(names)
    for name in names:
        if name not in rows:
            uow.repo.add(JobRun(name=name, last_run_at=now))
            stats.initialized.append(name)
    last_runs = {name: _aware(row.last_run_at) for name, row in rows.items()}
    due = due_digests(now, tz, daily_at, weekly_at, weekday, last_runs)
    if due:
        leaders = await uow.repo.employees.with_role(Role.LEADER)
        for digest in due:
            stats.sent[digest.kind] = await _enqueue(uow, digest, leaders, now, tz)
            rows[digest.name].last_run_at = now
    if stats.initialized or due:
        await uow.commit()
    return stats


async def _enqueue(
    uow: UnitOfWork, due: DueDigest, leaders: Sequence[Employee], now: datetime, tz: str
) -> int:
    sent = 0
    composed: Digest | None = None  # every leader sees everyone: the same digest
    for leader in leaders:
        actor = Actor.of(leader)
        if composed is None:
            composed = await compose_digest(
                uow, actor, due.kind, due.since, now, tz=tz, moment=due.moment
            )
        if await outbox.enqueue(
            uow,
            leader.id,
            KINDS[due.kind],
            composed,
            now,
            dedupe_key=f"digest:{due.kind}:{due.period}:{leader.id}",
        ):
            sent += 1
    return sent


__all__ = [
    "DAILY",
    "KINDS",
    "WEEKLY",
    "Digest",
    "DigestStats",
    "DueDigest",
    "compose_digest",
    "due_digests",
    "latest_moment",
    "parse_time",
    "parse_weekly",
    "send_due_digests",
]
