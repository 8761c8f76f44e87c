"""The new-lead wizard through the real dispatcher: each prompt's text and keyboard, re-asks,
Back and Cancel, duplicates, the shared-contact path, and the database after each."""

from __future__ import annotations

import asyncio
import itertools
import re
from pathlib import Path

from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.methods import EditMessageText, SendMessage
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bot.app import build_dispatcher
from handlers.ui.callbacks import LeadAction, LeadCb, WizardAction, WizardCb
from handlers.ui.error_text import error_text
from handlers.ui.i18n import LANGUAGES, catalog, t
from services import validation
from services.clock import FakeClock
from services.errors import ValidationError
from storage.db import create_engine, create_session_factory
from storage.enums import LeadSource
from storage.models import Employee, Lead
from storage.uow import UnitOfWorkFactory
from tests.dbdump import dump
from tests.factories import new_deal, new_lead
from tests.tg import BotHarness, RecordingSession, Sent, make_bot, make_settings, tg_user


def w(action: WizardAction, value: int = 0) -> str:
    return WizardCb(action=action, value=value).pack()


NAV = [("◀ Назад", w(WizardAction.BACK)), ("✖ Отмена", w(WizardAction.CANCEL))]
SKIP = ("Пропустить ⏭", w(WizardAction.SKIP))
KEEP = ("✓ Оставить", w(WizardAction.KEEP))
SOURCE_BUTTONS = [
    ("🌐 Сайт", w(WizardAction.SOURCE, 0)),
    ("📞 Звонок", w(WizardAction.SOURCE, 1)),
    ("✉️ Почта", w(WizardAction.SOURCE, 2)),
    ("💬 Мессенджер", w(WizardAction.SOURCE, 3)),
    ("✍️ Вручную", w(WizardAction.SOURCE, 5)),
    ("🤝 Рекомендация", w(WizardAction.SOURCE, 6)),
]
LEGAL_BUTTONS = [
    ("👤 Частное лицо", w(WizardAction.LEGAL, 0)),
    ("🏢 Организация", w(WizardAction.LEGAL, 1)),
]
ASK_SOURCE = "➕ <b>Новый лид</b>\nОткуда пришёл клиент?"
ASK_NAME = "Как зовут клиента?"
ASK_PHONE = "Телефон клиента (или email)? Напишите его или пришлите контакт (📎 → Контакт)."
ASK_LEGAL = "Клиент — частное лицо или организация?"
ASK_NEED = "Что нужно клиенту? Коротко, своими словами."
ASK_AMOUNT = "Примерная сумма в рублях (например 150000)?"
UNKNOWN = "Не понял. Откройте меню: /menu"


async def all_leads(uow_factory) -> list[Lead]:
    async with uow_factory() as uow:
        return list((await uow.session.scalars(select(Lead).order_by(Lead.id))).all())


def err(field: str, code: str, lang: str = "ru", **params) -> str:
    """The error router's text for a validation error (the wording is core.po's)."""
    text = error_text(ValidationError(field, code, **params), lang)
    assert text.startswith("⚠️ ") and text != "⚠️ " + t("error.validation", lang)
    return text


async def to_phone_step(harness, user, source: str = "Звонок", name: str = "Иван") -> Sent:
    """/lead, a source, a person, the name: the phone is asked."""
    start = await harness.send(user, "/lead")
    legal = await harness.tap(user, start.button(source), start)
    await harness.tap(user, legal.button("Частное лицо"), legal)
    return await harness.send(user, name)


# --- the whole wizard ----------------------------------------------------------------------


