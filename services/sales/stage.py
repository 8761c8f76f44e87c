"""The stage core: the one way a deal is loaded for an action, enters a stage and is saved.

Every caller -- a tap on a deal card, a measurement task, an installment payment, a scheduled
job -- goes through `load_for` (permission + version), `enter` (rules, history row, entry
task) and `finish` (card DTO + one commit). Scheduled work acts as `permissions.SYSTEM`.

It is also the only writer of stage history: a deal comes into being through `birth` (a
converted lead, an installment copy), a lead through `birth_lead`, and a lead changes stage
through `enter_lead`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from services import timeline, validation
from services.common import check_version, commit, employee_name, flush, is_id
from services.dto import DealCard, DealLink, StageInfo
from services.errors import (
    DealClosed,
    FieldRequired,
    MeasurerRequired,
    NotFound,
    RuleViolation,
    ValidationError,
)
from services.outbox import clients as client_messages
from services.permissions import Action, Actor, can, require
from services.sales import plans
from services.sales.pipeline_config import DATE_FIELDS, MEASURER, TYPED_FIELDS
from services.sales.pipelines import PipelineRules, rules_by_code, rules_for, stale_days
from services.tasks import DATE_REMINDERS, date_reminder, on_stage_entry
from storage.enums import ActivityKind, PipelineRole, StageKind
from storage.models import Company, Contact, Deal, Lead, LossReason, Stage, StageHistory
from storage.uow import UnitOfWork

CLOSED_KINDS = (StageKind.WON, StageKind.LOST)

Fields = Mapping[str, object]


async def load_for(
    uow: UnitOfWork, actor: Actor, deal_id: int, action: Action, expected_version: int | None
) -> tuple[Deal, PipelineRules]:
    deal = await uow.repo.deals.with_client(deal_id) if is_id(deal_id) else None
    if deal is None:
        raise NotFound("deal", deal_id)
    require(actor, action, deal)
    check_version("deal", deal.version, expected_version)
    return deal, await rules_for(uow, deal.pipeline_id)


async def loss_reason_by_id(uow: UnitOfWork, reason_id: int) -> LossReason | None:
    """A loss reason (active or not) from the process cache of the configuration."""
    cache = await uow.cached("config")
    key = ("reason", reason_id)
    if key not in cache:
        cache[key] = await uow.repo.get(LossReason, reason_id)
    reason: LossReason | None = cache[key]
    return reason


async def build_card(
    uow: UnitOfWork, deal: Deal, actor: Actor, rules: PipelineRules | None = None
) -> DealCard:
    if rules is None or rules.pipeline.id != deal.pipeline_id:
        rules = await rules_for(uow, deal.pipeline_id)
    stage = rules.stage(deal.stage_id)
    contact = await uow.repo.get(Contact, deal.contact_id) if deal.contact_id else None
    company = await uow.repo.get(Company, deal.company_id) if deal.company_id else None
    reason = await loss_reason_by_id(uow, deal.loss_reason_id) if deal.loss_reason_id else None
    # The counts and the last events: one statement (it runs inside every stage move).
    summary = await uow.repo.timeline.card(deal.id, recent=3)
    notes = [await timeline.entry_of(uow, a) for a in summary.recent]
    prev, nxt = rules.neighbours(stage)
    strict_back = prev is not None and rules.is_strict(stage)
    links = await _links_of(uow, deal, rules, stage)
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
        loss_comment=deal.loss_comment if reason else None,
        measurer_id=deal.measurer_id,
        notes=tuple(notes),
        next_stage=StageInfo.of(nxt) if nxt else None,
        prev_stage=StageInfo.of(prev)
        if prev and (strict_back or not rules.pipeline.strict)
        else None,
        can_choose_stage=not rules.pipeline.strict and stage.kind == StageKind.ACTIVE,
        can_reopen=stage.kind in (StageKind.FROZEN, StageKind.LOST),
        can_return_to_sales=rules.pipeline.role == PipelineRole.DEFERRED
        and stage.kind != StageKind.LOST,
        may_move=can(actor, Action.DEAL_MOVE, deal),
        may_edit=can(actor, Action.DEAL_EDIT, deal),
        may_reassign=can(actor, Action.DEAL_REASSIGN, deal),
        may_reply=can(actor, Action.MESSAGES_REPLY, deal),
        files=summary.files,
        messages=summary.messages,
        open_tasks=summary.open_tasks,
        stale_days=stale_days(stage, deal.stage_entered_at, uow.clock.now()),
        links=links,
        items=tuple(deal.items or ()),
        production_at=deal.production_at,
        delivery_at=deal.delivery_at,
        owed=await owed(uow, deal) if rules.pipeline.role == PipelineRole.FULFILMENT else 0,
        expected_close_at=_expected_close(deal, stage, rules),
        expected_close_typed=deal.expected_close_at is not None,
    )


def _expected_close(deal: Deal, stage: Stage, rules: PipelineRules) -> datetime | None:
    """An open sale's expected close: typed, else the stage's rule (services/sales/plans)."""
    if stage.kind != StageKind.ACTIVE or rules.pipeline.role != PipelineRole.SALES:
        return None
    return deal.expected_close_at or plans.rule_close(stage, deal.stage_entered_at)


async def _links_of(
    uow: UnitOfWork, deal: Deal, rules: PipelineRules, stage: Stage
) -> tuple[DealLink, ...]:
    """The deals linked to this one. Read only where there can be some (the deal came from
    another, or it has passed a stage that links): a plain tap stays at six statements."""
    linking = [s.position for s in rules.stages if (s.extras or {}).get("links")]
    if deal.parent_deal_id is None and not (linking and stage.position >= min(linking)):
        return ()
    found = []
    for other in await uow.repo.deals.linked(deal.id, deal.parent_deal_id):
        info = (await rules_for(uow, other.pipeline_id)).pipeline
        found.append(DealLink(other.id, other.title, info.name, info.name_en))
    return tuple(found)


def apply_fields(deal: Deal, fields: Fields | None, now: datetime) -> None:
    """Validate and set fields given along with a move (a stage's required fields)."""
    for key, raw in (fields or {}).items():
        if key not in TYPED_FIELDS:
            raise ValidationError(key, "unknown_field")
        if key == "amount":
            deal.amount = validation.amount(raw)  # type: ignore[arg-type]
        elif key in DATE_FIELDS:
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


def check_required(deal: Deal, stage: Stage) -> None:
    """The stage's required fields: a measurer it needs must be assigned (nothing to type:
    `MeasurerRequired`), the typed ones missing are `FieldRequired` (asked, in order)."""
    if MEASURER in stage.required_fields and deal.measurer_id is None:
        raise MeasurerRequired(stage=stage.name, stage_en=stage.name_en)
    typed = [name for name in stage.required_fields if name != MEASURER]
    missing = [name for name in typed if getattr(deal, name, None) in (None, "")]
    if missing:
        raise FieldRequired(missing, stage=stage.name, stage_en=stage.name_en, stage_id=stage.id)


def _history(
    uow: UnitOfWork,
    actor: Actor | None,
    subject: Deal | Lead,
    target: Stage,
    at: datetime,
    *,
    first: bool = False,
    reason_id: int | None = None,
    comment: str | None = None,
) -> None:
    """The one place a stage history row is made: `subject` (a deal or a lead) enters
    `target` from its current stage (`first`: from nowhere, it has just been born)."""
    is_deal = isinstance(subject, Deal)
    uow.repo.add(
        StageHistory(
            deal_id=subject.id if is_deal else None,
            lead_id=None if is_deal else subject.id,
            pipeline_id=target.pipeline_id,
            from_stage_id=None if first else subject.stage_id,
            to_stage_id=target.id,
            actor_id=actor.employee_id if actor is not None else None,
            at=at,
            reason_id=reason_id,
            comment=comment,
        )
    )


async def birth(uow: UnitOfWork, actor: Actor, deal: Deal, rules: PipelineRules) -> Deal:
    """A new deal in the entry stage of `rules`' pipeline: the row (with its id), its first
    history row and the stage's entry task. The one way a deal comes into being (a converted
    lead, an installment copy); no commit (the caller owns it). `deal` carries the rest of
    its fields; its place and its times are set here."""
    now = uow.clock.now()
    entry = rules.entry
    deal.pipeline_id = entry.pipeline_id
    deal.stage_id = entry.id
    deal.created_at = now
    deal.updated_at = now
    deal.stage_entered_at = now
    deal.last_activity_at = now
    uow.repo.add(deal)
    await uow.flush()
    _history(uow, actor, deal, entry, now, first=True)
    await on_stage_entry(uow, deal, entry, actor.employee_id)
    await client_messages.stage_entered(uow, deal, entry)
    return deal


async def birth_lead(
    uow: UnitOfWork, actor: Actor | None, lead: Lead, rules: PipelineRules
) -> Lead:
    """A new lead in the entry stage of `rules`' pipeline, with its first history row (no
    commit). `actor` None: the lead came from outside (a site form, a client's chat)."""
    now = uow.clock.now()
    entry = rules.entry
    lead.pipeline_id = entry.pipeline_id
    lead.stage_id = entry.id
    lead.created_at = now
    lead.updated_at = now
    uow.repo.add(lead)
    await uow.flush()
    _history(uow, actor, lead, entry, now, first=True)
    return lead


def enter_lead(
    uow: UnitOfWork,
    actor: Actor,
    lead: Lead,
    target: Stage,
    *,
    reason_id: int | None = None,
    comment: str | None = None,
) -> None:
    """A lead enters `target` (a stage of its pipeline): its history row, its new stage."""
    _history(uow, actor, lead, target, uow.clock.now(), reason_id=reason_id, comment=comment)
    lead.stage_id = target.id


async def enter(
    uow: UnitOfWork,
    actor: Actor,
    deal: Deal,
    target: Stage,
    *,
    reason_id: int | None = None,
    comment: str | None = None,
) -> list[Deal]:
    """The deal enters `target`: rules, history row, entry task, linked deals (returned)."""
    check_required(deal, target)
    if (target.extras or {}).get("debt_blocks"):
        await _check_paid(uow, deal, target)
    now = uow.clock.now()
    _history(uow, actor, deal, target, now, reason_id=reason_id, comment=comment)
    deal.pipeline_id = target.pipeline_id
    deal.stage_id = target.id
    deal.stage_entered_at = now
    deal.updated_at = now
    deal.last_activity_at = now
    deal.closed_at = now if target.kind in CLOSED_KINDS else None
    if target.kind != StageKind.LOST and target.kind != StageKind.FROZEN:
        deal.loss_reason_id = None
        deal.loss_comment = None
    await on_stage_entry(uow, deal, target, actor.employee_id)
    if target.kind == StageKind.WON:  # a sale: its manager's plan may have been reached
        if (await rules_for(uow, target.pipeline_id)).pipeline.role == PipelineRole.SALES:
            await plans.after_win(uow, deal)
    for field in DATE_REMINDERS:
        if field in target.required_fields:
            await date_reminder(uow, deal, field, actor.employee_id)
    await client_messages.stage_entered(uow, deal, target)  # the stage's [client] message
    return await follow_links(uow, actor, deal, target)


async def owed(uow: UnitOfWork, deal: Deal) -> int:
    """What is unpaid on the deal's own plan (an order's final payment); 0 without one."""
    plan = await uow.repo.installments.plan_for_deal(deal.id)
    if plan is None:
        return 0
    return sum(d.amount - d.paid for d in await uow.repo.installments.dues(plan.id))


async def _check_paid(uow: UnitOfWork, deal: Deal, target: Stage) -> None:
    """A stage with `debt_blocks` (pipelines file) is not entered while the deal's plan
    (its final payment, an installment plan) has money owed."""
    left = await owed(uow, deal)
    if left > 0:
        raise RuleViolation("money_owed", stage=target.name, amount=left)


def items_of(need: str | None) -> list[str]:
    """A sale's need as items to install: one per line or per ";" ("Kitchen window;
    Bedroom window"), the whole need when it has no such breaks."""
    parts = [p.strip() for line in (need or "").splitlines() for p in line.split(";")]
    return [p[:200] for p in parts if p][:50]


def _link_applies(when: str, deal: Deal) -> bool:
    if when == "with_installments":
        return deal.with_installments
    if when == "without_installments":
        return not deal.with_installments
    return True


async def follow_links(uow: UnitOfWork, actor: Actor, deal: Deal, stage: Stage) -> list[Deal]:
    """The deals the stage's `links` (pipelines file) make in other pipelines: one per
    link, once per deal and pipeline (re-entering the stage makes no second one), each in
    its pipeline's entry stage with what the link carries. Returns those made now."""
    specs = [spec for spec in (stage.extras or {}).get("links") or () if isinstance(spec, dict)]
    specs = [spec for spec in specs if _link_applies(str(spec.get("when", "always")), deal)]
    if not specs:
        return []
    await uow.flush()
    existing = {d.pipeline_id for d in await uow.repo.deals.linked(deal.id, None)}
    made = []
    for spec in specs:
        target = await rules_by_code(uow, str(spec["to"]))
        if target.pipeline.id in existing:
            continue
        made.append(await _linked_copy(uow, actor, deal, target, frozenset(spec.get("carry", ()))))
    return made


async def _linked_copy(
    uow: UnitOfWork, actor: Actor, deal: Deal, rules: PipelineRules, carry: frozenset[str]
) -> Deal:
    client = "client" in carry
    copy = Deal(
        title=deal.title,
        contact_id=deal.contact_id if client else None,
        company_id=deal.company_id if client else None,
        parent_deal_id=deal.id,
        manager_id=deal.manager_id if "manager" in carry else None,
        amount=deal.amount if "amount" in carry else None,
        need=deal.need if "need" in carry else None,
        address=deal.address if "address" in carry else None,
        with_installments=rules.pipeline.role == PipelineRole.INSTALLMENTS,
        search_text=deal.search_text,
    )
    if "items" in carry:
        copy.items = list(deal.items or items_of(deal.need))
    await birth(uow, actor, copy, rules)
    if "files" in carry:
        rows, _ = await uow.repo.timeline.files(deal.id, 0, 200, with_messages=False)
        for row in rows:
            timeline.record(
                uow,
                ActivityKind.FILE,
                actor_id=row.author_id,
                deal_id=copy.id,
                at=row.at,
                media_type=row.media_type,
                file_id=row.file_id,
                file_unique_id=row.file_unique_id,
                caption=row.caption,
            )
    return copy


async def finish(
    uow: UnitOfWork, actor: Actor, deal: Deal, rules: PipelineRules | None = None
) -> DealCard:
    """Flush, build the card inside the same transaction (it shows the new version), commit:
    one transaction per tap instead of a second one just to read the card back. `rules` of
    the deal's pipeline, when the caller has them, spare reading the stages again."""
    await flush(uow, "deal")
    result = await build_card(uow, deal, actor, rules)
    await commit(uow, "deal")
    return result


def ensure_open(rules: PipelineRules, deal: Deal, *, allow: tuple[StageKind, ...] = ()) -> Stage:
    """The deal's current stage; DealClosed if it is won or lost (the one
    "deal is closed" guard). `allow`: closed kinds this action accepts (a deferred deal
    goes back to Sales even from a won stage)."""
    stage = rules.stage(deal.stage_id)
    if stage.kind in CLOSED_KINDS and stage.kind not in allow:
        raise DealClosed(stage.name)
    return stage
