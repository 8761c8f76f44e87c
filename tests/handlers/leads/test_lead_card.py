"""The lead card through the real dispatcher: qualification toggles, disqualification,
conversion into a deal; text, keyboard and database after each tap."""

from __future__ import annotations

from aiogram.methods import EditMessageText, SendMessage
from sqlalchemy import select

from handlers.ui.callbacks import DealAction, DealCb, LeadAction, LeadCb
from handlers.ui.i18n import t
from storage.models import Deal, Lead, LossReason
from tests.factories import new_lead
from tests.tg import tg_user

DENIED = "⚠️ " + t("error.permission_denied", "ru")
QUESTIONS = (  # whole: a question is not cut (issue 20)
    "Объект в зоне обслуживания? *",
    "Понятно, что нужно (окна, балкон, двери)? *",
    "Бюджет обсуждали?",
    "Говорим с тем, кто принимает решение?",
)


def lcb(action: LeadAction, lead_id: int, v: int, arg: int = 0) -> str:
    return LeadCb(action=action, lead_id=lead_id, v=v, arg=arg).pack()


async def row(uow_factory, model, ident):
    async with uow_factory() as uow:
        return await uow.session.get(model, ident)


async def test_card_toggles_questions_in_place(harness, make_actor, uow_factory):
    ann = await make_actor(roles=("manager",), name="Анна")
    lead = await new_lead(uow_factory, ann, name="Иван Петров", phone="+79161234567")
    user = tg_user(ann.telegram_id)
    card = await harness.send(user, f"/lead {lead.id}")
    assert isinstance(card.last, SendMessage)
    # Issue 20: the phone in the national format; the questions are the buttons below,
    # whole, not listed again in the text.
    assert card.last.text == (
        f"🧲 <b>Иван Петров</b> · лид #{lead.id}\n📥 Источник: ✍️ Вручную\n"
        "📞 8 (916) 123-45-67\n💰 —\n🧭 <b>Новый запрос</b>\n👔 Ответственный: Анна\n\n"
        "<b>Квалификация</b> (* — обязательно):"
    )
    assert card.buttons() == [
        *[(f"⬜ {q}", lcb(LeadAction.TOGGLE, lead.id, 1, i)) for i, q in enumerate(QUESTIONS)],
        ("📞 Звонок", lcb(LeadAction.CALL, lead.id, 1)),
        ("📝 Заметка", lcb(LeadAction.NOTE, lead.id, 1)),
        ("🔄 В сделку", lcb(LeadAction.CONVERT, lead.id, 1)),
        ("❌ Нецелевой", lcb(LeadAction.DISQUALIFY, lead.id, 1)),
        ("📜 История", f"h:l:{lead.id}:a:0:0"),
        ("✏️ Изменить", lcb(LeadAction.EDIT, lead.id, 1)),
    ]

    on = await harness.tap(user, card.button("Объект в зоне"), card)
    edit = on.last
    assert isinstance(edit, EditMessageText) and edit.message_id == card.message.message_id
    assert edit.text is not None
    assert "✅ Объект в зоне обслуживания? *" in [text for text, _ in on.buttons()]
    assert "🧭 <b>Квалификация</b>" in edit.text  # the first answer starts qualification
    assert on.alert is None
    stored = await row(uow_factory, Lead, lead.id)
    assert (stored.qualification, stored.status) == ({"region": True}, "qualifying")
    assert stored.version > lead.version  # the buttons now carry the new version
    assert on.buttons()[0] == (
        f"✅ {QUESTIONS[0]}",
        lcb(LeadAction.TOGGLE, lead.id, stored.version, 0),
    )

    off = await harness.tap(user, on.button("Объект в зоне"), card)
    assert "⬜ Объект в зоне обслуживания? *" in [text for text, _ in off.buttons()]
    assert (await row(uow_factory, Lead, lead.id)).qualification == {"region": False}


