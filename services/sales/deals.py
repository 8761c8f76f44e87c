"""Deals: stage moves under the pipeline's rules, losses, refusals, deferral, notes, reassign.

Every operation: load -> permission check -> version check -> rules -> history row ->
one commit. A refused operation raises before the commit, so nothing is saved.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Literal

from services import timeline, validation
from services.common import employee_name
from services.dto import DealCard, DealListItem, HistoryEntry, Page, label
from services.errors import CommentRequired, RuleViolation, ValidationError
from services.outbox import queue as outbox
from services.outbox.payloads import DealReassigned
from services.outbox.queue import Kind
from services.permissions import Action, Actor, require
from services.sales import stage as stage_core
from services.sales.pipelines import PipelineRules, rules_by_role, stage_names, stale_days
from services.sales.stage import Fields
from services.tasks import contact_task
from storage.enums import ActivityKind, PipelineRole, Role, StageKind, TaskKind, TaskStatus
from storage.models import (
    Company,
    Contact,
    Deal,
    Employee,
    LossReason,
    Stage,
)
from storage.uow import UnitOfWork

PER_PAGE = 8


# --- reading one deal ---------------------------------------------------------------------


async def get_card(uow: UnitOfWork, actor: Actor, deal_id: int) -> DealCard:
    deal, rules = await stage_core.load_for(uow, actor, deal_id, Action.DEAL_VIEW, None)
    return await stage_core.build_card(uow, deal, actor, rules)


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
    deal, rules = await stage_core.load_for(uow, actor, deal_id, Action.DEAL_MOVE, expected_version)
    current = rules.stage(deal.stage_id)
    target = pick(rules, current)
    rules.check_move(current, target)
    stage_core.apply_fields(deal, fields, uow.clock.now())
    await stage_core.enter(uow, actor, deal, target)
    return await stage_core.finish(uow, actor, deal, rules)


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


async def advance(
    uow: UnitOfWork,
    actor: Actor,
    deal_id: int,
    expected_version: int | None,
    fields: Fields | None = None,
) -> DealCard:
    return await _move(uow, actor, deal_id, expected_version, PipelineRules.step, fields)


async def step_back(
    uow: UnitOfWork, actor: Actor, deal_id: int, expected_version: int | None
) -> DealCard:
    return await _move(
        uow, actor, deal_id, expected_version, lambda rules, s: rules.step(s, forward=False)
    )


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
    deal, rules = await stage_core.load_for(uow, actor, deal_id, Action.DEAL_MOVE, expected_version)
    current = stage_core.ensure_open(rules, deal)
    reason = await loss_reason(uow, reason_code, "deals")
    comment = reason_comment(reason, comment)
    refusal = rules.conditional_refusal()
    if reason.conditional and refusal is not None:
        if current.id == refusal.id:
            raise RuleViolation("same_stage", stage=current.name, stage_en=current.name_en)
        target = refusal
    else:
        target = rules.first_of(StageKind.LOST)
    deal.loss_reason_id = reason.id
    deal.loss_comment = comment
    await stage_core.enter(uow, actor, deal, target, reason_id=reason.id, comment=comment)
    return await stage_core.finish(uow, actor, deal)


ReasonFor = Literal["leads", "deals"]


async def loss_reason(uow: UnitOfWork, ref: str | int, subject: ReasonFor) -> LossReason:
    """An active loss reason for `subject` (its ``applies_to``: that, or "any") by code, or
    by id (from a button); else ValidationError."""
    if isinstance(ref, int) and not isinstance(ref, bool):
        reason = await uow.repo.get(LossReason, ref) if ref > 0 else None
    else:
        reason = await uow.repo.catalog.loss_reason_by_code(str(ref))
    if reason is None or not reason.active or reason.applies_to not in ("any", subject):
        raise ValidationError("reason", "unknown")
    return reason


def reason_comment(reason: LossReason, comment: str | None) -> str | None:
    """The comment checked. The reason needs one: none given is `CommentRequired` (ask for
    it), an empty one a ValidationError (ask again)."""
    text = validation.optional_text(comment, "comment")
    if reason.comment_required and not text and comment is not None:
        raise ValidationError("comment", "empty")
    if reason.comment_required and not text:
        name = reason.name
        raise CommentRequired(reason_id=reason.id, reason=name, reason_en=reason.name_en)
    return text


async def loss_reasons(
    uow: UnitOfWork, lang: str | None, subject: ReasonFor = "deals"
) -> list[tuple[int, str, bool]]:
    """(id, label, conditional) of the active loss reasons for `subject`, in configured
    order."""
    return [
        (r.id, label(lang, r.name, r.name_en), r.conditional)
        for r in await uow.repo.catalog.loss_reasons()
        if r.applies_to in ("any", subject)
    ]


async def assignable_managers(uow: UnitOfWork, actor: Actor) -> list[tuple[int, str]]:
    require(actor, Action.DEAL_REASSIGN)
    return [(e.id, e.name) for e in await uow.repo.employees.with_role(Role.MANAGER)]


async def reopen(
    uow: UnitOfWork, actor: Actor, deal_id: int, expected_version: int | None
) -> DealCard:
    """Back from conditional refusal or lost to the active stage the deal left from."""
    deal, rules = await stage_core.load_for(uow, actor, deal_id, Action.DEAL_MOVE, expected_version)
    current = rules.stage(deal.stage_id)
    if current.kind not in (StageKind.FROZEN, StageKind.LOST):
        raise RuleViolation("not_refused", stage=current.name, stage_en=current.name_en)
    target = await _stage_before(uow, deal, rules) or rules.entry
    await stage_core.enter(uow, actor, deal, target)
    return await stage_core.finish(uow, actor, deal)


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
    deal, rules = await stage_core.load_for(uow, actor, deal_id, Action.DEAL_MOVE, expected_version)
    stage_core.ensure_open(rules, deal)
    deferred = await rules_by_role(uow, PipelineRole.DEFERRED)
    if deferred.pipeline.id == rules.pipeline.id:
        raise RuleViolation("already_deferred")
    stage_core.apply_fields(deal, {"next_contact_at": next_contact_at}, uow.clock.now())
    comment = validation.optional_text(comment, "comment")
    await stage_core.enter(uow, actor, deal, deferred.entry, comment=comment)
    await contact_task(uow, actor, deal, TaskKind.DEFERRED_CONTACT, next_contact_at, comment)
    return await stage_core.finish(uow, actor, deal)


async def return_to_sales(
    uow: UnitOfWork, actor: Actor, deal_id: int, expected_version: int | None
) -> DealCard:
    deal, rules = await stage_core.load_for(uow, actor, deal_id, Action.DEAL_MOVE, expected_version)
    if rules.pipeline.role != PipelineRole.DEFERRED:
        raise RuleViolation("not_deferred")
    stage_core.ensure_open(rules, deal, allow=(StageKind.WON,))
    sales = await rules_by_role(uow, PipelineRole.SALES)
    target = await _stage_before(uow, deal, sales) or sales.entry
    for task in await uow.repo.tasks.open_for_deal(deal.id, TaskKind.DEFERRED_CONTACT):
        task.status = TaskStatus.CANCELLED
    deal.next_contact_at = None
    await stage_core.enter(uow, actor, deal, target)
    return await stage_core.finish(uow, actor, deal)


# --- notes, reassignment ------------------------------------------------------------------


NOTE_KINDS = (ActivityKind.NOTE, ActivityKind.CALL)


async def add_note(
    uow: UnitOfWork,
    actor: Actor,
    deal_id: int,
    text: str,
    kind: ActivityKind = ActivityKind.NOTE,
) -> DealCard:
    """A note, or a call logged with what was said (`kind` CALL), on the deal's timeline."""
    if kind not in NOTE_KINDS:
        raise ValidationError("kind", "unknown")
    deal, _ = await stage_core.load_for(uow, actor, deal_id, Action.DEAL_EDIT, None)
    body = validation.optional_text(text, "note", 3000)
    if body is None:
        raise ValidationError("note", "empty")
    now = uow.clock.now()
    timeline.record(
        uow, kind, actor_id=actor.id, text=body, deal_id=deal.id, contact_id=deal.contact_id
    )
    deal.last_activity_at = now
    deal.updated_at = now
    return await stage_core.finish(uow, actor, deal)


