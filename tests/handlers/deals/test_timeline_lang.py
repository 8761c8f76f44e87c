"""Timeline rows keep facts, the reader draws them (issue 19): rows written in Russian
settings, before the change (old Russian-formatted text, converted by migration 0012) and
after it (the services of today), read by an English-speaking leader show English numbers
and dates on every row; a Russian reader still sees Russian ones."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select

from handlers.ui import fmt
from handlers.ui.i18n import t
from services.work import installments
from storage import migrate
from storage.enums import ActivityKind
from storage.models import Activity, Task
from tests.factories import contract_signed, plain, won_in_three_parts
from tests.tg import tg_user

BEFORE = "0009"  # the revision before timeline rows kept facts (0012)
SPACES = str.maketrans({"\u00a0": " ", "\u202f": " "})
RU_DAY = re.compile(r"\b\d{2}\.\d{2}\.\d{4}\b")
RU_GROUPS = re.compile(r"\d \d{3}\b")  # "12 345": Russian digit groups
CYRILLIC = re.compile(r"[А-Яа-яЁё]")
EN_MOMENT = re.compile(r"^\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d{2} [AP]M ")


def ru_day(month: int, day: int) -> str:
    """A 2026 day in words, as a Russian reader sees it (spaces plain)."""
    return fmt.day_words(date(2026, month, day), "ru").translate(SPACES)


async def _history(harness, user, deal_id: int, lang: str) -> list[str]:
    """Every event line of a deal's history (all pages, newest first), spaces plain."""
    card = await harness.send(user, f"/deal {deal_id}")
    page = await harness.tap(user, card.button(t("deal.btn.history", lang)), card)
    lines = []
    while True:
        lines += plain(page.last.text).splitlines()[2:]  # the title and a blank line first
        older = t("timeline.older", lang)
        if not any(text == older for text, _ in page.buttons()):
            return [x.translate(SPACES) for x in lines if x.strip()]
        page = await harness.tap(user, page.button(older), page)


async def _old_rows(uow_factory, clock, author_id: int, deal_id: int, task_deal_id: int) -> None:
    """Rows as the writers before 0012 left them: Russian-formatted text (a payment from
    before 0008 has no payload; one after it has its facts beside the text), and one whose
    text no longer parses; a configured task done on `task_deal_id`, with its Russian
    title."""
    async with uow_factory() as uow:
        rows = [
            ("payment", "7 000 (2026-01-15)", None),
            (
                "payment",
                "1 234 567,05 (2026-01-16)",
                {"amount": 123456705, "paid_on": "2026-01-16"},
            ),
            ("plan", "2026-05-01 50 000,50; 2026-06-01 49 999,50", {"total": 10000000, "parts": 2}),
            ("payment", "оплата наличными", None),
        ]
        for n, (kind, text, payload) in enumerate(rows):
            uow.repo.add(
                Activity(
                    deal_id=deal_id,
                    kind=kind,
                    text=text,
                    author_id=author_id,
                    at=clock.now() - timedelta(minutes=10 - n),
                    payload=payload,
                )
            )
        # a configured task done, its Russian title as the row's text
        task = await uow.session.scalar(
            select(Task).where(Task.deal_id == task_deal_id, Task.title == "Назначить замерщика")
        )
        assert task is not None and task.payload["title_en"] == "Assign a measurer"
        uow.repo.add(
            Activity(
                deal_id=task_deal_id,
                task_id=task.id,
                kind=ActivityKind.TASK_DONE,
                text=task.title,
                author_id=author_id,
                at=clock.now() - timedelta(minutes=1),
                payload={"task_kind": task.kind},
            )
        )
        await uow.commit()


async def _payments(uow_factory, deal_id: int) -> dict[int, tuple[str, dict[str, Any] | None]]:
    async with uow_factory() as uow:
        rows = await uow.session.scalars(
            select(Activity).where(
                Activity.deal_id == deal_id, Activity.kind == ActivityKind.PAYMENT
            )
        )
        return {r.id: (r.text, r.payload) for r in rows}


