"""The client's own Telegram (issue 25), over the emulator against the real `voronka`
process: a linked client confirms the measurement, hears the order is in production, gets
the installation with Confirm / Reschedule, a payment reminder, proposes another time for
the installation (a task for the manager), accepts the installed work and rates it.

The client is linked as a manager would do it: 📲 on the deal card gives a one-time link
(and its QR code), the client opens it (`/start c_<token>`) and is greeted with their
orders. Lean: polling only, the outbox swept every second, quiet hours off (the flow runs
at any hour)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from handlers.ui.i18n import t
from tests.e2e.client import BotMessage, Emulator, TgUser
from tests.e2e.conftest import BotProcess, start_bot, stop_process
from tests.e2e.test_flows import (
    EN,
    deal_id_of,
    in_stage,
    invite,
    join,
    new_lead,
    qualify_and_convert,
    schedule_measurement,
    stage_name,
    typed_date,
    with_measurer,
)

pytestmark = pytest.mark.e2e

WAIT = 20.0


@pytest.fixture(scope="module")
def bot(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BotProcess]:
    workdir = tmp_path_factory.mktemp("voronka-client")
    env = {"REMINDER_SWEEP_SECONDS": "1", "CLIENT_QUIET_HOURS": "off"}
    process = start_bot("polling", emulator, workdir, env)
    try:
        yield process
    finally:
        stop_process(process.proc)


def invite_client(manager: TgUser, card: BotMessage, client: TgUser) -> None:
    """📲 on the deal card: the link comes with its QR code; the client opens it."""
    manager.tap(t("deal.btn.invite_client", EN), on=card)
    sent = manager.wait_for("?start=c_")
    found = re.search(r"\?start=(c_[\w-]+)", sent.text)
    assert found is not None, sent.text
    client.send(f"/start {found.group(1)}")
    client.wait_for(t("client.hello", EN, name=client.first_name).split("!")[0])


def move(manager: TgUser, card: BotMessage, pipeline: str, code: str) -> BotMessage:
    manager.tap(f"{stage_name(pipeline, code)} ▶", on=card)
    return manager.wait_for(in_stage(pipeline, code))


def test_the_client_confirms_reschedules_accepts_and_rates(bot: BotProcess) -> None:
    admin = bot.admin()
    admin.send("/start")
    admin.wait_for(t("start.setup.title", EN).split("\n")[0])
    manager = join(bot, "Misha", invite(admin, "manager"), "manager")
    client = bot.user("Anna")

    lead = new_lead(manager, "Anna Orlova", "+7 916 555-44-33", "Kitchen window")
    deal = qualify_and_convert(manager, lead)
    invite_client(manager, deal, client)
    manager.tap(f"{stage_name('sales', 'proposal_sent')} ▶", on=deal)
    manager.wait_for(t("deal.ask.amount", EN))
    manager.send("100000")
    card = manager.wait_for(in_stage("sales", "proposal_sent"))

    # The measurement, in the client's words, confirmed with one tap.
    card = schedule_measurement(manager, card, "Moscow, Arbat 10")
    booked = client.wait_for("Your measurement is booked", timeout=WAIT)
    assert "Arbat 10" in booked.text and "11:00" in booked.text
    client.tap(t("clientmsg.btn.confirm", EN), on=booked)
    assert client.wait_for_alert() == t("clientmsg.confirmed", EN)

    # Won with three payments, the first due tomorrow: its reminder goes to the client now.
    card = with_measurer(bot, manager, card)
    for code in ("measurer_assigned", "measurement_done", "contract_signed"):
        card = move(manager, card, "sales", code)
    manager.tap(t("installments.btn.win", EN), on=card)
    menu = manager.wait_for(t("installments.ask.count", EN).split("?")[0])
    manager.tap(t("installments.btn.count", EN, n=3), on=menu)
    manager.wait_for(t("installments.ask.first_due", EN).split("?")[0])
    tomorrow = datetime.now(ZoneInfo("Europe/Moscow")).date() + timedelta(days=1)
    manager.send(tomorrow.isoformat())
    manager.wait_for(lambda m: "installment" in m.text.lower() or "💳" in m.text)

    # The order: in production, then the installation with Confirm / Reschedule.
    manager.send(f"/deal {deal_id_of(card)}")
    sale = manager.wait_for(in_stage("sales", "won"))
    manager.tap("🔗 Order fulfilment", on=sale)
    order = manager.wait_for(in_stage("fulfilment", "production_ordered"))
    manager.tap(f"{stage_name('fulfilment', 'in_production')} ▶", on=order)
    manager.wait_for(t("deal.ask.production_at", EN).split("?")[0])
    typed_date(manager, "in 5 days 10:00")
    order = manager.wait_for(in_stage("fulfilment", "in_production"))
    client.wait_for("Your order is in production, ready around", timeout=WAIT)
    order = move(manager, order, "fulfilment", "ready")
    manager.tap(f"{stage_name('fulfilment', 'delivery_scheduled')} ▶", on=order)
    manager.wait_for(t("deal.ask.delivery_at", EN).split("?")[0])
    typed_date(manager, "in 7 days 10:00")
    order = manager.wait_for(in_stage("fulfilment", "delivery_scheduled"))
    order = move(manager, order, "fulfilment", "installation_scheduled")
    installation = client.wait_for("Installation:", timeout=WAIT)
    assert installation.find(t("clientmsg.btn.confirm", EN)) is not None
    reminder = client.wait_for("A reminder: payment 1 of 3", timeout=WAIT)
    assert "33,333" in reminder.text and reminder.buttons == []

    # Another time for the installation: said back, then a task for the manager.
    client.tap(t("clientmsg.btn.reschedule", EN), on=installation)
    client.wait_for("When would suit you?")
    client.send("in 9 days 15:00")
    said = client.wait_for("Propose ")
    client.tap(t("clientmsg.btn.propose", EN), on=said)
    client.wait_for("Passed on to your manager")
    task = manager.wait_for("The client asks to reschedule", timeout=WAIT)
    assert "in 9 days 15:00" in task.text

    # Installed: the client accepts the work, then rates it.
    order = move(manager, order, "fulfilment", "installed")
    done = client.wait_for("The installation is finished", timeout=WAIT)
    client.tap(t("clientmsg.btn.accept", EN), on=done)
    stars = client.wait_for(t("clientmsg.accepted", EN))
    client.tap("⭐⭐⭐⭐⭐", on=stars)
    assert client.wait_for_alert() == t("clientmsg.rated", EN)
    # The manager sees it on the order's card (its last events).
    manager.send(f"/deal {deal_id_of(order)}")
    order = manager.wait_for(in_stage("fulfilment", "installed"))
    assert t("timeline.client_in.rate", EN, stars="⭐⭐⭐⭐⭐") in order.text, order.text
