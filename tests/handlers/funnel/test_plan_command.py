"""Plans in the bot through the real dispatcher (issue 26): a leader sets a month's plan
with /plan (typed sums said back before saving; a bad line says why and saves nothing; a
manager is refused), and a manager types a deal's expected close on its card (said back
as a day; the card shows it instead of the stage's rule)."""

from __future__ import annotations

from datetime import date

from handlers.ui.callbacks import DealAction, DealCb
from services.sales.edit import DEAL_FIELDS
from storage.models import Plan
from tests.factories import card_of, deal_row, new_deal, plain
from tests.tg import tg_user


async def test_a_leader_sets_a_plan_with_plan(harness, team, uow_factory, db_snapshot):
    lee, ann = team["lee"], team["ann"]
    refused = await harness.send(tg_user(ann.telegram_id), "/plan")
    assert refused.last.text.startswith("⚠️")
    user = tg_user(lee.telegram_id)
    asked = await harness.send(user, "/plan")
    assert [text for text, _ in asked.buttons()] == ["январь 2026", "февраль 2026"]
    whom = await harness.tap(user, asked.button("январь 2026"), asked)
    assert "Компания" in [text for text, _ in whom.buttons()]
    numbers = await harness.tap(user, whom.button("Ann"), whom)
    assert "5 1,5 млн" in numbers.text
    before = await db_snapshot()
    for bad in ("пять 1 млн", "5", "0 0"):
        said = await harness.send(user, bad)
        assert said.texts[0].startswith("⚠️") and "5 1,5 млн" in said.text, bad
    assert await db_snapshot() == before
    said = await harness.send(user, "5 1,5 млн")
    assert "январь 2026 для Ann: 5 продаж на 1\u00a0500\u00a0000\u00a0₽?" in said.text
    assert await db_snapshot() == before  # said back, not saved yet
    saved = await harness.tap(user, said.button("✅"), said)
    assert saved.alert == "План сохранён"
    async with uow_factory() as uow:
        plans = await uow.repo.plans.of_month(date(2026, 1, 1))
    assert [(p.employee_id, p.sales_count, p.amount) for p in plans] == [(ann.id, 5, 150_000_000)]
    assert [p.set_by_id for p in plans] == [lee.id] and isinstance(plans[0], Plan)


async def test_expected_close_typed_on_the_card(harness, team, uow_factory):
    ann = team["ann"]
    deal = await new_deal(uow_factory, ann, amount="150000")
    user = tg_user(ann.telegram_id)
    card = await harness.send(user, f"/deal {deal.id}")
    # Data collection's rule: 45 days after entering the stage (12 Jan -> 26 Feb).
    assert "Закрытие ожидается: 26 февр. 2026\u202fг. (по сроку этапа)" in plain(card.text)
    index = DEAL_FIELDS.index("expected_close_at")
    ask = DealCb(action=DealAction.EDIT_FIELD, deal_id=deal.id, v=deal.version, arg=index)
    asked = await harness.tap(user, ask, card)
    assert "Какого числа?" in asked.last.text
    assert (await harness.send(user, "вчера")).last.text.startswith("⚠️")
    said = await harness.send(user, "20.01")
    assert "вт, 20 января" in said.text  # said back as a day, before it is used
    assert (await deal_row(uow_factory, deal.id)).expected_close_at is None
    done = await harness.tap(user, said.button("✅"), said)
    assert done.alert is not None and "20 янв. 2026\u202fг." in done.alert
    row = await deal_row(uow_factory, deal.id)
    assert row.expected_close_at is not None and row.expected_close_at.isoformat().startswith(
        "2026-01-19T21:00"  # Moscow midnight
    )
    fresh = await card_of(uow_factory, ann, deal.id)
    assert fresh.expected_close_typed
