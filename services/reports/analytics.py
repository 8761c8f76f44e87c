"""Reports: snapshot funnel, period (cohort) funnel, loss reasons, managers.

Every report reads covering index ranges of tables derived from ``stage_history`` —
``funnel_facts`` (a row per deal or lead and pipeline), ``stage_visits`` (a row per finished
stay) and ``stage_visit_days`` (their daily counts) — which database triggers keep in step
with it (storage/models/analytics.py, migration 0003). Nothing loads deals into Python: the
largest result is a few hundred aggregate rows. A report fills a small grid of cells
(stage x outcome x stage, stage x duration bucket, ...), each cell one index range counted
by a correlated subquery: about the cost of one indexed COUNT over the cohort's rows. The
SQL is the same on SQLite and PostgreSQL, and the tests check both give the same numbers.

Counting rules
--------------
*Flow* of a pipeline: its active stages in position order, then its (first) won stage —
``PipelineRules.flow``. Lost and frozen (conditional-refusal) stages are not in the flow.
A stage that has since been archived counts as the flow stage just before its position.

*Cohort* of a period: the deals (the leads, for the leads pipeline) whose **first entry into
the pipeline** falls in the period — the first history row with that pipeline. Leaving for
another pipeline and coming back does not make a deal a member of a later cohort.
Every period report (funnel, loss reasons, managers) is about the cohort, with each deal's
state **as of now**: "of the deals that came in last month, how many have reached a
measurement by today".

*Reached* stage *k*: the furthest flow stage the deal has ever entered in the pipeline is
*k* or later. So a skipped stage counts as passed, a move back does not un-reach anything,
and a deal counts once per stage however often it re-entered it. Everyone in the cohort
reached the entry stage. A won deal reached every stage.

*Conversion* of a step = reached(k) / reached(k-1); *from start* = reached(k) / cohort;
*overall* = won / cohort; *win rate* of a stage = won / reached(k) — for a key stage
(``key = true`` in the config) that is its key-stage conversion ("after the measurement:
67%"). *Drop-off* at *k* = reached(k) - reached(k+1): deals whose furthest stage is *k*.

*Outcome*, attributed to the **last flow stage the deal was in** in this pipeline (not the
furthest, so a deal moved back from a measurement to the proposal and lost there is lost
"at the proposal"): ``won``; ``lost`` (entered a lost stage: lost at the stage it was in
before, its money is lost money); ``frozen`` (parked in conditional refusal); ``left``
(moved to another pipeline, e.g. deferred, and not back — it left at that stage);
``open`` (still in an active stage: in progress).

*Time in stage*: each finished stay (the deal entered the stage and later moved on; a
current stay is not finished) of cohort deals is one sample; a deal that entered a stage
twice gives two samples; a skipped stage gives none. The median is exact (whole seconds),
found from per-duration-bucket counts and one sorted slice of the middle bucket.

*Snapshot*: deals now in an active stage (not won, lost, frozen), per stage: count, amount,
weighted forecast (amount x stage probability), and how many have sat in the stage longer
than ``stuck_days``. Money is in minor units (kopecks) everywhere.

Permissions: every report needs REPORTS_OWN (managers, leaders, admins; measurers are
refused). Without REPORTS_ALL the report is of the actor's own deals whatever the filter
says; with it, ``manager_id`` narrows to one manager or None means everyone.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.dto import PipelineInfo, StageInfo, label
from services.errors import NotFound, RuleViolation, ValidationError
from services.permissions import Action, Actor, can, require
from services.sales.pipelines import PipelineRules
from storage.enums import Role, StageKind
from storage.models import Pipeline, Stage
from storage.models.analytics import (
    OUTCOME_FROZEN,
    OUTCOME_LEFT,
    OUTCOME_LOST,
    OUTCOME_OPEN,
    OUTCOME_WON,
    OUTCOMES,
)
from storage.uow import UnitOfWork

MAX_PERIOD_DAYS = 3 * 366


# --- filters ------------------------------------------------------------------------------


class Period(StrEnum):
    THIS_WEEK = "this_week"
    LAST_WEEK = "last_week"
    THIS_MONTH = "this_month"
    LAST_MONTH = "last_month"
    THIS_QUARTER = "this_quarter"
    LAST_QUARTER = "last_quarter"
    CUSTOM = "custom"


@dataclass(frozen=True)
class ReportFilter:
    """What a report is about. Weeks start on Monday, in the company's time zone ``tz``."""

    pipeline_id: int | None = None  # None: the sales pipeline
    period: Period = Period.THIS_MONTH
    start: date | None = None  # CUSTOM: first day, inclusive
    end: date | None = None  # CUSTOM: last day, inclusive
    manager_id: int | None = None  # None: everyone (only for REPORTS_ALL)
    tz: str = "UTC"
    stuck_days: int = 14
    compare: bool = False  # also compute the previous period (previous_range)
    # Losses: the refusals of the deals that *came in* during the period (the cohort)
    # instead of the refusals that *happened* in it (the default).
    came_in: bool = False