async def reassign(
    uow: UnitOfWork, actor: Actor, deal_id: int, manager_id: int, expected_version: int | None
) -> DealCard:
    """A leader gives the deal to another manager: the timeline says so, and both the new
    manager (with the deal's button) and the previous one are told."""
    deal, _ = await stage_core.load_for(uow, actor, deal_id, Action.DEAL_VIEW, expected_version)
    require(actor, Action.DEAL_REASSIGN, deal)
    emp = await uow.repo.get(Employee, manager_id) if isinstance(manager_id, int) else None
    if emp is None or not emp.active or Role.MANAGER not in emp.roles:
        raise ValidationError("manager", "not_a_manager")
    if deal.manager_id == emp.id:
        raise RuleViolation("same_manager")
    now = uow.clock.now()
    previous = deal.manager_id
    previous_name = await timeline.record_reassignment(
        uow, actor.id, previous, emp, deal_id=deal.id
    )
    deal.manager_id = emp.id
    deal.updated_at = now
    roles: tuple[tuple[int | None, Literal["new", "old"]], ...] = (
        (emp.id, "new"),
        (previous, "old"),
    )
    for person, role in roles:
        if person is not None and person != actor.id:
            await outbox.enqueue(
                uow,
                person,
                Kind.DEAL_REASSIGNED,
                DealReassigned(
                    deal_title=deal.title,
                    by=actor.name,
                    previous=previous_name,
                    to=emp.name,
                    role=role,
                ),
                now,
                dedupe_key=f"deal:{deal.id}:reassigned:{deal.version}:{person}",
                deal_id=deal.id,
            )
    return await stage_core.finish(uow, actor, deal)