async def test_menu_wizard_creates_a_legal_entity_lead(
    harness, make_actor, uow_factory, db_snapshot
):
    ann = await make_actor(roles=("manager",), name="Анна")
    user = tg_user(ann.telegram_id)
    menu = await harness.send(user, "/menu")
    before = await db_snapshot()

    source = await harness.tap(user, menu.button("Новый лид"), menu)
    assert isinstance(source.last, SendMessage) and source.last.text == ASK_SOURCE
    assert source.buttons() == [*SOURCE_BUTTONS, *NAV]

    # Issue 20: person or company first, then the right name (a company's contact person).
    legal = await harness.tap(user, source.button("Рекомендация"), source)
    assert isinstance(legal.last, EditMessageText)  # the prompt becomes the next one
    assert legal.last.message_id == source.message.message_id
    assert legal.last.text == ASK_LEGAL and legal.buttons() == [*LEGAL_BUTTONS, *NAV]

    company = await harness.tap(user, legal.button("Организация"), legal)
    assert company.last.text == "Название организации?" and company.buttons() == NAV

    name = await harness.send(user, "ООО «Окна & <Двери>»")
    assert name.last.text == "Контактное лицо в «ООО «Окна &amp; &lt;Двери&gt;»»: как его зовут?"
    assert name.buttons() == NAV

    phone = await harness.send(user, "  Иван   Петров ")
    assert phone.last.text == ASK_PHONE
    assert phone.buttons() == NAV  # Back and Cancel, like every step (no reply keyboard)

    need = await harness.send(user, "8 (916) 555-12-34")
    assert need.last.text == ASK_NEED and need.buttons() == [SKIP, *NAV]

    amount = await harness.send(user, "Остекление балкона, 3 окна")
    assert amount.last.text == ASK_AMOUNT and amount.buttons() == [SKIP, *NAV]

    confirm = await harness.send(user, "150 000")
    assert confirm.last.text == (
        "Проверьте и создайте лид:\n\n"
        "🏢 <b>ООО «Окна &amp; &lt;Двери&gt;»</b>\n"
        "👤 Контактное лицо: Иван Петров\n"
        "📥 Источник: 🤝 Рекомендация\n"
        "📞 8 (916) 555-12-34\n"
        "🔎 Остекление балкона, 3 окна\n"
        "💰 150\u00a0000\u00a0₽"
    )
    assert confirm.buttons() == [("✅ Создать лид", w(WizardAction.CONFIRM)), *NAV]
    assert await db_snapshot() == before  # nothing is saved before Confirm

    created = await harness.tap(user, confirm.button("Создать лид"), confirm)
    card = created.last
    assert isinstance(card, EditMessageText) and card.message_id == confirm.message.message_id
    assert card.text is not None
    [lead] = await all_leads(uow_factory)
    assert card.text.startswith(
        f"<i>Лид создан ✅</i>\n\n🧲 <b>ООО «Окна &amp; &lt;Двери&gt;»</b> · лид #{lead.id}\n"
        "👤 Контактное лицо: Иван Петров\n📥 Источник: 🤝 Рекомендация\n📞 8 (916) 555-12-34"
    )
    assert "🧭 <b>Новый запрос</b>" in card.text and "Ответственный: Анна" in card.text
    assert created.buttons()[-4:] == [
        ("🔄 В сделку", LeadCb(action=LeadAction.CONVERT, lead_id=lead.id, v=1).pack()),
        ("❌ Нецелевой", LeadCb(action=LeadAction.DISQUALIFY, lead_id=lead.id, v=1).pack()),
        ("📜 История", f"h:l:{lead.id}:a:0:0"),
        ("✏️ Изменить", LeadCb(action=LeadAction.EDIT, lead_id=lead.id, v=1).pack()),
    ]
    assert (
        lead.name,
        lead.phone,
        lead.email,
        lead.source,
        lead.is_legal_entity,
        lead.company_name,
        lead.need,
        lead.amount,
        lead.manager_id,
        lead.status,
    ) == (
        "Иван Петров",
        "+79165551234",
        None,
        "referral",
        True,
        "ООО «Окна & <Двери>»",
        "Остекление балкона, 3 окна",
        15_000_000,
        ann.id,
        "new",
    )
    # The wizard is over: text is no longer taken as an answer.
    after = await harness.send(user, "Иван")
    assert after.last.text == UNKNOWN
    assert len(await all_leads(uow_factory)) == 1