@dataclass(frozen=True)
class DateRange:
    period: Period
    first_day: date
    last_day: date  # inclusive
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive


def resolve_period(filters: ReportFilter, now: datetime) -> DateRange:
    """The period's days in the company's time zone and its [start, end) in UTC."""
    try:
        zone = ZoneInfo(filters.tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError("tz", "unknown") from exc
    today = now.astimezone(zone).date()
    try:
        period = Period(filters.period)
    except ValueError as exc:
        raise ValidationError("period", "unknown") from exc
    if period is Period.CUSTOM:
        if filters.start is None or filters.end is None:
            raise ValidationError("period", "dates_required")
        first, last = filters.start, filters.end
        if last < first:
            raise ValidationError("period", "end_before_start")
        if (last - first).days >= MAX_PERIOD_DAYS:
            raise ValidationError("period", "too_long")
    elif period in (Period.THIS_WEEK, Period.LAST_WEEK):
        first = today - timedelta(days=today.weekday())
        if period is Period.LAST_WEEK:
            first -= timedelta(days=7)
        last = first + timedelta(days=6)
    elif period in (Period.THIS_MONTH, Period.LAST_MONTH):
        first = today.replace(day=1)
        if period is Period.LAST_MONTH:
            first = (first - timedelta(days=1)).replace(day=1)
        last = _add_months(first, 1) - timedelta(days=1)
    else:
        first = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
        if period is Period.LAST_QUARTER:
            first = _add_months(first, -3)
        last = _add_months(first, 3) - timedelta(days=1)
    return _range(period, first, last, zone)


def previous_range(span: DateRange, now: datetime, tz: str) -> DateRange:
    """The same span of the previous calendar unit, as a director names it: last week for
    a week, last month for a month (all of October for November, not "02.10–31.10"), the
    previous quarter for a quarter. A period still running is compared day for day: this
    month's 1–7 against the previous month's 1–7 (clipped to its end: 31 March -> 30 April
    is not a thing). A custom period: the same number of days just before it.
    The previous cohort is counted as of now too (it had longer to progress)."""
    zone = ZoneInfo(tz)
    today = now.astimezone(zone).date()
    first, last = span.first_day, span.last_day
    still_running = first <= today < last
    months = {
        Period.THIS_MONTH: 1,
        Period.LAST_MONTH: 1,
        Period.THIS_QUARTER: 3,
        Period.LAST_QUARTER: 3,
    }.get(span.period)
    if months is not None:
        prev_first = _add_months(first, -months)
        prev_last = first - timedelta(days=1)
        if still_running:  # the same day of the month, months back (or that month's end)
            month_end = _add_months(today, -months + 1) - timedelta(days=1)
            prev_last = min(month_end.replace(day=min(today.day, month_end.day)), prev_last)
    else:  # a week (or a custom period): the same number of days just before
        length = (last - first).days + 1
        prev_first, prev_last = first - timedelta(days=length), first - timedelta(days=1)
        if still_running and span.period is not Period.CUSTOM:
            prev_last = prev_first + (today - first)
    return _range(span.period, prev_first, prev_last, zone)


def running(span: DateRange, now: datetime, tz: str) -> bool:
    """The period has not ended yet (today is in it, before its last day)."""
    today = now.astimezone(ZoneInfo(tz)).date()
    return span.first_day <= today < span.last_day


def _range(period: Period, first: date, last: date, zone: ZoneInfo) -> DateRange:
    start = datetime.combine(first, datetime.min.time(), zone).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), zone).astimezone(UTC)
    return DateRange(period, first, last, start, end)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _ts(moment: datetime) -> int:
    """Whole epoch seconds, as the triggers store them."""
    return math.floor(moment.timestamp())


# --- results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SnapshotStage:
    stage: StageInfo
    count: int
    amount: int
    weighted: int  # amount x stage probability
    stuck: int  # in this stage longer than stuck_days


