"""The deal's whole life (issue 12), as users over the emulator against the real `voronka`
process -- polling and webhook.

The measurement visit: the manager schedules it, the head of measurers assigns a measurer
from the task the bot sends, the manager corrects the amount and moves the visit (a day,
then its time, said back before it is saved: the measurer is told, issue 20), the measurer
uploads two photos (one with a caption) and a document with a comment (the wrapper's
patch 10), and the manager -- told by the bot -- opens the deal: its card counts the files
and shows the visit, and Files sends back exactly those files by their Telegram ids, the
photos as one album (patch 11). Voronka keeps its own copy of the kitchen photo under its
hash (getFile and the download: patch 13); when Telegram then forgets that file id (patch
15), Files still sends the photo, uploaded from the copy (patch 16 keeps the hash of what
was uploaded). Then the manager connects their Telegram Business account and a stranger
writes to them (patch 12): the manager is told what Voronka does, and the stranger becomes
a lead.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import time

import pytest

from handlers.ui.i18n import t
from tests.e2e.conftest import BotProcess
from tests.e2e.test_flows import (
    EN,
    in_stage,
    invite,
    join,
    new_lead,
    qualify_and_convert,
    schedule_measurement,
    stage_name,
    typed_date,
)

pytestmark = pytest.mark.e2e

SLOW = 60.0  # the outbox sweeps every 10 s by default: notices take that long
KITCHEN_JPEG = b"\xff\xd8\xff\xe0 the kitchen window, 1200x1400" * 40


def stored_copy(bot: BotProcess, file_id: str) -> tuple[str, str] | None:
    """(sha256, state) of Voronka's record of a file (stored_files), if any."""
    with sqlite3.connect(bot.log_path.parent / "voronka.db", timeout=10) as conn:
        row = conn.execute(
            "SELECT sha256, state FROM stored_files WHERE file_id = ?", (file_id,)
        ).fetchone()
    conn.close()
    return None if row is None else (row[0], row[1])


