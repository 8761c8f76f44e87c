"""Order fulfilment on /funnel (issue 24): lead time from the contract to the installation
(median and 75th percentile, in days), each installer's load, and claims per crew.

- Lead time: orders that reached *Installed* (stage code `INSTALLED`, first entry) in the
  period; the clock starts when their sale entered *Contract signed* (`CONTRACT`, first
  entry), or, for a sale that skipped it, when the order was made.
- Crew load: installation jobs due in the period per installer, and how many are done.
- Claims per crew: claims made in the period, counted for every installer who finished a
  job on the order the claim is about.

Percentiles interpolate linearly between the nearest ranks (numpy's default), so a
hand-computed fixture can check them. Leaders, admins and heads of installation only.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from services.common import employee_name
from services.errors import PermissionDenied, RuleViolation
from services.permissions import Action, Actor, can
from services.reports.analytics import DateRange, ReportFilter, resolve_period
from services.sales.pipelines import PipelineRules, rules_by_role
from storage.enums import PipelineRole, Role, TaskStatus
from storage.uow import UnitOfWork

CONTRACT = "contract_signed"
INSTALLED = "installed"


@dataclass(frozen=True)
class CrewRow:
    installer_id: int
    name: str
    jobs: int
    done: int
    claims: int


@dataclass(frozen=True)
class FulfilmentReport:
    range: DateRange
    orders: int  # orders installed in the period (the lead-time samples)
    median_days: float | None
    p75_days: float | None
    crews: tuple[CrewRow, ...]


def percentile(values: list[float], q: float) -> float | None:
    """The q-th quantile (0..1), linear between the nearest ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


async def fulfilment(uow: UnitOfWork, actor: Actor, filters: ReportFilter) -> FulfilmentReport:
    if not (can(actor, Action.REPORTS_ALL) or can(actor, Action.ASSIGN_CREW)):
        raise PermissionDenied(str(Action.REPORTS_ALL))
    period = resolve_period(filters, uow.clock.now())
    repo = uow.repo.fulfilment
    orders = await rules_by_role(uow, PipelineRole.FULFILMENT)
    sales = await rules_by_role(uow, PipelineRole.SALES)
    samples: list[float] = []
    installed_stage = next((s for s in orders.stages if s.code == INSTALLED), None)
    contract_stage = next((s for s in sales.stages if s.code == CONTRACT), None)
    if installed_stage is not None:
        installed = {
            d: at
            for d, at in (await repo.first_entries(installed_stage.id)).items()
            if period.start <= at < period.end
        }
        made = await repo.parents(list(installed))
        parent_ids = [p for p, _ in made.values() if p is not None]
        signed = (
            await repo.first_entries(contract_stage.id, parent_ids)
            if contract_stage is not None
            else {}
        )
        for order_id, at in installed.items():
            parent, created = made[order_id]
            start = signed.get(parent, created) if parent is not None else created
            samples.append((at - start) / timedelta(days=1))
    jobs: Counter[int] = Counter()
    done: Counter[int] = Counter()
    for installer, status, n in await repo.crew_jobs(period.start, period.end):
        jobs[installer] += n
        if status == TaskStatus.DONE:
            done[installer] += n
    claims: Counter[int] = Counter()
    try:
        claims_rules: PipelineRules | None = await rules_by_role(uow, PipelineRole.CLAIMS)
    except RuleViolation:  # a configuration without claims: none to count
        claims_rules = None
    if claims_rules is not None:
        for _, installer in await repo.claims_with_crews(
            claims_rules.pipeline.id, period.start, period.end
        ):
            claims[installer] += 1
    people = {e.id for e in await uow.repo.employees.with_role(Role.INSTALLER)}
    people |= set(jobs) | set(claims)
    rows = [
        CrewRow(i, await employee_name(uow, i) or "", jobs[i], done[i], claims[i]) for i in people
    ]
    rows.sort(key=lambda r: (-r.jobs, r.name, r.installer_id))
    return FulfilmentReport(
        range=period,
        orders=len(samples),
        median_days=percentile(samples, 0.5),
        p75_days=percentile(samples, 0.75),
        crews=tuple(rows),
    )