@dataclass(frozen=True)
class SnapshotFunnel:
    pipeline: PipelineInfo
    manager_id: int | None
    as_of: datetime
    stuck_days: int
    stages: tuple[SnapshotStage, ...]
    frozen: int  # parked in conditional refusal (not in the stages)
    frozen_amount: int

    @property
    def count(self) -> int:
        return sum(s.count for s in self.stages)

    @property
    def amount(self) -> int:
        return sum(s.amount for s in self.stages)

    @property
    def weighted(self) -> int:
        return sum(s.weighted for s in self.stages)

    @property
    def stuck(self) -> int:
        return sum(s.stuck for s in self.stages)


@dataclass(frozen=True)
class FunnelStep:
    stage: StageInfo
    reached: int
    reached_amount: int
    conversion: float | None  # from the previous step (None for the first or 0/0)
    from_start: float | None
    drop_off: int  # reached here but not the next stage
    win_rate: float | None  # won / reached
    # Outcomes attributed to this stage (the last flow stage the deal was in):
    open: int
    lost: int
    lost_amount: int
    frozen: int
    left: int
    # Finished stays in this stage by cohort deals, and their median length.
    visits: int
    median_seconds: float | None


@dataclass(frozen=True)
class Happened:
    """What happened in a period by the date it happened, whenever the deal came in: deals
    won, lost and parked in conditional refusal then (and still so now)."""

    won: int = 0
    won_amount: int = 0
    lost: int = 0
    lost_amount: int = 0
    frozen: int = 0
    frozen_amount: int = 0

    @property
    def refused(self) -> int:
        return self.lost + self.frozen

    @property
    def refused_amount(self) -> int:
        return self.lost_amount + self.frozen_amount


@dataclass(frozen=True)
class PeriodFunnel:
    pipeline: PipelineInfo
    range: DateRange
    manager_id: int | None
    steps: tuple[FunnelStep, ...]
    cohort: int
    cohort_amount: int
    won: int
    won_amount: int
    lost: int
    lost_amount: int
    open: int
    frozen: int
    left: int
    happened: Happened = field(default_factory=Happened)  # by the date it happened
    previous: PeriodFunnel | None = None  # the previous period (previous_range)

    @property
    def conversion(self) -> float | None:
        return _ratio(self.won, self.cohort)

    @property
    def key_steps(self) -> tuple[FunnelStep, ...]:
        return tuple(s for s in self.steps if s.stage.is_key)


@dataclass(frozen=True)
class ReasonInfo:
    id: int
    code: str
    name: str
    name_en: str | None
    conditional: bool

    def label(self, lang: str | None) -> str:
        return label(lang, self.name, self.name_en)


@dataclass(frozen=True)
class StageCount:
    stage: StageInfo
    count: int
    amount: int


@dataclass(frozen=True)
class LossRow:
    reason: ReasonInfo | None  # None: refused without a reason
    count: int  # lost + frozen
    amount: int
    frozen: int  # of which parked in conditional refusal
    by_stage: tuple[StageCount, ...]  # where (the last flow stage), in flow order


@dataclass(frozen=True)
class LossReport:
    pipeline: PipelineInfo
    range: DateRange
    manager_id: int | None
    rows: tuple[LossRow, ...]  # most frequent first
    previous: LossReport | None = None
    came_in: bool = False  # the cohort's refusals; False: the refusals made in the period

    @property
    def count(self) -> int:
        return sum(r.count for r in self.rows)

    @property
    def amount(self) -> int:
        return sum(r.amount for r in self.rows)


@dataclass(frozen=True)
class ManagerRow:
    manager_id: int | None  # None: deals nobody is responsible for
    name: str | None
    deals: int  # cohort deals
    won: int
    won_amount: int
    lost: int
    lost_amount: int
    open: int
    leads: int  # leads that came in during the period, assigned to them now
    leads_processed: int  # ... with a first action (answered, disqualified or converted)
    leads_converted: int
    median_response_seconds: float | None  # lead created -> first action
    overdue_tasks: int  # open tasks past due now (not period-bound)

    @property
    def conversion(self) -> float | None:
        return _ratio(self.won, self.deals)


@dataclass(frozen=True)
class ManagerReport:
    pipeline: PipelineInfo
    range: DateRange
    rows: tuple[ManagerRow, ...]  # ranked: won amount, won count, conversion
    previous: ManagerReport | None = None


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


# --- scope and stage maps -----------------------------------------------------------------


def scope_manager(actor: Actor, manager_id: int | None) -> int | None:
    """The manager a report (or an export) is restricted to; None: everyone.

    Needs REPORTS_OWN; without REPORTS_ALL it is the actor, whatever was asked for."""
    require(actor, Action.REPORTS_OWN)
    if can(actor, Action.REPORTS_ALL):
        return manager_id
    return actor.id