async def test_shared_contact_becomes_a_lead_in_six_inputs(harness, make_actor, uow_factory):
    ann = await make_actor(roles=("manager",))
    user = tg_user(ann.telegram_id)
    start = harness.inputs

    source = await harness.share_contact(user, "79161112233", "Мария", "Соколова")
    assert (
        source.last.text == "📇 Из контакта: <b>Мария Соколова</b>, +79161112233\n\n" + ASK_SOURCE
    )
    assert source.buttons() == [*SOURCE_BUTTONS, *NAV]
    legal = await harness.tap(user, source.button("Звонок"), source)  # name, phone: filled
    assert legal.last.text == ASK_LEGAL and isinstance(legal.last, EditMessageText)
    need = await harness.tap(user, legal.button("Частное лицо"), legal)
    assert need.last.text == ASK_NEED
    amount = await harness.tap(user, need.button("Пропустить"), need)
    assert amount.last.text == ASK_AMOUNT
    confirm = await harness.tap(user, amount.button("Пропустить"), amount)
    assert "👤 <b>Мария Соколова</b>" in confirm.last.text and "💰 —" in confirm.last.text
    created = await harness.tap(user, confirm.button("Создать лид"), confirm)

    assert harness.inputs - start == 6
    assert created.last.text.startswith("<i>Лид создан ✅</i>")
    [lead] = await all_leads(uow_factory)
    assert (lead.name, lead.phone, lead.source, lead.need, lead.amount, lead.is_legal_entity) == (
        "Мария Соколова",
        "+79161112233",
        "call",
        None,
        None,
        False,
    )


async def test_contact_shared_at_the_phone_step_fills_the_phone(harness, make_actor, uow_factory):
    ann = await make_actor(roles=("manager",))
    user = tg_user(ann.telegram_id)
    await to_phone_step(harness, user, name="Пётр")
    need = await harness.share_contact(user, "+79163334455", "Peter", "Client")
    assert need.last.text == ASK_NEED
    amount = await harness.tap(user, need.button("Пропустить"), need)
    confirm = await harness.tap(user, amount.button("Пропустить"), amount)
    assert "👤 <b>Пётр</b>" in confirm.last.text  # the typed name is kept
    assert "📞 8 (916) 333-44-55" in confirm.last.text  # shown in the national format
    await harness.tap(user, confirm.button("Создать"), confirm)
    [lead] = await all_leads(uow_factory)
    assert (lead.name, lead.phone) == ("Пётр", "+79163334455")


# --- bad input, Back, Cancel ---------------------------------------------------------------


async def test_bad_input_is_asked_again_and_nothing_is_saved(harness, make_actor, db_snapshot):
    ann = await make_actor(roles=("manager",))
    user = tg_user(ann.telegram_id)
    before = await db_snapshot()
    start = await harness.send(user, "/lead")
    await harness.tap(user, start.button("Сайт"), start)
    typed = await harness.send(user, "частное")  # buttons are expected here
    assert typed.last.text == "Выберите вариант кнопкой.\n\n" + ASK_LEGAL
    assert typed.buttons() == [*LEGAL_BUTTONS, *NAV]
    await harness.tap(user, typed.button("Частное"), typed)

    long = await harness.send(user, "Я" * 5000)
    assert long.last.text == err("name", "too_long", max=200) + "\n\n" + ASK_NAME
    assert "200" in long.last.text
    assert long.buttons() == NAV
    blank = await harness.send(user, "!!! ???")
    assert blank.last.text == err("name", "invalid") + "\n\n" + ASK_NAME

    await harness.send(user, "Иван")
    bad_phone = await harness.send(user, "12345")
    assert bad_phone.last.text == err("phone", "invalid") + "\n\n" + ASK_PHONE
    assert bad_phone.buttons() == NAV
    bad_email = await harness.send(user, "ivan@")
    assert bad_email.last.text == err("email", "invalid") + "\n\n" + ASK_PHONE

    need = await harness.send(user, "Ivan@Example.com")
    assert need.last.text == ASK_NEED
    await harness.tap(user, need.button("Пропустить"), need)

    letters = await harness.send(user, "сто тысяч")
    assert letters.last.text == err("amount", "not_a_number") + "\n\n" + ASK_AMOUNT
    assert letters.buttons() == [SKIP, *NAV]
    negative = await harness.send(user, "-5")
    assert negative.last.text == err("amount", "negative") + "\n\n" + ASK_AMOUNT
    assert await db_snapshot() == before

    confirm = await harness.send(user, "1000,50")
    assert (
        "✉️ Ivan@example.com" in confirm.last.text and "💰 1\u00a0000,50\u00a0₽" in confirm.last.text
    )
    assert await db_snapshot() == before


