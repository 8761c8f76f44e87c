"""Issue 26 through the real dispatcher: a call logged from the lead card is its first
touch; the escalation's Reassign button gives the lead away (leaders only); /dayoff sets
and clears a manager's day off (leaders only)."""

from __future__ import annotations

from sqlalchemy import select

from handlers.ui.callbacks import LeadAction, LeadCb, TeamAction, TeamCb
from handlers.ui.i18n import t
from storage.models import Absence, Activity, Lead, Reminder
from tests.factories import new_lead
from tests.tg import tg_user

DENIED = "⚠️ " + t("error.permission_denied", "ru")


async def row(uow_factory, model, ident):
    async with uow_factory() as uow:
        return await uow.session.get(model, ident)


async def test_a_call_logged_on_the_card_is_the_first_touch(harness, make_actor, uow_factory):
    ann = await make_actor(roles=("manager",), name="Анна")
    lead = await new_lead(uow_factory, ann)
    user = tg_user(ann.telegram_id)
    card = await harness.send(user, f"/lead {lead.id}")
    assert ("📞 Звонок", LeadCb(action=LeadAction.CALL, lead_id=lead.id, v=1).pack()) in (
        card.buttons()
    )
    asked = await harness.tap(user, card.button("📞 Звонок"), card)
    assert t("deal.ask.call", "ru") in asked.text
    empty = await harness.send(user, "   ")  # refused, asked again, nothing saved
    assert (await row(uow_factory, Lead, lead.id)).first_action_at is None
    assert t("deal.ask.call", "ru") in empty.text
    done = await harness.send(user, "Перезвонить в пятницу")
    assert t("deal.saved", "ru") in done.text  # the card again, with the note saved
    stored = await row(uow_factory, Lead, lead.id)
    assert stored.first_action_at is not None
    async with uow_factory() as uow:
        kinds = (
            await uow.session.scalars(select(Activity.kind).where(Activity.lead_id == lead.id))
        ).all()
    assert "call" in kinds


async def test_reassign_button_is_the_leaders(harness, make_actor, uow_factory):
    ann = await make_actor(roles=("manager",), name="Анна")
    bob = await make_actor(roles=("manager",), name="Борис")
    lea = await make_actor(roles=("leader",), name="Лена")
    lead = await new_lead(uow_factory, ann)
    give = LeadCb(action=LeadAction.REASSIGN, lead_id=lead.id, arg=bob.id)
    refused = await harness.tap(tg_user(ann.telegram_id), give)
    assert refused.alert == DENIED
    assert (await row(uow_factory, Lead, lead.id)).manager_id == ann.id
    given = await harness.tap(tg_user(lea.telegram_id), give)
    assert given.alert == "Лид отдан: Борис ✅"
    assert (await row(uow_factory, Lead, lead.id)).manager_id == bob.id
    async with uow_factory() as uow:
        told = (
            await uow.session.scalars(
                select(Reminder.recipient_id).where(Reminder.kind == "lead.new")
            )
        ).all()
    assert told == [bob.id]
    again = await harness.tap(tg_user(lea.telegram_id), give)
    assert again.alert == "Лид уже у Борис"


async def test_day_off_command(harness, make_actor, uow_factory):
    ann = await make_actor(roles=("manager",), name="Анна")
    lea = await make_actor(roles=("leader",), name="Лена")
    denied = await harness.send(tg_user(ann.telegram_id), "/dayoff")
    assert DENIED in denied.text
    board = await harness.send(tg_user(lea.telegram_id), "/dayoff")
    assert t("team.dayoff.none", "ru") in board.text
    assert [text for text, _ in board.buttons()] == ["Анна · сегодня", "Анна · завтра"]
    on = await harness.tap(tg_user(lea.telegram_id), board.button("сегодня"), board)
    assert on.alert == "Выходной назначен ✅"
    assert [text for text, _ in on.buttons()][0] == "🏖 Анна · сегодня"
    async with uow_factory() as uow:
        days = (await uow.session.scalars(select(Absence.employee_id))).all()
    assert days == [ann.id]
    off = await harness.tap(tg_user(lea.telegram_id), on.button("сегодня"), on)
    assert off.alert == "Выходной снят ✅"
    async with uow_factory() as uow:
        assert (await uow.session.scalars(select(Absence))).all() == []
    forged = TeamCb(action=TeamAction.DAY_OFF, employee_id=ann.id, value=1)  # year 1
    past = await harness.tap(tg_user(lea.telegram_id), forged)
    assert past.alert and past.alert.startswith("⚠️")