# --- reading ------------------------------------------------------------------------------


async def history(
    uow: UnitOfWork, actor: Actor, deal_id: int, page: int = 0, per_page: int = PER_PAGE
) -> Page[HistoryEntry]:
    deal, _ = await stage_core.load_for(uow, actor, deal_id, Action.DEAL_VIEW, None)
    rows = list(await uow.repo.history.for_deal(deal.id))
    rows.reverse()  # newest first
    stage_names = {sid: (s.name, s.name_en) for sid, s in (await stages_by_id(uow)).items()}
    reasons = {
        r.id: (r.name, r.name_en)
        for r in await uow.repo.catalog.loss_reasons(include_inactive=True)
    }
    pages = max(1, math.ceil(len(rows) / per_page))
    page = min(max(page, 0), pages - 1)
    chunk = rows[page * per_page : (page + 1) * per_page]
    items = []
    for r in chunk:
        to_name, to_en = stage_names.get(r.to_stage_id, ("?", None))
        from_name, from_en = stage_names.get(r.from_stage_id or 0, (None, None))
        reason, reason_en = reasons.get(r.reason_id or 0, (None, None))
        items.append(
            HistoryEntry(
                at=r.at,
                from_stage=from_name,
                to_stage=to_name,
                to_stage_en=to_en,
                actor=await employee_name(uow, r.actor_id),
                reason=reason,
                comment=r.comment,
                from_stage_en=from_en,
                reason_en=reason_en,
            )
        )
    return Page(tuple(items), page, pages, len(rows))


async def _stage_names(uow: UnitOfWork) -> dict[int, tuple[str, str | None]]:
    return await stage_names(uow)


async def stages_by_id(uow: UnitOfWork) -> dict[int, Stage]:
    stages: dict[int, Stage] = {}
    for p in await uow.repo.pipelines.all(include_archived=True):
        for s in await uow.repo.pipelines.stages(p.id, include_archived=True):
            stages[s.id] = s
    return stages


def list_items(
    deals_: Sequence[Deal], stages: Mapping[int, Stage], now: datetime
) -> tuple[DealListItem, ...]:
    """Deals as list lines: title, stage, money, next contact, and stale days if past the
    stage's limit."""
    items = []
    for d in deals_:
        stage = stages.get(d.stage_id)
        items.append(
            DealListItem(
                d.id,
                d.title,
                stage.name if stage else "?",
                stage.name_en if stage else None,
                d.amount,
                d.next_contact_at,
                stale_days(stage, d.stage_entered_at, now) if stage else None,
            )
        )
    return tuple(items)


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
    items = list_items(rows, await stages_by_id(uow), uow.clock.now())
    return Page(items, page, max(1, math.ceil(total / per_page)), total)


SEARCH_PAGE = 10


async def search(
    uow: UnitOfWork, actor: Actor, query: str, page: int = 0, per_page: int = SEARCH_PAGE
) -> Page[DealListItem]:
    """Every deal the actor may see that matches: by title, the client's name, phone digits
    (typed any way), email, company, or the deal's number ("306", "#306"); a page of them
    and the true count."""
    require(actor, Action.REPORTS_OWN)
    needle = normalize_search(query)
    number = query.strip().lstrip("#№ ")
    deal_id = int(number) if number.isdigit() and len(number) <= 9 else None
    if len(needle) < 2 and deal_id is None:
        raise ValidationError("query", "too_short")
    page = max(page, 0)
    rows, total = await uow.repo.deals.search(
        needle,
        None if actor.sees_all else actor.id,
        per_page,
        offset=page * per_page,
        deal_id=deal_id,
    )
    items = list_items(rows, await stages_by_id(uow), uow.clock.now())
    return Page(items, page, max(1, math.ceil(total / per_page)), total)


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
