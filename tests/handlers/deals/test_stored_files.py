"""Voronka's own copies of files (bot/files.py, services/files.py): the keeper stores each
distinct file once under its hash, retries a refused one with a backoff, skips one over the
Bot API's 20 MB; 📎 Files uploads the copy when Telegram refuses a file id."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from aiogram.methods import GetFile, SendMediaGroup, SendPhoto
from aiogram.types import FSInputFile
from sqlalchemy import select

from bot.files import FileKeeper
from services import files, timeline
from storage.enums import ActivityKind
from storage.models import StoredFile
from tests.factories import new_deal
from tests.tg import tg_user

WRONG_FILE = "Bad Request: wrong file identifier/HTTP URL specified"


async def add_files(uow_factory, actor, deal_id, *items):
    async with uow_factory() as uow:
        for media_type, file_id, unique in items:
            timeline.record(
                uow,
                ActivityKind.FILE,
                actor_id=actor.id,
                deal_id=deal_id,
                media_type=media_type,
                file_id=file_id,
                file_unique_id=unique,
                caption=file_id,
            )
        await uow.commit()


async def rows(uow_factory):
    """Every stored_files row by key, and the keys of those queued (whenever due)."""
    async with uow_factory() as uow:
        every = (await uow.repo.session.scalars(select(StoredFile))).all()
        due = await uow.repo.files.due(uow.clock.now() + timedelta(days=365), 100)
        return {r.key: r for r in every}, [r.key for r in due]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_the_keeper_stores_each_file_once_and_retries(
    harness, make_actor, uow_factory, clock, tmp_path, monkeypatch
):
    ann = await make_actor(roles=("manager",), name="Ann")
    deal = await new_deal(uow_factory, ann, amount="1000")
    # the same photo under two file ids (one file_unique_id), a document without one
    await add_files(
        uow_factory,
        ann,
        deal.id,
        ("photo", "p1", "u1"),
        ("photo", "p2", "u1"),
        ("document", "d1", None),
    )
    session = harness.session
    session.files.update({"p1": b"a photo", "d1": b"a document"})
    keeper = FileKeeper(harness.bot, uow_factory, tmp_path / "files")

    assert await keeper.run() == 2
    stored, pending = await rows(uow_factory)
    assert set(stored) == {"u1", "d1"} and pending == []
    for key, content in (("u1", b"a photo"), ("d1", b"a document")):
        sha = hashlib.sha256(content).hexdigest()
        assert (stored[key].state, stored[key].sha256, stored[key].size) == (
            "stored",
            sha,
            len(content),
        )
        assert files.content_path(tmp_path / "files", sha).read_bytes() == content
    assert [r.file_id for r in session.requests if isinstance(r, GetFile)] == ["p1", "d1"]

    # a file Telegram refuses: tried again after a minute, then stored
    await add_files(uow_factory, ann, deal.id, ("voice", "v1", "u2"))
    session.fail_next(GetFile, 400, "Bad Request: invalid file_id")
    assert await keeper.run() == 0
    stored, _ = await rows(uow_factory)
    assert (stored["u2"].state, stored["u2"].attempts) == ("pending", 1)
    assert stored["u2"].next_try_at == clock.now() + timedelta(minutes=1)
    requests = len(session.requests)
    assert await keeper.run() == 0 and len(session.requests) == requests  # not due yet
    clock.advance(minutes=1)
    session.files["v1"] = b"a voice note"
    assert await keeper.run() == 1
    stored, _ = await rows(uow_factory)
    assert (stored["u2"].state, stored["u2"].attempts) == ("stored", 2)

    # over the Bot API's limit: recorded, never downloaded
    monkeypatch.setattr(files, "BOT_API_LIMIT", 5)
    await add_files(uow_factory, ann, deal.id, ("document", "big", "u3"))
    session.files["big"] = b"more than five bytes"
    assert await keeper.run() == 0
    stored, pending = await rows(uow_factory)
    assert stored["u3"].state == "too_big" and pending == []


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_files_upload_the_copy_of_a_refused_file_id(
    harness, make_actor, uow_factory, tmp_path
):
    ann = await make_actor(roles=("manager",), name="Ann")
    u_ann = tg_user(ann.telegram_id)
    deal = await new_deal(uow_factory, ann, amount="1000")
    await add_files(uow_factory, ann, deal.id, ("photo", "p1", "u1"), ("photo", "p2", "u2"))
    harness.session.files.update({"p1": b"the kitchen window"})
    await FileKeeper(harness.bot, uow_factory, tmp_path / "files").run()  # p2: not stored
    harness.dp["files_dir"] = tmp_path / "files"
    copy = files.content_path(tmp_path / "files", hashlib.sha256(b"the kitchen window").hexdigest())

    card = await harness.send(u_ann, f"/deal {deal.id}")
    harness.session.fail_next(SendMediaGroup, 400, WRONG_FILE)  # p1 is unknown to Telegram
    harness.session.fail_next(SendPhoto, 400, WRONG_FILE)
    sent = await harness.tap(u_ann, card.button("Файлы"), card)
    by_id, uploaded, second = sent.of(SendPhoto)
    assert by_id.photo == "p1"  # refused
    assert isinstance(uploaded.photo, FSInputFile) and uploaded.photo.path == copy
    assert uploaded.caption == "p1"
    assert second.photo == "p2"
    assert "файлы 1–2 из 2" in sent.last.text
