"""/funnel through the real dispatcher: scope by role, pickers edited in place, the chart
photo, phone-width tables."""

from __future__ import annotations

import html
import re

from aiogram.methods import (
    EditMessageMedia,
    EditMessageText,
    SendMessage,
    SendPhoto,
)
from aiogram.types import BufferedInputFile

from handlers.ui.callbacks import FunnelCb, FunnelReport, MenuAction, MenuCb
from services.sales import deals
from tests.factories import new_deal
from tests.tg import tg_user

PNG = b"\x89PNG\r\n\x1a\n"


def pre_lines(text: str) -> list[str]:
    found = re.search(r"<pre>(.*?)</pre>", text, re.S)
    assert found, text
    return html.unescape(found.group(1)).splitlines()


def total_row(text: str) -> list[str]:
    row = next(line for line in pre_lines(text) if line.startswith("Total"))
    return row.split()


def photo_bytes(request: SendPhoto) -> bytes:
    assert isinstance(request.photo, BufferedInputFile)  # the chart, drawn in memory
    return request.photo.data


async def world(make_actor, uow_factory):
    boss = await make_actor(roles=("leader",), name="Lee")
    ann = await make_actor(roles=("manager",), name="Ann")
    bob = await make_actor(roles=("manager",), name="Bob")
    for amount in ("100000", "250000"):
        await new_deal(uow_factory, ann, amount=amount)
    lost = await new_deal(uow_factory, bob, amount="70000")
    await new_deal(uow_factory, bob, amount="30000")
    async with uow_factory() as uow:
        reasons = await deals.loss_reasons(uow, "en")
    async with uow_factory() as uow:
        await deals.lose(uow, bob, lost.id, reasons[0][0], None, lost.version)
    return boss, ann, bob


async def test_leader_sees_everyone_and_a_manager_only_their_own(harness, make_actor, uow_factory):
    boss, ann, _ = await world(make_actor, uow_factory)
    lead = await harness.send(tg_user(boss.telegram_id, lang="en"), "/funnel")
    photos = lead.of(SendPhoto)
    assert len(photos) == 1 and photo_bytes(photos[0]).startswith(PNG)
    text = lead.last
    assert isinstance(text, SendMessage)
    assert "Snapshot: Sales" in text.text and "all managers" in text.text
    assert total_row(text.text)[1:3] == ["3", "380"]  # Ann's two and Bob's open one
    assert "K RUB" in pre_lines(text.text)[0]  # the money column's unit, once
    assert any("👤" in label for label, _ in lead.buttons())  # leaders pick a manager

    mine = await harness.send(tg_user(ann.telegram_id, lang="en"), "/funnel")
    assert total_row(mine.last.text)[1:3] == ["2", "350"]
    assert "Ann" in mine.last.text
    assert not any("👤" in label for label, _ in mine.buttons())  # no manager picker
    # A forged manager id in the pickers changes nothing: still her own numbers.
    forged = FunnelCb(report=FunnelReport.SNAPSHOT, manager_id=boss.id)
    tapped = await harness.tap(tg_user(ann.telegram_id, lang="en"), forged, mine)
    assert total_row(tapped.last.text)[1:3] == ["2", "350"]

    for sent in (lead, mine, tapped):
        for request in sent.of(SendMessage) + sent.of(EditMessageText):
            assert all(len(line) <= 32 for line in pre_lines(request.text)), request.text


async def test_measurer_is_refused(harness, make_actor, uow_factory):
    await world(make_actor, uow_factory)
    meg = await make_actor(roles=("measurer",), name="Meg")
    user = tg_user(meg.telegram_id, lang="en")
    refused = await harness.send(user, "/funnel")
    assert refused.last.text == "⚠️ Access denied." and not refused.of(SendPhoto)
    tapped = await harness.tap(user, FunnelCb(report=FunnelReport.PERIOD))
    assert tapped.alert == "⚠️ Access denied." and not tapped.of(EditMessageText)
    menu = await harness.tap(user, MenuCb(action=MenuAction.FUNNEL))
    assert menu.alert == "⚠️ Access denied." and not menu.of(SendPhoto)


async def test_pickers_edit_the_table_and_the_chart_in_place(harness, make_actor, uow_factory):
    boss, ann, bob = await world(make_actor, uow_factory)
    user = tg_user(boss.telegram_id, lang="en")
    screen = await harness.send(user, "/funnel")
    photo_id = screen.results[0].message_id
    table_id = screen.message.message_id

    funnel = await harness.tap(user, screen.button("Funnel"), screen)
    edit = funnel.of(EditMessageText)[0]
    assert edit.message_id == table_id and "Funnel: Sales" in edit.text
    media = funnel.of(EditMessageMedia)
    assert len(media) == 1 and media[0].message_id == photo_id
    assert media[0].media.media.data.startswith(PNG)
    assert not funnel.of(SendPhoto) and not funnel.of(SendMessage)
    assert "deals that came in during the period — 4." in html.unescape(edit.text)
    assert "None of them has been won yet." in html.unescape(edit.text)
    assert "• Funnel" in [label for label, _ in funnel.buttons()]

    losses = await harness.tap(user, funnel.button("Losses"), screen)
    text = html.unescape(losses.last.text)
    assert "Refusals: Sales" in text and "by the date of the refusal" in text
    assert "whenever the deal came in): 1, worth 70K\xa0RUB." in text

    people = await harness.tap(user, losses.button("Managers"), screen)
    rows = pre_lines(people.last.text)
    assert any(r.startswith("1. ") for r in rows) and any("Ann" in r for r in rows)

    picker = await harness.tap(user, people.button("👤"), screen)
    assert not picker.of(EditMessageMedia)  # only the buttons change
    labels = [label for label, _ in picker.buttons()]
    assert {"Ann", "Bob", "• all managers"} <= set(labels)
    only_bob = await harness.tap(user, picker.button("Bob"), screen)
    assert "Bob" in only_bob.last.text.split("\n")[1]
    snapshot = await harness.tap(user, only_bob.button("Now"), screen)
    assert total_row(snapshot.last.text)[1:3] == ["1", "30"]
    for sent in (funnel, losses, people, picker, only_bob, snapshot):
        for request in sent.of(EditMessageText):
            assert all(len(line) <= 32 for line in pre_lines(request.text)), request.text


async def test_the_main_menu_button_opens_it_in_russian(harness, make_actor, uow_factory):
    boss, _, _ = await world(make_actor, uow_factory)
    opened = await harness.tap(tg_user(boss.telegram_id), MenuCb(action=MenuAction.FUNNEL))
    assert len(opened.of(SendPhoto)) == 1
    assert "Срез «Продажа»" in opened.last.text and "Итого" in opened.last.text
    assert all(len(line) <= 32 for line in pre_lines(opened.last.text))