async def test_back_returns_to_the_previous_step_with_its_value(harness, make_actor, uow_factory):
    ann = await make_actor(roles=("manager",))
    user = tg_user(ann.telegram_id)
    await to_phone_step(harness, user, source="Звонок", name="Иван")
    need = await harness.send(user, "+79161234567")

    phone = await harness.tap(user, w(WizardAction.BACK), need)
    assert phone.last.text == ASK_PHONE + "\nСейчас: <b>+79161234567</b>"
    assert phone.buttons() == [KEEP, *NAV]  # the phone step: inline Back and Cancel too
    name = await harness.tap(user, phone.button("Назад"), phone)
    assert name.last.text == ASK_NAME + "\nСейчас: <b>Иван</b>"
    assert name.buttons() == [KEEP, *NAV]
    legal = await harness.tap(user, name.button("Назад"), name)
    assert ("• 👤 Частное лицо", w(WizardAction.LEGAL, 0)) in legal.buttons()
    source = await harness.tap(user, legal.button("Назад"), legal)
    assert source.last.text == ASK_SOURCE and ("• 📞 Звонок", w(WizardAction.SOURCE, 1)) in (
        source.buttons()
    )
    legal = await harness.tap(user, source.button("Сайт"), source)
    company = await harness.tap(user, legal.button("Организация"), legal)
    assert company.last.text == "Название организации?"
    name = await harness.send(user, "ООО Ромашка")
    assert name.last.text == (
        "Контактное лицо в «ООО Ромашка»: как его зовут?\nСейчас: <b>Иван</b>"
    )
    phone = await harness.tap(user, name.button("Оставить"), name)
    assert phone.last.text == ASK_PHONE + "\nСейчас: <b>+79161234567</b>"
    need = await harness.tap(user, phone.button("Оставить"), phone)
    assert need.last.text == ASK_NEED

    amount = await harness.send(user, "окна")
    need = await harness.tap(user, amount.button("Назад"), amount)
    assert need.last.text == ASK_NEED + "\nСейчас: <b>окна</b>"
    assert need.buttons() == [KEEP, SKIP, *NAV]
    amount = await harness.tap(user, need.button("Оставить"), need)
    confirm = await harness.send(user, "1000")
    amount = await harness.tap(user, confirm.button("Назад"), confirm)
    assert amount.last.text == ASK_AMOUNT + "\nСейчас: <b>1\u00a0000\u00a0₽</b>"
    need = await harness.tap(user, amount.button("Назад"), amount)
    phone = await harness.tap(user, need.button("Назад"), need)
    name = await harness.tap(user, phone.button("Назад"), phone)
    company = await harness.tap(user, name.button("Назад"), name)
    assert company.last.text == "Название организации?\nСейчас: <b>ООО Ромашка</b>"
    legal = await harness.tap(user, company.button("Назад"), company)
    assert ("• 🏢 Организация", w(WizardAction.LEGAL, 1)) in legal.buttons()
    name = await harness.tap(user, legal.button("Частное"), legal)  # no company step now
    assert name.last.text == ASK_NAME + "\nСейчас: <b>Иван</b>"
    phone = await harness.tap(user, name.button("Оставить"), name)
    need = await harness.tap(user, phone.button("Оставить"), phone)
    amount = await harness.tap(user, need.button("Оставить"), need)
    confirm = await harness.tap(user, amount.button("Оставить"), amount)
    assert confirm.last.text == (
        "Проверьте и создайте лид:\n\n👤 <b>Иван</b>\n📥 Источник: 🌐 Сайт\n"
        "📞 8 (916) 123-45-67\n🔎 окна\n💰 1\u00a0000\u00a0₽"
    )
    await harness.tap(user, confirm.button("Создать"), confirm)
    [lead] = await all_leads(uow_factory)
    assert (lead.source, lead.is_legal_entity, lead.company_name, lead.need, lead.amount) == (
        "site",
        False,
        None,
        "окна",
        100_000,
    )