@dataclass(frozen=True)
class PipelineMap:
    """A pipeline's flow and where every stage of it (archived ones too) ranks."""

    rules: PipelineRules
    stages: tuple[Stage, ...]  # all, archived too, by position
    flow: tuple[StageInfo, ...]
    rank: Mapping[int, int] = field(default_factory=dict)  # stage id -> flow index

    @property
    def ids(self) -> list[int]:
        return [s.id for s in self.stages]

    @property
    def info(self) -> PipelineInfo:
        return self.rules.info


async def pipeline_map(uow: UnitOfWork, filters: ReportFilter) -> PipelineMap:
    """The asked-for pipeline (default: sales) with all its stages, archived ones too; from
    the process's configuration cache while pipelines and stages are unchanged (any write
    to them bumps its epoch: storage/cache.py)."""
    cache = await uow.cached("config")
    key = ("report_map", filters.pipeline_id)
    found: PipelineMap | None = cache.get(key) if _hashable(filters.pipeline_id) else None
    if found is None:
        found = await _load_map(uow, filters)
        cache[key] = found
    return found


def _hashable(value: object) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool))


async def _load_map(uow: UnitOfWork, filters: ReportFilter) -> PipelineMap:
    pipeline_id = filters.pipeline_id
    if pipeline_id is None:
        found = await uow.repo.pipelines.by_role("sales")
        if found is None:
            raise RuleViolation("pipeline_missing", role="sales")
        pipeline: Pipeline | None = found
    elif not isinstance(pipeline_id, int) or isinstance(pipeline_id, bool):
        raise NotFound("pipeline", pipeline_id)
    else:
        pipeline = await uow.repo.get(Pipeline, pipeline_id)
    if pipeline is None:
        raise NotFound("pipeline", pipeline_id)
    stages = tuple(await uow.repo.pipelines.stages(pipeline.id, include_archived=True))
    rules = PipelineRules(pipeline, tuple(s for s in stages if not s.archived))
    flow = rules.flow
    rank = {s.id: i for i, s in enumerate(flow)}
    for s in stages:
        if s.id in rank or s.kind not in (StageKind.ACTIVE, StageKind.WON):
            continue
        if s.kind == StageKind.WON:
            rank[s.id] = len(flow) - 1
        else:  # an archived active stage: where it stood
            before = [rank[f.id] for f in flow if f.position < s.position and f.kind != "won"]
            rank[s.id] = max(before, default=0)
    return PipelineMap(rules, stages, tuple(StageInfo.of(s) for s in flow), rank)


_Report = TypeVar("_Report", "PeriodFunnel", "LossReport", "ManagerReport", "VelocityReport")


async def _period_report(
    uow: UnitOfWork,
    actor: Actor,
    filters: ReportFilter,
    build: Callable[[UnitOfWork, PipelineMap, DateRange, int | None], Awaitable[_Report]],
) -> _Report:
    """A period report for the actor's scope, with the previous period's when asked."""
    manager_id = scope_manager(actor, filters.manager_id)
    pmap = await pipeline_map(uow, filters)
    now = uow.clock.now()
    span = resolve_period(filters, now)
    report = await build(uow, pmap, span, manager_id)
    if filters.compare:
        before = previous_range(span, now, filters.tz)
        report = replace(report, previous=await build(uow, pmap, before, manager_id))
    return report


def epoch(span: DateRange) -> tuple[int, int]:
    """The period as epoch seconds ``[since, until)``, how the analytics tables store it."""
    return _ts(span.start), _ts(span.end)


# --- snapshot -----------------------------------------------------------------------------


async def snapshot(uow: UnitOfWork, actor: Actor, filters: ReportFilter) -> SnapshotFunnel:
    """Active deals per stage now: count, amount, weighted forecast, stuck ones."""
    manager_id = scope_manager(actor, filters.manager_id)
    if filters.stuck_days < 0:
        raise ValidationError("stuck_days", "negative")
    pmap = await pipeline_map(uow, filters)
    now = uow.clock.now()
    stuck_before = _ts(now - timedelta(days=filters.stuck_days))
    rows = await uow.repo.analytics.snapshot_cells(pmap.rules.pipeline.id, stuck_before, manager_id)
    open_by_stage: dict[int, tuple[int, int, int]] = {}
    frozen = frozen_amount = 0
    for outcome, stage_id, n, amount, stuck in rows:
        if outcome == OUTCOME_FROZEN:
            frozen += int(n)
            frozen_amount += int(amount)
        else:
            open_by_stage[stage_id] = (int(n), int(amount), int(stuck))
    stages = []
    for s in pmap.stages:
        if s.kind != StageKind.ACTIVE or (s.archived and s.id not in open_by_stage):
            continue
        n, amount, stuck = open_by_stage.get(s.id, (0, 0, 0))
        weighted = (amount * s.probability + 50) // 100
        stages.append(SnapshotStage(StageInfo.of(s), n, amount, weighted, stuck))
    return SnapshotFunnel(
        pipeline=pmap.info,
        manager_id=manager_id,
        as_of=now,
        stuck_days=filters.stuck_days,
        stages=tuple(stages),
        frozen=frozen,
        frozen_amount=frozen_amount,
    )


