"""One call for the ``/funnel`` screen: the chosen report plus what its pickers offer.

The reports themselves are services.analytics; this module only bundles one of them with
the pipelines to choose from and (for leaders and admins) the managers, so the handler makes
one service call per tap. Permissions: REPORTS_OWN (measurers are refused with
PermissionDenied); a manager's report is always of their own deals.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from services.dto import PipelineInfo
from services.permissions import Action, Actor, can, require
from services.reports import analytics
from services.reports.analytics import (
    LossReport,
    ManagerReport,
    PeriodFunnel,
    ReportFilter,
    SnapshotFunnel,
    VelocityReport,
)
from services.reports.fulfilment import FulfilmentReport, fulfilment
from services.sales.pipelines import list_pipelines
from services.sales.plans import PlanReport, plan_report
from services.team.norms import TeamFigures, last_full_day, team_figures
from storage.enums import Role
from storage.models import Employee
from storage.uow import UnitOfWork

# Pipelines a funnel makes sense for (the leads pipeline has its own cards, installments
# are payments): sales first, then deferred demand, then anything custom.
REPORT_ROLES = ("sales", "deferred", "fulfilment", "claims", "custom")


class ReportKind(StrEnum):
    SNAPSHOT = "snapshot"
    PERIOD = "period"
    LOSSES = "losses"
    MANAGERS = "managers"
    VELOCITY = "velocity"
    PLAN = "plan"  # plans, done, forecast and pace this month (services/sales/plans.py)


Report = SnapshotFunnel | PeriodFunnel | LossReport | ManagerReport | VelocityReport | PlanReport


@dataclass(frozen=True)
class ReportScreen:
    kind: ReportKind
    filters: ReportFilter  # as applied: manager_id is the scope (a manager: themselves)
    report: Report
    pipeline: PipelineInfo
    pipelines: tuple[PipelineInfo, ...]  # to choose from
    managers: tuple[tuple[int, str], ...]  # (id, name) to choose from; empty for a manager
    manager_name: str | None  # whose numbers (None: everyone)
    sees_all: bool
    # The Order fulfilment pipeline's own figures (issue 24), for leaders and admins.
    fulfilment: FulfilmentReport | None = None
    # The managers view: first response over its period and yesterday's norms (issue 26).
    team: TeamFigures | None = None


async def report_screen(
    uow: UnitOfWork, actor: Actor, kind: ReportKind, filters: ReportFilter
) -> ReportScreen:
    require(actor, Action.REPORTS_OWN)
    sees_all = can(actor, Action.REPORTS_ALL)
    scope = analytics.scope_manager(actor, filters.manager_id)
    infos = [p for p in await list_pipelines(uow) if p.role in REPORT_ROLES]
    infos.sort(key=lambda p: REPORT_ROLES.index(p.role))
    if filters.pipeline_id is not None and all(p.id != filters.pipeline_id for p in infos):
        filters = replace(filters, pipeline_id=None)  # a forged or archived id: the default
    filters = replace(filters, manager_id=scope)
    report: Report
    if kind is ReportKind.SNAPSHOT:
        report = await analytics.snapshot(uow, actor, filters)
    elif kind is ReportKind.PERIOD:
        report = await analytics.period_funnel(uow, actor, filters)
    elif kind is ReportKind.LOSSES:
        report = await analytics.loss_reasons(uow, actor, filters)
    elif kind is ReportKind.VELOCITY:
        report = await analytics.velocity(uow, actor, filters)
    elif kind is ReportKind.PLAN:  # the sales pipeline's month, whatever was picked
        report = await plan_report(uow, actor, scope, tz=filters.tz)
    else:
        report = await analytics.managers(uow, actor, filters)
    team = None
    if isinstance(report, ManagerReport):
        span = report.range
        end = min(span.end, uow.clock.now())
        day = last_full_day(uow, span.last_day)
        team = await team_figures(uow, actor, span.start, end, day)
    managers: tuple[tuple[int, str], ...] = ()
    if sees_all:
        managers = tuple((e.id, e.name) for e in await uow.repo.employees.with_role(Role.MANAGER))
    manager_name = None
    if scope is not None:
        employee = await uow.repo.get(Employee, scope)
        manager_name = employee.name if employee is not None else None
    extra = None
    if report.pipeline.role == "fulfilment" and sees_all:
        extra = await fulfilment(uow, actor, filters)
    return ReportScreen(
        team=team,
        fulfilment=extra,
        kind=kind,
        filters=filters,
        report=report,
        pipeline=report.pipeline,
        pipelines=tuple(infos),
        managers=managers,
        manager_name=manager_name,
        sees_all=sees_all,
    )
