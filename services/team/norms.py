"""Daily norms and first-response figures per employee (issue 26): one computation each,
shown alike by /funnel, the digests, the morning summary and the Mini App dashboard.

- `norm_results(uow, day)`: for every active employee whose role has norms
  (`CompanyPolicy.norms`), what each norm counted on that local day (company time zone)
  against its target. Counted from the timeline of the day: calls and notes logged by
  them (activities), next contacts they set (follow-up / call-back / deferred-contact
  tasks they made), leads they took into work (their leads' first touches that day) and
  measurements booked on their deals (measurement tasks made that day).
- `response_times(uow, start, end)`: per manager, over the leads that came to them in
  [start, end): the median first-response time in working minutes (the clock stops outside
  working hours: services/worktime.py) of the answered ones, and the share answered within
  the limit among those whose time is up (answered, or still waiting past their due
  moment); leads still inside their limit are not counted yet.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from statistics import median

from services import dates, policy
from services.permissions import Action, Actor, can, require
from storage.uow import UnitOfWork


@dataclass(frozen=True)
class NormResult:
    employee_id: int
    name: str
    what: str  # services.policy.NORM_KINDS
    done: int
    target: int

    @property
    def met(self) -> bool:
        return self.done >= self.target


async def norm_results(
    uow: UnitOfWork, day: date, employee_ids: set[int] | None = None
) -> list[NormResult]:
    """Every norm of every active employee with a role that has norms (only `employee_ids`
    when given), on local `day`: in name order, then in the configured order."""
    pol = policy.of(uow)
    if not pol.norms:
        return []
    people = [
        e
        for e in await uow.repo.employees.active()  # by name
        if any(n.role in e.roles for n in pol.norms)
        and (employee_ids is None or e.id in employee_ids)
    ]
    start, end = dates.local_day_bounds(day, pol.timezone)
    counts = await uow.repo.response.norm_counts(start, end, [e.id for e in people])
    results: list[NormResult] = []
    for e in people:
        seen: set[str] = set()
        for norm in pol.norms:
            if norm.role in e.roles and norm.what not in seen:  # the first role's wins
                seen.add(norm.what)
                done = counts.get((e.id, norm.what), 0)
                results.append(NormResult(e.id, e.name, norm.what, done, norm.per_day))
    return results


@dataclass(frozen=True)
class ResponseFigures:
    manager_id: int
    name: str
    leads: int  # came to them in the period
    answered: int
    median_minutes: int | None  # working minutes, rounded; None: nothing answered yet
    counted: int  # leads whose time is up (answered, or waiting past their due moment)
    within: int  # ... answered within the limit
    limit_minutes: int

    @property
    def share(self) -> int | None:
        """Percent answered within the limit (whole), None when nothing is counted yet."""
        return None if not self.counted else round(100 * self.within / self.counted)


async def response_times(
    uow: UnitOfWork, start: datetime, end: datetime, manager_ids: set[int] | None = None
) -> list[ResponseFigures]:
    """First response per manager over the leads that came in [start, end), in name order
    (only `manager_ids` when given)."""
    pol = policy.of(uow)
    hours, limit = pol.work_hours, pol.first_response
    now = uow.clock.now()
    rows = await uow.repo.response.response_rows(start, end, manager_ids)
    by_manager: dict[int, list[tuple[datetime, datetime | None]]] = defaultdict(list)
    for manager_id, came, touched in rows:
        by_manager[manager_id].append((came, touched))
    names = {e.id: e.name for e in await uow.repo.employees.all()}
    figures: list[ResponseFigures] = []
    for manager_id, leads in by_manager.items():
        waits: list[float] = []  # seconds
        counted = within = 0
        for came, touched in leads:
            due = hours.add(came, limit)
            if touched is not None:
                waits.append(hours.elapsed(came, touched).total_seconds())
                counted += 1
                within += touched <= due
            elif due <= now:
                counted += 1
        mid = round(median(waits) / 60) if waits else None
        figures.append(
            ResponseFigures(
                manager_id,
                names.get(manager_id, "?"),
                len(leads),
                len(waits),
                mid,
                counted,
                within,
                round(limit.total_seconds() / 60),
            )
        )
    figures.sort(key=lambda f: (f.name, f.manager_id))
    return figures


@dataclass(frozen=True)
class TeamFigures:
    """What /funnel's managers view, the digests and the Mini App dashboard show of the
    team's discipline: first response over [start, end) and the norms of local `day`."""

    start: datetime
    end: datetime
    day: date
    limit_minutes: int
    response: tuple[ResponseFigures, ...]
    norms: tuple[NormResult, ...]


async def team_figures(
    uow: UnitOfWork, actor: Actor, start: datetime, end: datetime, day: date
) -> TeamFigures:
    """The one computation behind every screen: a leader or an admin sees everyone, a
    manager their own rows (REPORTS_OWN; measurers are refused)."""
    require(actor, Action.REPORTS_OWN)
    only = None if can(actor, Action.REPORTS_ALL) else {actor.id}
    pol = policy.of(uow)
    return TeamFigures(
        start=start,
        end=end,
        day=day,
        limit_minutes=round(pol.first_response.total_seconds() / 60),
        response=tuple(await response_times(uow, start, end, only)),
        norms=tuple(await norm_results(uow, day, only)),
    )


def last_full_day(uow: UnitOfWork, upto: date | None = None, at: datetime | None = None) -> date:
    """The local day whose norms are shown at `at` (default: now): today once its working
    hours are over (an evening digest tells the leader about the day just worked), else
    yesterday; `upto` when it is earlier."""
    company = policy.of(uow)
    local = (at or uow.clock.now()).astimezone(dates.zone(company.timezone))
    over = local.time().replace(tzinfo=None) >= company.work_hours.end
    day = local.date() if over else local.date() - timedelta(days=1)
    return day if upto is None else min(upto, day)