# --- period funnel ------------------------------------------------------------------------


async def period_funnel(uow: UnitOfWork, actor: Actor, filters: ReportFilter) -> PeriodFunnel:
    """The cohort of the period through the pipeline's flow (see the module docstring)."""
    return await _period_report(uow, actor, filters, _period_funnel)


async def _period_funnel(
    uow: UnitOfWork, pmap: PipelineMap, span: DateRange, manager_id: int | None
) -> PeriodFunnel:
    # flow stages, archived ones too: what facts can point at
    rows = await uow.repo.analytics.funnel_cells(
        pmap.rules.pipeline.id, list(pmap.rank), *epoch(span), manager_id
    )
    size = len(pmap.flow)
    furthest = [0] * size
    furthest_amount = [0] * size
    at_stage: dict[str, list[int]] = {o: [0] * size for o in OUTCOMES}
    lost_amount = [0] * size
    won_amount = 0
    for reached_id, outcome, flow_id, n, amount in rows:
        r, k = pmap.rank.get(reached_id), pmap.rank.get(flow_id)
        if not n or r is None or k is None:
            continue  # (a fact pointing at a lost/frozen stage cannot happen; be safe)
        furthest[r] += int(n)
        furthest_amount[r] += int(amount or 0)
        at_stage[outcome][k] += int(n)
        if outcome == OUTCOME_LOST:
            lost_amount[k] += int(amount or 0)
        elif outcome == OUTCOME_WON:
            won_amount += int(amount or 0)
    reached = _suffix_sums(furthest)
    reached_amount = _suffix_sums(furthest_amount)
    medians = {
        sid: (n, values[0])
        for sid, (n, values) in (await _stays(uow, pmap, span, manager_id)).items()
    }
    won = sum(at_stage[OUTCOME_WON])
    cohort = reached[0] if reached else 0
    steps = []
    for k, stage in enumerate(pmap.flow):
        visits, median = medians.get(stage.id, (0, None))
        steps.append(
            FunnelStep(
                stage=stage,
                reached=reached[k],
                reached_amount=reached_amount[k],
                conversion=_ratio(reached[k], reached[k - 1]) if k else None,
                from_start=_ratio(reached[k], cohort),
                drop_off=reached[k] - (reached[k + 1] if k + 1 < size else 0)
                if stage.kind != StageKind.WON
                else 0,
                win_rate=_ratio(won, reached[k]),
                open=at_stage[OUTCOME_OPEN][k],
                lost=at_stage[OUTCOME_LOST][k],
                lost_amount=lost_amount[k],
                frozen=at_stage[OUTCOME_FROZEN][k],
                left=at_stage[OUTCOME_LEFT][k],
                visits=visits,
                median_seconds=median,
            )
        )
    happened = await _happened(uow, pmap, span, manager_id)
    return PeriodFunnel(
        pipeline=pmap.info,
        range=span,
        manager_id=manager_id,
        happened=happened,
        steps=tuple(steps),
        cohort=cohort,
        cohort_amount=reached_amount[0] if reached_amount else 0,
        won=won,
        won_amount=won_amount,
        lost=sum(at_stage[OUTCOME_LOST]),
        lost_amount=sum(lost_amount),
        open=sum(at_stage[OUTCOME_OPEN]),
        frozen=sum(at_stage[OUTCOME_FROZEN]),
        left=sum(at_stage[OUTCOME_LEFT]),
    )


async def _happened(
    uow: UnitOfWork, pmap: PipelineMap, span: DateRange, manager_id: int | None
) -> Happened:
    cells = await uow.repo.analytics.happened_cells(
        pmap.rules.pipeline.id,
        (OUTCOME_WON, OUTCOME_LOST, OUTCOME_FROZEN),
        list(pmap.rank),
        *epoch(span),
        manager_id,
    )
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for outcome, _, _, n, amount in cells:
        totals[outcome][0] += n
        totals[outcome][1] += amount
    (won, won_amount), (lost, lost_amount), (frozen, frozen_amount) = (
        totals[o] for o in (OUTCOME_WON, OUTCOME_LOST, OUTCOME_FROZEN)
    )
    return Happened(won, won_amount, lost, lost_amount, frozen, frozen_amount)


