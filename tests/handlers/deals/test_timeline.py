"""The deal's whole life on its card (issue 12), through the real dispatcher: every kind of
timeline event lands on the history (filters, paging), the card's counts and last events,
the Files button sends back exactly the deal's files, a prompt from a stale card is refused
at the tap, and a reassignment tells both managers."""

from __future__ import annotations

import re

from aiogram.methods import (
    EditMessageText,
    SendDocument,
    SendMediaGroup,
    SendMessage,
    SendPhoto,
)
from aiogram.types import Document, PhotoSize

from handlers.ui.callbacks import DealAction, DealCb, LeadAction, LeadCb, TimelineCb
from services import timeline
from services.sales import deals
from storage.enums import ActivityKind
from tests.factories import (
    contract_signed,
    deliver,
    measurer_assigned,
    new_deal,
    new_lead,
    plain,
    to,
    won_in_three_parts,
)
from tests.tg import tg_user


async def history_of(harness, user, deal_id: int):
    card = await harness.send(user, f"/deal {deal_id}")
    return await harness.tap(user, card.button("История"), card)


async def measured(harness, uow_factory, clock, team):
    """Mia measures through the bot: two photos (one with a caption), a document, a comment."""
    deal_id, task_id, card = await measurer_assigned(harness, uow_factory, clock, team)
    u_mia = tg_user(team["mia"].telegram_id)
    way = await harness.tap(u_mia, card.button("Выезжаю"), card)
    ask = await harness.tap(u_mia, way.button("Готово"), card)
    for n, caption in ((1, "Окно на кухне"), (2, None)):
        photo = [PhotoSize(file_id=f"big{n}", file_unique_id=f"ub{n}", width=1280, height=960)]
        await harness.send_message(u_mia, photo=photo, caption=caption)
    doc = Document(file_id="doc1", file_unique_id="ud1", file_name="plan.pdf")
    await harness.send_message(u_mia, document=doc, caption="Смета")
    await harness.send(u_mia, "Проём 1200×1400")
    got = await harness.tap(u_mia, ask.button("Завершить"), ask)
    assert "Замер выполнен" in got.last.text
    return deal_id


async def test_the_measurement_visit_on_the_card_history_and_files(
    harness,
    uow_factory,
    clock,
    team,
):
    ann = team["ann"]
    u_ann = tg_user(ann.telegram_id)
    deal_id = await measured(harness, uow_factory, clock, team)
    other = await new_deal(uow_factory, ann, amount="1000")  # another deal, its own file
    async with uow_factory() as uow:
        timeline.record(
            uow,
            ActivityKind.FILE,
            actor_id=ann.id,
            deal_id=other.id,
            media_type="photo",
            file_id="theirs",
            caption="чужое",
        )
        await uow.commit()

    card = await harness.send(u_ann, f"/deal {deal_id}")
    text = plain(card.last.text)
    assert "📎 Файлы: 3 · 💬 Сообщения: 0 · ✅ Задачи: 0" in text
    # the visit's comment is on the card (not an empty note line), with its files
    assert "📐 Mia: Замер выполнен, файлов: 3: Проём 1200×1400" in text
    assert "📎 Mia: фото: Окно на кухне" in text or "📎 Mia: документ: Смета" in text

    sent = await harness.tap(u_ann, card.button("Файлы"), card)
    [album] = sent.of(SendMediaGroup)
    assert [(m.media, m.caption) for m in album.media] == [
        ("big1", "Окно на кухне"),
        ("big2", None),
    ]
    [document] = sent.of(SendDocument)
    assert (document.document, document.caption) == ("doc1", "Смета")
    assert not sent.of(SendPhoto)  # two photos: one album, not two messages
    assert "theirs" not in str(sent.requests)  # exactly this deal's files
    assert "файлы 1–3 из 3" in sent.last.text

    history = await harness.tap(u_ann, card.button("История"), card)
    text = plain(history.last.text)
    assert "📐 Mia: Замер выполнен" in text and "🧭 Mia: → Замер выполнен" in text
    files_only = await harness.tap(u_ann, history.button("Файлы"), history)  # the filter button
    lines = plain(files_only.last.text).splitlines()[2:]
    assert len(lines) == 3 and all("📎" in line for line in lines), lines


async def test_files_are_paged_photos_alone_and_nothing_for_a_deal_without(
    harness, make_actor, uow_factory
):
    ann = await make_actor(roles=("manager",), name="Ann")
    u_ann = tg_user(ann.telegram_id)
    empty = await new_deal(uow_factory, ann, amount="1000")
    card = await harness.send(u_ann, f"/deal {empty.id}")
    assert not any("Файлы" in text for text, _ in card.buttons())
    refused = await harness.tap(u_ann, DealCb(action=DealAction.FILES, deal_id=empty.id), card)
    assert refused.alert and not refused.of(SendMediaGroup)

    async with uow_factory() as uow:
        for n in range(11):
            timeline.record(
                uow,
                ActivityKind.FILE,
                actor_id=ann.id,
                deal_id=empty.id,
                media_type="photo",
                file_id=f"p{n}",
                caption=f"#{n}",
            )
        await uow.commit()
    card = await harness.send(u_ann, f"/deal {empty.id}")
    first = await harness.tap(u_ann, card.button("Файлы"), card)
    [album] = first.of(SendMediaGroup)
    assert [m.media for m in album.media] == [f"p{n}" for n in range(10)]
    second = await harness.tap(u_ann, first.button("Ещё файлы"), first.message)
    assert not second.of(SendMediaGroup)
    [one] = second.of(SendPhoto)  # a single photo cannot be a media group
    assert (one.photo, one.caption) == ("p10", "#10")
    assert "файлы 11–11 из 11" in second.last.text


