"""Leads: intake, duplicate detection, qualification, disqualification, conversion."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from services import policy, timeline, validation
from services.common import check_version, commit, employee_name, load
from services.dto import Duplicate, LeadCard, StageInfo
from services.errors import (
    DuplicateLead,
    NotFound,
    QualificationIncomplete,
    RuleViolation,
    ValidationError,
)
from services.outbox import queue as outbox
from services.outbox.payloads import LeadNew
from services.outbox.queue import Kind
from services.permissions import Action, Actor, require
from services.sales import stage as stage_core
from services.sales.deals import loss_reason, reason_comment, search_text
from services.sales.pipelines import rules_by_role, rules_for
from services.worktime import response_seconds
from storage.enums import ActivityKind, LeadSource, LeadStatus, PipelineRole, Role, StageKind
from storage.models import Company, Contact, Deal, Employee, Lead
from storage.uow import UnitOfWork


@dataclass(frozen=True)
class LeadInput:
    """Raw input as a person typed it; the service validates every field."""

    name: str
    source: str = LeadSource.MANUAL
    phone: str | None = None
    email: str | None = None
    need: str | None = None
    is_legal_entity: bool = False
    company_name: str | None = None
    amount: str | int | Decimal | None = None
    manager_id: int | None = None


@dataclass(frozen=True)
class CleanLead:
    name: str
    source: str
    phone: str | None
    email: str | None
    need: str | None
    is_legal_entity: bool
    company_name: str | None
    amount: int | None


def clean(data: LeadInput) -> CleanLead:
    """Validate every field; raise ValidationError naming the first bad one."""
    if data.source not in LeadSource._value2member_map_:
        raise ValidationError("source", "unknown")
    name = validation.name(data.name)
    phone = validation.phone(data.phone) if data.phone and data.phone.strip() else None
    email = validation.email(data.email) if data.email and data.email.strip() else None
    if phone is None and email is None and data.source != LeadSource.TELEGRAM:
        # (a client who wrote in Telegram is reached in that chat)
        raise ValidationError("phone", "contact_required")
    company = None
    if data.is_legal_entity:
        if not data.company_name or not data.company_name.strip():
            raise ValidationError("company_name", "empty")
        company = validation.name(data.company_name, "company_name", max_len=300)
    amount = None
    if data.amount is not None and not (isinstance(data.amount, str) and not data.amount.strip()):
        amount = validation.amount(data.amount)
    return CleanLead(
        name=name,
        source=data.source,
        phone=phone,
        email=email,
        need=validation.optional_text(data.need, "need"),
        is_legal_entity=data.is_legal_entity,
        company_name=company,
        amount=amount,
    )


async def find_duplicates(
    uow: UnitOfWork, actor: Actor, phone: str | None, email: str | None
) -> list[Duplicate]:
    """Open leads and deals of clients with this phone or email."""
    require(actor, Action.LEAD_CREATE)
    phone = validation.phone(phone) if phone else None
    email = validation.email(email) if email else None
    found: list[Duplicate] = []
    for lead in await uow.repo.leads.duplicates(phone, email):
        if lead.status in (LeadStatus.NEW, LeadStatus.QUALIFYING):
            stage = (await rules_for(uow, lead.pipeline_id)).stage(lead.stage_id)
            found.append(Duplicate("lead", lead.id, lead.name, stage.name, stage.name_en))
    contacts = await uow.repo.contacts.duplicates(phone, email)
    for deal in await uow.repo.deals.by_contact_ids([c.id for c in contacts]):
        if deal.closed_at is None:
            stage = (await rules_for(uow, deal.pipeline_id)).stage(deal.stage_id)
            found.append(Duplicate("deal", deal.id, deal.title, stage.name, stage.name_en))
    return found


async def create_lead(
    uow: UnitOfWork, actor: Actor, data: LeadInput, *, allow_duplicate: bool = False
) -> LeadCard:
    require(actor, Action.LEAD_CREATE)
    lead = await insert_lead(uow, actor, data, allow_duplicate=allow_duplicate)
    await commit(uow, "lead")
    return await _card(uow, lead)


async def insert_lead(
    uow: UnitOfWork, actor: Actor | None, data: LeadInput, *, allow_duplicate: bool
) -> Lead:
    """Validate and add a lead with its first history row; no commit (callers own it)."""
    clean_data = clean(data)
    if not allow_duplicate:
        dupes = await uow.repo.leads.duplicates(clean_data.phone, clean_data.email)
        open_dupes = [d for d in dupes if d.status in (LeadStatus.NEW, LeadStatus.QUALIFYING)]
        if open_dupes:
            raise DuplicateLead([d.id for d in open_dupes])
    manager_id = data.manager_id
    if manager_id is not None:
        await _require_manager(uow, manager_id)
    elif actor is not None and actor.has(Role.MANAGER):
        manager_id = actor.id
    rules = await rules_by_role(uow, PipelineRole.LEADS)
    lead = Lead(
        source=clean_data.source,
        name=clean_data.name,
        phone=clean_data.phone,
        email=clean_data.email,
        need=clean_data.need,
        is_legal_entity=clean_data.is_legal_entity,
        company_name=clean_data.company_name,
        amount=clean_data.amount,
        status=LeadStatus.NEW,
        qualification={},
        manager_id=manager_id,
        created_by_id=actor.id if actor else None,
    )
    await stage_core.birth_lead(uow, actor, lead, rules)
    timeline.record(
        uow,
        ActivityKind.INTAKE,
        actor_id=actor.employee_id if actor else None,
        text=clean_data.need or "",
        lead_id=lead.id,
        at=lead.created_at,
        payload={"source": str(clean_data.source)},
    )
    return lead


async def _require_manager(uow: UnitOfWork, employee_id: int) -> Employee:
    emp = await uow.repo.get(Employee, employee_id)
    if emp is None or not emp.active or Role.MANAGER not in emp.roles:
        raise ValidationError("manager", "not_a_manager")
    return emp


async def load_for(uow: UnitOfWork, actor: Actor, lead_id: int, action: Action) -> Lead:
    """The lead, if `actor` may do `action` on it (NotFound / PermissionDenied)."""
    return await _load_for(uow, actor, lead_id, action)


async def _load_for(uow: UnitOfWork, actor: Actor, lead_id: int, action: Action) -> Lead:
    lead = await load(uow, Lead, lead_id, "lead")
    require(actor, action, lead)
    return lead


async def get_lead(uow: UnitOfWork, actor: Actor, lead_id: int) -> LeadCard:
    lead = await _load_for(uow, actor, lead_id, Action.LEAD_VIEW)
    return await _card(uow, lead)


def require_open(lead: Lead) -> None:
    if lead.status in (LeadStatus.CONVERTED, LeadStatus.DISQUALIFIED):
        raise RuleViolation("lead_closed", status=lead.status)


# --- the first touch (issue 26) -------------------------------------------------------------
#
# A lead's first touch — what stops its first-response clock (`first_action_at`) — is the
# first of: a call or a note logged on it (`add_note`), a message sent to its client (a
# Business reply: services/intake/business.py), or a change of its stage or status (a
# qualification answer, disqualification, conversion). Nothing else counts: viewing the
# card, an edit of a typo, a reassignment, the client's own messages. Every such path calls
# `_touch` / `touched`; this is the one place the rule lives.
TOUCH_KINDS = (ActivityKind.NOTE, ActivityKind.CALL, ActivityKind.MESSAGE_OUT, ActivityKind.STAGE)


def _first_touch(uow: UnitOfWork, lead: Lead, now: datetime) -> None:
    """Stop the lead's first-response clock: when, and how long it ran in working time
    (`response_s`, what /funnel's response figures add up)."""
    if lead.first_action_at is None:
        lead.first_action_at = now
        lead.response_s = response_seconds(policy.of(uow).work_hours, lead.created_at, now)


async def _touch(uow: UnitOfWork, actor: Actor, lead: Lead) -> None:
    """Record the first touch on a lead (response time) and take it if unassigned."""
    now = uow.clock.now()
    _first_touch(uow, lead, now)
    if lead.manager_id is None and actor.has(Role.MANAGER):
        lead.manager_id = actor.id
    lead.updated_at = now


async def touched(uow: UnitOfWork, lead_id: int, kind: ActivityKind) -> None:
    """A timeline row of `kind` was written on the lead by its people (not the client):
    a first touch when the kind is one (TOUCH_KINDS). No commit."""
    if kind not in TOUCH_KINDS:
        return
    lead = await uow.repo.get(Lead, lead_id)
    if lead is not None:
        _first_touch(uow, lead, uow.clock.now())


NOTE_KINDS = (ActivityKind.NOTE, ActivityKind.CALL)


async def add_note(
    uow: UnitOfWork,
    actor: Actor,
    lead_id: int,
    text: str,
    kind: ActivityKind = ActivityKind.NOTE,
) -> LeadCard:
    """A note, or a call logged (`kind` CALL), on the lead's timeline: a first touch."""
    if kind not in NOTE_KINDS:
        raise ValidationError("kind", "unknown")
    lead = await _load_for(uow, actor, lead_id, Action.LEAD_EDIT)
    body = validation.optional_text(text, "note", 3000)
    if body is None:
        raise ValidationError("note", "empty")
    timeline.record(uow, kind, actor_id=actor.id, text=body, lead_id=lead.id)
    await _touch(uow, actor, lead)
    await commit(uow, "lead")
    return await _card(uow, lead)


async def reassign(
    uow: UnitOfWork, actor: Actor, lead_id: int, manager_id: int
) -> tuple[LeadCard, bool]:
    """A leader gives the lead to another manager (the override of the distribution, and
    the escalation's buttons): the timeline says so, the new manager is told (`lead.new`,
    the lead's card button). Commits; the card, and False when it was theirs already."""
    lead = await _load_for(uow, actor, lead_id, Action.LEAD_VIEW)
    require(actor, Action.DEAL_REASSIGN, lead)  # the same right as a deal's reassignment
    require_open(lead)
    emp = await _require_manager(uow, manager_id) if isinstance(manager_id, int) else None
    if emp is None:
        raise ValidationError("manager", "not_a_manager")
    if lead.manager_id == emp.id:
        return await _card(uow, lead), False
    await timeline.record_reassignment(
        uow, actor.employee_id, lead.manager_id, emp, lead_id=lead.id
    )
    lead.manager_id = emp.id
    now = lead.updated_at = uow.clock.now()
    if emp.id != actor.id:
        await outbox.enqueue(
            uow,
            emp.id,
            Kind.LEAD_NEW,
            lead_new(lead.id, lead, lead.source),
            now,
            dedupe_key=f"lead.reassigned:{lead.id}:{lead.version}:{emp.id}",
        )
    await commit(uow, "lead")
    return await _card(uow, lead), True


def lead_new(lead_id: int, data: CleanLead | Lead, source: str, repeat: bool = False) -> LeadNew:
    """The `lead.new` message of a lead (the intake's, a reassignment's)."""
    contact = data.phone or data.email or ""
    return LeadNew(
        # A language-neutral line (the notifier draws it as it is).
        title=f"{data.name} · {contact}" + (f" — {data.need}" if data.need else ""),
        lead_id=lead_id,
        source=source,
        name=data.name,
        phone=data.phone,
        email=data.email,
        need=data.need,
        company=data.company_name,
        amount=data.amount,
        repeat=repeat,
    )


async def answer_question(
    uow: UnitOfWork,
    actor: Actor,
    lead_id: int,
    code: str,
    value: bool,
    expected_version: int | None = None,
) -> LeadCard:
    """Set a qualification answer; the first answer moves the lead to qualification."""
    lead = await _load_for(uow, actor, lead_id, Action.LEAD_EDIT)
    check_version("lead", lead.version, expected_version)
    require_open(lead)
    question = await uow.repo.catalog.question_by_code(code)
    if question is None or not question.active:
        raise NotFound("question", code)
    answers = dict(lead.qualification)
    answers[code] = bool(value)
    lead.qualification = answers
    await _touch(uow, actor, lead)
    if lead.status == LeadStatus.NEW:
        rules = await rules_for(uow, lead.pipeline_id)
        _, nxt = rules.neighbours(rules.stage(lead.stage_id))
        if nxt is not None and nxt.kind == StageKind.ACTIVE:
            stage_core.enter_lead(uow, actor, lead, nxt)
        lead.status = LeadStatus.QUALIFYING
    await commit(uow, "lead")
    return await _card(uow, lead)


async def disqualify(
    uow: UnitOfWork,
    actor: Actor,
    lead_id: int,
    reason_code: str | int,
    comment: str | None = None,
    expected_version: int | None = None,
) -> LeadCard:
    lead = await _load_for(uow, actor, lead_id, Action.LEAD_EDIT)
    check_version("lead", lead.version, expected_version)
    require_open(lead)
    reason = await loss_reason(uow, reason_code, "leads")
    comment = reason_comment(reason, comment)
    rules = await rules_for(uow, lead.pipeline_id)
    lost = rules.first_of(StageKind.LOST)
    await _touch(uow, actor, lead)
    stage_core.enter_lead(uow, actor, lead, lost, reason_id=reason.id, comment=comment)
    lead.status = LeadStatus.DISQUALIFIED
    lead.loss_reason_id = reason.id
    lead.loss_comment = comment
    await commit(uow, "lead")
    return await _card(uow, lead)


async def convert(
    uow: UnitOfWork, actor: Actor, lead_id: int, expected_version: int | None = None
) -> int:
    """Contact (+ company) + deal in Sales, lead marked converted: one commit or nothing.

    Returns the new deal id.
    """
    lead = await _load_for(uow, actor, lead_id, Action.LEAD_EDIT)
    check_version("lead", lead.version, expected_version)
    require_open(lead)
    missing = [
        q.code
        for q in await uow.repo.catalog.questions()
        if q.required and not lead.qualification.get(q.code)
    ]
    if missing:
        raise QualificationIncomplete(missing)
    await _touch(uow, actor, lead)

    contact = await _contact_for(uow, lead)
    company = await _company_for(uow, lead)
    if company is not None and contact.company_id is None:
        contact.company_id = company.id

    sales = await rules_by_role(uow, PipelineRole.SALES)
    manager_id = lead.manager_id or (actor.id if actor.has(Role.MANAGER) else None)
    title = lead.company_name or lead.name
    if lead.need:
        title = f"{title}: {lead.need}"[:300]
    deal = Deal(
        title=title,
        contact_id=contact.id,
        company_id=company.id if company else None,
        lead_id=lead.id,
        manager_id=manager_id,
        amount=lead.amount,
        need=lead.need,
        search_text=search_text(title, contact, company),
    )
    await stage_core.birth(uow, actor, deal, sales)
    rules = await rules_for(uow, lead.pipeline_id)
    stage_core.enter_lead(uow, actor, lead, rules.first_of(StageKind.WON))
    lead.status = LeadStatus.CONVERTED
    lead.deal_id = deal.id
    await commit(uow, "lead")
    return deal.id


async def _contact_for(uow: UnitOfWork, lead: Lead) -> Contact:
    """Reuse the client's existing contact (same phone or email) or create one."""
    existing = await uow.repo.contacts.duplicates(lead.phone, lead.email)
    if existing:
        return existing[0]
    contact = Contact(
        name=lead.name, phone=lead.phone, email=lead.email, created_at=uow.clock.now()
    )
    uow.repo.add(contact)
    await uow.flush()
    return contact


async def _company_for(uow: UnitOfWork, lead: Lead) -> Company | None:
    if not lead.is_legal_entity or not lead.company_name:
        return None
    company = Company(name=lead.company_name, created_at=uow.clock.now())
    uow.repo.add(company)
    await uow.flush()
    return company


async def _card(uow: UnitOfWork, lead: Lead) -> LeadCard:
    rules = await rules_for(uow, lead.pipeline_id)
    questions = await uow.repo.catalog.questions()
    reason = reason_en = None
    if lead.loss_reason_id is not None:
        found = await stage_core.loss_reason_by_id(uow, lead.loss_reason_id)
        reason, reason_en = (found.name, found.name_en) if found else (None, None)
    return LeadCard(
        id=lead.id,
        version=lead.version,
        source=lead.source,
        name=lead.name,
        phone=lead.phone,
        email=lead.email,
        need=lead.need,
        is_legal_entity=lead.is_legal_entity,
        company_name=lead.company_name,
        amount=lead.amount,
        status=lead.status,
        stage=StageInfo.of(rules.stage(lead.stage_id)),
        manager_id=lead.manager_id,
        manager_name=await employee_name(uow, lead.manager_id),
        created_at=lead.created_at,
        qualification=tuple(
            (q.code, q.text, q.text_en, q.required, bool(lead.qualification.get(q.code)))
            for q in questions
        ),
        deal_id=lead.deal_id,
        loss_reason=reason,
        loss_reason_en=reason_en,
        loss_comment=lead.loss_comment,
    )


async def toggle_question(
    uow: UnitOfWork,
    actor: Actor,
    lead_id: int,
    index: int,
    expected_version: int | None = None,
) -> LeadCard:
    """Flip the answer to the `index`-th active question (the order of LeadCard.qualification):
    what a toggle button on the lead card does."""
    lead = await _load_for(uow, actor, lead_id, Action.LEAD_EDIT)
    questions = await uow.repo.catalog.questions()
    if not 0 <= index < len(questions):
        raise NotFound("question", index)
    code = questions[index].code
    value = not lead.qualification.get(code)
    return await answer_question(uow, actor, lead_id, code, value, expected_version)
