"""Installments on the phone through the real dispatcher: winning with a plan (an equal
split or typed lines), recording payments, the payment prompt's refusals, /receivables."""

from __future__ import annotations

import re
from datetime import date

import pytest
from aiogram.methods import EditMessageText

from services.errors import RuleViolation
from services.work import installments
from tests.factories import (
    contract_signed,
    stage_code,
)
from tests.tg import Sent, tg_user


def _exact(sent: Sent, label: str) -> str:
    [data] = [data for text, data in sent.buttons() if text == label]
    return data


async def test_win_with_installments_payment_and_receivables(harness, uow_factory, clock, team):
    ann = team["ann"]
    user = tg_user(ann.telegram_id)
    deal = await contract_signed(uow_factory, ann, clock, amount="300000")
    card = await harness.send(user, f"/deal {deal.id}")
    labels = [t for t, _ in card.buttons()]
    assert "Успешная продажа ▶" in labels and "💳 Успех в рассрочку" in labels
    menu = await harness.tap(user, card.button("в рассрочку"), card)
    asked = await harness.tap(user, _exact(menu, "3"), card)
    assert "первого платежа" in asked.last.text
    bad = await harness.send(user, "вчера")
    assert bad.last.text.startswith("⚠️")
    won = await harness.send(user, "01.02")
    text = won.of(EditMessageText)[0].text
    assert "100\u00a0000\u00a0₽" in text and "01.04.2026" in text
    assert await stage_code(uow_factory, deal.id) == "won"
    async with uow_factory() as uow:
        plan = await installments.plan_summary(uow, ann, deal.id)
    assert plan.source_deal_id == deal.id and plan.deal_id != deal.id
    assert [(d.due_date, d.amount) for d in plan.dues] == [
        (date(2026, 2, 1), 10_000_000),
        (date(2026, 3, 1), 10_000_000),
        (date(2026, 4, 1), 10_000_000),
    ]

    inst_card = await harness.send(user, f"/deal {plan.deal_id}")
    pay = await harness.tap(user, inst_card.button("Внести платёж"), inst_card)
    assert "300\u00a0000\u00a0₽" in pay.last.text
    over = await harness.send(user, "400 000")
    assert over.last.text.startswith("⚠️")
    paid = await harness.send(user, "50 000 11.01")
    assert "Платёж записан" in paid.last.text
    async with uow_factory() as uow:
        plan = await installments.plan_summary(uow, ann, deal.id)
    assert plan.paid == 5_000_000 and plan.remaining == 25_000_000

    report = await harness.send(user, "/receivables")
    lines = re.sub(r"<[^>]+>", "", report.last.text).splitlines()
    assert all(len(line) <= 40 for line in lines), lines
    assert (
        "Всего к получению: 250\u00a0000\u00a0₽" in lines
        and "🔴 Из них просрочено: 0\u00a0₽" in lines
    )
    assert "1. Иван Петров" in lines and "   осталось 250\u00a0000\u00a0₽" in lines
    measurer = await harness.send(tg_user(team["mia"].telegram_id), "/receivables")
    assert measurer.last.text == "⚠️ Нет доступа."


async def test_plain_move_into_won_still_works(harness, uow_factory, clock, team):
    ann = team["ann"]
    user = tg_user(ann.telegram_id)
    deal = await contract_signed(uow_factory, ann, clock, amount="1000")
    card = await harness.send(user, f"/deal {deal.id}")
    won = await harness.tap(user, card.button("Успешная продажа ▶"), card)
    assert "<b>Успешная продажа</b>" in won.last.text
    async with uow_factory() as uow:
        with pytest.raises(RuleViolation):
            await installments.plan_summary(uow, ann, deal.id)
