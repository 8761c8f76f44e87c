"""Installment control: a won deal paid in parts, tracked in its own pipeline.

`win_with_installments` wins the deal in Sales (same rules as services.deals.win) and, in the
same commit, puts a copy of it in the Installment control pipeline (``parent_deal_id`` points
to the original) with an `InstallmentPlan` and its `InstallmentDue` rows: an equal split
(count + first due date, monthly; kopecks spread so the parts differ by at most one) or
explicit (date, amount) lines. The parts must add up to the deal amount exactly.

Reminders: each due gets an ``installment.upcoming`` outbox row N days before its date at
10:00 local (moot, so not sent, once the part is paid). `mark_overdue` (a scheduled job) finds
parts still unpaid `grace_days` after their date: the deal moves to Overdue (once) and the
manager and the leaders are told (once per part). `record_payment` (full or partial, with its
date) pays the oldest unpaid parts first and refuses over-payment; paid off -> the
pipeline's won stage; nothing overdue left -> back to Awaiting payment. `receivables`
(/receivables) aggregates open balances and overdue sums in SQL.

Money is integer kopecks throughout.
"""

from __future__ import annotations

from calendar import monthrange
from dataclasses import dataclass
from datetime import date, timedelta

from services import dates, policy, timeline, validation
from services.clock import Clock
from services.common import check_version, commit, employee_name, load
from services.errors import RuleViolation, ValidationError
from services.outbox import clients as client_messages
from services.outbox import queue as outbox
from services.outbox.payloads import InstallmentOverdue, InstallmentPaid, InstallmentUpcoming
from services.outbox.queue import Kind
from services.permissions import SYSTEM, Action, Actor, require
from services.sales import stage as stage_core
from services.sales.pipelines import PipelineRules, rules_by_role, rules_for
from storage.enums import ActivityKind, PipelineRole, Role, StageKind
from storage.models import (
    Deal,
    Employee,
    InstallmentDue,
    InstallmentPlan,
    Payment,
    Stage,
)
from storage.uow import UnitOfWork

MAX_PARTS = 60
OVERDUE_STAGE = "overdue"
REMIND_HOUR = dates.DEFAULT_HOUR


# --- plans --------------------------------------------------------------------------------


@dataclass(frozen=True)
class EqualSplit:
    """`count` equal parts, the first on `first_due`, then every `every_months` months."""

    count: int
    first_due: date
    every_months: int = 1


@dataclass(frozen=True)
class ExplicitPlan:
    """Typed parts: (due date, amount in kopecks)."""

    items: tuple[tuple[date, int], ...]


PlanSpec = EqualSplit | ExplicitPlan


@dataclass(frozen=True)
class DueInfo:
    n: int
    due_date: date
    amount: int
    paid: int
    overdue: bool

    @property
    def remaining(self) -> int:
        return self.amount - self.paid


@dataclass(frozen=True)
class InstallmentSummary:
    deal_id: int
    version: int
    source_deal_id: int
    title: str
    total: int
    paid: int
    remaining: int
    overdue_amount: int
    stage_code: str
    closed: bool
    dues: tuple[DueInfo, ...]

    @property
    def next_due(self) -> DueInfo | None:
        for due in self.dues:
            if due.remaining > 0:
                return due
        return None


@dataclass(frozen=True)
class ReceivableRow:
    deal_id: int
    title: str
    manager_id: int | None
    manager_name: str | None
    total: int
    paid: int
    remaining: int
    overdue: int
    overdue_since: date | None
    next_due: date | None


@dataclass(frozen=True)
class Receivables:
    rows: tuple[ReceivableRow, ...]
    total_remaining: int
    total_overdue: int


def _add_months(d: date, months: int) -> date:
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    return date(year, month, min(d.day, monthrange(year, month)[1]))


