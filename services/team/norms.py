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
from services.worktime import response_seconds
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
    (only `manager_ids` when given). The stored times (`leads.response_s`, working seconds
    written at the first touch) are added up in one aggregate; working-time arithmetic is
    done only for the leads without one: still waiting (are they past their due moment?)
    or touched before the times were stored (until `backfill_response` has filled them)."""
    pol = policy.of(uow)
    hours, limit = pol.work_hours, pol.first_response
    limit_s = int(limit.total_seconds())
    now = uow.clock.now()
    repo = uow.repo.response
    summary = await repo.response_summary(start, end, manager_ids, limit_s)
    waiting: dict[int, int] = defaultdict(int)  # past their due moment, untouched
    legacy: dict[int, list[float]] = defaultdict(list)  # touched, time not stored yet
    legacy_within: dict[int, int] = defaultdict(int)
    for manager_id, came, touched in await repo.response_unstored(start, end, manager_ids):
        if touched is None:
            waiting[manager_id] += hours.add(came, limit) <= now
        else:
            seconds = response_seconds(hours, came, touched)
            legacy[manager_id].append(seconds)
            legacy_within[manager_id] += seconds <= limit_s
    names = {e.id: e.name for e in await uow.repo.employees.all()}
    figures: list[ResponseFigures] = []
    for manager_id, leads, stored, within in summary:
        answered = stored + len(legacy[manager_id])
        if legacy[manager_id]:  # the slow way, until the back-fill is done
            waits = [*await repo.response_values(manager_id, start, end), *legacy[manager_id]]
            mid_s: float | None = median(waits) if waits else None
        elif stored:  # the middle one or two, by offset
            middle = await repo.response_values(manager_id, start, end, (stored - 1) // 2, 2)
            mid_s = middle[0] if stored % 2 else (middle[0] + middle[1]) / 2
        else:
            mid_s = None
        figures.append(
            ResponseFigures(
                manager_id,
                names.get(manager_id, "?"),
                leads,
                answered,
                None if mid_s is None else round(mid_s / 60),
                answered + waiting[manager_id],
                within + legacy_within[manager_id],
                round(limit_s / 60),
            )
        )
    figures.sort(key=lambda f: (f.name, f.manager_id))
    return figures


BACKFILL_BATCH = 5000


async def backfill_response(uow: UnitOfWork, batch: int = BACKFILL_BATCH) -> int:
    """Store the first-response time of leads touched before it was stored (migration
    0024), `batch` at a time, in the company's working hours; commits. Returns how many
    were filled (0: nothing left; one indexed read)."""
    hours = policy.of(uow).work_hours
    rows = await uow.repo.response.response_unfilled(batch)
    await uow.repo.response.store_responses(
        [(lead_id, response_seconds(hours, came, touched)) for lead_id, came, touched in rows]
    )
    await uow.commit()
    return len(rows)


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
