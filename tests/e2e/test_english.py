"""Issue 20: an English reader sees no Russian the system wrote -- over the emulator, against
the real `voronka` process (polling only: the language does not depend on the transport;
reminders swept every second, so the head of measurers' task comes at once).

The first admin starts the bot (the setup guide) and invites a manager, a head of measurers
and a measurer (Telegram language "en"). The manager enters a lead whose client has a Russian
name (typed by the manager: the one Cyrillic text allowed), converts it, moves the deal with
its amount, sets a task with /task, opens it from /tasks and marks it done, schedules the
measurement; the head assigns the measurer; the manager takes the deal to the contract, wins
it with three installments, reads its history, and loses a second deal with the "Other"
reason and a comment. Every message of the four chats, every button and every popup is then
read: no Cyrillic letter is left once what the users typed is taken out.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from handlers.ui.i18n import t
from tests.e2e.client import Emulator, TgUser
from tests.e2e.conftest import BotProcess, start_bot, stop_process
from tests.e2e.test_flows import (
    EN,
    deal_id_of,
    in_stage,
    invite,
    join,
    lose_a_new_deal,
    new_lead,
    next_stage,
    qualify_and_convert,
    schedule_measurement,
    stage_name,
    typed_date,
)

pytestmark = pytest.mark.e2e

CYRILLIC = re.compile(r"[\u0400-\u04ff]+")
FAST = 30.0  # seconds for a reminder-borne message (swept every second here)


@pytest.fixture(scope="module")
def bot(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BotProcess]:
    workdir = tmp_path_factory.mktemp("voronka-english")
    started = start_bot("polling", emulator, workdir, {"REMINDER_SWEEP_SECONDS": "1"})
    try:
        yield started
    finally:
        stop_process(started.proc)


TYPED = ["Иван Петров"]  # what the users typed in Russian: theirs to read back


def russian_left(user: TgUser, typed: list[str]) -> list[str]:
    """Every Cyrillic word the bot showed `user` (texts, buttons) that nobody typed."""
    found = []
    for message in user.messages():
        shown = [message.text, *(b.text for b in message.buttons)]
        for text in shown:
            for word in typed:
                text = text.replace(word, "")
            words = CYRILLIC.findall(text)
            found += [f"#{message.message_id}: {w} in {text[:120]!r}" for w in words]
    return found


def test_an_english_day_has_no_russian(bot: BotProcess) -> None:
    admin = bot.admin()
    admin.send("/start")
    guide = admin.wait_for(t("start.setup.title", EN).split("\n")[0])
    admin.tap(t("start.setup.pipelines", EN), on=guide)
    admin.wait_for(t("start.setup.pipelines.title", EN).split(" <")[0])
    manager = join(bot, "Misha", invite(admin, "manager"), "manager")
    head = join(bot, "Hanna", invite(admin, "head_measurer"), "head_measurer")
    measurer = join(bot, "Max", invite(admin, "measurer"), "measurer")

    # The lead wizard, the card, a stage move with its amount.
    lead = new_lead(manager, "Иван Петров", "+7 916 123-45-67", "Three windows, flat")
    deal = qualify_and_convert(manager, lead)
    manager.tap(f"{stage_name('sales', 'proposal_sent')} ▶", on=deal)
    manager.wait_for(t("deal.ask.amount", EN))
    manager.send("185000")
    card = manager.wait_for(in_stage("sales", "proposal_sent"))
    assert "185,000" in card.text and "8 (916) 123-45-67" in card.text  # en number, phone

    # A task by /task: one question for its time, then found in /tasks and done.
    manager.send("/task Call the architect")
    manager.wait_for(t("tasks.new.ask_when", EN).split("?")[0])
    typed_date(manager, "tomorrow 3pm")
    manager.wait_for(t("tasks.new.created", EN).split(":")[0])
    manager.send("/tasks")
    today = manager.wait_for(t("tasks.list.today", EN))
    manager.tap(t("tasks.list.btn.upcoming", EN), on=today)
    listed = manager.wait_for(t("tasks.list.upcoming", EN))
    manager.tap("Call the architect", on=listed)
    task = manager.wait_for("Call the architect")
    manager.tap(t("reminder.btn.done", EN), on=task)
    assert manager.wait_for_alert() == t("tasks.done", EN)

    # Through the measurement to the contract, then won with three installments.
    card = schedule_measurement(manager, card)
    assert card.find(f"{stage_name('sales', 'measurer_assigned')} ▶") is None  # no measurer
    task = head.wait_for(t("tasks.assign.header", EN), timeout=FAST)
    head.tap(t("tasks.assign.measurer", EN, name="Max", load=0), on=task)
    measurer.wait_for(t("tasks.measure.header", EN), timeout=FAST)
    manager.send(f"/deal {card_id(card)}")
    card = manager.wait_for(in_stage("sales", "measurer_assigned"))
    for code in ("measurement_done", "contract_signed"):
        card = next_stage(manager, card, code)
    manager.tap(t("installments.btn.win", EN), on=card)
    menu = manager.wait_for(t("installments.ask.count", EN).split("?")[0])
    manager.tap(t("installments.btn.count", EN, n=3), on=menu)
    manager.wait_for(t("installments.ask.first_due", EN).split("?")[0])
    manager.send("25 Feb")
    plan = manager.wait_for(t("installments.won", EN, source=card_id(card)))
    assert "61,666.67" in plan.text or "61,667" in plan.text

    # The won deal's history: stage names, the task's and the plan's lines in English.
    manager.send(f"/deal {card_id(card)}")
    opened = manager.wait_for(in_stage("sales", "won"))
    manager.tap(t("deal.btn.history", EN), on=opened)
    manager.wait_for(t("timeline.plan", EN, text="").split(":")[0])

    # A second deal lost with "Other": a comment is asked for and kept.
    english = lose_a_new_deal(manager, "other")
    manager.wait_for(t("deal.lose.ask_comment", EN, reason=english).split(":")[0])
    manager.send("Moved abroad")
    lost = manager.wait_for(in_stage("sales", "lost"))
    assert "Moved abroad" in lost.text

    # What the manager typed in Russian is there (the scan reads it, then takes it out).
    assert any(CYRILLIC.search(m.text) and TYPED[0] in m.text for m in manager.messages())
    answers = bot.emulator.bot_state(bot.token)["answers"]
    popups = [a["text"] for a in answers if CYRILLIC.search(a.get("text") or "")]
    users = (manager, admin, head, measurer)
    leaks = [leak for user in users for leak in russian_left(user, TYPED)] + popups
    assert not leaks, "\n".join(leaks)


card_id = deal_id_of