def equal_split(
    total: int, count: int, first_due: date, every_months: int = 1
) -> list[tuple[date, int]]:
    """Parts that differ by at most one kopeck (the larger ones first), dated monthly
    (the 31st becomes the month's last day)."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_PARTS:
        raise ValidationError("count", "out_of_range", max=MAX_PARTS)
    if not 1 <= every_months <= 12:
        raise ValidationError("every_months", "out_of_range")
    if total < count:
        raise ValidationError("count", "too_many_for_amount")
    base, extra = divmod(total, count)
    return [
        (_add_months(first_due, i * every_months), base + (1 if i < extra else 0))
        for i in range(count)
    ]


def _schedule(plan: PlanSpec, total: int, today: date) -> list[tuple[date, int]]:
    if isinstance(plan, EqualSplit):
        if not isinstance(plan.first_due, date):
            raise ValidationError("first_due", "invalid")
        if plan.first_due < today:
            raise ValidationError("first_due", "in_the_past")
        return equal_split(total, plan.count, plan.first_due, plan.every_months)
    items = list(plan.items)
    if not 1 <= len(items) <= MAX_PARTS:
        raise ValidationError("plan", "out_of_range", max=MAX_PARTS)
    for when, amount in items:
        if not isinstance(when, date):
            raise ValidationError("plan", "invalid_date")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise ValidationError("plan", "invalid_amount")
        if when < today:
            raise ValidationError("plan", "in_the_past", date=when.isoformat())
    items.sort(key=lambda item: item[0])
    if len({when for when, _ in items}) != len(items):
        raise ValidationError("plan", "duplicate_date")
    got = sum(amount for _, amount in items)
    if got != total:
        raise ValidationError("plan", "sum_mismatch", expected=total, got=got)
    return items


def parse_plan_lines(text: str, clock: Clock, tz: str) -> ExplicitPlan:
    """Typed parts, one per line: "25.12.2026 50 000" or "50000 — 25.12" (either order)."""
    items: list[tuple[date, int]] = []
    lines = [ln for ln in (text or "").splitlines() if ln.strip()]
    if not lines or len(lines) > MAX_PARTS:
        raise ValidationError("plan", "unparseable")
    for line in lines:
        parsed = _parse_line(line, clock, tz)
        if parsed is None:
            raise ValidationError("plan", "unparseable", line=line.strip()[:60])
        items.append(parsed)
    return ExplicitPlan(tuple(items))


def _parse_line(line: str, clock: Clock, tz: str) -> tuple[date, int] | None:
    tokens = line.strip().split()
    # Try every split point: the date is a prefix or a suffix of the line.
    for i in range(1, len(tokens)):
        for day_part, money_part in (
            (tokens[:i], tokens[i:]),
            (tokens[len(tokens) - i :], tokens[: len(tokens) - i]),
        ):
            money = " ".join(money_part).strip(" —–-:=")
            try:
                day = dates.parse_day(" ".join(day_part), clock, tz)
                amount = validation.amount(money)
            except ValidationError:
                continue
            if amount > 0:
                return day, amount
    return None


# --- winning with installments ------------------------------------------------------------


async def win_with_installments(
    uow: UnitOfWork,
    actor: Actor,
    deal_id: int,
    plan: PlanSpec,
    expected_version: int | None = None,
    fields: dict[str, object] | None = None,
    reminder_days: int | None = None,
    tz: str | None = None,
) -> InstallmentSummary:
    """Win the deal and open its copy in Installment control with the payment plan.

    One commit: the win, the copy, the plan, its dues and their reminders, or nothing.
    `reminder_days` before each date (default: the policy's) its reminder goes out.
    """
    company = policy.of(uow)
    zone = tz or company.timezone
    if reminder_days is None:
        reminder_days = company.installment_reminder_days
    deal, rules = await stage_core.load_for(uow, actor, deal_id, Action.DEAL_MOVE, expected_version)
    if rules.pipeline.role == PipelineRole.INSTALLMENTS:
        raise RuleViolation("already_installments")
    queries = uow.repo.installments
    if await queries.plan_from_source(deal.id) is not None:
        raise RuleViolation("plan_exists")
    now = uow.clock.now()
    today = dates.local_today(uow.clock, zone)
    target = rules.first_of(StageKind.WON)
    rules.check_move(rules.stage(deal.stage_id), target)
    stage_core.apply_fields(deal, fields, now)
    if not deal.amount:
        raise ValidationError("amount", "empty")
    schedule = _schedule(plan, deal.amount, today)
    inst = await rules_by_role(uow, PipelineRole.INSTALLMENTS)

    deal.with_installments = True
    # The copy in Installment control is a linked deal of the won stage (pipelines file:
    # its `links`, `when = "with_installments"`), made by the stage core.
    made = await stage_core.enter(uow, actor, deal, target)
    copy = next((d for d in made if d.pipeline_id == inst.pipeline.id), None)
    if copy is None:
        raise RuleViolation("pipeline_missing", role=PipelineRole.INSTALLMENTS)
    await _open_plan(uow, actor, deal, copy, schedule, reminder_days, zone)
    await commit(uow, "deal")
    return await _summary(uow, copy, inst, today)


async def _open_plan(
    uow: UnitOfWork,
    actor: Actor,
    deal: Deal,
    copy: Deal,
    schedule: list[tuple[date, int]],
    reminder_days: int,
    zone: str,
) -> None:
    """The plan of `copy` (made from `deal`): its dues, the plan on both timelines, and
    each due's reminder `reminder_days` before its date (no commit)."""
    now = uow.clock.now()
    total = sum(amount for _, amount in schedule)
    record = InstallmentPlan(deal_id=copy.id, source_deal_id=deal.id, total=total, created_at=now)
    uow.repo.add(record)
    await uow.flush()
    dues = [
        InstallmentDue(plan_id=record.id, n=n, due_date=when, amount=amount, paid=0)
        for n, (when, amount) in enumerate(schedule, start=1)
    ]
    for due in dues:
        uow.repo.add(due)
    await uow.flush()
    # The facts, not text: the reader draws them in its own language (handlers/ui/timeline.py).
    plan_dues = [{"date": d.due_date.isoformat(), "amount": d.amount} for d in dues]
    for on_deal in sorted({deal.id, copy.id}):  # the plan on both timelines
        timeline.record(
            uow,
            ActivityKind.PLAN,
            actor_id=actor.employee_id,
            deal_id=on_deal,
            payload={"total": total, "parts": len(dues), "dues": plan_dues},
        )
    recipient = copy.manager_id or actor.employee_id
    for due in dues:
        remind_at = dates.at_local(due.due_date - timedelta(days=reminder_days), REMIND_HOUR, zone)
        # The client too, in client words (no-op without a linked client).
        await client_messages.payment_due(uow, copy, due, len(dues), max(remind_at, now))
        if recipient is None:
            continue
        await outbox.enqueue(
            uow,
            recipient,
            Kind.INSTALLMENT_UPCOMING,
            InstallmentUpcoming(
                deal_title=copy.title,
                n=due.n,
                count=len(dues),
                amount=due.amount,
                due_date=due.due_date,
                due_id=due.id,
            ),
            max(remind_at, now),
            dedupe_key=f"inst:{due.id}:pre",
            deal_id=copy.id,
        )


async def open_final_payment(uow: UnitOfWork, actor: Actor, order: Deal, percent: int) -> int:
    """An order's final payment (a stage's `final_payment_percent`): one part of the
    installment engine due today, its reminder and overdue checks as for any plan. Once per
    order; returns the amount (0: no amount, or already planned). No commit."""
    if not order.amount or await uow.repo.installments.plan_for_deal(order.id) is not None:
        return 0
    amount = max(1, order.amount * percent // 100)
    company = policy.of(uow)
    zone = company.timezone
    today = dates.local_today(uow.clock, zone)
    await _open_plan(
        uow, actor, order, order, [(today, amount)], company.installment_reminder_days, zone
    )
    return amount


# --- reading ------------------------------------------------------------------------------


async def _plan_and_deal(uow: UnitOfWork, deal_id: int) -> tuple[InstallmentPlan, Deal]:
    """The plan of an installment deal, given it or the original (won) deal."""
    deal = await load(uow, Deal, deal_id, "deal")
    queries = uow.repo.installments
    plan = await queries.plan_for_deal(deal.id) or await queries.plan_from_source(deal.id)
    if plan is None:
        raise RuleViolation("no_installment_plan")
    if plan.deal_id != deal.id:
        deal = await load(uow, Deal, plan.deal_id, "deal")
    return plan, deal


async def _summary(
    uow: UnitOfWork, deal: Deal, rules: PipelineRules | None, today: date
) -> InstallmentSummary:
    plan = await uow.repo.installments.plan_for_deal(deal.id)
    assert plan is not None
    if rules is None or rules.pipeline.id != deal.pipeline_id:
        rules = await rules_for(uow, deal.pipeline_id)
    stage = rules.stage(deal.stage_id)
    dues = await uow.repo.installments.dues(plan.id)
    infos = tuple(
        DueInfo(d.n, d.due_date, d.amount, d.paid, d.due_date < today and d.paid < d.amount)
        for d in dues
    )
    paid = sum(d.paid for d in infos)
    return InstallmentSummary(
        deal_id=deal.id,
        version=deal.version,
        source_deal_id=plan.source_deal_id,
        title=deal.title,
        total=plan.total,
        paid=paid,
        remaining=plan.total - paid,
        overdue_amount=sum(d.remaining for d in infos if d.overdue),
        stage_code=stage.code,
        closed=stage.kind in stage_core.CLOSED_KINDS,
        dues=infos,
    )


async def plan_summary(
    uow: UnitOfWork, actor: Actor, deal_id: int, tz: str | None = None
) -> InstallmentSummary:
    plan, deal = await _plan_and_deal(uow, deal_id)
    require(actor, Action.DEAL_VIEW, deal)
    return await _summary(
        uow, deal, None, dates.local_today(uow.clock, tz or policy.of(uow).timezone)
    )


async def schedule_of(uow: UnitOfWork, deal: Deal) -> InstallmentSummary | None:
    """The plan of `deal` itself (an installment copy, an order's final payment), None when
    it has none. No permission check: the caller checked the reader's right to `deal`
    (the client's view, services/clients/views.py)."""
    if await uow.repo.installments.plan_for_deal(deal.id) is None:
        return None
    today = dates.local_today(uow.clock, policy.of(uow).timezone)
    return await _summary(uow, deal, None, today)


# --- payments -----------------------------------------------------------------------------


def _overdue_stage(rules: PipelineRules) -> Stage | None:
    for s in rules.stages:
        if s.code == OVERDUE_STAGE and s.kind == StageKind.ACTIVE:
            return s
    return None


async def record_payment(
    uow: UnitOfWork,
    actor: Actor,
    deal_id: int,
    amount: int | str,
    paid_on: date | None = None,
    expected_version: int | None = None,
    grace_days: int | None = None,
    tz: str | None = None,
) -> InstallmentSummary:
    """A payment (full or partial) with its date: pays the oldest unpaid parts first.

    `deal_id` is the installment deal or the original one; `amount` in kopecks (int) or as
    typed ("15 000,50"). Over-payment is refused. Paid off -> won; nothing overdue any more
    -> back to Awaiting payment. `grace_days`, `tz`: the policy's unless given.
    """
    company = policy.of(uow)
    zone = tz or company.timezone
    if grace_days is None:
        grace_days = company.installment_grace_days
    plan, deal = await _plan_and_deal(uow, deal_id)
    require(actor, Action.PAYMENT_RECORD, deal)
    check_version("deal", deal.version, expected_version)
    rules = await rules_for(uow, deal.pipeline_id)
    current = stage_core.ensure_open(rules, deal)
    value = validation.amount(amount) if isinstance(amount, str) else amount
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValidationError("amount", "not_positive")
    today = dates.local_today(uow.clock, zone)
    day = paid_on or today
    if not isinstance(day, date):
        raise ValidationError("paid_on", "invalid")
    if day > today:
        raise ValidationError("paid_on", "in_the_future")
    dues = await uow.repo.installments.dues(plan.id)
    remaining = sum(d.amount - d.paid for d in dues)
    if value > remaining:
        raise ValidationError("amount", "overpayment", remaining=remaining)
    now = uow.clock.now()
    left = value
    paid_off: list[int] = []
    for due in dues:
        if left == 0:
            break
        take = min(left, due.amount - due.paid)
        if take <= 0:
            continue
        due.paid += take
        left -= take
        if due.paid == due.amount:
            paid_off.append(due.id)
    uow.repo.add(
        Payment(plan_id=plan.id, amount=value, paid_on=day, recorded_by_id=actor.id, at=now)
    )
    timeline.record(
        uow,
        ActivityKind.PAYMENT,
        actor_id=actor.id,
        deal_id=deal.id,
        at=now,
        payload={"amount": value, "paid_on": day.isoformat()},
    )
    deal.last_activity_at = now
    deal.updated_at = now
    await outbox.cancel_by_dedupe(uow, [f"inst:{i}:pre" for i in paid_off])
    if remaining - value == 0 and rules.pipeline.role == PipelineRole.INSTALLMENTS:
        await stage_core.enter(uow, actor, deal, rules.first_of(StageKind.WON))
        if deal.manager_id is not None and deal.manager_id != actor.id:
            await outbox.enqueue(
                uow,
                deal.manager_id,
                Kind.INSTALLMENT_PAID,
                InstallmentPaid(deal_title=deal.title, total=plan.total),
                now,
                dedupe_key=f"inst:{plan.id}:paid",
                deal_id=deal.id,
            )
    elif current.code == OVERDUE_STAGE:
        limit = today - timedelta(days=grace_days)
        if not any(d.paid < d.amount and d.due_date < limit for d in dues):
            await stage_core.enter(uow, actor, deal, rules.entry)
    await commit(uow, "deal")
    return await _summary(uow, deal, None, today)


# --- overdue (a scheduled job) ------------------------------------------------------------


async def mark_overdue(
    uow: UnitOfWork, grace_days: int | None = None, tz: str | None = None
) -> int:
    """Parts unpaid `grace_days` after their date: deal -> Overdue, manager and leaders told
    (once per part: ``overdue_notified_at`` and dedupe keys). Commits; returns parts found.
    `grace_days`, `tz`: the policy's unless given. Runs as `permissions.SYSTEM`."""
    company = policy.of(uow)
    zone = tz or company.timezone
    if grace_days is None:
        grace_days = company.installment_grace_days
    today = dates.local_today(uow.clock, zone)
    now = uow.clock.now()
    rows = await uow.repo.installments.newly_overdue(today - timedelta(days=grace_days + 1))
    if not rows:
        return 0
    leaders = await uow.repo.employees.with_role(Role.LEADER)
    moved: set[int] = set()
    rules_cache: dict[int, PipelineRules] = {}
    for due, _plan, deal in rows:
        rules = rules_cache.get(deal.pipeline_id)
        if rules is None:
            rules = rules_cache[deal.pipeline_id] = await rules_for(uow, deal.pipeline_id)
        overdue_stage = _overdue_stage(rules)
        if (
            overdue_stage is not None
            and deal.id not in moved
            and deal.stage_id == rules.entry.id
            and deal.stage_id != overdue_stage.id
        ):
            require(SYSTEM, Action.DEAL_MOVE, deal)
            await stage_core.enter(uow, SYSTEM, deal, overdue_stage)
            moved.add(deal.id)
        due.overdue_notified_at = now
        payload = InstallmentOverdue(
            deal_title=deal.title,
            n=due.n,
            amount=due.amount - due.paid,
            due_date=due.due_date,
            days=(today - due.due_date).days,
            manager=await employee_name(uow, deal.manager_id),
        )
        await client_messages.payment_missed(uow, deal, due, (today - due.due_date).days)
        recipients = [deal.manager_id] if deal.manager_id is not None else []
        recipients += [e.id for e in leaders if e.id not in recipients]
        for rid in recipients:
            await outbox.enqueue(
                uow,
                rid,
                Kind.INSTALLMENT_OVERDUE,
                payload,
                now,
                dedupe_key=f"inst:{due.id}:overdue:{rid}",
                deal_id=deal.id,
            )
    await uow.commit()
    return len(rows)


# --- /receivables -------------------------------------------------------------------------


async def receivables(uow: UnitOfWork, actor: Actor, tz: str | None = None) -> Receivables:
    """Open installment balances and overdue sums: a manager's own, or everyone's."""
    require(actor, Action.REPORTS_OWN)
    today = dates.local_today(uow.clock, tz or policy.of(uow).timezone)
    raw = await uow.repo.installments.receivables(today, None if actor.sees_all else actor.id)
    names: dict[int, str] = {}
    rows = []
    for deal_id, title, manager_id, total, paid, overdue, since, next_due in raw:
        if manager_id is not None and manager_id not in names:
            emp = await uow.repo.get(Employee, manager_id)
            names[manager_id] = emp.name if emp else ""
        rows.append(
            ReceivableRow(
                deal_id=deal_id,
                title=title,
                manager_id=manager_id,
                manager_name=names.get(manager_id) if manager_id is not None else None,
                total=total,
                paid=paid,
                remaining=total - paid,
                overdue=overdue,
                overdue_since=since,
                next_due=next_due,
            )
        )
    rows.sort(key=lambda r: (-r.overdue, r.next_due or date.max, r.deal_id))
    return Receivables(
        rows=tuple(rows),
        total_remaining=sum(r.remaining for r in rows),
        total_overdue=sum(r.overdue for r in rows),
    )