def _suffix_sums(values: Sequence[int]) -> list[int]:
    out = list(values)
    for i in range(len(out) - 2, -1, -1):
        out[i] += out[i + 1]
    return out


async def _stays(
    uow: UnitOfWork,
    pmap: PipelineMap,
    span: DateRange,
    manager_id: int | None,
    quantiles: Sequence[float] = (0.5,),
) -> dict[int, tuple[int, list[float]]]:
    """Per active flow stage with finished stays: (stays, the exact quantiles in seconds).

    A histogram of stays per (stage, duration bucket) — buckets are ordered by duration —
    then one sorted slice per rank a quantile needs reads the exact values, all stages in
    one query. Only those buckets are ever sorted. A quantile q is linear between the
    values at ranks floor and ceil of q x (n - 1): the median is the middle value, or the
    mean of the middle two.
    """
    stage_ids = [s.id for s in pmap.flow if s.kind == StageKind.ACTIVE]
    pipeline_id, (since, until) = pmap.rules.pipeline.id, epoch(span)
    histogram = await uow.repo.analytics.visit_histogram(
        pipeline_id, stage_ids, since, until, manager_id
    )
    picks: list[tuple[int, int, int, int]] = []  # (stage, bucket, offset, how many)
    ranks: dict[tuple[int, int], int] = {}  # (stage, rank) -> pick index
    totals: dict[int, int] = {}
    for stage_id, counts in histogram.items():
        buckets = sorted(counts.items())
        totals[stage_id] = total = sum(counts.values())
        for q in quantiles:
            for rank in _ranks(q, total):
                if (stage_id, rank) not in ranks:
                    bucket, offset = _locate(buckets, rank)
                    ranks[(stage_id, rank)] = len(picks)
                    picks.append((stage_id, bucket, offset, 1))
    values: dict[int, int] = {}
    for pick, value in await uow.repo.analytics.visit_slices(
        pipeline_id, since, until, manager_id, picks
    ):
        values[pick] = value
    result: dict[int, tuple[int, list[float]]] = {}
    for sid, n in totals.items():

        def value_at(rank: int, sid: int = sid) -> float:
            return values[ranks[(sid, rank)]]

        result[sid] = (n, [_interpolate(q, n, value_at) for q in quantiles])
    return result


def _ranks(q: float, n: int) -> tuple[int, ...]:
    position = q * (n - 1)
    return tuple(sorted({math.floor(position), math.ceil(position)}))


def _interpolate(q: float, n: int, value_at: Callable[[int], float]) -> float:
    position = q * (n - 1)
    low, high = math.floor(position), math.ceil(position)
    a, b = value_at(low), value_at(high)
    return a + (b - a) * (position - low) if high != low else float(a)


def quantile_of_counts(counts: Mapping[int, int], q: float) -> float | None:
    """The quantile q of integer values given as {value: how many} (same rule as above)."""
    n = sum(counts.values())
    if not n:
        return None
    buckets = sorted(counts.items())
    return _interpolate(q, n, lambda rank: _locate(buckets, rank)[0])


def _locate(buckets: Iterable[tuple[int, int]], rank: int) -> tuple[int, int]:
    """The bucket holding the rank-th smallest value (0-based) and the offset in it."""
    seen = 0
    for bucket, n in buckets:
        if rank < seen + n:
            return bucket, rank - seen
        seen += n
    raise AssertionError("rank beyond the histogram")


# --- velocity -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StageSpeed:
    stage: StageInfo
    stays: int  # finished stays of cohort deals
    median_seconds: float | None
    p75_seconds: float | None


@dataclass(frozen=True)
class CycleSpeed:
    manager_id: int | None  # None: deals nobody is responsible for (or, as the total, all)
    name: str | None
    won: int  # cohort deals won
    median_days: float | None  # sales cycle: first entry into the pipeline -> won
    p75_days: float | None


@dataclass(frozen=True)
class VelocityReport:
    pipeline: PipelineInfo
    range: DateRange
    manager_id: int | None
    stages: tuple[StageSpeed, ...]  # the active flow stages, in order
    cycle: CycleSpeed  # everyone in scope
    by_manager: tuple[CycleSpeed, ...]  # fastest median first
    previous: VelocityReport | None = None


