"""Sales plans and the forecast (issue 26): what a month should bring, what it brought, what
is coming, and the pace that is still needed.

*Plan*: a month's number of sales (won deals) and money (their amount, kopecks) per manager
and for the company (``employee_id`` None), set by a leader or an admin (`set_plan`).

*Done*: the sales pipeline's deals won in the month (company time zone), by the moment they
entered the won stage, whenever they came in — analytics' "what happened" for the won
outcome (the same funnel facts, read per manager through ix_funnel_facts_won_by; a test
checks the company's done equals /funnel's "happened"). A deal reopened is not
done until it is won again; a deal won twice counts once.

*Forecast*: the open deals (in an active stage of the sales pipeline) expected to close by
the month's end, and their weighted money: amount x the stage's probability, rounded per
(stage, manager). A deal's expected close is the date its manager typed
(``deals.expected_close_at``), else the stage's rule: the day it entered the stage plus the
stage's ``close_days`` (pipelines file; `DEFAULT_CLOSE_DAYS` without one). A date that has
passed while the deal is still open counts as "now": the deal is expected this month. Both
are read as index ranges (ix_deals_expected_close, ix_deals_close_rule), never per deal.

*Pace*: what is left of the plan (never below zero) per remaining working day of the month,
today included when it is one (``WORK_DAYS``; Mon-Fri by default), rounded up (money: to
whole roubles). On the last working day, or after it, all that is left.

*Progress* of a plan is in money when the plan has money, else in sales. A manager is told
when a won deal takes it to 50%, 90% and 100% (`after_win`: once each per month, whatever
is won, reopened or won again after); the leaders are told, once a day at most per
manager, that someone is *behind pace*: done below the plan's share of the working days
already past (`behind_scan`, with the morning summary).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from services import dates, policy, validation
from services.dto import PipelineInfo
from services.errors import ValidationError
from services.outbox import queue as outbox
from services.outbox.payloads import PlanBehind, PlanReached
from services.permissions import Action, Actor, can, require
from services.sales.pipelines import rules_by_role
from storage.enums import Role, StageKind
from storage.models import Deal, Employee, Plan, Stage
from storage.uow import UnitOfWork

DEFAULT_CLOSE_DAYS = 30
THRESHOLDS = (50, 90, 100)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_SALES = 1_000_000


# --- the calendar -------------------------------------------------------------------------


def month_of(moment: datetime, tz: str) -> date:
    """The first day of the month `moment` is in, in the company's time zone."""
    return moment.astimezone(dates.zone(tz)).date().replace(day=1)


def next_month(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)


def month_bounds(month: date, tz: str) -> tuple[datetime, datetime]:
    """[start, end) of the month in UTC."""
    zone = dates.zone(tz)
    start = datetime.combine(month, time(0), zone).astimezone(UTC)
    end = datetime.combine(next_month(month), time(0), zone).astimezone(UTC)
    return start, end


def work_days_of(company: policy.CompanyPolicy) -> frozenset[int]:
    """The company's working weekdays (0 = Monday): ``WORK_DAYS``."""
    return company.work_hours.days


def working_days(first: date, end: date, work_days: Iterable[int]) -> int:
    """Working days in [first, end)."""
    days = set(work_days)
    return sum(1 for i in range((end - first).days) if (first + timedelta(i)).weekday() in days)


def _ts(moment: datetime) -> int:
    return math.floor(moment.timestamp())


# --- the report ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanRow:
    employee_id: int | None  # None: the company
    name: str | None
    plan_count: int | None  # None: no plan set
    plan_amount: int | None
    won: int
    won_amount: int
    forecast: int  # open deals expected to close this month
    forecast_amount: int  # their money
    weighted: int  # ... x stage probability
    pace_count: int | None  # per remaining working day (None: no plan)
    pace_amount: int | None
    behind: bool = False  # done below the plan's share of the working days past

    @property
    def has_plan(self) -> bool:
        return bool(self.plan_count or self.plan_amount)

    @property
    def progress(self) -> float | None:
        """Done / plan: in money when the plan has money, else in sales."""
        if self.plan_amount:
            return self.won_amount / self.plan_amount
        if self.plan_count:
            return self.won / self.plan_count
        return None