async def test_cancel_clears_the_wizard_and_saves_nothing(
    harness, make_actor, uow_factory, db_snapshot
):
    ann = await make_actor(roles=("manager",))
    user = tg_user(ann.telegram_id)
    before = await db_snapshot()

    phone = await to_phone_step(harness, user)
    cancelled = await harness.tap(user, phone.button("Отмена"), phone)  # the phone step too
    assert cancelled.last.text == "Отменено — лид не сохранён."
    assert "➕ Новый лид" in [text for text, _ in cancelled.buttons()]  # the main menu
    assert (await harness.send(user, "+79161234567")).last.text == UNKNOWN

    await to_phone_step(harness, user, name="Пётр")
    need = await harness.send(user, "+79161234567")
    tapped = await harness.tap(user, need.button("Отмена"), need)
    assert isinstance(tapped.last, EditMessageText)
    assert tapped.last.message_id == need.message.message_id
    assert tapped.last.text == "Отменено — лид не сохранён."
    stale = await harness.tap(user, w(WizardAction.SKIP), need)  # an old prompt's button
    assert stale.alert == "Эта кнопка устарела. Откройте меню: /menu"
    assert await db_snapshot() == before
    assert await all_leads(uow_factory) == []


async def test_lead_command_mid_wizard_starts_afresh(harness, make_actor):
    ann = await make_actor(roles=("manager",))
    user = tg_user(ann.telegram_id)
    await to_phone_step(harness, user, name="Иван")
    again = await harness.send(user, "/lead")
    assert again.last.text == ASK_SOURCE
    legal = await harness.tap(user, again.button("Сайт"), again)
    name = await harness.tap(user, legal.button("Частное"), legal)
    assert name.last.text == ASK_NAME and name.buttons() == NAV  # nothing kept


async def test_back_on_the_first_step_leaves_for_the_menu(harness, make_actor, db_snapshot):
    ann = await make_actor(roles=("manager",))
    user = tg_user(ann.telegram_id)
    before = await db_snapshot()
    start = await harness.send(user, "/lead")
    left = await harness.tap(user, start.button("Назад"), start)
    assert left.last.text == "Главное меню" and isinstance(left.last, EditMessageText)
    assert (await harness.send(user, "Иван")).last.text == UNKNOWN
    assert await db_snapshot() == before


# --- duplicates ----------------------------------------------------------------------------


async def test_duplicate_phone_offers_the_existing_lead(
    harness, make_actor, uow_factory, db_snapshot
):
    ann = await make_actor(roles=("manager",))
    user = tg_user(ann.telegram_id)
    existing = await new_lead(uow_factory, ann, name="Иван Старый", phone="+79161230000")
    before = await db_snapshot()
    await to_phone_step(harness, user, name="Иван")

    offer = await harness.send(user, "8 916 123-00-00")
    assert offer.last.text == (
        "⚠️ Клиент 8 (916) 123-00-00 уже есть:\n\n"
        f"🧲 Лид #{existing.id} · Иван Старый · Новый запрос\n\n"
        "Откройте его — или создайте новый лид, если это другой клиент."
    )
    assert offer.buttons() == [
        (f"🧲 Открыть лид #{existing.id}", w(WizardAction.OPEN_LEAD, existing.id)),
        ("➕ Всё равно создать", w(WizardAction.FORCE)),
        *NAV,
    ]
    opened = await harness.tap(user, offer.button("Открыть лид"), offer)
    assert isinstance(opened.last, EditMessageText)
    assert opened.text.startswith(f"🧲 <b>Иван Старый</b> · лид #{existing.id}")
    assert (
        "🔄 В сделку",
        LeadCb(action=LeadAction.CONVERT, lead_id=existing.id, v=existing.version).pack(),
    ) in opened.buttons()
    assert (await harness.send(user, "Иван")).last.text == UNKNOWN  # the wizard ended
    assert await db_snapshot() == before