async def velocity(uow: UnitOfWork, actor: Actor, filters: ReportFilter) -> VelocityReport:
    """How fast the period's cohort moves: the median and 75th percentile of the time spent
    in each active stage, and of the sales cycle (first entry into the pipeline -> won),
    overall and per manager.

    How moves count (the same rules as *time in stage* above):

    - every finished stay is one sample: a deal moved back from the measurement to the
      proposal ends its measurement stay (a sample) and starts a second proposal stay, which
      is another sample when it ends; a deal's current stay is not a sample yet;
    - a skipped stage has no stay, so it contributes nothing to that stage's times;
    - a stay ends when the deal leaves the stage for anywhere: the next stage, back,
      lost, frozen, or another pipeline (deferred). A deal that leaves the pipeline and
      comes back belongs to its first cohort; its stays before and after both count;
    - the cycle is counted once per won deal, from its *first* entry into the pipeline to
      its entry into the won stage, in whole days (rounded down): time spent going back,
      and time away in another pipeline, are part of it.
    """
    return await _period_report(uow, actor, filters, _velocity)


async def _velocity(
    uow: UnitOfWork, pmap: PipelineMap, span: DateRange, manager_id: int | None
) -> VelocityReport:
    stays = await _stays(uow, pmap, span, manager_id, (0.5, 0.75))
    stages = []
    for stage in pmap.flow:
        if stage.kind != StageKind.ACTIVE:
            continue
        n, (median, p75) = stays.get(stage.id, (0, [None, None]))
        stages.append(StageSpeed(stage, n, median, p75))
    rows = await uow.repo.analytics.cycle_days(pmap.rules.pipeline.id, *epoch(span), manager_id)
    per_manager: dict[int | None, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    total: dict[int, int] = defaultdict(int)
    for mid, days, n in rows:
        per_manager[mid][days] += n
        total[days] += n
    names = {e.id: e.name for e in await uow.repo.employees.all()} if per_manager else {}

    def speed(mid: int | None, counts: Mapping[int, int]) -> CycleSpeed:
        return CycleSpeed(
            mid,
            names.get(mid) if mid is not None else None,
            sum(counts.values()),
            quantile_of_counts(counts, 0.5),
            quantile_of_counts(counts, 0.75),
        )

    by_manager = sorted(
        (speed(mid, counts) for mid, counts in per_manager.items()),
        key=lambda c: (c.median_days or 0.0, -c.won, c.name or "", c.manager_id or 0),
    )
    return VelocityReport(
        pipeline=pmap.info,
        range=span,
        manager_id=manager_id,
        stages=tuple(stages),
        cycle=speed(manager_id, total),
        by_manager=tuple(by_manager),
    )


# --- loss reasons -------------------------------------------------------------------------


async def loss_reasons(uow: UnitOfWork, actor: Actor, filters: ReportFilter) -> LossReport:
    """Refusals (lost, or parked in conditional refusal) per reason, with the money and the
    stage where they happened: by default those *made* in the period (a deal lost today
    with "too expensive" is in this month's losses whenever it came in); with
    ``filters.came_in`` those of the deals that came in during the period (the cohort)."""
    build = _cohort_loss_reasons if filters.came_in else _happened_loss_reasons
    return await _period_report(uow, actor, filters, build)


async def _cohort_loss_reasons(
    uow: UnitOfWork, pmap: PipelineMap, span: DateRange, manager_id: int | None
) -> LossReport:
    return await _loss_reasons(uow, pmap, span, manager_id, came_in=True)


async def _happened_loss_reasons(
    uow: UnitOfWork, pmap: PipelineMap, span: DateRange, manager_id: int | None
) -> LossReport:
    return await _loss_reasons(uow, pmap, span, manager_id, came_in=False)


async def _loss_reasons(
    uow: UnitOfWork, pmap: PipelineMap, span: DateRange, manager_id: int | None, came_in: bool
) -> LossReport:
    reasons = {
        r.id: ReasonInfo(r.id, r.code, r.name, r.name_en, r.conditional)
        for r in await uow.repo.catalog.loss_reasons(include_inactive=True)
    }
    refusal_ids = [s.id for s in pmap.stages if s.kind in (StageKind.LOST, StageKind.FROZEN)]
    if came_in:
        found = await uow.repo.analytics.refusal_cells(
            pmap.rules.pipeline.id, list(pmap.rank), refusal_ids, *epoch(span), manager_id
        )
    else:
        found = await uow.repo.analytics.happened_cells(
            pmap.rules.pipeline.id,
            (OUTCOME_LOST, OUTCOME_FROZEN),
            list(pmap.rank),
            *epoch(span),
            manager_id,
        )
    per_reason: dict[int | None, dict[int, list[int]]] = defaultdict(dict)
    frozen: dict[int | None, int] = defaultdict(int)
    for outcome, reason_id, flow_id, n, amount in found:
        if not n:
            continue
        k = pmap.rank.get(flow_id, 0)
        totals = per_reason[reason_id].setdefault(k, [0, 0])
        totals[0] += n
        totals[1] += amount
        if outcome == OUTCOME_FROZEN:
            frozen[reason_id] += n
    result = []
    for reason_id, by_rank in per_reason.items():
        by_stage = tuple(
            StageCount(pmap.flow[k], n, amount) for k, (n, amount) in sorted(by_rank.items())
        )
        result.append(
            LossRow(
                reason=reasons.get(reason_id) if reason_id is not None else None,
                count=sum(c.count for c in by_stage),
                amount=sum(c.amount for c in by_stage),
                frozen=frozen[reason_id],
                by_stage=by_stage,
            )
        )
    result.sort(key=lambda r: (-r.count, -r.amount, r.reason.id if r.reason else 1 << 62))
    return LossReport(pmap.info, span, manager_id, tuple(result), came_in=came_in)


# --- managers -----------------------------------------------------------------------------


async def managers(uow: UnitOfWork, actor: Actor, filters: ReportFilter) -> ManagerReport:
    """Ranking by won money, won deals and conversion of the period's cohort, with leads
    handled, median response time to a new lead, and overdue tasks now."""
    return await _period_report(uow, actor, filters, _managers)


async def _managers(
    uow: UnitOfWork, pmap: PipelineMap, span: DateRange, manager_id: int | None
) -> ManagerReport:
    now = uow.clock.now()
    deals: dict[int | None, dict[str, tuple[int, int]]] = defaultdict(dict)
    employees = {e.id: e for e in await uow.repo.employees.all()}
    rows = await uow.repo.analytics.manager_outcomes(
        pmap.rules.pipeline.id, sorted(employees), *epoch(span), manager_id
    )
    for mid, outcome, n, amount in rows:
        deals[mid][outcome] = (n, amount)
    leads = await _lead_stats(uow, span, sorted(employees), manager_id)
    overdue = await uow.repo.analytics.overdue_tasks(now, manager_id)

    ids: set[int | None] = set(deals) | set(leads)
    if manager_id is None:
        ids |= {e.id for e in employees.values() if e.active and Role.MANAGER in e.roles}
    else:
        ids = {manager_id}
    result = []
    for mid in ids:
        outcomes = deals.get(mid, {})
        count, processed, converted, median = leads.get(mid, (0, 0, 0, None))
        result.append(
            ManagerRow(
                manager_id=mid,
                name=employees[mid].name if mid in employees else None,
                deals=sum(n for n, _ in outcomes.values()),
                won=outcomes.get(OUTCOME_WON, (0, 0))[0],
                won_amount=outcomes.get(OUTCOME_WON, (0, 0))[1],
                lost=outcomes.get(OUTCOME_LOST, (0, 0))[0],
                lost_amount=outcomes.get(OUTCOME_LOST, (0, 0))[1],
                open=outcomes.get(OUTCOME_OPEN, (0, 0))[0],
                leads=count,
                leads_processed=processed,
                leads_converted=converted,
                median_response_seconds=median,
                overdue_tasks=overdue.get(mid, 0) if mid is not None else 0,
            )
        )
    result.sort(
        key=lambda r: (
            -r.won_amount,
            -r.won,
            -(r.conversion or 0.0),
            r.manager_id is None,
            r.name or "",
            r.manager_id or 0,
        )
    )
    return ManagerReport(pmap.info, span, tuple(result))


async def _lead_stats(
    uow: UnitOfWork, span: DateRange, staff: list[int], manager_id: int | None
) -> dict[int | None, tuple[int, int, int, float | None]]:
    """Per manager: leads that came in during the period (entered the leads pipeline),
    processed (with a first action), converted, and the median response time
    (first_action_at - created_at, kept in their facts rows)."""
    leads = await uow.repo.pipelines.by_role("leads")
    if leads is None:
        return {}
    return await uow.repo.analytics.lead_stats(leads.id, staff, *epoch(span), manager_id)


__all__ = [
    "DateRange",
    "FunnelStep",
    "Happened",
    "LossReport",
    "LossRow",
    "ManagerReport",
    "ManagerRow",
    "Period",
    "PeriodFunnel",
    "ReasonInfo",
    "ReportFilter",
    "SnapshotFunnel",
    "SnapshotStage",
    "StageCount",
    "StageSpeed",
    "CycleSpeed",
    "VelocityReport",
    "previous_range",
    "quantile_of_counts",
    "velocity",
    "loss_reasons",
    "managers",
    "period_funnel",
    "resolve_period",
    "running",
    "scope_manager",
    "snapshot",
]