async def test_every_kind_on_the_history_with_filters_and_paging(
    harness,
    uow_factory,
    clock,
    team,
):
    ann, lee = team["ann"], team["lee"]
    u_ann = tg_user(ann.telegram_id)
    deal = await contract_signed(uow_factory, ann, clock, amount="300000")
    card = await harness.send(u_ann, f"/deal {deal.id}")
    # a note and a call, typed after their buttons
    await harness.tap(u_ann, card.button("Заметка"), card)
    await harness.send(u_ann, "Клиент просит скидку")
    card = await harness.send(u_ann, f"/deal {deal.id}")
    await harness.tap(u_ann, card.button("Звонок"), card)
    await harness.send(u_ann, "Договорились на понедельник")
    # a follow-up task, snoozed and done by its reminder's buttons
    card = await harness.send(u_ann, f"/deal {deal.id}")
    menu = await harness.tap(u_ann, card.button("След. контакт"), card)
    await harness.tap(u_ann, menu.button("Через час"), card)
    clock.advance(hours=1, minutes=1)
    reminder = to(await deliver(harness, uow_factory, clock), ann)
    await harness.tap(u_ann, reminder.button("Через час"), reminder)
    await harness.tap(u_ann, reminder.button("Готово"), reminder)
    # won with installments (the plan) and a payment
    async with uow_factory() as uow:
        card_now = await deals.get_card(uow, ann, deal.id)
    plan = await won_in_three_parts(uow_factory, ann, deal.id, card_now.version)
    inst = await harness.send(u_ann, f"/deal {plan.deal_id}")
    await harness.tap(u_ann, inst.button("Внести платёж"), inst)
    paid = await harness.send(u_ann, "50 000")
    assert "Платёж записан" in paid.last.text
    # a leader gives the original deal to Bob
    u_lee = tg_user(lee.telegram_id)
    lee_card = await harness.send(u_lee, f"/deal {deal.id}")
    menu = await harness.tap(u_lee, lee_card.button("Передать"), lee_card)
    await harness.tap(u_lee, menu.button("Bob"), lee_card)

    history = await history_of(harness, u_lee, deal.id)
    text = plain(history.last.text)
    text = plain(await _all_pages(harness, u_lee, history))
    for expected in (
        "📝 Ann: Клиент просит скидку",
        "📞 Ann: Договорились на понедельник",
        "🗓 Ann: Задача (",
        "⏰ Ann: Задача перенесена на",
        "✅ Ann: Задача выполнена",
        "🧾 Ann: График рассрочки",
        "👥 Lee: Передана: Ann → Bob",
    ):
        assert expected in text, expected
    inst_history = await history_of(harness, u_ann, plan.deal_id)
    assert "💳 Ann: Оплата 50" in plain(inst_history.last.text)

    # filters: only stage changes, only tasks, only money
    stages = await harness.tap(u_lee, history.button("Этапы"), history)
    lines = plain(stages.last.text).splitlines()[2:]
    assert lines and all("🧭" in line for line in lines)
    tasks = await harness.tap(u_lee, history.button("Задачи"), history)
    kinds = {line.split()[2] for line in plain(tasks.last.text).splitlines()[2:]}
    assert kinds <= {"🗓", "⏰", "✅"} and "✅" in kinds and "⏰" in kinds
    money = await harness.tap(u_lee, history.button("Оплаты"), history)
    assert "🧾" in money.last.text and "🧭" not in money.last.text


async def _all_pages(harness, user, first) -> str:
    """Every page of a history, following "Older"."""
    texts = [first.last.text]
    page = first
    while any("Раньше" in text for text, _ in page.buttons()):
        page = await harness.tap(user, page.button("Раньше"), page)
        texts.append(page.last.text)
    return "\n".join(texts)


async def test_paging_is_keyset_newest_first_and_forged_cursors_refused(
    harness, make_actor, uow_factory, clock, db_snapshot
):
    ann = await make_actor(roles=("manager",), name="Ann")
    bob = await make_actor(roles=("manager",), name="Bob")
    u_ann = tg_user(ann.telegram_id)
    deal = await new_deal(uow_factory, ann, amount="1000")
    for n in range(20):
        clock.advance(minutes=1)
        async with uow_factory() as uow:
            await deals.add_note(uow, ann, deal.id, f"note {n:02}")
    first = await history_of(harness, u_ann, deal.id)
    everything = plain(await _all_pages(harness, u_ann, first))
    notes = re.findall(r"note (\d\d)", everything)
    assert notes == [f"{n:02}" for n in reversed(range(20))]  # each once, newest first
    assert everything.count("🧭") == 1  # the deal's first stage, last

    before = await db_snapshot()
    older = first.button("Раньше")
    forged = TimelineCb.unpack(older)
    for cb in (
        TimelineCb(subject=forged.subject, subject_id=deal.id, src=3, rid=999_999),
        TimelineCb(subject=forged.subject, subject_id=deal.id, src=1, rid=forged.rid),
    ):
        refused = await harness.tap(u_ann, cb, first)
        assert refused.alert is not None and not refused.of(EditMessageText)
    foreign = await harness.tap(tg_user(bob.telegram_id), older, first)
    assert foreign.alert is not None and not foreign.of(EditMessageText)
    assert await db_snapshot() == before