async def test_duplicate_of_a_deal_from_a_shared_contact(harness, make_actor, uow_factory):
    ann = await make_actor(roles=("manager",))
    user = tg_user(ann.telegram_id)
    deal = await new_deal(uow_factory, ann, name="Ольга", phone="+79162220000", amount="1000")
    offer = await harness.share_contact(user, "79162220000", "Ольга")
    assert f"💼 Сделка #{deal.id} · Ольга · Сбор данных" in offer.last.text
    assert offer.buttons()[0] == (
        f"💼 Открыть сделку #{deal.id}",
        w(WizardAction.OPEN_DEAL, deal.id),
    )
    back = await harness.tap(user, w(WizardAction.BACK), offer)  # nothing before: the menu
    assert back.last.text == "Главное меню"

    offer = await harness.share_contact(user, "79162220000", "Ольга")
    opened = await harness.tap(user, offer.button("Открыть сделку"), offer)
    assert "<b>Сбор данных</b>" in opened.last.text and "💼 <b>Ольга</b>" in opened.last.text
    assert opened.button("КП отправлено ▶")
    assert len(await all_leads(uow_factory)) == 1  # the converted one


async def test_create_anyway_keeps_both_leads(harness, make_actor, uow_factory):
    ann = await make_actor(roles=("manager",))
    user = tg_user(ann.telegram_id)
    await new_lead(uow_factory, ann, name="Иван", phone="+79161230000")
    offer = await harness.share_contact(user, "+79161230000", "Иван", "Второй")
    source = await harness.tap(user, offer.button("Всё равно создать"), offer)
    assert source.last.text.startswith("📇 Из контакта: <b>Иван Второй</b>")
    legal = await harness.tap(user, source.button("Звонок"), source)
    need = await harness.tap(user, legal.button("Частное"), legal)
    amount = await harness.tap(user, need.button("Пропустить"), need)
    confirm = await harness.tap(user, amount.button("Пропустить"), amount)
    created = await harness.tap(user, confirm.button("Создать"), confirm)
    assert created.last.text.startswith("<i>Лид создан ✅</i>")
    assert [(x.name, x.phone) for x in await all_leads(uow_factory)] == [
        ("Иван", "+79161230000"),
        ("Иван Второй", "+79161230000"),
    ]


async def test_a_duplicate_made_meanwhile_is_offered_at_confirm(harness, make_actor, uow_factory):
    ann = await make_actor(roles=("manager",))
    bob = await make_actor(roles=("manager",))
    user = tg_user(ann.telegram_id)
    await to_phone_step(harness, user)
    need = await harness.send(user, "+79167778899")
    amount = await harness.tap(user, need.button("Пропустить"), need)
    confirm = await harness.tap(user, amount.button("Пропустить"), amount)
    other = await new_lead(uow_factory, bob, name="Иван от Боба", phone="+79167778899")

    offer = await harness.tap(user, confirm.button("Создать"), confirm)
    assert f"🧲 Лид #{other.id} · Иван от Боба" in offer.last.text
    assert len(await all_leads(uow_factory)) == 1
    back = await harness.tap(user, offer.button("Назад"), offer)
    assert back.last.text.startswith("Проверьте и создайте лид:")
    offer = await harness.tap(user, back.button("Создать"), back)
    # Bob's lead is not Ann's to open...
    refused = await harness.tap(user, offer.button("Открыть лид"), offer)
    assert refused.alert == "⚠️ " + t("error.permission_denied", "ru")
    # ...so she creates hers anyway, straight from the offer.
    created = await harness.tap(user, offer.button("Всё равно создать"), offer)
    assert created.last.text.startswith("<i>Лид создан ✅</i>")
    assert [x.manager_id for x in await all_leads(uow_factory)] == [bob.id, ann.id]


# --- restart, language, access -------------------------------------------------------------


async def test_a_restart_mid_wizard_loses_nothing_when_the_storage_persists(
    db_url, uow_factory, clock, make_actor
):
    ann = await make_actor(roles=("manager",))
    user = tg_user(ann.telegram_id)
    storage = MemoryStorage()  # stands for Redis: it outlives the process

    def process(first_update: int) -> BotHarness:
        session = RecordingSession()
        dp = build_dispatcher(make_settings(db_url), uow_factory, clock, storage=storage)
        return BotHarness(dp, make_bot(session), session, first_update=first_update)

    before = process(1)
    await to_phone_step(before, user, name="Иван До-Рестарта")
    need = await before.send(user, "+79165550011")

    after = process(1000)  # a new process: new dispatcher, same storage
    assert need.last.text == ASK_NEED
    amount = await after.tap(user, need.button("Пропустить"), need)
    confirm = await after.tap(user, amount.button("Пропустить"), amount)
    assert "👤 <b>Иван До-Рестарта</b>" in confirm.text
    await after.tap(user, confirm.button("Создать"), confirm)
    [lead] = await all_leads(uow_factory)
    assert (lead.name, lead.phone, lead.source) == ("Иван До-Рестарта", "+79165550011", "call")