async def test_rows_written_in_russian_read_in_english(
    harness, uow_factory, clock, make_actor, db_url
):
    ann = await make_actor(roles=("manager",), name="Ann")  # Russian settings
    lee = await make_actor(roles=("leader",), name="Lee", language="en")
    # After: today's writers (a plan of three parts on both deals, a payment with kopecks).
    deal = await contract_signed(uow_factory, ann, clock, amount="300000")
    plan = await won_in_three_parts(uow_factory, ann, deal.id, deal.version)
    async with uow_factory() as uow:
        await installments.record_payment(
            uow, ann, plan.deal_id, 1234550, paid_on=date(2026, 1, 10)
        )
    # Before: the database goes back to the revision before 0012 (today's rows get the old
    # text back), old rows are written as the old writers did, and it comes up again.
    await migrate.downgrade(db_url, BEFORE)
    down = await _payments(uow_factory, plan.deal_id)
    assert [text for text, _ in down.values()] == ["12 345,50 (2026-01-10)"]
    await _old_rows(uow_factory, clock, ann.id, plan.deal_id, deal.id)
    await migrate.upgrade(db_url)
    up = await _payments(uow_factory, plan.deal_id)
    assert sorted(p["amount"] for text, p in up.values() if p and not text) == [
        700000,
        1234550,
        123456705,
    ]
    assert ("оплата наличными", None) in up.values()  # does not parse: left as it was

    u_lee = tg_user(lee.telegram_id, lang="en")
    lines = await _history(harness, u_lee, plan.deal_id, "en")
    original = await _history(harness, u_lee, deal.id, "en")
    for line in lines + original:
        assert EN_MOMENT.match(line), line  # every row's time in English
        assert not RU_DAY.search(line) and "₽" not in line, line
        if any(icon in line for icon in "🗓✅"):  # a configured task: its English title
            assert not CYRILLIC.search(line) and "Assign a measurer" in line, line
        if "💳" in line or "🧾" in line:
            assert not RU_GROUPS.search(line), line
            assert not CYRILLIC.search(line) or "оплата наличными" in line, line
    text = "\n".join(lines)
    for expected in (
        # dates in words (issue 20): never read the wrong way round
        "💳 Ann: Payment 12,345.50 RUB (Jan 10, 2026)",  # after
        "💳 Ann: Payment 7,000 RUB (Jan 15, 2026)",  # before 0008, no payload
        "💳 Ann: Payment 1,234,567.05 RUB (Jan 16, 2026)",  # before, with its facts
        "💳 Ann: Payment оплата наличными",  # unreadable: its text
        "🧾 Ann: Installment plan: May 1, 2026 — 50,000.50 RUB; Jun 1, 2026 — 49,999.50 RUB",
        "🧾 Ann: Installment plan: Feb 1, 2026 — 100,000 RUB; Mar 1, 2026 — 100,000 RUB; "
        "Apr 1, 2026 — 100,000 RUB",
    ):
        assert expected in text, expected
    assert any("Installment plan: Feb 1, 2026 — 100,000 RUB" in x for x in original)
    assert any("✅ Ann: Task done: Assign a measurer" in x for x in original)

    # The Russian reader: Russian numbers and dates from the same rows.
    u_ann = tg_user(ann.telegram_id)
    ru = "\n".join(await _history(harness, u_ann, plan.deal_id, "ru"))
    for expected in (
        f"💳 Ann: Оплата 12 345,50 ₽ ({ru_day(1, 10)})",
        f"💳 Ann: Оплата 7 000 ₽ ({ru_day(1, 15)})",
        f"🧾 Ann: График рассрочки: {ru_day(2, 1)} — 100 000 ₽; {ru_day(3, 1)} — 100 000 ₽",
    ):
        assert expected in ru, expected
    assert "1/10/2026" not in ru and "RUB" not in ru
