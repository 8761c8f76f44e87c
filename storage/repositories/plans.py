"""Sales plans and the Plan view's figures (issue 26): the plans of a month, the deals won
in it per manager (the analytics' "happened" ranges) and the forecast cells of the open
deals expected to close by a moment (services/sales/plans.py says which)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, literal, select, union_all, update

from storage.models import Deal, Plan
from storage.models.analytics import OUTCOME_WON, FunnelFact
from storage.repositories.base import Repo

# (stage id, manager id or None, count, amount)
ForecastCell = tuple[int, int | None, int, int]


def forecast_ranges(
    pipeline_id: int,
    stages: Sequence[tuple[int, int]],
    before: datetime,
    staff: Sequence[int],
    manager_id: int | None,
) -> list[tuple[int, list[ColumnElement[bool]]]]:
    """(stage id, where) of the open deals of ``stages`` ((stage id, close_days) pairs: the
    active ones) expected to close before ``before``: a typed ``expected_close_at`` before
    it, else (none typed) entered the stage more than close_days before it. One range of
    ix_deals_expected_close or ix_deals_close_rule per (stage, typed or not, staff or
    nobody)."""
    d = Deal
    who: list[ColumnElement[bool]] = (
        [d.manager_id.in_(list(staff)), d.manager_id.is_(None)]
        if manager_id is None
        else [d.manager_id == manager_id]
    )
    ranges: list[tuple[int, list[ColumnElement[bool]]]] = []
    for stage_id, close_days in stages:
        for manager in who:
            head = [d.pipeline_id == pipeline_id, d.stage_id == stage_id, manager]
            typed = [d.expected_close_at.is_not(None), d.expected_close_at < before]
            rule = [
                d.expected_close_at.is_(None),
                d.stage_entered_at < before - timedelta(days=close_days),
            ]
            ranges += [(stage_id, [*head, *typed]), (stage_id, [*head, *rule])]
    return ranges


def won_ranges(
    pipeline_id: int, staff: Sequence[int], since: int, until: int, manager_id: int | None
) -> list[list[ColumnElement[bool]]]:
    """The facts won in ``[since, until)`` as ranges of ix_funnel_facts_won_by: one per
    manager in order (the staff as an IN-list, then those nobody owns)."""
    f = FunnelFact
    who: list[ColumnElement[bool]] = (
        [f.manager_id.in_(list(staff)), f.manager_id.is_(None)]
        if manager_id is None
        else [f.manager_id == manager_id]
    )
    return [
        [
            f.pipeline_id == pipeline_id,
            f.outcome == OUTCOME_WON,
            manager,
            f.stage_ts >= since,
            f.stage_ts < until,
        ]
        for manager in who
    ]


class PlanRepo(Repo):
    async def of_month(self, month: date) -> Sequence[Plan]:
        rows = await self.session.scalars(select(Plan).where(Plan.month == month))
        return rows.all()

    async def one(self, month: date, employee_id: int | None) -> Plan | None:
        who = Plan.employee_id.is_(None) if employee_id is None else Plan.employee_id == employee_id
        return await self.session.scalar(select(Plan).where(Plan.month == month, who))

    async def type_expected_closes(
        self, pipeline_id: int, stage_ids: list[int], every: int, now: datetime, days: int
    ) -> int:
        """The demo: an expected-close date on one deal in `every` of these stages, spread
        over the `days` after `now` (six steps). Returns the deals changed."""
        steps = 6
        changed = 0
        for k in range(steps):
            done = await self.session.execute(
                update(Deal)
                .where(
                    Deal.pipeline_id == pipeline_id,
                    Deal.stage_id.in_(stage_ids),
                    Deal.id % (every * steps) == k * every,
                )
                .values(expected_close_at=now + timedelta(days=days * (k + 1) // steps))
                .execution_options(synchronize_session=False)
            )
            changed += int(getattr(done, "rowcount", 0) or 0)
        return changed

    async def won_by_manager(
        self,
        pipeline_id: int,
        staff: Sequence[int],
        since: int,
        until: int,
        manager_id: int | None,
    ) -> list[tuple[int | None, int, int]]:
        """(manager id, deals won, their money) of the deals won in ``[since, until)``:
        analytics' "what happened" for the won outcome (the facts won, by the moment they
        entered the won stage; services/reports/analytics.py), read per manager
        (won_ranges)."""
        f = FunnelFact
        found: list[tuple[int | None, int, int]] = []
        for where in won_ranges(pipeline_id, staff, since, until, manager_id):
            rows = await self.session.execute(
                select(f.manager_id, func.count(), func.coalesce(func.sum(f.amount), 0))
                .where(*where)
                .group_by(f.manager_id)
            )
            found += [(mid, int(n), int(amount or 0)) for mid, n, amount in rows]
        return found

    async def forecast_cells(
        self,
        pipeline_id: int,
        stages: Sequence[tuple[int, int]],
        before: datetime,
        staff: Sequence[int],
        manager_id: int | None,
    ) -> list[ForecastCell]:
        """(stage, manager, count, amount) of the open deals expected to close before
        ``before`` (forecast_ranges), one statement: a UNION ALL of one GROUP BY manager per
        range (the manager is the index column before the range: groups come out sorted)."""
        ranges = forecast_ranges(pipeline_id, stages, before, staff, manager_id)
        if not ranges:
            return []
        d = Deal
        parts: list[Any] = []
        for stage_id, where in ranges:
            parts.append(
                select(
                    literal(stage_id).label("stage_id"),
                    d.manager_id,
                    func.count().label("n"),
                    func.coalesce(func.sum(d.amount), 0).label("amount"),
                )
                .where(*where)
                .group_by(d.manager_id)
            )
        rows = await self.session.execute(union_all(*parts))
        return [(int(s), m, int(n), int(a or 0)) for s, m, n, a in rows if n]
