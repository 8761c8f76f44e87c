"""Correcting a deal or a lead after entry: one field at a time (issue 20).

Every field the wizard or a stage asked for can be changed from the card, validated by the
very functions that checked it at entry (services/validation.py, `stage.apply_fields`), with
the card's version check and the actor's right to the object checked here. Each change is a
timeline row (`ActivityKind.EDITED`: the field, the old and the new value as facts — kopecks,
ISO moments, text — drawn by the reader in their own language). A measurement's new date or
address moves its task and tells whoever holds the measurement (services/tasks.py
`measurement_moved`). A refused value raises before the commit: nothing is saved.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services import timeline, validation
from services.common import check_version, commit, flush
from services.dto import DealCard, LeadCard
from services.errors import ValidationError
from services.permissions import Action, Actor
from services.sales import leads, plans
from services.sales import stage as stage_core
from services.sales.deals import search_text
from services.tasks import measurement_moved
from storage.enums import ActivityKind
from storage.models import Company, Contact
from storage.uow import UnitOfWork

# The deal card's fields, in the order its edit menu lists them. The first four are
# stage-required fields (`stage.apply_fields` validates them); the rest are the client's.
# (The next contact has its own button: it makes a follow-up task, handlers/followups.)
DEAL_FIELDS: tuple[str, ...] = (
    "amount",
    "need",
    "address",
    "measurement_at",
    "title",
    "contact_name",
    "phone",
    "email",
    "company_name",
    "expected_close_at",
)
# The lead card's fields, as the wizard asked them.
LEAD_FIELDS: tuple[str, ...] = ("name", "phone", "email", "need", "company_name", "amount")
DATE_FIELDS = frozenset({"measurement_at"})
# A calendar day (said back as a day, kept as the company's local midnight in UTC).
DAY_FIELDS = frozenset({"expected_close_at"})
MEASUREMENT_FIELDS = frozenset({"measurement_at", "address"})
_STAGE_FIELDS = frozenset(DEAL_FIELDS[:4])


def _fact(value: Any) -> Any:
    """A value as the timeline row keeps it (JSON): moments as ISO text."""
    return value.isoformat() if isinstance(value, datetime) else value


def _text(field: str, raw: object) -> str:
    if not isinstance(raw, str):
        raise ValidationError(field, "invalid")
    return raw


def _client_value(field: str, raw: object) -> str:
    """A client field, through the validator the wizard uses for it."""
    text = _text(field, raw)
    if field == "phone":
        return validation.phone(text)
    if field == "email":
        return validation.email(text)
    if field == "title":
        return validation.name(text, "title", max_len=300)
    if field == "company_name":
        return validation.name(text, "company_name", max_len=300)
    return validation.name(text)  # a person's name


def _record(
    uow: UnitOfWork,
    actor: Actor,
    field: str,
    old: Any,
    new: Any,
    *,
    deal_id: int | None = None,
    lead_id: int | None = None,
    contact_id: int | None = None,
) -> None:
    timeline.record(
        uow,
        ActivityKind.EDITED,
        actor_id=actor.id,
        payload={"field": field, "old": _fact(old), "new": _fact(new)},
        deal_id=deal_id,
        lead_id=lead_id,
        contact_id=contact_id,
    )


async def edit_deal(
    uow: UnitOfWork,
    actor: Actor,
    deal_id: int,
    field: str,
    raw: object,
    expected_version: int | None,
) -> DealCard:
    """Set one field of the deal (or of its contact / company) to what was typed."""
    if field not in DEAL_FIELDS:
        raise ValidationError(field if isinstance(field, str) else "field", "unknown_field")
    deal, rules = await stage_core.load_for(uow, actor, deal_id, Action.DEAL_EDIT, expected_version)
    now = uow.clock.now()
    contact = await uow.repo.get(Contact, deal.contact_id) if deal.contact_id else None
    company = await uow.repo.get(Company, deal.company_id) if deal.company_id else None
    old: Any
    new: Any
    if field in _STAGE_FIELDS:
        old = getattr(deal, field)
        if field == "amount":
            raw = _text(field, raw) if not isinstance(raw, int) else raw
        stage_core.apply_fields(deal, {field: raw}, now)
        new = getattr(deal, field)
    elif field in DAY_FIELDS:
        old, new = deal.expected_close_at, plans.typed_close(uow, raw)
        deal.expected_close_at = new
    elif field == "title":
        old, new = deal.title, _client_value(field, raw)
        deal.title = new
    elif field == "company_name":
        new = _client_value(field, raw)
        old = company.name if company else None
        if company is None:
            company = Company(name=new, created_at=now)
            uow.repo.add(company)
            await uow.flush()
            deal.company_id = company.id
        company.name = new
    else:  # the contact's name, phone, email
        new = _client_value(field, raw)
        attr = "name" if field == "contact_name" else field
        if contact is None:
            if field != "contact_name":
                raise ValidationError(field, "no_contact")
            contact = Contact(name=new, created_at=now)
            uow.repo.add(contact)
            await uow.flush()
            deal.contact_id = contact.id
            old = None
        else:
            old = getattr(contact, attr)
        setattr(contact, attr, new)
    if old == new:
        return await stage_core.finish(uow, actor, deal, rules)
    _record(uow, actor, field, old, new, deal_id=deal.id, contact_id=deal.contact_id)
    deal.search_text = search_text(deal.title, contact, company)
    deal.updated_at = now
    deal.last_activity_at = now
    if field in MEASUREMENT_FIELDS:
        await flush(uow, "deal")
        await measurement_moved(uow, deal)
    return await stage_core.finish(uow, actor, deal, rules)


async def edit_lead(
    uow: UnitOfWork,
    actor: Actor,
    lead_id: int,
    field: str,
    raw: object,
    expected_version: int | None,
) -> LeadCard:
    """Set one field of an open lead to what was typed (the wizard's validators)."""
    if field not in LEAD_FIELDS:
        raise ValidationError(field if isinstance(field, str) else "field", "unknown_field")
    lead = await leads.load_for(uow, actor, lead_id, Action.LEAD_EDIT)
    check_version("lead", lead.version, expected_version)
    leads.require_open(lead)
    old: Any = getattr(lead, field)
    new: Any
    if field == "amount":
        new = validation.amount(raw if isinstance(raw, int) else _text(field, raw))
    elif field == "need":
        new = validation.optional_text(_text(field, raw), "need")
        if new is None:
            raise ValidationError("need", "empty")
    else:
        new = _client_value(field, raw)
    if old != new:
        setattr(lead, field, new)
        if field == "company_name":
            lead.is_legal_entity = True
        lead.updated_at = uow.clock.now()
        _record(uow, actor, field, old, new, lead_id=lead.id)
        await commit(uow, "lead")
    return await leads.get_lead(uow, actor, lead.id)


def field_of(fields: tuple[str, ...], index: int) -> str:
    """A field by its index in a card's list (client input: refused when out of range)."""
    if not isinstance(index, int) or not 0 <= index < len(fields):
        raise ValidationError("field", "unknown_field")
    return fields[index]
