"""Leads service: intake validation, duplicates, qualification, conversion (atomic)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from services.errors import (
    DuplicateLead,
    NotFound,
    PermissionDenied,
    QualificationIncomplete,
    RuleViolation,
    ValidationError,
)
from services.sales import leads
from services.sales import stage as stage_core
from services.sales.leads import LeadInput
from storage.models import Company, Contact, Deal, Lead, StageHistory, Task
from tests.factories import count, new_deal, new_lead, next_phone, qualify


async def test_create_lead_normalises_and_records_history(uow_factory, make_actor):
    ann = await make_actor(roles=("manager",))
    card = await new_lead(
        uow_factory,
        ann,
        phone="8 (916) 123-45-67",
        email=" Ivan@Example.COM ",
        amount="150 000,50",
        need="  3 окна  ",
    )
    assert card.phone == "+79161234567"
    assert card.email == "Ivan@example.com"
    assert card.amount == 15_000_050
    assert card.need == "3 окна"
    assert card.stage.code == "new" and card.status == "new"
    assert card.manager_id == ann.id
    async with uow_factory() as uow:
        rows = await uow.repo.history.for_lead(card.id)
    assert [(r.from_stage_id, r.to_stage_id) for r in rows] == [(None, card.stage.id)]


BAD_INPUT = [
    (dict(phone="12345"), "phone"),
    (dict(phone="позвоните мне"), "phone"),
    (dict(phone=None, email=None), "phone"),
    (dict(email="ivan@"), "email"),
    (dict(email="not an email"), "email"),
    (dict(amount="-5"), "amount"),
    (dict(amount="сто тысяч"), "amount"),
    (dict(amount="1e400"), "amount"),
    (dict(amount="10.001"), "amount"),
    (dict(name="Я" * 10_000), "name"),
    (dict(name="   "), "name"),
    (dict(source="carrier pigeon"), "source"),
    (dict(is_legal_entity=True, company_name=""), "company_name"),
    (dict(need="x" * 5000), "need"),
]


@pytest.mark.parametrize(("fields", "field"), BAD_INPUT)
async def test_bad_input_raises_and_saves_nothing(
    uow_factory, make_actor, db_snapshot, fields, field
):
    ann = await make_actor(roles=("manager",))
    before = await db_snapshot()
    data = {"name": "Иван", "phone": next_phone(), **fields}
    with pytest.raises(ValidationError) as err:
        async with uow_factory() as uow:
            await leads.create_lead(uow, ann, LeadInput(**data))
    assert err.value.field == field
    assert err.value.key.startswith(f"invalid.{field}.")
    assert await db_snapshot() == before


async def test_duplicate_phone_is_refused_unless_allowed(uow_factory, make_actor):
    ann = await make_actor(roles=("manager",))
    first = await new_lead(uow_factory, ann, phone="+7 916 000-00-01")
    with pytest.raises(DuplicateLead) as err:
        await new_lead(uow_factory, ann, phone="89160000001", name="Другой")
    assert err.value.rule == "duplicate" and err.value.lead_ids == [first.id]
    assert err.value.params["lead_ids"] == [first.id]
    async with uow_factory() as uow:
        found = await leads.find_duplicates(uow, ann, "8 916 000 00 01", None)
    assert [(d.kind, d.id) for d in found] == [("lead", first.id)]
    assert await count(uow_factory, Lead) == 1  # the refused one saved nothing
    async with uow_factory() as uow:
        again = await leads.create_lead(
            uow, ann, LeadInput(name="Другой", phone="89160000001"), allow_duplicate=True
        )
    assert again.id != first.id and again.phone == first.phone
    assert await count(uow_factory, Lead) == 2


async def test_duplicate_of_a_converted_client_points_to_the_deal(uow_factory, make_actor):
    ann = await make_actor(roles=("manager",))
    deal = await new_deal(uow_factory, ann, phone="+79160000002", email="a@b.ru")
    async with uow_factory() as uow:
        found = await leads.find_duplicates(uow, ann, None, "A@b.ru")
    assert [(d.kind, d.id) for d in found] == [("deal", deal.id)]


async def test_qualification_moves_lead_and_gates_conversion(uow_factory, make_actor):
    ann = await make_actor(roles=("manager",))
    lead = await new_lead(uow_factory, ann)
    with pytest.raises(QualificationIncomplete) as err:
        async with uow_factory() as uow:
            await leads.convert(uow, ann, lead.id)
    assert err.value.rule == "qualification_incomplete"
    assert set(err.value.params["missing"]) == {"region", "need_clear"}
    async with uow_factory() as uow:
        card = await leads.answer_question(uow, ann, lead.id, "region", True, lead.version)
    assert card.stage.code == "qualification" and card.status == "qualifying"
    assert ("region", True) in [(q[0], q[4]) for q in card.qualification]
    with pytest.raises(NotFound):
        async with uow_factory() as uow:
            await leads.answer_question(uow, ann, lead.id, "no_such_question", True)


async def test_disqualify_needs_a_known_reason(uow_factory, make_actor, db_snapshot):
    ann = await make_actor(roles=("manager",))
    lead = await new_lead(uow_factory, ann)
    before = await db_snapshot()
    with pytest.raises(ValidationError) as err:
        async with uow_factory() as uow:
            await leads.disqualify(uow, ann, lead.id, "because")
    assert err.value.field == "reason"
    assert await db_snapshot() == before
    async with uow_factory() as uow:
        card = await leads.disqualify(uow, ann, lead.id, "not_target", "спам")
    assert card.status == "disqualified" and card.stage.code == "not_target"
    assert card.loss_reason == "Нецелевой запрос"
    with pytest.raises(RuleViolation) as closed:
        async with uow_factory() as uow:
            await leads.convert(uow, ann, lead.id)
    assert closed.value.rule == "lead_closed"


async def test_convert_creates_contact_company_and_deal(uow_factory, make_actor):
    ann = await make_actor(roles=("manager",))
    lead = await new_lead(
        uow_factory,
        ann,
        is_legal_entity=True,
        company_name="ООО Ромашка",
        amount="90000",
        need="остекление офиса",
    )
    await qualify(uow_factory, ann, lead.id)
    async with uow_factory() as uow:
        deal_id = await leads.convert(uow, ann, lead.id)
    async with uow_factory() as uow:
        deal = await uow.repo.get(Deal, deal_id)
        assert deal is not None
        contact = await uow.repo.get(Contact, deal.contact_id)
        company = await uow.repo.get(Company, deal.company_id)
        stored = await uow.repo.get(Lead, lead.id)
        sales = await uow.repo.pipelines.by_role("sales")
        history = await uow.repo.history.for_deal(deal_id)
    assert contact is not None and company is not None and stored is not None
    assert contact.phone == lead.phone and contact.company_id == company.id
    assert company.name == "ООО Ромашка"
    assert deal.pipeline_id == sales.id and deal.amount == 9_000_000
    assert deal.manager_id == ann.id and deal.lead_id == lead.id
    assert stored.status == "converted" and stored.deal_id == deal_id
    assert len(history) == 1 and history[0].from_stage_id is None


async def test_convert_reuses_the_clients_existing_contact(uow_factory, make_actor):
    ann = await make_actor(roles=("manager",))
    first = await new_deal(uow_factory, ann, phone="+79160000003")
    lead = await new_lead(uow_factory, ann, phone="+79160000003", name="Повторный")
    await qualify(uow_factory, ann, lead.id)
    async with uow_factory() as uow:
        deal_id = await leads.convert(uow, ann, lead.id)
    async with uow_factory() as uow:
        a = await uow.repo.get(Deal, first.id)
        b = await uow.repo.get(Deal, deal_id)
    assert a is not None and b is not None and a.contact_id == b.contact_id
    assert await count(uow_factory, Contact) == 1


@pytest.mark.parametrize("fail_at", ["company", "task"])
async def test_conversion_is_atomic(uow_factory, make_actor, db_snapshot, monkeypatch, fail_at):
    """A failure after the contact insert leaves no contact, company or deal behind."""
    ann = await make_actor(roles=("manager",))
    lead = await new_lead(uow_factory, ann, is_legal_entity=True, company_name="ООО Тест")
    await qualify(uow_factory, ann, lead.id)
    before = await db_snapshot()

    class Boom(RuntimeError):
        pass

    async def explode(*args, **kwargs):
        raise Boom(fail_at)

    inserted: list[int] = []
    real_contact_for = leads._contact_for

    async def spy_contact_for(uow, lead_row):
        contact = await real_contact_for(uow, lead_row)
        inserted.append(contact.id)  # the contact row exists in the transaction now
        return contact

    monkeypatch.setattr(leads, "_contact_for", spy_contact_for)
    if fail_at == "company":
        monkeypatch.setattr(leads, "_company_for", explode)
    else:
        monkeypatch.setattr(stage_core, "on_stage_entry", explode)  # the deal's entry task
    with pytest.raises(Boom):
        async with uow_factory() as uow:
            await leads.convert(uow, ann, lead.id)
    assert inserted, "the failure must come after the contact insert"
    assert await db_snapshot() == before
    for model in (Contact, Company, Deal, Task):
        assert await count(uow_factory, model) == 0
    async with uow_factory() as uow:
        stored = await uow.repo.get(Lead, lead.id)
        deal_rows = await uow.session.scalar(
            select(func.count()).select_from(StageHistory).where(StageHistory.deal_id.is_not(None))
        )
    assert stored is not None and stored.status == "qualifying" and deal_rows == 0


async def test_lead_permissions(uow_factory, make_actor, db_snapshot):
    ann = await make_actor(roles=("manager",))
    bob = await make_actor(roles=("manager",))
    mila = await make_actor(roles=("measurer",))
    boss = await make_actor(roles=("leader",))
    lead = await new_lead(uow_factory, ann)
    before = await db_snapshot()
    for call in [
        lambda uow: leads.get_lead(uow, bob, lead.id),
        lambda uow: leads.answer_question(uow, bob, lead.id, "region", True),
        lambda uow: leads.convert(uow, bob, lead.id),
        lambda uow: leads.create_lead(uow, mila, LeadInput(name="X", phone=next_phone())),
        lambda uow: leads.get_lead(uow, mila, lead.id),
    ]:
        with pytest.raises(PermissionDenied):
            async with uow_factory() as uow:
                await call(uow)
    assert await db_snapshot() == before
    async with uow_factory() as uow:
        assert (await leads.get_lead(uow, boss, lead.id)).id == lead.id
