"""Deals: stage moves under the pipeline's rules, losses, refusals, deferral, notes, reassign.

Every operation: load -> permission check -> version check -> rules -> history row ->
one commit. A refused operation raises before the commit, so nothing is saved.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime

from services import validation
from services.common import check_version, commit, employee_name, flush, load
from services.dto import DealCard, DealListItem, HistoryEntry, NoteInfo, Page, StageInfo
from services.errors import RuleViolation, ValidationError
from services.permissions import Action, Actor, can, require
from services.sales.pipeline_config import REQUIRABLE_FIELDS
from services.sales.pipelines import PipelineRules, rules_by_role, rules_for
from services.work.tasks import create_task, on_stage_entry
from storage.enums import ActivityKind, Role, StageKind, TaskKind, TaskStatus
from storage.models import (
    Activity,
    Company,
    Contact,
    Deal,
    Employee,
    LossReason,
    Stage,
    StageHistory,
)
from storage.uow import UnitOfWork

CLOSED_KINDS = (StageKind.WON, StageKind.LOST)
PER_PAGE = 8

Fields = Mapping[str, object]


# --- loading and rendering ----------------------------------------------------------------


async def _load(
    uow: UnitOfWork, actor: Actor, deal_id: int, action: Action, expected_version: int | None
) -> tuple[Deal, PipelineRules]:
    deal = await load(uow, Deal, deal_id, "deal")
    require(actor, action, deal)
    check_version("deal", deal.version, expected_version)
    return deal, await rules_for(uow, deal.pipeline_id)


async def get_card(uow: UnitOfWork, actor: Actor, deal_id: int) -> DealCard:
    deal, rules = await _load(uow, actor, deal_id, Action.DEAL_VIEW, None)
    return await _card(uow, deal, actor, rules)


async def _card(
    uow: UnitOfWork, deal: Deal, actor: Actor, rules: PipelineRules | None = None
) -> DealCard:
    if rules is None or rules.pipeline.id != deal.pipeline_id:
        rules = await rules_for(uow, deal.pipeline_id)
    stage = rules.stage(deal.stage_id)
    contact = await uow.repo.get(Contact, deal.contact_id) if deal.contact_id else None
    company = await uow.repo.get(Company, deal.company_id) if deal.company_id else None
    reason = await uow.repo.get(LossReason, deal.loss_reason_id) if deal.loss_reason_id else None
    notes = []
    for a in await uow.repo.history.activities(deal.id, limit=3):
        notes.append(NoteInfo(a.kind, a.text, await employee_name(uow, a.author_id), a.at))
    prev, nxt = rules.neighbours(stage)
    strict_back = prev is not None and rules.is_strict(stage)
    return DealCard(
        id=deal.id,
        version=deal.version,
        title=deal.title,
        contact_name=contact.name if contact else None,
        phone=contact.phone if contact else None,
        email=contact.email if contact else None,
        company_name=company.name if company else None,
        amount=deal.amount,
        need=deal.need,
        address=deal.address,
        measurement_at=deal.measurement_at,
        next_contact_at=deal.next_contact_at,
        pipeline=rules.info,
        stage=StageInfo.of(stage),
        manager_id=deal.manager_id,
        manager_name=await employee_name(uow, deal.manager_id),
        created_at=deal.created_at,
        closed=stage.kind in CLOSED_KINDS,
        loss_reason=reason.name if reason else None,
        loss_reason_en=reason.name_en if reason else None,
        notes=tuple(notes),
        next_stage=StageInfo.of(nxt) if nxt else None,
        prev_stage=StageInfo.of(prev)
        if prev and (strict_back or not rules.pipeline.strict)
        else None,
        can_choose_stage=not rules.pipeline.strict and stage.kind == StageKind.ACTIVE,
        can_reopen=stage.kind in (StageKind.FROZEN, StageKind.LOST),
        can_return_to_sales=rules.pipeline.role == "deferred" and stage.kind != StageKind.LOST,
        may_move=can(actor, Action.DEAL_MOVE, deal),
        may_edit=can(actor, Action.DEAL_EDIT, deal),
        may_reassign=can(actor, Action.DEAL_REASSIGN, deal),
    )


# --- the one way a deal changes stage -----------------------------------------------------


def _apply_fields(deal: Deal, fields: Fields | None, now: datetime) -> None:
    """Validate and set fields given along with a move (a stage's required fields)."""
    for key, raw in (fields or {}).items():
        if key not in REQUIRABLE_FIELDS:
            raise ValidationError(key, "unknown_field")
        if key == "amount":
            deal.amount = validation.amount(raw)  # type: ignore[arg-type]
        elif key in ("measurement_at", "next_contact_at"):
            if not isinstance(raw, datetime) or raw.tzinfo is None:
                raise ValidationError(key, "not_a_datetime")
            if raw <= now:
                raise ValidationError(key, "in_the_past")
            setattr(deal, key, raw)
        else:
            text = validation.optional_text(str(raw) if raw is not None else None, key, 500)
            if text is None:
                raise ValidationError(key, "empty")
            setattr(deal, key, text)


def _check_required(deal: Deal, stage: Stage) -> None:
    for name in stage.required_fields:
        if getattr(deal, name, None) in (None, ""):
            raise RuleViolation("field_required", field=name, stage=stage.name, stage_id=stage.id)


async def _enter(
    uow: UnitOfWork,
    actor: Actor,
    deal: Deal,
    target: Stage,
    *,
    reason_id: int | None = None,
    comment: str | None = None,
) -> None:
    _check_required(deal, target)
    now = uow.clock.now()
    uow.repo.add(
        StageHistory(
            deal_id=deal.id,
            pipeline_id=target.pipeline_id,
            from_stage_id=deal.stage_id,
            to_stage_id=target.id,
            actor_id=actor.id,
            at=now,
            reason_id=reason_id,
            comment=comment,
        )
    )
    deal.pipeline_id = target.pipeline_id
    deal.stage_id = target.id
    deal.stage_entered_at = now
    deal.updated_at = now
    deal.last_activity_at = now
    deal.closed_at = now if target.kind in CLOSED_KINDS else None
    if target.kind != StageKind.LOST and target.kind != StageKind.FROZEN:
        deal.loss_reason_id = None
        deal.loss_comment = None
    await on_stage_entry(uow, deal, target, actor.id)


async def _finish(
    uow: UnitOfWork, actor: Actor, deal: Deal, rules: PipelineRules | None = None
) -> DealCard:
    """Flush, build the card inside the same transaction (it shows the new version), commit:
    one transaction per tap instead of a second one just to read the card back. `rules` of
    the deal's pipeline, when the caller has them, spare reading the stages again."""
    await flush(uow, "deal")
    card = await _card(uow, deal, actor, rules)
    await commit(uow, "deal")
    return card


# --- stage moves --------------------------------------------------------------------------


async def _move(
    uow: UnitOfWork,
    actor: Actor,
    deal_id: int,
    expected_version: int | None,
    pick: Callable[[PipelineRules, Stage], Stage],
    fields: Fields | None = None,
) -> DealCard:
    """A plain move inside the deal's pipeline: `pick` chooses the target, the rules judge."""
    deal, rules = await _load(uow, actor, deal_id, Action.DEAL_MOVE, expected_version)
    current = rules.stage(deal.stage_id)
    target = pick(rules, current)
    rules.check_move(current, target)
    _apply_fields(deal, fields, uow.clock.now())
    await _enter(uow, actor, deal, target)
    return await _finish(uow, actor, deal, rules)


async def move_to(
    uow: UnitOfWork,
    actor: Actor,
    deal_id: int,
    stage_id: int,
    expected_version: int | None,
    fields: Fields | None = None,
) -> DealCard:
    """Move within the deal's pipeline, under its rules (strict: one step at a time)."""
    if not isinstance(stage_id, int) or isinstance(stage_id, bool):
        raise ValidationError("stage", "unknown")
    return await _move(
        uow, actor, deal_id, expected_version, lambda rules, _: rules.stage(stage_id), fields
    )


def _next(rules: PipelineRules, current: Stage) -> Stage:
    _, nxt = rules.neighbours(current)
    if nxt is None:
        raise RuleViolation("no_next_stage", stage=current.name)
    return nxt


def _previous(rules: PipelineRules, current: Stage) -> Stage:
    prev, _ = rules.neighbours(current)
    if prev is None:
        raise RuleViolation("no_previous_stage", stage=current.name)
    return prev


async def advance(
    uow: UnitOfWork,
    actor: Actor,
    deal_id: int,
    expected_version: int | None,
    fields: Fields | None = None,
) -> DealCard:
    return await _move(uow, actor, deal_id, expected_version, _next, fields)


async def step_back(
    uow: UnitOfWork, actor: Actor, deal_id: int, expected_version: int | None
) -> DealCard:
    return await _move(uow, actor, deal_id, expected_version, _previous)


async def win(
    uow: UnitOfWork,
    actor: Actor,
    deal_id: int,
    expected_version: int | None,
    fields: Fields | None = None,
) -> DealCard:
    return await _move(
        uow,
        actor,
        deal_id,
        expected_version,
        lambda rules, _: rules.first_of(StageKind.WON),
        fields,
    )


async def lose(
    uow: UnitOfWork,
    actor: Actor,
    deal_id: int,
    reason_code: str | int,
    comment: str | None = None,
    expected_version: int | None = None,
) -> DealCard:
    """Lose with a reason from the fixed list (by code, or by id from a button).

    A conditional reason parks the deal in the pipeline's conditional-refusal stage (if it
    has one) so it can be worked again."""
    deal, rules = await _load(uow, actor, deal_id, Action.DEAL_MOVE, expected_version)
    current = rules.stage(deal.stage_id)
    if current.kind in CLOSED_KINDS:
        raise RuleViolation("deal_closed", stage=current.name)
    reason = await loss_reason(uow, reason_code)
    comment = validation.optional_text(comment, "comment")
    refusal = rules.conditional_refusal()
    if reason.conditional and refusal is not None:
        if current.id == refusal.id:
            raise RuleViolation("same_stage", stage=current.name)
        target = refusal
    else:
        target = rules.first_of(StageKind.LOST)
    deal.loss_reason_id = reason.id
    deal.loss_comment = comment
    await _enter(uow, actor, deal, target, reason_id=reason.id, comment=comment)
    return await _finish(uow, actor, deal)


async def loss_reason(uow: UnitOfWork, ref: str | int) -> LossReason:
    """An active loss reason by code, or by id (from a button); else ValidationError."""
    if isinstance(ref, int) and not isinstance(ref, bool):
        reason = await uow.repo.get(LossReason, ref) if ref > 0 else None
    else:
        reason = await uow.repo.catalog.loss_reason_by_code(str(ref))
    if reason is None or not reason.active:
        raise ValidationError("reason", "unknown")
    return reason


async def loss_reasons(uow: UnitOfWork, lang: str | None) -> list[tuple[int, str, bool]]:
    """(id, label, conditional) of the active loss reasons, in configured order."""
    return [
        (r.id, r.name_en if lang == "en" and r.name_en else r.name, r.conditional)
        for r in await uow.repo.catalog.loss_reasons()
    ]


async def assignable_managers(uow: UnitOfWork, actor: Actor) -> list[tuple[int, str]]:
    require(actor, Action.DEAL_REASSIGN)
    return [(e.id, e.name) for e in await uow.repo.employees.with_role(Role.MANAGER)]


async def reopen(
    uow: UnitOfWork, actor: Actor, deal_id: int, expected_version: int | None
) -> DealCard:
    """Back from conditional refusal or lost to the active stage the deal left from."""
    deal, rules = await _load(uow, actor, deal_id, Action.DEAL_MOVE, expected_version)
    current = rules.stage(deal.stage_id)
    if current.kind not in (StageKind.FROZEN, StageKind.LOST):
        raise RuleViolation("not_refused", stage=current.name)
    target = await _stage_before(uow, deal, rules) or rules.entry
    await _enter(uow, actor, deal, target)
    return await _finish(uow, actor, deal)


async def _stage_before(uow: UnitOfWork, deal: Deal, rules: PipelineRules) -> Stage | None:
    """The last active stage of `rules`' pipeline this deal was in."""
    active = {s.id: s for s in rules.stages if s.kind == StageKind.ACTIVE}
    for row in reversed(await uow.repo.history.for_deal(deal.id)):
        if row.to_stage_id in active:
            return active[row.to_stage_id]
    return None


# --- deferred demand ----------------------------------------------------------------------


async def defer(
    uow: UnitOfWork,
    actor: Actor,
    deal_id: int,
    next_contact_at: datetime,
    expected_version: int | None,
    comment: str | None = None,
) -> DealCard:
    """Client not ready: to Deferred demand with a next-contact date and a task on that date."""
    deal, rules = await _load(uow, actor, deal_id, Action.DEAL_MOVE, expected_version)
    current = rules.stage(deal.stage_id)
    if current.kind in CLOSED_KINDS:
        raise RuleViolation("deal_closed", stage=current.name)
    deferred = await rules_by_role(uow, "deferred")
    if deferred.pipeline.id == rules.pipeline.id:
        raise RuleViolation("already_deferred")
    _apply_fields(deal, {"next_contact_at": next_contact_at}, uow.clock.now())
    comment = validation.optional_text(comment, "comment")
    await _enter(uow, actor, deal, deferred.entry, comment=comment)
    await create_task(
        uow,
        kind=TaskKind.DEFERRED_CONTACT,
        title=deal.title,
        due_at=next_contact_at,
        created_by_id=actor.id,
        deal_id=deal.id,
        assignee_id=deal.manager_id or actor.id,
        comment=comment,
    )
    return await _finish(uow, actor, deal)


async def return_to_sales(
    uow: UnitOfWork, actor: Actor, deal_id: int, expected_version: int | None
) -> DealCard:
    deal, rules = await _load(uow, actor, deal_id, Action.DEAL_MOVE, expected_version)
    if rules.pipeline.role != "deferred":
        raise RuleViolation("not_deferred")
    current = rules.stage(deal.stage_id)
    if current.kind == StageKind.LOST:
        raise RuleViolation("deal_closed", stage=current.name)
    sales = await rules_by_role(uow, "sales")
    target = await _stage_before(uow, deal, sales) or sales.entry
    for task in await uow.repo.tasks.open_for_deal(deal.id, TaskKind.DEFERRED_CONTACT):
        task.status = TaskStatus.CANCELLED
    deal.next_contact_at = None
    await _enter(uow, actor, deal, target)
    return await _finish(uow, actor, deal)


# --- notes, reassignment ------------------------------------------------------------------


async def add_note(uow: UnitOfWork, actor: Actor, deal_id: int, text: str) -> DealCard:
    deal, _ = await _load(uow, actor, deal_id, Action.DEAL_EDIT, None)
    body = validation.optional_text(text, "note", 3000)
    if body is None:
        raise ValidationError("note", "empty")
    now = uow.clock.now()
    uow.repo.add(
        Activity(deal_id=deal.id, kind=ActivityKind.NOTE, text=body, author_id=actor.id, at=now)
    )
    deal.last_activity_at = now
    deal.updated_at = now
    return await _finish(uow, actor, deal)


async def reassign(
    uow: UnitOfWork, actor: Actor, deal_id: int, manager_id: int, expected_version: int | None
) -> DealCard:
    deal, _ = await _load(uow, actor, deal_id, Action.DEAL_VIEW, expected_version)
    require(actor, Action.DEAL_REASSIGN, deal)
    emp = await uow.repo.get(Employee, manager_id) if isinstance(manager_id, int) else None
    if emp is None or not emp.active or Role.MANAGER not in emp.roles:
        raise ValidationError("manager", "not_a_manager")
    if deal.manager_id == emp.id:
        raise RuleViolation("same_manager")
    now = uow.clock.now()
    uow.repo.add(
        Activity(
            deal_id=deal.id,
            kind=ActivityKind.SYSTEM,
            text=f"reassigned:{deal.manager_id}->{emp.id}",
            author_id=actor.id,
            at=now,
        )
    )
    deal.manager_id = emp.id
    deal.updated_at = now
    return await _finish(uow, actor, deal)


# --- reading ------------------------------------------------------------------------------


async def history(
    uow: UnitOfWork, actor: Actor, deal_id: int, page: int = 0, per_page: int = PER_PAGE
) -> Page[HistoryEntry]:
    deal, _ = await _load(uow, actor, deal_id, Action.DEAL_VIEW, None)
    rows = list(await uow.repo.history.for_deal(deal.id))
    rows.reverse()  # newest first
    stage_names = await _stage_names(uow)
    reasons = {r.id: r.name for r in await uow.repo.catalog.loss_reasons(include_inactive=True)}
    pages = max(1, math.ceil(len(rows) / per_page))
    page = min(max(page, 0), pages - 1)
    chunk = rows[page * per_page : (page + 1) * per_page]
    items = []
    for r in chunk:
        to_name, to_en = stage_names.get(r.to_stage_id, ("?", None))
        from_name = stage_names[r.from_stage_id][0] if r.from_stage_id in stage_names else None
        items.append(
            HistoryEntry(
                at=r.at,
                from_stage=from_name,
                to_stage=to_name,
                to_stage_en=to_en,
                actor=await employee_name(uow, r.actor_id),
                reason=reasons.get(r.reason_id) if r.reason_id else None,
                comment=r.comment,
            )
        )
    return Page(tuple(items), page, pages, len(rows))


async def _stage_names(uow: UnitOfWork) -> dict[int, tuple[str, str | None]]:
    names: dict[int, tuple[str, str | None]] = {}
    for p in await uow.repo.pipelines.all(include_archived=True):
        for s in await uow.repo.pipelines.stages(p.id, include_archived=True):
            names[s.id] = (s.name, s.name_en)
    return names


async def list_deals(
    uow: UnitOfWork,
    actor: Actor,
    *,
    pipeline_id: int | None = None,
    stage_id: int | None = None,
    open_only: bool = True,
    page: int = 0,
    per_page: int = PER_PAGE,
) -> Page[DealListItem]:
    """My deals (a manager) or everyone's (leader/admin), newest activity first."""
    require(actor, Action.REPORTS_OWN)
    page = max(page, 0)
    rows, total = await uow.repo.deals.page(
        manager_id=None if actor.sees_all else actor.id,
        pipeline_id=pipeline_id,
        stage_id=stage_id,
        open_only=open_only,
        offset=page * per_page,
        limit=per_page,
    )
    names = await _stage_names(uow)
    items = tuple(
        DealListItem(
            d.id, d.title, *names.get(d.stage_id, ("?", None)), d.amount, d.next_contact_at
        )
        for d in rows
    )
    return Page(items, page, max(1, math.ceil(total / per_page)), total)


async def search(uow: UnitOfWork, actor: Actor, query: str, limit: int = 10) -> list[DealListItem]:
    require(actor, Action.REPORTS_OWN)
    needle = normalize_search(query)
    if len(needle) < 2:
        raise ValidationError("query", "too_short")
    rows = await uow.repo.deals.search(needle, None if actor.sees_all else actor.id, limit)
    names = await _stage_names(uow)
    return [
        DealListItem(
            d.id, d.title, *names.get(d.stage_id, ("?", None)), d.amount, d.next_contact_at
        )
        for d in rows
    ]


def normalize_search(text: str) -> str:
    text = " ".join(text.lower().replace("ё", "е").split())[:100]
    digits = re.sub(r"\D", "", text)
    # A phone typed as "8 916 123-45-67" or "+7 (916)..." is searched by its last 10 digits.
    if len(digits) >= 7 and len(digits) >= len(text.replace(" ", "")) - 6:
        return digits[-10:]
    return text


def search_text(title: str, contact: Contact | None, company: Company | None) -> str:
    parts = [title]
    if contact is not None:
        parts.append(contact.name)
        if contact.phone:
            parts.append(re.sub(r"\D", "", contact.phone))
        if contact.email:
            parts.append(contact.email)
    if company is not None:
        parts.append(company.name)
    return " | ".join(parts).lower().replace("ё", "е")[:1200]