async def test_double_tap_toggles_once_and_refreshes(harness, make_actor, uow_factory):
    ann = await make_actor(roles=("manager",))
    lead = await new_lead(uow_factory, ann)
    user = tg_user(ann.telegram_id)
    card = await harness.send(user, f"/lead {lead.id}")
    data = card.button("Бюджет")
    first = await harness.tap(user, data, card)
    second = await harness.tap(user, data, card)
    assert "✅ Бюджет обсуждали?" in [text for text, _ in first.buttons()]
    assert second.alert == "⚠️ Лид уже изменился — вот актуальная карточка."
    assert second.last.text.startswith("<i>Лид изменился, пока карточка была открыта.</i>")
    markup = second.last.reply_markup
    assert "✅ Бюджет обсуждали?" in [b.text for row in markup.inline_keyboard for b in row]
    assert (await row(uow_factory, Lead, lead.id)).qualification == {"budget": True}


async def test_disqualify_with_a_reason(harness, make_actor, uow_factory):
    ann = await make_actor(roles=("manager",))
    lead = await new_lead(uow_factory, ann, name="Нецелевой Клиент")
    user = tg_user(ann.telegram_id)
    card = await harness.send(user, f"/lead {lead.id}")

    menu = await harness.tap(user, card.button("Нецелевой"), card)
    assert menu.last.text.startswith("<i>Почему лид не подходит?</i>\n\n🧲 <b>Нецелевой Клиент")
    labels = [text for text, _ in menu.buttons()]
    assert labels[:2] == ["Дорого", "Ушёл к конкуренту"] and labels[-1] == "◀ Назад"
    back = await harness.tap(user, menu.button("Назад"), card)
    assert back.last.text.startswith("🧲 <b>Нецелевой Клиент")  # the card, no notice
    assert back.buttons() == card.buttons()

    menu = await harness.tap(user, back.button("Нецелевой"), card)
    lost = await harness.tap(user, menu.button("Дорого"), card)
    assert "🧭 <b>Нецелевой</b>" in lost.last.text and "❌ Причина: Дорого" in lost.last.text
    assert [text for text, _ in lost.buttons()] == ["📜 История"]  # a closed lead: its history
    async with uow_factory() as uow:
        stored = await uow.session.get(Lead, lead.id)
        reason = await uow.session.scalar(select(LossReason).where(LossReason.code == "expensive"))
    assert (stored.status, stored.loss_reason_id) == ("disqualified", reason.id)


async def test_convert_is_refused_until_required_questions_are_answered(
    harness, make_actor, uow_factory, db_snapshot
):
    ann = await make_actor(roles=("manager",))
    lead = await new_lead(uow_factory, ann)
    user = tg_user(ann.telegram_id)
    card = await harness.send(user, f"/lead {lead.id}")
    on = await harness.tap(user, card.button("Объект в зоне"), card)  # one of two required
    before = await db_snapshot()
    refused = await harness.tap(user, on.button("В сделку"), card)
    assert refused.alert == "⚠️ " + t("rule.qualification_incomplete", "ru")
    assert not refused.of(EditMessageText)
    assert await db_snapshot() == before