@dataclass(frozen=True)
class PlanReport:
    pipeline: PipelineInfo
    month: date  # its first day
    as_of: datetime
    manager_id: int | None  # the scope (a manager: themselves)
    days_total: int  # working days in the month
    days_past: int  # ... before today
    days_left: int  # ... from today (included when it is one) to the month's end
    rows: tuple[PlanRow, ...]  # managers, by progress
    company: PlanRow | None  # None for a manager's own view
    close_days: tuple[tuple[int, int], ...] = field(default=())  # (stage id, days) applied


def _pace(plan: int | None, done: int, days_left: int, unit: int = 1) -> int | None:
    if not plan:
        return None
    left = max(plan - done, 0)
    per_day = left / max(days_left, 1)
    return math.ceil(per_day / unit) * unit


def _behind(row_plan: tuple[int, int], won: tuple[int, int], past: int, total: int) -> bool:
    (plan_count, plan_amount), (n, amount) = row_plan, won
    if not total:
        return False
    if plan_amount:
        return amount * total < plan_amount * past
    if plan_count:
        return n * total < plan_count * past
    return False


def _row(
    employee_id: int | None,
    name: str | None,
    plan: Plan | None,
    won: tuple[int, int],
    forecast: tuple[int, int, int],
    report_days: tuple[int, int, int],
) -> PlanRow:
    total, past, left = report_days
    count = plan.sales_count if plan is not None else None
    amount = plan.amount if plan is not None else None
    return PlanRow(
        employee_id=employee_id,
        name=name,
        plan_count=count,
        plan_amount=amount,
        won=won[0],
        won_amount=won[1],
        forecast=forecast[0],
        forecast_amount=forecast[1],
        weighted=forecast[2],
        pace_count=_pace(count, won[0], left),
        pace_amount=_pace(amount, won[1], left, unit=100),
        behind=_behind((count or 0, amount or 0), won, past, total),
    )


def close_days_of(stage: Stage) -> int:
    days = (stage.extras or {}).get("close_days")
    return int(days) if isinstance(days, int) and not isinstance(days, bool) else DEFAULT_CLOSE_DAYS


async def plan_report(
    uow: UnitOfWork, actor: Actor, manager_id: int | None = None, *, tz: str | None = None
) -> PlanReport:
    """This month's plans, done, forecast and pace: per manager and for the company (leaders
    and admins; `manager_id` narrows to one), or a manager's own."""
    require(actor, Action.REPORTS_OWN)
    scope = manager_id if can(actor, Action.REPORTS_ALL) else actor.id
    return await compute(uow, scope, tz=tz)


async def compute(uow: UnitOfWork, scope: int | None, *, tz: str | None = None) -> PlanReport:
    """`plan_report` without the permission check (scheduled work; callers check)."""
    company = policy.of(uow)
    zone = tz or company.timezone
    now = uow.clock.now()
    month = month_of(now, zone)
    since, until = month_bounds(month, zone)
    today = now.astimezone(dates.zone(zone)).date()
    end = next_month(month)
    days = (
        working_days(month, end, work_days_of(company)),
        working_days(month, today, work_days_of(company)),
        working_days(today, end, work_days_of(company)),
    )
    rules = await rules_by_role(uow, "sales")
    pipeline_id = rules.pipeline.id
    stages = await uow.repo.pipelines.stages(pipeline_id, include_archived=True)
    active = [s for s in stages if s.kind == StageKind.ACTIVE]
    employees = {e.id: e for e in await uow.repo.employees.all()}
    repo = uow.repo.plans
    won = {
        mid: (n, amount)
        for mid, n, amount in await repo.won_by_manager(
            pipeline_id, sorted(employees), _ts(since), _ts(until), scope
        )
    }
    probability = {s.id: s.probability for s in active}
    close_days = tuple((s.id, close_days_of(s)) for s in active)
    forecast: dict[int | None, list[int]] = {}
    for stage_id, mid, n, amount in await repo.forecast_cells(
        pipeline_id, close_days, until, sorted(employees), scope
    ):
        cell = forecast.setdefault(mid, [0, 0, 0])
        cell[0] += n
        cell[1] += amount
        cell[2] += (amount * probability[stage_id] + 50) // 100
    plans = {p.employee_id: p for p in await repo.of_month(month)}
    if scope is None:
        ids = {e.id for e in employees.values() if e.active and Role.MANAGER in e.roles}
        ids |= {mid for mid in (*won, *forecast, *plans) if mid is not None}
    else:
        ids = {scope}
    rows = [
        _row(
            mid,
            employees[mid].name if mid in employees else None,
            plans.get(mid),
            won.get(mid, (0, 0)),
            _triple(forecast.get(mid)),
            days,
        )
        for mid in ids
    ]
    rows.sort(
        key=lambda r: (-(r.progress or -1.0), -r.won_amount, r.name or "", r.employee_id or 0)
    )
    whole = None
    if scope is None:
        whole = _row(
            None,
            None,
            plans.get(None),
            (sum(n for n, _ in won.values()), sum(a for _, a in won.values())),
            _triple([sum(c[i] for c in forecast.values()) for i in range(3)]),
            days,
        )
    return PlanReport(
        pipeline=rules.info,
        month=month,
        as_of=now,
        manager_id=scope,
        days_total=days[0],
        days_past=days[1],
        days_left=days[2],
        rows=tuple(rows),
        company=whole,
        close_days=close_days,
    )