async def test_english_speaker_gets_english(harness, make_actor, uow_factory):
    ann = await make_actor(roles=("manager",))
    user = tg_user(ann.telegram_id, lang="en")
    start = await harness.send(user, "/lead")
    assert start.last.text == "➕ <b>New lead</b>\nWhere did the client come from?"
    assert [text for text, _ in start.buttons()] == [
        "🌐 Website",
        "📞 Call",
        "✉️ Email",
        "💬 Messenger",
        "✍️ Manual",
        "🤝 Referral",
        "◀ Back",
        "✖ Cancel",
    ]
    legal = await harness.tap(user, start.button("Call"), start)
    assert legal.last.text == "Is the client a person or a company?"
    name = await harness.tap(user, legal.button("Person"), legal)
    assert name.last.text == "What is the client's name?"
    phone = await harness.send(user, "John Smith")
    assert [text for text, _ in phone.buttons()] == ["◀ Back", "✖ Cancel"]
    bad = await harness.send(user, "not a phone")
    assert bad.last.text.startswith(err("phone", "invalid", lang="en") + "\n\n")
    assert bad.last.text.endswith("Type it or send a contact (📎 → Contact).")
    need = await harness.send(user, "+44 20 7946 0958")
    assert need.last.text == "What does the client need? Briefly, in your own words."
    assert [text for text, _ in need.buttons()] == ["Skip ⏭", "◀ Back", "✖ Cancel"]
    amount = await harness.send(user, "New windows")
    assert amount.last.text == "Approximate amount in roubles (e.g. 150000)?"
    letters = await harness.send(user, "lots")
    assert letters.last.text == (
        err("amount", "not_a_number", lang="en")
        + "\n\nApproximate amount in roubles (e.g. 150000)?"
    )
    confirm = await harness.send(user, "2500")
    assert confirm.last.text.startswith("Check and create the lead:")
    assert "📥 Source: 📞 Call" in confirm.last.text and "💰 2,500\u00a0RUB" in confirm.last.text
    assert confirm.buttons()[0][0] == "✅ Create lead"
    created = await harness.tap(user, confirm.button("Create lead"), confirm)
    assert created.last.text.startswith("<i>Lead created ✅</i>\n\n🧲 <b>John Smith</b> · lead #")
    assert "<b>Qualification</b> (* required):" in created.last.text
    # the questions are the buttons: listed once, whole (issue 20)
    assert "Is the site in our service area?" not in created.last.text
    labels = [text for text, _ in created.buttons()]
    assert "⬜ Is the site in our service area? *" in labels
    assert labels[-4:] == ["🔄 To deal", "❌ Not a fit", "📜 History", "✏️ Edit"]
    [lead] = await all_leads(uow_factory)
    assert (lead.phone, lead.need, lead.amount) == ("+442079460958", "New windows", 250_000)


async def test_people_outside_sales_cannot_start_a_lead(harness, make_actor, db_snapshot):
    measurer = await make_actor(roles=("measurer",))
    user = tg_user(measurer.telegram_id)
    before = await db_snapshot()
    refused = await harness.send(user, "/lead")
    assert refused.last.text == "⚠️ " + t("error.permission_denied", "ru")
    shared = await harness.share_contact(user, "79161112233", "Мария")
    assert shared.last.text == "⚠️ " + t("error.permission_denied", "ru")
    assert (await harness.send(user, "Мария")).last.text == UNKNOWN
    assert await db_snapshot() == before


