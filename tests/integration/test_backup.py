"""`voronka backup` / `voronka restore` on both databases: a copy taken while taps are
being written is the database at one instant, restores whole, and `voronka run` goes on
from it; restore refuses while a bot runs on the database."""

from __future__ import annotations

import asyncio
import io
import signal
import sqlite3
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bot.cli import main
from handlers.ui.callbacks import DealAction, DealCb
from services.sales import deals
from storage import migrate
from storage.backup import check, list_backups, take
from storage.db import create_engine
from storage.models import Activity, Deal, StageHistory, Task
from tests.factories import clean_env, new_deal
from tests.fake_bot_api import FakeBotApi
from tests.integration.polling_kit import Runs, confirmed_past, polled_since, process_env, wait_for

TG_ID = 760_000_001
DEALS = 4


async def state(url: str) -> tuple[Any, ...]:
    """What must be equal: row counts of the tables taps write, and the last history row."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            counts = []
            for model in (Deal, StageHistory, Task, Activity):
                counts.append(await conn.scalar(select(func.count()).select_from(model)))
            last = (
                await conn.execute(
                    select(
                        StageHistory.id,
                        StageHistory.deal_id,
                        StageHistory.from_stage_id,
                        StageHistory.to_stage_id,
                    )
                    .order_by(StageHistory.id.desc())
                    .limit(1)
                )
            ).one()
            versions = tuple((await conn.execute(select(Deal.version).order_by(Deal.id))).scalars())
            return (*counts, tuple(last), versions)
    finally:
        await engine.dispose()


async def restore(url: str, backup: Path, tmp_path: Path, monkeypatch) -> tuple[int, str, str]:
    """`voronka restore --yes FILE` in this process (a thread: it runs its own loop)."""
    for name, value in clean_env(DATABASE_URL=url, BACKUP_DIR=str(tmp_path / "safety")).items():
        monkeypatch.setenv(name, value)
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = await asyncio.to_thread(main, ["restore", "--yes", str(backup)])
    return code, out.getvalue(), err.getvalue()


async def test_a_backup_under_taps_restores_one_instant_and_the_bot_runs_on_it(
    backend, db_url, empty_db_url, uow_factory, make_actor, clock, tmp_path: Path, monkeypatch
) -> None:
    manager = await make_actor(telegram_id=TG_ID)
    cards = [await new_deal(uow_factory, manager, amount="1000") for _ in range(DEALS)]
    versions = {c.id: c.version for c in cards}
    states = [await state(db_url)]  # the database after each committed tap
    stop = asyncio.Event()

    async def tapping() -> None:
        n = 0
        while not stop.is_set():
            deal_id = cards[n % DEALS].id
            move = deals.advance if (n // DEALS) % 2 == 0 else deals.step_back
            async with uow_factory() as uow:
                card = await move(uow, manager, deal_id, versions[deal_id])
            versions[deal_id] = card.version
            states.append(await state(db_url))
            n += 1

    writer = asyncio.create_task(tapping())
    await wait_for(lambda: len(states) >= 4, 30, "the first taps")
    for _ in range(20):  # until a copy was taken while a tap was being written
        before = len(states)
        made = await asyncio.to_thread(take, db_url, tmp_path / "backups", clock.now())
        during = len(states) - before
        if during:
            break
        made.path.unlink()
        clock.advance(seconds=1)
    await wait_for(lambda: len(states) >= before + during + 2, 30, "taps after it")
    stop.set()
    await writer

    assert during > 0, "no tap was committed while the backup was being taken"
    assert [b.path for b in list_backups(tmp_path / "backups")] == [made.path]
    check(made.path)  # integrity check / pg_restore --list
    code, out, err = await restore(empty_db_url, made.path, tmp_path, monkeypatch)
    assert code == 0, err
    (head,) = migrate.head_revisions()
    assert f"schema: {head} (up to date)" in out, out
    if backend == "sqlite":
        restored = empty_db_url.split("///", 1)[1]
        with sqlite3.connect(restored) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        conn.close()
    copy = await state(empty_db_url)
    # the copy is the source at one instant between the taps: not the first, not the last
    assert copy in states[before - 1 : before + during], (copy, states[-1])
    assert copy != states[-1]

    # `voronka run` on the restored copy: the same deals, at the versions the copy holds
    # (a tap carrying that version applies); meanwhile restore refuses.
    # A deal the copy has one step into Sales (an odd number of taps) goes back; else the
    # first deal is asked forward, and the bot asks for the measurement time it needs.
    moved = [(v - c.version, c.id, v) for c, v in zip(cards, copy[-1], strict=True)]
    odd = [(deal_id, v) for n, deal_id, v in moved if n % 2]
    deal_id, version = odd[0] if odd else (cards[0].id, copy[-1][0])
    action = DealAction.BACK if odd else DealAction.NEXT
    async with FakeBotApi() as api:
        runs = Runs(process_env(api, tmp_path / "unused.db", DATABASE_URL=empty_db_url), tmp_path)
        try:
            started = await runs.start()
            await wait_for(polled_since(api, started), 90, "the first getUpdates")
            code, out, err = await restore(empty_db_url, made.path, tmp_path, monkeypatch)
            assert code == 1, out
            assert "the bot is running on" in err, err
            data = DealCb(action=action, deal_id=deal_id, v=version).pack()
            tap = await api.push_tap(TG_ID, data)
            await wait_for(confirmed_past(api, tap), 60, "the tap to be confirmed")
            assert await runs.stop(signal.SIGTERM) == 0, runs.tail()
        finally:
            await runs.close()
    after = await state(empty_db_url)
    if odd:  # the tap moved the restored deal: one more history row than the copy had
        assert after[1] == copy[1] + 1
        index = [c.id for c in cards].index(deal_id)
        assert (after[-1][index], after[4][1]) == (version + 1, deal_id)
    else:  # the card's version matched: the bot asks for the field, it does not say stale
        sent = [c.params.get("text", "") for c in api.calls if c.method == "sendMessage"]
        assert any("замер" in text for text in sent), sent
        assert after == copy