def test_measurement_visit_files_and_a_client_chat(bot: BotProcess) -> None:
    admin = bot.admin()
    admin.send("/start")
    admin.wait_for(t("start.setup.title", EN).split("\n")[0])  # the first admin: the guide
    manager = join(bot, "Misha", invite(admin, "manager"), "manager")
    head = join(bot, "Hanna", invite(admin, "head_measurer"), "head_measurer")
    measurer = join(bot, "Max", invite(admin, "measurer"), "measurer")

    deal = qualify_and_convert(
        manager, new_lead(manager, "Ivan Petrov", "+7 916 123-45-67", "Three windows")
    )
    manager.tap(f"{stage_name('sales', 'proposal_sent')} ▶", on=deal)
    manager.wait_for(t("deal.ask.amount", EN))
    manager.send("185000")
    card = manager.wait_for(in_stage("sales", "proposal_sent"))
    schedule_measurement(manager, card)

    # the head of measurers gets the task and picks Max
    task = head.wait_for(t("tasks.assign.header", EN), timeout=SLOW)
    head.tap(t("tasks.assign.measurer", EN, name="Max", load=0), on=task)
    head.wait_for("Max")

    # Max's card: on my way, done, the files and a comment, finish
    job = measurer.wait_for(t("tasks.measure.header", EN), timeout=SLOW)
    assert "Tverskaya 1" in job.text

    # the manager corrects the amount and moves the measurement (a day first, then its
    # time): the date is said back, and Max gets his card again, marked as moved
    number = re.search(r"#(\d+)", deal.text)
    assert number is not None
    manager.send(f"/deal {number[1]}")
    card = manager.wait_for(in_stage("sales", "measurer_assigned"))
    manager.tap(t("edit.btn", EN), on=card)
    manager.wait_for(t("edit.pick", EN))
    manager.tap(t("edit.field.amount", EN), on=card)
    manager.wait_for(lambda m: "185,000" in m.text and m.find(t("edit.btn", EN)) is None)
    manager.send("195k")
    card = manager.wait_for(lambda m: "195,000" in m.text and m.message_id == card.message_id)
    manager.tap(t("edit.btn", EN), on=card)
    manager.wait_for(t("edit.pick", EN))
    manager.tap(t("edit.field.measurement_at", EN), on=card)
    manager.wait_for(lambda m: t("edit.field.measurement_at", EN) in m.text and "Now:" in m.text)
    manager.send("next friday")
    manager.wait_for("what time?")
    typed_date(manager, "fri 10am")  # the time, not the next step's answer
    manager.wait_for(lambda m: "Amount: 185,000" in m.text and "12/11/2026 10:00" in m.text)
    moved = measurer.wait_for("Measurement moved", timeout=SLOW)
    assert "12/11 10:00" in moved.text and "Tverskaya 1" in moved.text
    measurer.tap(t("tasks.btn.on_my_way", EN), on=job)
    measurer.wait_for(lambda m: m.find(t("tasks.btn.finish", EN)) is not None)
    measurer.tap(t("tasks.btn.finish", EN))
    measurer.wait_for(t("tasks.ask.upload", EN).split(" (")[0])
    kitchen = measurer.upload("photo", caption="Kitchen window", content=KITCHEN_JPEG)
    measurer.wait_for(lambda m: t("tasks.btn.upload_end", EN) in [b.text for b in m.buttons])
    room = measurer.upload("photo")
    measurer.wait_for(lambda m: "2" in m.text and m.find(t("tasks.btn.upload_end", EN)) is not None)
    sheet = measurer.upload("document", caption="Measurements", file_name="measure.pdf")
    measurer.wait_for(lambda m: "3" in m.text and m.find(t("tasks.btn.upload_end", EN)) is not None)
    measurer.send("Opening 1200x1400, sill to replace")
    measurer.wait_for(lambda m: m.find(t("tasks.btn.upload_end", EN)) is not None)
    measurer.tap(t("tasks.btn.upload_end", EN))
    measurer.wait_for(t("tasks.upload.done", EN, count=3))

    # the manager is told and opens the deal: counts, the visit, then Files
    told = manager.wait_for(
        t("tasks.measure_done", EN, deal="Ivan Petrov", who="Max").split("\n")[0][:20], timeout=SLOW
    )
    manager.tap(t("reminder.btn.open_deal", EN), on=told)
    opened = manager.wait_for(in_stage("sales", "measurement_done"))
    assert t("deal.card.counts", EN, files=3, messages=0, tasks=0).split(" · ")[0] in opened.text
    assert "Opening 1200x1400" in opened.text
    before = len(manager.files_received())
    manager.tap(t("deal.btn.files", EN), on=opened)
    listed = manager.wait_for(lambda m: "files 1–3 of 3" in m.text)
    assert manager.files_received()[before:] == [
        (kitchen, "Kitchen window"),
        (room, "[photo]"),
        (sheet, "Measurements"),
    ]

    # Voronka keeps its own copy of the photo, under its hash (fetched in the background)...
    sha256 = measurer.sha256[kitchen]
    assert sha256 == hashlib.sha256(KITCHEN_JPEG).hexdigest()
    copy = bot.log_path.parent / "data" / "files" / sha256[:2] / sha256
    deadline = time.monotonic() + SLOW
    while stored_copy(bot, kitchen) != (sha256, "stored") or not copy.is_file():
        assert time.monotonic() < deadline, f"no stored copy of {kitchen}{bot.log_tail()}"
        time.sleep(0.2)
    assert copy.read_bytes() == KITCHEN_JPEG
    # ...so when Telegram refuses its file id (a new bot, a deleted file), Files still
    # sends the photo: uploaded from the copy; the others by their ids as before.
    assert bot.emulator.forget_file(kitchen)
    before = len(manager.files_received())
    manager.tap(t("deal.btn.files", EN), on=opened)
    manager.wait_for(lambda m: "files 1–3 of 3" in m.text and m.message_id != listed.message_id)
    assert manager.uploads_received() == [(sha256, "Kitchen window")]
    assert manager.files_received()[before:] == [(room, "[photo]"), (sheet, "Measurements")]

    # Telegram Business: the manager connects, a stranger writes, a lead appears
    bot.emulator.business(
        bot.token,
        {
            "business_connection": {
                "id": f"bc-{bot.mode}",
                "user": {"id": manager.id, "is_bot": False, "first_name": "Misha"},
                "user_chat_id": manager.id,
                "date": int(time.time()),
                "is_enabled": True,
                "rights": {"can_reply": True},
            }
        },
    )
    manager.wait_for(t("business.connected", EN).split(":")[0])
    client_id = manager.id + 500_000
    bot.emulator.business(
        bot.token,
        {
            "business_message": {
                "message_id": 1,
                "date": int(time.time()),
                "chat": {"id": client_id, "type": "private", "first_name": "Oleg"},
                "from": {"id": client_id, "is_bot": False, "first_name": "Oleg"},
                "business_connection_id": f"bc-{bot.mode}",
                "text": "Hello, I need a balcony glazed",
            }
        },
    )
    notice = manager.wait_for(t("business.new_lead", EN, name="Oleg").split(".")[0])
    manager.tap(t("business.open_lead", EN), on=notice)
    lead = manager.wait_for(lambda m: "Oleg" in m.text and "balcony" in m.text)
    assert t("source.telegram", EN) in lead.text
