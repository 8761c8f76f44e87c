"""The deal card through the real dispatcher: text, keyboard and database after each tap."""

from __future__ import annotations

from aiogram.methods import EditMessageText, SendMessage
from sqlalchemy import select

from handlers.ui.callbacks import DealAction, DealCb
from handlers.ui.i18n import t
from services.sales import deals
from storage.models import AccessAttempt
from tests.factories import card_of, new_deal
from tests.tg import tg_user


async def test_open_card_and_move_one_stage_in_one_tap(harness, make_actor, uow_factory):
    ann = await make_actor(roles=("manager",), name="Анна")
    deal = await new_deal(uow_factory, ann, name="Иван Петров", amount="150000")
    user = tg_user(ann.telegram_id)
    shown = await harness.send(user, f"/deal {deal.id}")
    card = shown.last
    assert isinstance(card, SendMessage)
    assert "Иван Петров" in card.text and "150\u00a0000\u00a0₽" in card.text
    assert "Сбор данных" in card.text and "▰▱▱▱▱▱ 1/6" in card.text
    assert (
        "КП отправлено ▶",
        DealCb(action=DealAction.NEXT, deal_id=deal.id, v=deal.version).pack(),
    ) in shown.buttons()
    assert not any("Передать" in text for text, _ in shown.buttons())  # managers don't reassign

    taps_before = harness.inputs
    moved = await harness.tap(user, shown.button("КП отправлено ▶"), shown)
    assert harness.inputs - taps_before == 1
    edit = moved.last
    assert isinstance(edit, EditMessageText) and edit.message_id == shown.message.message_id
    assert edit.text is not None
    assert "<b>КП отправлено</b>" in edit.text
    assert moved.alert is None  # answered, silently
    assert (await card_of(uow_factory, ann, deal.id)).stage.code == "proposal_sent"


async def test_double_tap_moves_once(harness, make_actor, uow_factory):
    ann = await make_actor(roles=("manager",))
    deal = await new_deal(uow_factory, ann, amount="1000")
    user = tg_user(ann.telegram_id)
    card = await harness.send(user, f"/deal {deal.id}")
    data = card.button("▶")
    first = await harness.tap(user, data, card)
    second = await harness.tap(user, data, card)
    assert "<b>КП отправлено</b>" in first.last.text
    assert "уже изменилась" in second.alert
    assert "изменилась, пока карточка была открыта" in second.last.text  # refreshed card
    assert "<b>КП отправлено</b>" in second.last.text
    async with uow_factory() as uow:
        history = await uow.repo.history.for_deal(deal.id)
    assert len(history) == 2  # created + one move


async def test_required_field_is_asked_inline(harness, make_actor, uow_factory):
    ann = await make_actor(roles=("manager",))
    deal = await new_deal(uow_factory, ann)  # no amount yet
    user = tg_user(ann.telegram_id)
    card = await harness.send(user, f"/deal {deal.id}")
    asked = await harness.tap(user, card.button("▶"), card)
    assert "сумму" in asked.last.text
    bad = await harness.send(user, "сто тысяч")
    assert bad.texts[0].startswith("⚠️") and "Введите сумму" in bad.texts[0]  # re-asked
    assert (await card_of(uow_factory, ann, deal.id)).stage.code == "data_collection"
    done = await harness.send(user, "120 000")
    edit = done.of(EditMessageText)[0]
    assert edit.message_id == card.message.message_id and "120\u00a0000\u00a0₽" in edit.text
    fresh = await card_of(uow_factory, ann, deal.id)
    assert fresh.stage.code == "proposal_sent" and fresh.amount == 12_000_000


async def test_lose_with_reason_from_buttons(harness, make_actor, uow_factory):
    ann = await make_actor(roles=("manager",))
    deal = await new_deal(uow_factory, ann, amount="1000")
    user = tg_user(ann.telegram_id)
    card = await harness.send(user, f"/deal {deal.id}")
    menu = await harness.tap(user, card.button("Провал"), card)
    labels = [text for text, _ in menu.buttons()]
    assert "Дорого" in labels and "⏸ Условный отказ: думает" in labels
    lost = await harness.tap(user, menu.button("Дорого"), card)
    assert "Причина: Дорого" in lost.last.text and "<b>Провал</b>" in lost.last.text
    assert [t for t, _ in lost.buttons()][0] == "↩ Вернуть в работу"
    assert (await card_of(uow_factory, ann, deal.id)).closed


async def test_defer_with_a_quick_date(harness, make_actor, uow_factory, clock):
    ann = await make_actor(roles=("manager",))
    deal = await new_deal(uow_factory, ann, amount="1000")
    user = tg_user(ann.telegram_id)
    card = await harness.send(user, f"/deal {deal.id}")
    menu = await harness.tap(user, card.button("Отложить"), card)
    deferred = await harness.tap(user, menu.button("Через неделю"), card)
    assert "Отложенный спрос" in deferred.last.text and "След. контакт" in deferred.last.text
    fresh = await card_of(uow_factory, ann, deal.id)
    assert fresh.pipeline.code == "deferred" and fresh.next_contact_at > clock.now()
    back = await harness.tap(user, deferred.button("В продажу"), card)
    assert "<b>Сбор данных</b>" in back.last.text


