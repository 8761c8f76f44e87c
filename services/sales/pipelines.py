"""Pipelines in the database: idempotent sync from configuration, and the move rules."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from services.dto import PipelineInfo, StageInfo, SyncReport
from services.errors import (
    DealClosed,
    NotFound,
    ReasonRequired,
    RuleViolation,
    StageHasDeals,
    StrictOrder,
)
from services.sales.pipeline_config import CompanyConfig, LossReasonSpec, QuestionSpec
from storage.enums import StageKind
from storage.models import LossReason, Pipeline, QualificationQuestion, Stage
from storage.uow import UnitOfWork


async def sync_config(uow: UnitOfWork, config: CompanyConfig) -> SyncReport:
    """Make the database match the configuration; commit once or not at all.

    Identity is the code: a renamed stage keeps its deals. A stage missing from the
    file is archived if empty, refused (StageHasDeals) if not.
    Running it twice changes nothing the second time.
    """
    report = SyncReport()
    repo = uow.repo
    existing = {p.code: p for p in await repo.pipelines.all(include_archived=True)}
    to_archive: list[Stage] = []
    for position, spec in enumerate(config.pipelines):
        pipeline = existing.get(spec.code)
        if pipeline is None:
            pipeline = Pipeline(code=spec.code, name=spec.name, position=position)
            repo.add(pipeline)
            await uow.flush()
            report.pipelines_added.append(spec.code)
        changed = _assign(
            pipeline,
            name=spec.name,
            name_en=spec.name_en,
            role=spec.role,
            strict=spec.strict,
            position=position,
            archived=False,
        )
        if changed and spec.code not in report.pipelines_added:
            report.pipelines_changed.append(spec.code)
        stages = {
            s.code: s for s in await repo.pipelines.stages(pipeline.id, include_archived=True)
        }
        wanted = set()
        for stage_pos, sspec in enumerate(spec.stages):
            wanted.add(sspec.code)
            stage = stages.get(sspec.code)
            if stage is None:
                stage = Stage(
                    pipeline_id=pipeline.id, code=sspec.code, name=sspec.name, position=stage_pos
                )
                repo.add(stage)
                report.stages_added.append(f"{spec.code}.{sspec.code}")
            elif stage.name != sspec.name:
                report.stages_renamed.append(f"{spec.code}.{sspec.code}")
            task = sspec.task.model_dump(mode="json") if sspec.task else None
            changed = _assign(
                stage,
                name=sspec.name,
                name_en=sspec.name_en,
                short=sspec.short,
                short_en=sspec.short_en,
                position=stage_pos,
                kind=str(sspec.kind),
                is_key=sspec.key,
                strict=sspec.strict,
                probability=sspec.probability,
                required_fields=list(sspec.requires),
                on_enter_task=task,
                rot_after_days=sspec.rot_after_days,
                extras=sspec.extras(),
                archived=False,
            )
            label = f"{spec.code}.{sspec.code}"
            if changed and label not in report.stages_added + report.stages_renamed:
                report.stages_changed.append(label)
        to_archive.extend(s for code, s in stages.items() if code not in wanted and not s.archived)
    for code, pipeline in existing.items():
        if code not in {p.code for p in config.pipelines} and not pipeline.archived:
            to_archive.extend(await repo.pipelines.stages(pipeline.id))
            pipeline.archived = True
    if to_archive:
        occupied = await repo.pipelines.occupancy([s.id for s in to_archive])
        busy = [s for s in to_archive if occupied.get(s.id)]
        if busy:
            stage = busy[0]
            raise StageHasDeals(stage.code, stage.name, occupied[stage.id])
        for stage in to_archive:
            stage.archived = True
            report.stages_archived.append(stage.code)

    reasons = await repo.catalog.loss_reasons(include_inactive=True)
    report.reasons_changed += _sync_catalog(uow, reasons, config.loss_reasons, LossReason)
    questions = await repo.catalog.questions(include_inactive=True)
    report.questions_changed += _sync_catalog(
        uow, questions, config.qualification, QualificationQuestion
    )
    await uow.commit()
    return report


_Row = TypeVar("_Row", LossReason, QualificationQuestion)


def _sync_catalog(
    uow: UnitOfWork,
    rows: Sequence[_Row],
    specs: Sequence[LossReasonSpec | QuestionSpec],
    model: type[_Row],
) -> int:
    """Make a catalog (loss reasons, qualification questions) match the configuration: a
    spec's fields are the row's columns, the file's order is the order, identity is the
    code; a row missing from the file is deactivated (history points at it), never deleted.
    Returns how many rows changed."""
    by_code = {row.code: row for row in rows}
    changed = 0
    for position, spec in enumerate(specs):
        row = by_code.pop(spec.code, None)
        if row is None:
            row = model(code=spec.code)
            uow.repo.add(row)
        values = spec.model_dump(exclude={"code"})
        changed += _assign(row, **values, position=position, active=True)
    for row in by_code.values():
        changed += _assign(row, active=False)
    return changed


def _assign(obj: object, **values: object) -> bool:
    changed = False
    for key, value in values.items():
        if getattr(obj, key, None) != value:
            setattr(obj, key, value)
            changed = True
    return changed


def stale_days(stage: Stage, entered_at: datetime, now: datetime) -> int | None:
    """Whole days the deal has been in the stage if that is past the stage's limit, else
    None (not stale, or the stage has no limit)."""
    if stage.kind != "active":
        return None
    return days_past(stage.rot_after_days, entered_at, now)


def days_past(limit: int | None, entered_at: datetime, now: datetime) -> int | None:
    """The one "stale" rule (cards, lists, the board, the rotting alert): whole days in the
    stage when more than `limit` days have passed since `entered_at`, else None."""
    if limit is None:
        return None
    held = now - entered_at
    if held <= timedelta(days=limit):
        return None
    return max(math.floor(held / timedelta(days=1)), limit)


# --- reading and rules --------------------------------------------------------------------


@dataclass(frozen=True)
class PipelineRules:
    """A pipeline with its live stages, and the rules for moving between them."""

    pipeline: Pipeline
    stages: tuple[Stage, ...]

    @property
    def info(self) -> PipelineInfo:
        p = self.pipeline
        return PipelineInfo(
            id=p.id,
            code=p.code,
            name=p.name,
            name_en=p.name_en,
            role=p.role,
            strict=p.strict,
            stages=tuple(StageInfo.of(s) for s in self.stages),
        )

    def stage(self, stage_id: int) -> Stage:
        for s in self.stages:
            if s.id == stage_id:
                return s
        raise NotFound("stage", stage_id)

    def by_code(self, code: str) -> Stage:
        for s in self.stages:
            if s.code == code:
                return s
        raise NotFound("stage", code)

    @property
    def flow(self) -> tuple[Stage, ...]:
        """The main line: active stages then the first won stage, in order."""
        active = [s for s in self.stages if s.kind == StageKind.ACTIVE]
        won = [s for s in self.stages if s.kind == StageKind.WON]
        return tuple(active + won[:1])

    @property
    def entry(self) -> Stage:
        return self.flow[0]

    def first_of(self, kind: StageKind) -> Stage:
        for s in self.stages:
            if s.kind == kind:
                return s
        raise RuleViolation("no_stage_of_kind", kind=str(kind), pipeline=self.pipeline.code)

    def conditional_refusal(self) -> Stage | None:
        # Configuration allows at most one frozen stage per pipeline: that one.
        frozen = [s for s in self.stages if s.kind == StageKind.FROZEN]
        return frozen[0] if frozen else None

    def is_strict(self, target: Stage) -> bool:
        return self.pipeline.strict if target.strict is None else target.strict

    def neighbours(self, current: Stage) -> tuple[Stage | None, Stage | None]:
        flow = self.flow
        if current not in flow or current.kind != StageKind.ACTIVE:
            return None, None
        i = flow.index(current)
        prev = flow[i - 1] if i > 0 else None
        nxt = flow[i + 1] if i + 1 < len(flow) else None
        return prev, nxt

    def step(self, current: Stage, *, forward: bool = True) -> Stage:
        """The next (or the previous) stage of the flow; RuleViolation "no_next_stage"
        ("no_previous_stage") at its end or off it."""
        prev, nxt = self.neighbours(current)
        found = nxt if forward else prev
        if found is None:
            rule = "no_next_stage" if forward else "no_previous_stage"
            raise RuleViolation(rule, stage=current.name, stage_en=current.name_en)
        return found

    def check_move(self, current: Stage, target: Stage) -> None:
        """Raise RuleViolation unless a plain move current -> target is allowed."""
        if target.pipeline_id != self.pipeline.id or target.archived:
            raise NotFound("stage", target.id)
        if target.id == current.id:
            raise RuleViolation("same_stage", stage=target.name, stage_en=target.name_en)
        if current.kind in (StageKind.WON, StageKind.LOST):
            raise DealClosed(current.name, stage_en=current.name_en)
        if current.kind == StageKind.FROZEN:
            raise RuleViolation("deal_frozen", stage=current.name, stage_en=current.name_en)
        if target.kind == StageKind.LOST:
            raise ReasonRequired()
        if target.kind == StageKind.FROZEN:
            raise RuleViolation("use_refusal", stage=target.name, stage_en=target.name_en)
        flow = self.flow
        if target not in flow:
            raise RuleViolation("not_in_flow", stage=target.name, stage_en=target.name_en)
        i, j = flow.index(current), flow.index(target)
        if self.is_strict(target) and abs(j - i) != 1:
            ahead = flow[i + 1] if j > i else None
            raise StrictOrder(
                target.name,
                ahead.name if ahead else "",
                stage_en=target.name_en,
                expected_en=ahead.name_en if ahead else None,
            )


async def rules_for(uow: UnitOfWork, pipeline_id: int) -> PipelineRules:
    """A pipeline's rules, from the process cache while the configuration is unchanged
    (storage/cache.py: every write to pipelines or stages invalidates it, in every worker)."""
    cache = await uow.cached("config")
    rules: PipelineRules | None = cache.get(("rules", pipeline_id))
    if rules is None:
        pipeline = await uow.repo.get(Pipeline, pipeline_id)
        if pipeline is None:
            raise NotFound("pipeline", pipeline_id)
        stages = await uow.repo.pipelines.stages(pipeline_id)
        rules = cache[("rules", pipeline_id)] = PipelineRules(pipeline, tuple(stages))
    return rules


async def rules_by_role(uow: UnitOfWork, role: str) -> PipelineRules:
    pipeline = await uow.repo.pipelines.by_role(role)
    if pipeline is None:
        raise RuleViolation("pipeline_missing", role=role)
    return await rules_for(uow, pipeline.id)


async def rules_by_code(uow: UnitOfWork, code: str) -> PipelineRules:
    pipeline = await uow.repo.pipelines.by_code(code)
    if pipeline is None or pipeline.archived:
        raise RuleViolation("pipeline_missing", role=code)
    return await rules_for(uow, pipeline.id)


async def list_pipelines(uow: UnitOfWork) -> list[PipelineInfo]:
    result = []
    for p in await uow.repo.pipelines.all():
        result.append((await rules_for(uow, p.id)).info)
    return result


async def stage_names(uow: UnitOfWork) -> dict[int, tuple[str, str | None]]:
    """{stage id: (name, English name)} of every stage, archived too (history shows them),
    from the process cache while the configuration is unchanged."""
    cache = await uow.cached("config")
    names: dict[int, tuple[str, str | None]] | None = cache.get(("stage_names",))
    if names is None:
        names = {}
        for p in await uow.repo.pipelines.all(include_archived=True):
            for s in await uow.repo.pipelines.stages(p.id, include_archived=True):
                names[s.id] = (s.name, s.name_en)
        cache[("stage_names",)] = names
    return names
