"""Rules a manager expects (issue 20), through the real dispatcher: a loss reason that needs
a comment asks for it (and keeps it), reasons offered only where they apply (no conditional
refusal for leads), a stage that waits for an assigned measurer. Refusals save nothing."""

from __future__ import annotations

from datetime import timedelta

from aiogram.methods import SendMessage
from sqlalchemy import select

from handlers.ui.callbacks import DealAction, DealCb, LeadAction, LeadCb
from handlers.ui.i18n import t
from services.sales import deals
from storage.models import Deal, Lead, LossReason
from tests.factories import card_of, new_deal, new_lead, stage_code
from tests.tg import tg_user


async def reason_id(uow_factory, code: str) -> int:
    async with uow_factory() as uow:
        found = await uow.session.scalar(select(LossReason.id).where(LossReason.code == code))
    assert found is not None
    return int(found)


async def test_other_asks_for_a_comment_and_keeps_it(harness, make_actor, uow_factory, db_snapshot):
    ann = await make_actor(roles=("manager",), name="Анна")
    deal = await new_deal(uow_factory, ann, name="Иван Петров", amount="1000")
    user = tg_user(ann.telegram_id)
    card = await harness.send(user, f"/deal {deal.id}")
    menu = await harness.tap(user, card.button("Провал"), card)
    before = await db_snapshot()
    asked = await harness.tap(user, menu.button("Другое"), menu)
    assert asked.last.text.startswith(t("deal.lose.ask_comment", "ru"))
    assert await db_snapshot() == before  # nothing lost yet
    blank = await harness.send(user, "   ")
    assert blank.last.text.startswith("⚠️ ") and t("deal.lose.ask_comment", "ru") in blank.text
    assert await db_snapshot() == before
    done = await harness.send(user, "Переехал в другой город")
    assert "❌ Причина: Другое: Переехал в другой город" in done.last.text
    assert not done.of(SendMessage)  # the card says it, edited in place: no "Saved" message
    assert done.last.text.startswith("<i>" + t("deal.saved", "ru"))
    async with uow_factory() as uow:
        row = await uow.repo.get(Deal, deal.id)
    assert row.loss_comment == "Переехал в другой город"
    assert await stage_code(uow_factory, deal.id) == "lost"
    # A reason that needs none loses at the tap, as before.
    other = await new_deal(uow_factory, ann, amount="1000")
    card = await harness.send(user, f"/deal {other.id}")
    menu = await harness.tap(user, card.button("Провал"), card)
    lost = await harness.tap(user, menu.button("Дорого"), menu)
    assert "❌ Причина: Дорого" in lost.last.text


async def test_the_service_refuses_other_without_a_comment(make_actor, uow_factory, db_snapshot):
    from services.errors import CommentRequired, ValidationError

    ann = await make_actor(roles=("manager",))
    deal = await new_deal(uow_factory, ann, amount="1000")
    before = await db_snapshot()
    for comment, error in ((None, CommentRequired), ("  ", ValidationError)):
        async with uow_factory() as uow:
            try:
                await deals.lose(uow, ann, deal.id, "other", comment)
            except error:
                pass
            else:
                raise AssertionError(f"{comment!r} was taken")
        assert await db_snapshot() == before


async def test_conditional_refusal_is_not_offered_for_leads(
    harness, make_actor, uow_factory, db_snapshot
):
    ann = await make_actor(roles=("manager",))
    lead = await new_lead(uow_factory, ann, name="Лид Лидов")
    user = tg_user(ann.telegram_id, lang="en")
    card = await harness.send(user, f"/lead {lead.id}")
    menu = await harness.tap(user, card.button("Not a fit"), card)
    labels = [text for text, _ in menu.buttons()]
    assert "Other" in labels and "Too expensive" in labels
    assert not any("Conditional refusal" in x for x in labels)
    # Forged: the conditional reason on a lead is refused, nothing saved.
    thinking = await reason_id(uow_factory, "thinking")
    before = await db_snapshot()
    forged = LeadCb(action=LeadAction.REASON, lead_id=lead.id, v=lead.version, arg=thinking)
    refused = await harness.tap(user, forged.pack(), card)
    assert refused.alert is not None and refused.alert.startswith("⚠️")
    assert await db_snapshot() == before
    # "Other" on a lead asks for a comment too, in English.
    asked = await harness.tap(user, menu.button("Other"), menu)
    assert asked.last.text.startswith(t("deal.lose.ask_comment", "en"))
    shown = await harness.send(user, "Wrong number")
    assert "❌ Reason: Other: Wrong number" in shown.last.text
    async with uow_factory() as uow:
        row = await uow.repo.get(Lead, lead.id)
    assert (row.status, row.loss_comment) == ("disqualified", "Wrong number")


async def test_measurer_assigned_waits_for_a_measurer(
    harness, make_actor, uow_factory, clock, db_snapshot
):
    ann = await make_actor(roles=("manager",))
    deal = await new_deal(uow_factory, ann, amount="1000")
    fields = {"measurement_at": clock.now() + timedelta(days=1), "address": "Мира 1"}
    async with uow_factory() as uow:
        await deals.advance(uow, ann, deal.id, None)
    async with uow_factory() as uow:
        scheduled = await deals.advance(uow, ann, deal.id, None, fields=fields)
    assert scheduled.stage.code == "measurement_scheduled"
    user = tg_user(ann.telegram_id, lang="en")
    card = await harness.send(user, f"/deal {deal.id}")
    labels = [text for text, _ in card.buttons()]
    assert not any("Measurer assigned" in x for x in labels)  # not offered
    assert any(x.startswith("◀") for x in labels)  # back is still offered
    assert t("deal.card.waits_for_measurer", "en") in card.last.text
    # A forged tap is refused, in English, with the stage's English name; nothing saved.
    before = await db_snapshot()
    forged = DealCb(action=DealAction.NEXT, deal_id=deal.id, v=scheduled.version)
    refused = await harness.tap(user, forged.pack(), card)
    assert refused.alert == "⚠️ " + t("rule.measurer_required", "en", stage="Measurer assigned")
    assert await db_snapshot() == before
    # With a measurer assigned (the head's step), the deal moves on.
    mia = await make_actor(roles=("measurer",), name="Mia")
    async with uow_factory() as uow:
        (await uow.repo.get(Deal, deal.id)).measurer_id = mia.id
        await uow.commit()
    current = await card_of(uow_factory, ann, deal.id)
    card = await harness.send(user, f"/deal {deal.id}")
    moved = await harness.tap(user, card.button("Measurer assigned ▶"), card)
    assert "<b>Measurer assigned</b>" in moved.last.text
    assert current.measurer_id == mia.id
    assert await stage_code(uow_factory, deal.id) == "measurer_assigned"