async def test_convert_opens_the_new_deal_card(harness, make_actor, uow_factory):
    ann = await make_actor(roles=("manager",))
    lead = await new_lead(
        uow_factory, ann, name="Иван Петров", phone="+79161234567", need="Окна", amount="90000"
    )
    user = tg_user(ann.telegram_id)
    card = await harness.send(user, f"/lead {lead.id}")
    on = await harness.tap(user, card.button("Объект в зоне"), card)
    on = await harness.tap(user, on.button("Понятно, что нужно"), card)
    converted = await harness.tap(user, on.button("В сделку"), card)

    stored = await row(uow_factory, Lead, lead.id)
    assert stored.status == "converted" and stored.deal_id is not None
    deal = await row(uow_factory, Deal, stored.deal_id)
    assert (deal.lead_id, deal.amount, deal.manager_id) == (lead.id, 9_000_000, ann.id)
    edit = converted.last
    assert isinstance(edit, EditMessageText) and edit.message_id == card.message.message_id
    assert edit.text is not None
    assert edit.text.startswith(
        f"<i>Лид #{lead.id} переведён в сделку ✅</i>\n\n"
        f"💼 <b>Иван Петров</b> · сделка #{deal.id}\n📞 8 (916) 123-45-67\n"
    )
    assert edit.text.count("Иван Петров") == 1 and edit.text.count("Окна") == 1
    assert "<b>Сбор данных</b>" in edit.text and "90\u00a0000\u00a0₽" in edit.text
    assert converted.button("КП отправлено ▶") == (
        DealCb(action=DealAction.NEXT, deal_id=deal.id, v=deal.version).pack()
    )

    again = await harness.send(user, f"/lead {lead.id}")
    assert "🧭 <b>Конвертирован</b>" in again.last.text
    assert again.buttons() == [
        (f"💼 Сделка #{deal.id}", DealCb(action=DealAction.OPEN, deal_id=deal.id).pack()),
        ("📜 История", f"h:l:{lead.id}:a:0:0"),
    ]
    opened = await harness.tap(user, again.button("Сделка"), again)
    assert isinstance(opened.last, SendMessage)
    assert opened.last.text.startswith("💼 <b>Иван Петров</b>")


async def test_someone_elses_lead_is_refused(harness, make_actor, uow_factory, db_snapshot):
    ann = await make_actor(roles=("manager",))
    bob = await make_actor(roles=("manager",))
    lead = await new_lead(uow_factory, ann)
    before = await db_snapshot()
    bob_user = tg_user(bob.telegram_id)
    for forged in (
        lcb(LeadAction.TOGGLE, lead.id, 1, 0),
        lcb(LeadAction.CONVERT, lead.id, 1),
        lcb(LeadAction.REASON, lead.id, 1, 1),
    ):
        refused = await harness.tap(bob_user, forged)
        assert refused.alert == DENIED
        assert not refused.of(EditMessageText)
    opened = await harness.send(bob_user, f"/lead {lead.id}")
    assert opened.last.text == DENIED
    missing = await harness.tap(bob_user, lcb(LeadAction.TOGGLE, 999_999, 1, 0))
    assert missing.alert == "⚠️ " + t("error.not_found.lead", "ru")
    assert await db_snapshot() == before


async def test_a_forged_question_index_changes_nothing(
    harness, make_actor, uow_factory, db_snapshot
):
    ann = await make_actor(roles=("manager",))
    lead = await new_lead(uow_factory, ann)
    before = await db_snapshot()
    refused = await harness.tap(tg_user(ann.telegram_id), lcb(LeadAction.TOGGLE, lead.id, 1, 4))
    assert refused.alert == "⚠️ " + t("error.not_found.question", "ru")
    assert await db_snapshot() == before


async def test_english_speaker_gets_an_english_card(harness, make_actor, uow_factory):
    boss = await make_actor(roles=("leader",))
    ann = await make_actor(roles=("manager",))
    lead = await new_lead(uow_factory, ann, source="call", amount="1000")
    user = tg_user(boss.telegram_id, lang="en-GB")
    card = await harness.send(user, f"/lead {lead.id}")
    assert f"· lead #{lead.id}" in card.last.text and "📥 Source: 📞 Call" in card.last.text
    assert "<b>New request</b>" in card.last.text and "💰 1,000\u00a0RUB" in card.last.text
    assert "<b>Qualification</b> (* required):" in card.last.text
    assert [text for text, _ in card.buttons()] == [
        "⬜ Is the site in our service area? *",
        "⬜ Is the need clear (windows, balcony, doors)? *",
        "⬜ Was the budget discussed?",
        "⬜ Are we talking to the decision maker?",
        "📞 Call",
        "📝 Note",
        "🔄 To deal",
        "❌ Not a fit",
        "📜 History",
        "✏️ Edit",
    ]
    menu = await harness.tap(user, card.button("Not a fit"), card)
    assert menu.last.text.startswith("<i>Why is the lead not a fit?</i>")
    assert "Too expensive" in [text for text, _ in menu.buttons()]