async def test_a_stale_cards_prompts_are_refused_at_the_tap(
    harness,
    uow_factory,
    clock,
    team,
):
    ann = team["ann"]
    u_ann = tg_user(ann.telegram_id)
    deal = await new_deal(uow_factory, ann, amount="1000")
    old = await harness.send(u_ann, f"/deal {deal.id}")
    async with uow_factory() as uow:  # moved on meanwhile (another device, a colleague)
        await deals.advance(uow, ann, deal.id, deal.version)
    for label in ("Заметка", "Звонок"):
        refused = await harness.tap(u_ann, old.button(label), old)
        assert refused.alert == "⚠️ Сделка уже изменилась — показываю актуальную карточку."
        [redrawn] = refused.of(EditMessageText)
        assert "<b>КП отправлено</b>" in redrawn.text  # the fresh card in its place
        assert not refused.of(SendMessage)  # no prompt was sent
        await harness.send(u_ann, "это не должно стать заметкой")
    async with uow_factory() as uow:
        assert (await deals.get_card(uow, ann, deal.id)).notes == ()

    # the installment deal's "Record a payment" from a card a payment ago
    won = await contract_signed(uow_factory, ann, clock, amount="300000")
    plan = await won_in_three_parts(uow_factory, ann, won.id, won.version)
    stale = await harness.send(u_ann, f"/deal {plan.deal_id}")
    await harness.tap(u_ann, stale.button("Внести платёж"), stale)
    clock.advance(minutes=5)
    paid = await harness.send(u_ann, "10 000")
    assert "Платёж записан" in paid.last.text, paid.texts
    refused = await harness.tap(u_ann, stale.button("Внести платёж"), stale)
    assert refused.alert is not None
    assert [r for r in refused.requests if isinstance(r, SendMessage)] == []
    [redrawn] = refused.of(EditMessageText)
    assert "Внести платёж" in str(redrawn.reply_markup)  # the fresh card, its fresh button


async def test_reassigning_tells_the_new_and_the_previous_manager(
    harness,
    uow_factory,
    clock,
    team,
):
    ann, bob, lee = team["ann"], team["bob"], team["lee"]
    deal = await new_deal(uow_factory, ann, amount="1000")
    u_lee = tg_user(lee.telegram_id)
    card = await harness.send(u_lee, f"/deal {deal.id}")
    menu = await harness.tap(u_lee, card.button("Передать"), card)
    done = await harness.tap(u_lee, menu.button("Bob"), card)
    assert "Bob" in done.last.text
    sent = await deliver(harness, uow_factory, clock)
    to_bob = to(sent, bob)
    assert "Lee передал(а) вам сделку" in to_bob.text and "Ann" in to_bob.text
    opened = await harness.tap(tg_user(bob.telegram_id), to_bob.button("Открыть"), to_bob)
    assert f"#{deal.id}" in opened.last.text  # the card, from the notice's button
    to_ann = to(sent, ann)
    assert "менеджеру Bob" in to_ann.text
    assert not any(s.last.chat_id == lee.telegram_id for s in sent)  # not the leader herself


async def test_a_leads_history_shows_its_intake(harness, make_actor, uow_factory):
    ann = await make_actor(roles=("manager",), name="Ann")
    lead = await new_lead(uow_factory, ann, need="Балкон под ключ")
    u_ann = tg_user(ann.telegram_id)
    card = await harness.tap(u_ann, LeadCb(action=LeadAction.OPEN, lead_id=lead.id))
    shown = await harness.tap(u_ann, card.button("История"), card)
    text = plain(shown.last.text)
    assert "📥 Ann: Заявка · ✍️ Вручную: Балкон под ключ" in text and "🧭" in text
    assert shown.alert is None


async def test_the_measurer_and_other_managers_see_no_timeline(
    harness,
    uow_factory,
    clock,
    team,
):
    deal_id = await measured(harness, uow_factory, clock, team)
    for who in ("mia", "bob"):
        user = tg_user(team[who].telegram_id)
        for cb in (
            TimelineCb(subject="d", subject_id=deal_id),
            DealCb(action=DealAction.FILES, deal_id=deal_id),
            DealCb(action=DealAction.HISTORY, deal_id=deal_id),
        ):
            refused = await harness.tap(user, cb)
            assert refused.alert is not None
            assert not refused.of(SendMediaGroup) and not refused.of(EditMessageText)
