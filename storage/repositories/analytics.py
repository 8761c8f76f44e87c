"""Report aggregates over the derived analytics tables (funnel facts, stage visits and their
daily rollup) and the live ones: SQL only, the same on SQLite and PostgreSQL.

Periods come in as epoch seconds ``[since, until)`` of the first entry into the pipeline
(the cohort); ``manager_id`` None means everyone. Each method returns raw aggregate rows;
services/reports/analytics.py turns them into reports.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    and_,
    case,
    func,
    literal,
    literal_column,
    select,
    union_all,
)

from storage.models import Deal, LossReason, Task
from storage.models.analytics import (
    OUTCOME_FROZEN,
    OUTCOME_LOST,
    OUTCOME_OPEN,
    OUTCOME_WON,
    OUTCOMES,
    VISIT_BUCKET_LIMIT,
    FunnelFact,
    StageVisit,
    StageVisitDay,
)
from storage.repositories.base import Repo
from storage.repositories.tasks import OPEN_TASK_STATES

DAY_SECONDS = 86400

# (outcome, reason id or None, flow stage id, count, amount)
RefusalCell = tuple[str, int | None, int, int, int]


def _cohort(column: Any, since: int, until: int) -> ColumnElement[bool]:
    """``column`` (epoch seconds of the first entry into the pipeline) is in the period."""
    return and_(column >= since, column < until)


def _manager(column: Any, manager_id: int | None) -> list[ColumnElement[bool]]:
    return [] if manager_id is None else [column == manager_id]


def _cohort_facts(
    pipeline_id: int, stage_ids: list[int], since: int, until: int, manager_id: int | None
) -> list[ColumnElement[bool]]:
    """The period's cohort in a pipeline, as ranges of ix_funnel_facts_cohort: its leading
    columns as IN-lists (every outcome), then the cohort range."""
    f = FunnelFact
    return [
        f.pipeline_id == pipeline_id,
        f.reached_stage_id.in_(stage_ids),
        f.outcome.in_(OUTCOMES),
        f.flow_stage_id.in_(stage_ids),
        _cohort(f.entered_ts, since, until),
        *_manager(f.manager_id, manager_id),
    ]


def happened_ranges(
    pipeline_id: int,
    outcomes: Sequence[str],
    flow_stage_ids: list[int],
    since: int,
    until: int,
    manager_id: int | None,
) -> list[list[ColumnElement[bool]]]:
    """What *happened* in ``[since, until)`` (the facts whose outcome was reached then) as
    ranges of ix_funnel_facts_happened: the facts with a reason, then those without."""
    f = FunnelFact
    reason_ids = select(LossReason.id).scalar_subquery()
    return [
        [
            f.pipeline_id == pipeline_id,
            f.outcome.in_(outcomes),
            reason,
            f.flow_stage_id.in_(flow_stage_ids),
            f.stage_ts >= since,
            f.stage_ts < until,
            *_manager(f.manager_id, manager_id),
        ]
        for reason in (f.reason_id.in_(reason_ids), f.reason_id.is_(None))
    ]


class AnalyticsRepo(Repo):
    async def snapshot_cells(
        self, pipeline_id: int, stuck_before: int, manager_id: int | None
    ) -> list[tuple[str, int, int, int, int]]:
        """(outcome, stage id, count, amount, stuck before `stuck_before`) of the open and
        frozen deals of the pipeline now."""
        f = FunnelFact
        rows = await self.session.execute(
            select(
                f.outcome,
                f.stage_id,
                func.count(),
                func.coalesce(func.sum(f.amount), 0),
                func.coalesce(func.sum(case((f.stage_ts < stuck_before, 1), else_=0)), 0),
            )
            .where(
                f.pipeline_id == pipeline_id,
                f.outcome.in_((OUTCOME_OPEN, OUTCOME_FROZEN)),
                *_manager(f.manager_id, manager_id),
            )
            .group_by(f.outcome, f.stage_id)
        )
        return [(o, sid, int(n), int(a), int(s)) for o, sid, n, a, s in rows]

    async def funnel_cells(
        self,
        pipeline_id: int,
        flow_stage_ids: list[int],
        since: int,
        until: int,
        manager_id: int | None,
    ) -> list[tuple[int, str, int, int, int]]:
        """(furthest stage id, outcome, last flow stage id, count, amount) of the cohort,
        one row per non-empty combination: one GROUP BY over the index ranges of
        ix_funnel_facts_cohort (the IN-lists are its leading columns, in its order, so the
        groups come out of the index already sorted: no temporary b-tree)."""
        f = FunnelFact
        rows = await self.session.execute(
            select(
                f.reached_stage_id,
                f.outcome,
                f.flow_stage_id,
                func.count(),
                func.coalesce(func.sum(f.amount), 0),
            )
            .where(
                *_cohort_facts(pipeline_id, flow_stage_ids, since, until, manager_id),
            )
            .group_by(f.reached_stage_id, f.outcome, f.flow_stage_id)
        )
        return [(r, o, k, int(n), int(a or 0)) for r, o, k, n, a in rows]

    async def visit_histogram(
        self,
        pipeline_id: int,
        stage_ids: list[int],
        since: int,
        until: int,
        manager_id: int | None,
    ) -> dict[int, dict[int, int]]:
        """Finished stays of the period's cohort per stage and duration bucket.

        For everyone, the whole UTC days of the period come from the daily rollup
        (stage_visit_days) and only the partial days at its edges from stage_visits; for one
        manager, everything comes from stage_visits. Each is one GROUP BY whose IN-lists
        (stage, every bucket) are the index's leading columns, so it reads one range per
        (stage, bucket) and the groups come out sorted."""
        first_day, end_day = -(-since // DAY_SECONDS), until // DAY_SECONDS
        histogram: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        buckets = list(range(VISIT_BUCKET_LIMIT))

        async def add(stmt: Any) -> None:
            for stage_id, bucket, n in await self.session.execute(stmt):
                if n:
                    histogram[stage_id][int(bucket)] += int(n)

        ranges = [(since, until)]
        if manager_id is None and first_day < end_day:
            d = StageVisitDay
            await add(
                select(d.stage_id, d.bucket, func.sum(d.visits))
                .where(
                    d.pipeline_id == pipeline_id,
                    d.stage_id.in_(stage_ids),
                    d.bucket.in_(buckets),
                    d.day >= first_day,
                    d.day < end_day,
                )
                .group_by(d.stage_id, d.bucket)
            )
            ranges = [(since, first_day * DAY_SECONDS), (end_day * DAY_SECONDS, until)]
        v = StageVisit
        for low, high in ranges:
            if low < high:
                await add(
                    select(v.stage_id, v.bucket, func.count())
                    .where(
                        v.pipeline_id == pipeline_id,
                        v.stage_id.in_(stage_ids),
                        v.bucket.in_(buckets),
                        v.cohort_ts >= low,
                        v.cohort_ts < high,
                        *_manager(v.manager_id, manager_id),
                    )
                    .group_by(v.stage_id, v.bucket)
                )
        return histogram

    async def visit_slices(
        self,
        pipeline_id: int,
        since: int,
        until: int,
        manager_id: int | None,
        picks: Sequence[tuple[int, int, int, int]],
    ) -> list[tuple[int, int]]:
        """For each pick (stage, bucket, offset, how many): the `how many` stay durations
        from `offset` of that bucket in duration order, as (pick index, seconds); one
        query for all picks."""
        if not picks:
            return []
        v = StageVisit
        scope = [
            v.pipeline_id == pipeline_id,
            _cohort(v.cohort_ts, since, until),
            *_manager(v.manager_id, manager_id),
        ]
        slices = []
        for i, (stage_id, bucket, offset, n) in enumerate(picks):
            part = (
                select(v.duration_s)
                .where(v.stage_id == stage_id, v.bucket == bucket, *scope)
                .order_by(v.duration_s)
                .limit(n)
                .offset(offset)
                .subquery()
            )
            slices.append(select(literal(i, Integer).label("pick"), part.c.duration_s))
        return [
            (int(pick), int(value))
            for pick, value in await self.session.execute(union_all(*slices))
        ]

    async def refusal_cells(
        self,
        pipeline_id: int,
        flow_stage_ids: list[int],
        refusal_stage_ids: list[int],
        since: int,
        until: int,
        manager_id: int | None,
    ) -> list[RefusalCell]:
        """Refusals of the cohort (lost, or parked in conditional refusal) per outcome x
        reason x flow stage it happened at (reason None: refused without one). One GROUP BY
        over the ranges of ix_funnel_facts_state (outcome, stage, reason and flow stage as
        IN-lists, then the cohort range), and one for the rare refusals without a reason."""
        f = FunnelFact
        scope = [
            f.pipeline_id == pipeline_id,
            f.outcome.in_((OUTCOME_LOST, OUTCOME_FROZEN)),
            f.stage_id.in_(refusal_stage_ids),
        ]
        tail = [
            f.flow_stage_id.in_(flow_stage_ids),
            _cohort(f.entered_ts, since, until),
            *_manager(f.manager_id, manager_id),
        ]
        reason_ids = select(LossReason.id).scalar_subquery()
        found: list[RefusalCell] = []
        for reason in (f.reason_id.in_(reason_ids), f.reason_id.is_(None)):
            found += await self._outcome_cells([*scope, reason, *tail], [f.stage_id])
        return found

    async def _outcome_cells(
        self, where: Sequence[ColumnElement[bool]], extra_groups: Sequence[Any] = ()
    ) -> list[RefusalCell]:
        """(outcome, reason, flow stage, count, amount) of the facts ``where`` selects."""
        f = FunnelFact
        rows = await self.session.execute(
            select(
                f.outcome,
                f.reason_id,
                f.flow_stage_id,
                func.count(),
                func.coalesce(func.sum(f.amount), 0),
            )
            .where(*where)
            .group_by(f.outcome, *extra_groups, f.reason_id, f.flow_stage_id)
        )
        return [(o, r, k, int(n), int(a or 0)) for o, r, k, n, a in rows]

    async def happened_cells(
        self,
        pipeline_id: int,
        outcomes: Sequence[str],
        flow_stage_ids: list[int],
        since: int,
        until: int,
        manager_id: int | None,
    ) -> list[RefusalCell]:
        """What *happened* in the period, whenever the deal came in: deals whose current
        outcome (won, lost, frozen) was reached in ``[since, until)`` — the entry into the
        won or refusal stage they are in (``stage_ts``) — per outcome x reason x the last flow
        stage. ix_funnel_facts_happened leads with the groups (outcome, reason and flow
        stage as IN-lists, then the stage_ts range), so each cell is one index range and
        the groups come out in order: no temporary b-tree however many rows; one query for
        the facts with a reason, one for those without (won deals, refusals without one)."""
        found: list[RefusalCell] = []
        for where in happened_ranges(
            pipeline_id, outcomes, flow_stage_ids, since, until, manager_id
        ):
            found += await self._outcome_cells(where)
        return found

    async def manager_outcomes(
        self,
        pipeline_id: int,
        manager_ids: list[int],
        since: int,
        until: int,
        manager_id: int | None,
    ) -> list[tuple[int | None, str, int, int]]:
        """(manager id, outcome, count, amount) of the period's cohort.

        Reads ix_funnel_facts_manager: one entered_ts range per (manager, outcome) — the
        managers as an IN-list (``manager_ids``: everyone who can own a deal), and the deals
        nobody owns as one more range — so the cost follows the cohort's rows, not the
        pipeline's, and the groups come out of the index in order."""
        f = FunnelFact

        def part(who: ColumnElement[bool]) -> Any:
            return (
                select(f.manager_id, f.outcome, func.count(), func.coalesce(func.sum(f.amount), 0))
                .where(
                    f.pipeline_id == pipeline_id,
                    who,
                    f.outcome.in_(OUTCOMES),
                    _cohort(f.entered_ts, since, until),
                )
                .group_by(f.manager_id, f.outcome)
            )

        if manager_id is not None:
            stmt = part(f.manager_id == manager_id)
        else:
            stmt = union_all(part(f.manager_id.in_(manager_ids)), part(f.manager_id.is_(None)))
        rows = await self.session.execute(stmt)
        return [(mid, outcome, int(n), int(amount or 0)) for mid, outcome, n, amount in rows]

    async def cycle_days(
        self, pipeline_id: int, since: int, until: int, manager_id: int | None
    ) -> list[tuple[int | None, int, int]]:
        """(manager id, whole days from the first entry to won, count) of the cohort's won
        deals: one range of the partial index of won facts (migration 0009)."""
        f = FunnelFact
        days = ((f.stage_ts - f.entered_ts) // literal_column(str(DAY_SECONDS))).label("days")
        rows = await self.session.execute(
            select(f.manager_id, days, func.count())
            .where(
                f.pipeline_id == pipeline_id,
                f.outcome == OUTCOME_WON,
                _cohort(f.entered_ts, since, until),
                *_manager(f.manager_id, manager_id),
            )
            .group_by(f.manager_id, days)
        )
        return [(mid, int(d), int(n)) for mid, d, n in rows]

    async def lead_stats(
        self,
        pipeline_id: int,
        manager_ids: list[int],
        since: int,
        until: int,
        manager_id: int | None,
    ) -> dict[int | None, tuple[int, int, int, float | None]]:
        """Per manager, of the leads pipeline's cohort: (leads, processed — with a first
        action —, converted, median response seconds).

        Reads ix_funnel_facts_manager (manager first, then outcome, the cohort range, and
        the response time in the index): one GROUP BY over a range per (manager, outcome)
        for the counts, then per manager with replies the one or two middle values of its
        own range, sorted — so the cost follows the period's leads, manager by manager."""
        f = FunnelFact

        def where(who: ColumnElement[bool]) -> list[ColumnElement[bool]]:
            return [
                f.pipeline_id == pipeline_id,
                who,
                f.outcome.in_(OUTCOMES),
                _cohort(f.entered_ts, since, until),
            ]

        def counts(who: ColumnElement[bool]) -> Any:
            return (
                select(
                    f.manager_id,
                    func.count(),
                    func.count(f.response_s),
                    func.coalesce(func.sum(case((f.outcome == OUTCOME_WON, 1), else_=0)), 0),
                )
                .where(*where(who))
                .group_by(f.manager_id)
            )

        if manager_id is not None:
            stmt = counts(f.manager_id == manager_id)
        else:
            stmt = union_all(counts(f.manager_id.in_(manager_ids)), counts(f.manager_id.is_(None)))
        totals: dict[int | None, list[int]] = {}
        for mid, n, done, converted in await self.session.execute(stmt):
            found = totals.setdefault(mid, [0, 0, 0])
            found[0] += int(n)
            found[1] += int(done)
            found[2] += int(converted or 0)
        result: dict[int | None, tuple[int, int, int, float | None]] = {}
        for mid, (n, done, converted) in totals.items():
            median = None
            if done:
                who = f.manager_id.is_(None) if mid is None else f.manager_id == mid
                middle = list(
                    await self.session.scalars(
                        select(f.response_s)
                        .where(*where(who), f.response_s.is_not(None))
                        .order_by(f.response_s)
                        .limit(2 - done % 2)
                        .offset((done - 1) // 2)
                    )
                )
                values = [int(v) for v in middle if v is not None]
                median = sum(values) / len(values) if values else None
            result[mid] = (n, done, converted, median)
        return result

    # --- drill-down: the deals behind a number (services/reports/drill.py) -------------

    async def _deals_page(
        self, where: Sequence[ColumnElement[bool]], order: Sequence[Any], offset: int, limit: int
    ) -> tuple[list[Deal], int]:
        f = FunnelFact
        total = await self.session.scalar(select(func.count()).select_from(f).where(*where))
        ids = select(f.deal_id).where(*where).order_by(*order).offset(offset).limit(limit)
        rows = list(await self.session.scalars(ids))
        found = {d.id: d for d in await self.session.scalars(select(Deal).where(Deal.id.in_(rows)))}
        return [found[i] for i in rows if i in found], int(total or 0)

    async def open_in_stage(
        self, pipeline_id: int, stage_id: int, manager_id: int | None, offset: int, limit: int
    ) -> tuple[list[Deal], int]:
        """Deals now in the (active) stage, longest there first; and how many in all."""
        f = FunnelFact
        where = [
            f.pipeline_id == pipeline_id,
            f.outcome == OUTCOME_OPEN,
            f.stage_id == stage_id,
            f.deal_id.is_not(None),
            *_manager(f.manager_id, manager_id),
        ]
        return await self._deals_page(where, [f.stage_ts, f.deal_id], offset, limit)

    async def cohort_deals(
        self,
        pipeline_id: int,
        since: int,
        until: int,
        manager_id: int | None,
        offset: int,
        limit: int,
        *,
        reached_ids: list[int] | None = None,
        reason_id: int | None = None,
        won: bool = False,
    ) -> tuple[list[Deal], int]:
        """Cohort deals, oldest first, of one set: those whose furthest flow stage is one
        of `reached_ids`, or refused (lost or parked) for `reason_id`, or (`won`) won."""
        f = FunnelFact
        where = [f.pipeline_id == pipeline_id]
        if reached_ids is not None:
            where.append(f.reached_stage_id.in_(reached_ids))
        if reason_id is not None:
            where += [f.outcome.in_((OUTCOME_LOST, OUTCOME_FROZEN)), f.reason_id == reason_id]
        if won:
            where.append(f.outcome == OUTCOME_WON)
        where += [
            _cohort(f.entered_ts, since, until),
            f.deal_id.is_not(None),
            *_manager(f.manager_id, manager_id),
        ]
        return await self._deals_page(where, [f.entered_ts, f.deal_id], offset, limit)

    async def overdue_tasks(self, now: datetime, manager_id: int | None) -> dict[int, int]:
        """Open tasks past due at `now` per assignee."""
        rows = await self.session.execute(
            select(Task.assignee_id, func.count())
            .where(
                Task.assignee_id.is_not(None),
                Task.status.in_(OPEN_TASK_STATES),
                Task.due_at < now,
                *_manager(Task.assignee_id, manager_id),
            )
            .group_by(Task.assignee_id)
        )
        return {int(mid): int(n) for mid, n in rows if mid is not None}
