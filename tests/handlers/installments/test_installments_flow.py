"""Installments on the phone through the real dispatcher: winning with a plan (an equal
split or typed lines), recording payments, the payment prompt's refusals, /receivables."""

from __future__ import annotations

import re
from datetime import date

import pytest
from aiogram.methods import EditMessageText, SendMessage

from handlers.ui.callbacks import DealAction, DealCb, InstallmentAction, InstallmentCb
from handlers.ui.i18n import t
from services.errors import RuleViolation
from services.work import installments
from tests.factories import (
    contract_signed,
    plain,
    stage_code,
    won_in_three_parts,
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


async def test_win_with_typed_lines_reasks_until_they_add_up(harness, uow_factory, clock, team):
    ann = team["ann"]
    user = tg_user(ann.telegram_id)
    deal = await contract_signed(uow_factory, ann, clock, amount="1000")
    card = await harness.send(user, f"/deal {deal.id}")
    menu = await harness.tap(user, card.button(t("installments.btn.win", "ru")), card)
    asked = await harness.tap(user, _exact(menu, t("installments.btn.lines", "ru")), card)
    assert t("installments.ask.lines", "ru") in asked.last.text

    for typed in ("когда-нибудь тысячу", "01.02.2026 600\n01.03.2026 300"):  # 900 of 1 000
        again = await harness.send(user, typed)
        assert again.text.startswith("⚠️") and t("installments.ask.lines", "ru") in again.text
        assert await stage_code(uow_factory, deal.id) == "contract_signed"
    async with uow_factory() as uow:
        with pytest.raises(RuleViolation):
            await installments.plan_summary(uow, ann, deal.id)

    won = await harness.send(user, "01.03.2026 400\n600 — 01.02.2026")
    text = plain(won.of(EditMessageText)[0].text or "")
    assert "01.02.2026" in text and "600\u00a0₽" in text
    assert "01.03.2026" in text and "400\u00a0₽" in text
    assert text.index("01.02.2026") < text.index("01.03.2026")  # sorted by date
    assert await stage_code(uow_factory, deal.id) == "won"
    async with uow_factory() as uow:
        plan = await installments.plan_summary(uow, ann, deal.id)
    assert [(d.due_date, d.amount) for d in plan.dues] == [
        (date(2026, 2, 1), 60_000),
        (date(2026, 3, 1), 40_000),
    ]


async def test_the_payment_button_refuses_others_stale_cards_and_paid_off_plans(
    harness, uow_factory, clock, team, db_snapshot
):
    ann, bob = team["ann"], team["bob"]
    u_ann, u_bob = tg_user(ann.telegram_id), tg_user(bob.telegram_id)
    deal = await contract_signed(uow_factory, ann, clock, amount="2000")
    plan = await won_in_three_parts(uow_factory, ann, deal.id, deal.version)
    card = await harness.send(u_ann, f"/deal {plan.deal_id}")
    pay = card.button(t("installments.btn.pay", "ru"))

    before = await db_snapshot()
    refused = await harness.tap(u_bob, pay, card)  # another manager's deal
    assert refused.alert == "⚠️ Нет доступа."
    assert not refused.of(SendMessage)
    forged = await harness.tap(u_ann, InstallmentCb(action=InstallmentAction.PAY, deal_id=10**6))
    assert forged.alert is not None and forged.alert.startswith("⚠️")
    assert await db_snapshot() == before

    # A payment in the future is refused and asked again; the plan is unchanged.
    await harness.tap(u_ann, pay, card)
    future = await harness.send(u_ann, "100 20.01.2026")
    assert future.text.startswith("⚠️")
    assert await db_snapshot() == before
    clock.advance(minutes=5)  # the payment changes the deal (its last activity) a bit later
    paid = await harness.send(u_ann, "500")
    assert t("installments.recorded", "ru") in paid.text

    # The card shown before that payment is stale: its button is refused at the tap.
    stale = await harness.tap(u_ann, pay, card)
    assert stale.alert is not None and t("error.stale_version", "ru") in stale.alert

    # Paid off: the summary has no payment button, and an old one is refused.
    fresh = paid.button(t("installments.btn.pay", "ru"))
    await harness.tap(u_ann, fresh, paid)
    done = await harness.send(u_ann, "1 500")
    assert t("installments.recorded", "ru") in done.text
    assert t("installments.btn.pay", "ru") not in [label for label, _ in done.buttons()]
    assert await stage_code(uow_factory, plan.deal_id) == "paid"
    closed = await harness.tap(
        u_ann, InstallmentCb(action=InstallmentAction.PAY, deal_id=plan.deal_id), done
    )
    assert closed.alert is not None and "закрыта" in closed.alert
    async with uow_factory() as uow:
        summary = await installments.plan_summary(uow, ann, deal.id)
    assert summary.paid == summary.total == 200_000


async def test_receivables_for_a_leader_and_for_a_manager_with_none(
    harness, uow_factory, clock, team
):
    ann, bob, lee = team["ann"], team["bob"], team["lee"]
    empty = await harness.send(tg_user(lee.telegram_id), "/receivables")
    assert t("installments.receivables.empty", "ru") in empty.text
    deal = await contract_signed(uow_factory, ann, clock, amount="3000")
    plan = await won_in_three_parts(uow_factory, ann, deal.id, deal.version)

    report = await harness.send(tg_user(lee.telegram_id), "/receivables")
    lines = plain(report.text).splitlines()
    assert "Всего к получению: 3\u00a0000\u00a0₽" in lines
    assert "1. Иван Петров" in lines
    [(label, data)] = report.buttons()
    assert data == DealCb(action=DealAction.OPEN, deal_id=plan.deal_id).pack()
    opened = await harness.tap(tg_user(lee.telegram_id), data, report)
    assert f"#{plan.deal_id}" in opened.text

    none_of_bobs = await harness.send(tg_user(bob.telegram_id), "/receivables")
    assert t("installments.receivables.empty", "ru") in none_of_bobs.text
