"""Drill-down: every number on /funnel that is a set of deals opens that set.

- ``STAGE``: the deals now in an active stage of the snapshot, stuck first (longest in the
  stage first);
- ``REACHED``: the period's cohort deals that reached a flow stage (the counting rule of
  services/reports/analytics.py: their furthest flow stage is that one or later);
- ``REASON``: the cohort deals refused (lost, or parked in conditional refusal) for a reason;
- ``WON``: a manager's won deals of the cohort (the ranking's and the Speed view's numbers).

Same filters as the report (pipeline, period, manager) and the same rows (funnel_facts), so a
list's total is the number that was tapped. A page is a list of deals whose items open the
deal card (the card's own service checks the actor again).

Permissions: REPORTS_OWN. Callback data is client input: without REPORTS_ALL (a manager)
asking for another manager's deals — in the filter, or a WON list of someone else — is
refused with PermissionDenied, not quietly narrowed; an unknown pipeline, stage, reason or
manager is NotFound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from services.dto import DealListItem, Page, PipelineInfo, StageInfo
from services.errors import NotFound, PermissionDenied
from services.permissions import Action, Actor, can, require
from services.reports import analytics
from services.reports.analytics import DateRange, ReasonInfo, ReportFilter
from services.reports.screens import REPORT_ROLES
from services.sales.deals import list_items, stages_by_id
from storage.enums import StageKind
from storage.models import Employee, Pipeline, Stage
from storage.uow import UnitOfWork

PER_PAGE = 8


class DrillKind(StrEnum):
    STAGE = "stage"
    REACHED = "reached"
    REASON = "reason"
    WON = "won"


@dataclass(frozen=True)
class DrillPage:
    kind: DrillKind
    pipeline: PipelineInfo
    range: DateRange | None  # None: the snapshot (now)
    manager_id: int | None  # the scope (a manager: themselves)
    stage: StageInfo | None = None
    reason: ReasonInfo | None = None
    manager_name: str | None = None  # WON: whose
    deals: Page[DealListItem] = Page((), 0, 1, 0)


async def drill_down(
    uow: UnitOfWork,
    actor: Actor,
    kind: DrillKind,
    filters: ReportFilter,
    key: int,
    page: int = 0,
) -> DrillPage:
    """One page of the deals behind a number of /funnel (see the module docstring)."""
    require(actor, Action.REPORTS_OWN)
    if not can(actor, Action.REPORTS_ALL):
        if filters.manager_id not in (None, actor.id):
            raise PermissionDenied(str(Action.REPORTS_ALL))
        if kind is DrillKind.WON and key != actor.id:
            raise PermissionDenied(str(Action.REPORTS_ALL))
    scope = analytics.scope_manager(actor, filters.manager_id)
    if scope is not None and await uow.repo.get(Employee, scope) is None:
        raise NotFound("employee", scope)
    if filters.pipeline_id is not None:
        pipeline = await uow.repo.get(Pipeline, filters.pipeline_id)
        if pipeline is None or pipeline.archived or pipeline.role not in REPORT_ROLES:
            raise NotFound("pipeline", filters.pipeline_id)
    pmap = await analytics.pipeline_map(uow, filters)
    pipeline_id = pmap.rules.pipeline.id
    stages = {s.id: s for s in pmap.stages}
    now = uow.clock.now()
    span = None if kind is DrillKind.STAGE else analytics.resolve_period(filters, now)
    since, until = (0, 0) if span is None else analytics.epoch(span)
    page = max(page, 0)
    offset, repo = page * PER_PAGE, uow.repo.analytics
    cohort = (pipeline_id, since, until, scope, offset, PER_PAGE)
    stage_info = reason_info = manager_name = None
    if kind is DrillKind.STAGE:
        stage = _stage(stages, key, (StageKind.ACTIVE,))
        stage_info = StageInfo.of(stage)
        rows, total = await repo.open_in_stage(pipeline_id, stage.id, scope, offset, PER_PAGE)
    elif kind is DrillKind.REACHED:
        stage = _stage(stages, key, (StageKind.ACTIVE, StageKind.WON))
        if stage.id not in pmap.rank:
            raise NotFound("stage", key)
        stage_info = StageInfo.of(stage)
        ids = [sid for sid, r in pmap.rank.items() if r >= pmap.rank[stage.id]]
        rows, total = await repo.cohort_deals(*cohort, reached_ids=ids)
    elif kind is DrillKind.REASON:
        reasons = {r.id: r for r in await uow.repo.catalog.loss_reasons(include_inactive=True)}
        reason = reasons.get(key)
        if reason is None:
            raise NotFound("loss_reason", key)
        reason_info = ReasonInfo(
            reason.id, reason.code, reason.name, reason.name_en, reason.conditional
        )
        rows, total = await repo.cohort_deals(*cohort, reason_id=reason.id)
    else:
        employee = await uow.repo.get(Employee, key)
        if employee is None or (scope is not None and key != scope):
            raise NotFound("employee", key)  # or outside the filter the report was drawn with
        manager_name = employee.name
        rows, total = await repo.cohort_deals(
            pipeline_id, since, until, key, offset, PER_PAGE, won=True
        )
    items = list_items(rows, await stages_by_id(uow), now)
    return DrillPage(
        kind=kind,
        pipeline=pmap.info,
        range=span,
        manager_id=scope,
        stage=stage_info,
        reason=reason_info,
        manager_name=manager_name,
        deals=Page(items, page, max(1, math.ceil(total / PER_PAGE)), total),
    )


def _stage(stages: dict[int, Stage], key: int, kinds: tuple[StageKind, ...]) -> Stage:
    stage = stages.get(key)
    if stage is None or stage.kind not in kinds:
        raise NotFound("stage", key)
    return stage