def _triple(values: list[int] | None) -> tuple[int, int, int]:
    if not values:
        return (0, 0, 0)
    return (values[0], values[1], values[2])


# --- a deal's expected close -------------------------------------------------------------


def rule_close(stage: Stage, entered_at: datetime) -> datetime:
    """When a deal with no date typed is expected to close: entered the stage + close_days."""
    return entered_at + timedelta(days=close_days_of(stage))


def typed_close(uow: UnitOfWork, raw: object) -> datetime:
    """An expected-close day as typed ("25.12", "пятница"; not in the past) or already read
    (a date, or a moment: its local day), as the company's local midnight in UTC."""
    tz = policy.of(uow).timezone
    if isinstance(raw, datetime):
        if raw.tzinfo is None:
            raise ValidationError("expected_close_at", "invalid")
        day = raw.astimezone(dates.zone(tz)).date()
    elif isinstance(raw, date):
        day = raw
    elif isinstance(raw, str):
        day = dates.parse_day(raw, uow.clock, tz)
    else:
        raise ValidationError("expected_close_at", "invalid")
    if day < dates.local_today(uow.clock, tz):
        raise ValidationError("when", "in_the_past")
    return dates.local_day_bounds(day, tz)[0]


# --- setting a plan -----------------------------------------------------------------------


@dataclass(frozen=True)
class PlanInput:
    """A plan as typed, parsed: what is said back before it is saved."""

    month: date
    employee_id: int | None
    name: str | None  # the manager's (None: the company)
    sales_count: int
    amount: int  # kopecks


def months_offered(uow: UnitOfWork, tz: str | None = None) -> tuple[date, date]:
    """This month and the next: the months a plan is set for."""
    this = month_of(uow.clock.now(), tz or policy.of(uow).timezone)
    return this, next_month(this)


def parse_sales(raw: object) -> int:
    text = raw.strip() if isinstance(raw, str) else raw
    if isinstance(text, bool) or not isinstance(text, int | str):
        raise ValidationError("sales_count", "not_a_number")
    if isinstance(text, str):
        if not text.isdigit():
            raise ValidationError("sales_count", "not_a_number")
        text = int(text)
    if text < 0:
        raise ValidationError("sales_count", "negative")
    if text > MAX_SALES:
        raise ValidationError("sales_count", "too_large")
    return text


async def plan_people(uow: UnitOfWork, actor: Actor) -> list[tuple[int, str]]:
    """Whom a plan is set for (besides the company): the active managers, by name."""
    require(actor, Action.PLAN_SET)
    return [(e.id, e.name) for e in await uow.repo.employees.with_role(Role.MANAGER)]


def split_typed(text: str) -> tuple[str, str]:
    """ "5 1,5 млн" -> ("5", "1,5 млн"): the sales first, the money after them."""
    parts = text.strip().split(maxsplit=1)
    if len(parts) != 2:
        raise ValidationError("sales_plan", "format")
    return parts[0], parts[1]


async def check_plan(
    uow: UnitOfWork,
    actor: Actor,
    month: object,
    employee_id: object,
    sales_count: object,
    amount: object,
    *,
    tz: str | None = None,
) -> PlanInput:
    """Validate a plan (nothing is saved): the month (this or next), the manager (an active
    employee) or None for the company, the sales (a whole number) and the money as people
    type it ("1,5 млн", "150к")."""
    require(actor, Action.PLAN_SET)
    if not isinstance(month, date) or month not in months_offered(uow, tz):
        raise ValidationError("sales_plan", "month")
    name = None
    if employee_id is not None:
        if not isinstance(employee_id, int) or isinstance(employee_id, bool):
            raise ValidationError("sales_plan", "employee")
        employee = await uow.repo.get(Employee, employee_id)
        if employee is None or not employee.active:
            raise ValidationError("sales_plan", "employee")
        name = employee.name
    count = parse_sales(sales_count)
    if not isinstance(amount, int | str) or isinstance(amount, bool):
        raise ValidationError("amount", "not_a_number")
    money = validation.amount(amount)
    if not count and not money:
        raise ValidationError("sales_plan", "empty")
    return PlanInput(month, employee_id, name, count, money)