async def test_note_and_history(harness, make_actor, uow_factory):
    ann = await make_actor(roles=("manager",))
    deal = await new_deal(uow_factory, ann, amount="1000")
    user = tg_user(ann.telegram_id)
    card = await harness.send(user, f"/deal {deal.id}")
    await harness.tap(user, card.button("Заметка"), card)
    saved = await harness.send(user, "Перезвонить после 18:00")
    assert "Перезвонить после 18:00" in saved.of(EditMessageText)[0].text
    fresh = await harness.send(user, f"/deal {deal.id}")
    history = await harness.tap(user, fresh.button("История"), fresh)
    text = history.last.text
    assert "история · Всё" in text and "Сбор данных" in text
    assert text.index("Перезвонить после 18:00") < text.index("Сбор данных")  # newest first


async def test_someone_elses_deal_is_refused(harness, make_actor, uow_factory, db_snapshot):
    ann = await make_actor(roles=("manager",))
    bob = await make_actor(roles=("manager",))
    deal = await new_deal(uow_factory, ann, amount="1000")
    before = await db_snapshot()
    forged = DealCb(action=DealAction.NEXT, deal_id=deal.id, v=deal.version)
    refused = await harness.tap(tg_user(bob.telegram_id), forged)
    assert refused.alert == "⚠️ Нет доступа."
    assert not refused.of(EditMessageText)
    assert await db_snapshot() == before


async def test_strangers_are_refused_and_recorded(harness, uow_factory):
    stranger = tg_user(777, "Mallory", lang="en")
    answer = await harness.send(stranger, "/start")
    assert "invitation only" in answer.last.text
    tapped = await harness.tap(stranger, DealCb(action=DealAction.NEXT, deal_id=1, v=1))
    assert "invitation only" in tapped.alert
    async with uow_factory() as uow:
        rows = (await uow.session.execute(select(AccessAttempt))).all()
    assert len(rows) == 1  # one per person per hour


async def test_english_speaker_gets_english(harness, make_actor, uow_factory):
    boss = await make_actor(roles=("leader",))
    ann = await make_actor(roles=("manager",))
    deal = await new_deal(uow_factory, ann, amount="1000")
    user = tg_user(boss.telegram_id, lang="en-GB")
    card = await harness.send(user, f"/deal {deal.id}")
    assert "<b>Data collection</b>" in card.last.text and "1,000\u00a0RUB" in card.last.text
    assert any(text == "👥 Reassign" for text, _ in card.buttons())


async def test_two_required_fields_are_asked_one_after_the_other(
    harness, make_actor, uow_factory, clock
):
    """Measurement scheduled needs a date and an address: both asked, the date kept between."""
    ann = await make_actor(roles=("manager",))
    deal = await new_deal(uow_factory, ann, amount="1000")
    user = tg_user(ann.telegram_id)
    async with uow_factory() as uow:
        await deals.advance(uow, ann, deal.id, deal.version)  # to Proposal sent
    card = await harness.send(user, f"/deal {deal.id}")
    asked = await harness.tap(user, card.button("Замер запланирован ▶"), card)
    assert "Когда замер" in asked.last.text
    again = await harness.send(user, "вчера")
    assert again.last.text.startswith("⚠️")  # refused, nothing saved; the step stays
    said = await harness.send(user, "завтра 10:00")
    assert "Дата замера: <b>вт, 13 января, 10:00</b> — верно?" in said.last.text  # said back
    address = await harness.tap(user, said.button("Верно"), said)
    assert "Адрес замера" in address.texts[0]
    assert address.alert is None or "13 января" in address.alert
    done = await harness.send(user, "ул. Ленина, 5, кв. 12")
    edit = done.of(EditMessageText)[0]
    assert "<b>Замер запланирован</b>" in edit.text and "ул. Ленина, 5, кв. 12" in edit.text
    fresh = await card_of(uow_factory, ann, deal.id)
    assert fresh.stage.code == "measurement_scheduled" and fresh.measurement_at > clock.now()


async def test_english_card_shows_the_reason_in_english(harness, make_actor, uow_factory):
    ann = await make_actor(roles=("manager",))
    deal = await new_deal(uow_factory, ann, amount="1000")
    async with uow_factory() as uow:
        await deals.lose(uow, ann, deal.id, "expensive", None, deal.version)
    card = await harness.send(tg_user(ann.telegram_id, lang="en"), f"/deal {deal.id}")
    assert "Reason: Too expensive" in card.last.text


async def test_callback_data_only_in_its_canonical_form(harness, make_actor, uow_factory):
    """A forged variant of a real button ("1.0" for 1, a trailing newline) is refused with
    the stale-button alert, and nothing changes."""
    ann = await make_actor(roles=("manager",))
    deal = await new_deal(uow_factory, ann, amount="1000")
    user = tg_user(ann.telegram_id)
    card = await harness.send(user, f"/deal {deal.id}")
    v = deal.version
    for forged in (
        f"d:n:{deal.id}.0:{v}:0",  # would move the deal
        f"d:n:{deal.id}:{v}.0:0",
        f"d:n:0{deal.id}:{v}:0",
        f"d:nt:{deal.id}:{v}:0\n",  # would open the note prompt
        f"d:n:{deal.id}:{v}:0\n",
    ):
        sent = await harness.tap(user, forged, card)
        assert sent.alert == t("common.stale_button", "ru"), forged
        assert not sent.of(SendMessage) and not sent.of(EditMessageText), forged
    fresh = await card_of(uow_factory, ann, deal.id)
    assert fresh.stage.code == "data_collection" and fresh.version == v
    async with uow_factory() as uow:
        assert len(await uow.repo.history.for_deal(deal.id)) == 1
    # The canonical form of the same button still works.
    moved = await harness.tap(user, f"d:n:{deal.id}:{v}:0", card)
    assert "<b>КП отправлено</b>" in moved.last.text