def test_every_text_the_lead_screens_use_exists_in_both_languages():
    root = Path(__file__).resolve().parents[3] / "handlers"
    keys = set()
    for name in (
        "leads/router.py",
        "leads/views.py",
        "ui/lead_card.py",
        "deals/views.py",
        "ui/deal_card.py",
    ):
        source = (root / name).read_text(encoding="utf-8")
        keys |= set(re.findall(r"""\bt\(\s*["']([a-z_.]+)["']""", source))
    keys |= {f"source.{s}" for s in LeadSource}
    keys |= {f"lead.wizard.ask_{s}" for s in ("need", "amount")}
    keys |= {f"lead.dup.{k}" for k in ("lead", "deal", "open_lead", "open_deal")}
    assert {"lead.label", "lead.card.source", "lead.wizard.ask_name"} <= keys
    for lang in LANGUAGES:
        missing = sorted(k for k in keys if k not in catalog(lang))
        assert not missing, f"{lang}: {missing}"


# --- property: whatever is typed at the phone step ----------------------------------------

RU_MOBILE = st.builds(
    lambda sep, digits: sep.join(["+7", "9" + digits[:2], digits[2:5], digits[5:]]),
    st.sampled_from(["", " ", "-"]),
    st.text(alphabet="0123456789", min_size=9, max_size=9),
)
PHONEISH = st.text(alphabet="+0123456789 ()-.", min_size=1, max_size=24)
EMAILISH = st.builds(lambda a, b: f"{a}@{b}", st.text(max_size=12), st.text(max_size=12))
TYPED = st.one_of(
    RU_MOBILE, st.emails(), PHONEISH, EMAILISH, st.text(min_size=1, max_size=60)
).filter(lambda x: not x.startswith("/"))


def accepted(text: str) -> str | None:
    """What the phone step should hold after `text` (None: it must ask again)."""
    try:
        if "@" in text:
            return validation.email(text.strip())
        return validation.phone(text.strip())
    except ValidationError:
        return None


UPDATE_BLOCKS = itertools.count(1, 100)


async def phone_example(url: str, text: str) -> None:
    engine = create_engine(url)
    uow_factory = UnitOfWorkFactory(create_session_factory(engine), FakeClock())
    try:
        async with uow_factory() as uow:
            if await uow.repo.employees.by_telegram_id(4001) is None:
                uow.repo.add(
                    Employee(
                        telegram_id=4001,
                        name="M",
                        roles=["manager"],
                        active=True,
                        created_at=uow.clock.now(),
                    )
                )
                await uow.commit()
        session = RecordingSession()
        dp = build_dispatcher(make_settings(url), uow_factory, uow_factory.clock)
        # One database for every example: each example's updates get fresh ids.
        harness = BotHarness(dp, make_bot(session), session, first_update=next(UPDATE_BLOCKS))
        user = tg_user(4001)
        before = await dump(engine)
        await to_phone_step(harness, user)
        answer = await harness.send(user, text)
        held = accepted(text)
        if held is None:
            assert answer.text.startswith("⚠️ ") and answer.text.endswith(ASK_PHONE)
            assert answer.buttons() == NAV
        else:
            assert answer.last.text == ASK_NEED
        assert await dump(engine) == before  # nothing saved, whatever was typed
    finally:
        await engine.dispose()


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(text=TYPED)
def test_anything_typed_at_the_phone_step_is_taken_or_asked_again(db_url, text):
    asyncio.run(phone_example(db_url, text))


async def test_a_redelivered_fsm_only_step_is_skipped(harness, make_actor, uow_factory):
    """The name step only moves the FSM (nothing is committed): delivered twice (a webhook
    retry, a polling restart), the second copy must not be read as the phone answer."""
    ann = await make_actor(roles=("manager",))
    user = tg_user(ann.telegram_id)
    start = await harness.send(user, "/lead")
    legal = await harness.tap(user, start.button("Звонок"), start)
    source = await harness.tap(user, legal.button("Частное"), legal)
    tap = harness.last_update
    phone = await harness.send(user, "Иван")
    assert phone.last.text == ASK_PHONE
    again = await harness.feed(harness.last_update)
    assert again.requests == []  # silently skipped, as a redelivered write is
    assert (await harness.feed(tap)).requests == []  # the person button too
    assert source.last.text == ASK_NAME
    need = await harness.send(user, "+7 916 555-12-34")
    assert need.last.text == ASK_NEED
    async with uow_factory() as uow:
        for update in (tap, harness.last_update):
            assert await uow.repo.system.seen(update.update_id)