async def set_plan(
    uow: UnitOfWork,
    actor: Actor,
    month: object,
    employee_id: object,
    sales_count: object,
    amount: object,
    *,
    tz: str | None = None,
) -> PlanInput:
    """Save a plan (replacing that month's for that person). Commits."""
    plan = await check_plan(uow, actor, month, employee_id, sales_count, amount, tz=tz)
    now = uow.clock.now()
    row = await uow.repo.plans.one(plan.month, plan.employee_id)
    if row is None:
        row = Plan(month=plan.month, employee_id=plan.employee_id, updated_at=now)
        uow.repo.add(row)
    row.sales_count = plan.sales_count
    row.amount = plan.amount
    row.set_by_id = actor.employee_id
    row.updated_at = now
    await uow.commit()
    return plan


# --- alerts -------------------------------------------------------------------------------


async def after_win(uow: UnitOfWork, deal: Deal) -> int:
    """A deal of the sales pipeline was just won: tell its manager each plan threshold
    (50, 90, 100%) the month's done has reached, once each (dedupe keys). Returns the
    alerts enqueued. In the caller's transaction."""
    if deal.manager_id is None:
        return 0
    tz = policy.of(uow).timezone
    now = uow.clock.now()
    month = month_of(now, tz)
    plan = await uow.repo.plans.one(month, deal.manager_id)
    if plan is None or not (plan.sales_count or plan.amount):
        return 0
    await uow.flush()  # the win's history row: the facts see it
    report = await compute(uow, deal.manager_id, tz=tz)
    row = report.rows[0]
    share = row.progress or 0.0
    sent = 0
    for pct in THRESHOLDS:
        if share * 100 + 1e-9 < pct:
            break
        payload = PlanReached(
            month=month,
            percent=pct,
            won=row.won,
            won_amount=row.won_amount,
            plan_count=plan.sales_count,
            plan_amount=plan.amount,
        )
        if await outbox.enqueue(
            uow,
            deal.manager_id,
            outbox.Kind.PLAN_REACHED,
            payload,
            now,
            dedupe_key=f"plan:{month:%Y-%m}:{deal.manager_id}:{pct}",
            deal_id=deal.id,
        ):
            sent += 1
    return sent


async def behind_scan(uow: UnitOfWork) -> int:
    """Tell every leader which managers are behind their plan's pace, once a day per
    manager (dedupe keys); nothing on a day off. Commits. Returns the alerts enqueued."""
    company = policy.of(uow)
    now = uow.clock.now()
    today = now.astimezone(dates.zone(company.timezone)).date()
    if today.weekday() not in work_days_of(company):
        return 0
    report = await compute(uow, None)
    behind = [r for r in report.rows if r.behind and r.employee_id is not None]
    leaders = await uow.repo.employees.with_role(Role.LEADER) if behind else []
    sent = 0
    for row in behind:
        payload = PlanBehind(
            month=report.month,
            manager=row.name or "",
            manager_id=row.employee_id or 0,
            won=row.won,
            won_amount=row.won_amount,
            plan_count=row.plan_count or 0,
            plan_amount=row.plan_amount or 0,
            pace_count=row.pace_count,
            pace_amount=row.pace_amount,
            days_left=report.days_left,
        )
        for leader in leaders:
            if await outbox.enqueue(
                uow,
                leader.id,
                outbox.Kind.PLAN_BEHIND,
                payload,
                now,
                dedupe_key=f"plan_behind:{today.isoformat()}:{row.employee_id}:{leader.id}",
            ):
                sent += 1
    await uow.commit()
    return sent


__all__ = [
    "DEFAULT_CLOSE_DAYS",
    "THRESHOLDS",
    "PlanInput",
    "PlanReport",
    "PlanRow",
    "after_win",
    "behind_scan",
    "check_plan",
    "compute",
    "month_bounds",
    "month_of",
    "months_offered",
    "next_month",
    "plan_people",
    "split_typed",
    "rule_close",
    "typed_close",
    "plan_report",
    "set_plan",
    "working_days",
]
