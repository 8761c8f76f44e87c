"""The real `voronka run` process against a fake Bot API server over HTTP
(tests/fake_bot_api.py): taps survive SIGTERM and SIGKILL, start-up errors are one line."""

from __future__ import annotations

import asyncio
import random
import re
import shutil
import signal
import socket
from pathlib import Path

import pytest
from sqlalchemy import func, select

from handlers.ui.callbacks import DealAction, DealCb
from services.clock import SystemClock
from services.permissions import Actor
from storage.db import create_engine, create_session_factory
from storage.models import Deal, ProcessedUpdate, StageHistory
from storage.uow import UnitOfWorkFactory
from tests.factories import new_deal, voronka_command
from tests.fake_bot_api import FakeBotApi
from tests.integration.polling_kit import (
    ADMIN_ID,
    Runs,
    add_staff,
    answered,
    calls_since,
    confirmed_past,
    handed_out,
    polled_since,
    process_env,
    wait_for,
)

PEOPLE = 5
TAPS_PER_WAVE = 3  # per person, in one getUpdates batch: their order matters (versions)
WAVES = 10  # 5 people x 3 taps x 10 waves = 150 taps
KILLS = {
    1: signal.SIGTERM,
    2: signal.SIGKILL,
    3: signal.SIGTERM,
    4: signal.SIGKILL,
    6: signal.SIGTERM,
    7: signal.SIGKILL,
}
FIRST_TG = 720_000_001
START_TIMEOUT = 90.0


async def seed(path: Path) -> list[tuple[int, int, int]]:
    """PEOPLE managers with a deal each: [(telegram id, deal id, card version)]."""
    telegram_ids = await add_staff(path, PEOPLE, first=FIRST_TG)
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    uow_factory = UnitOfWorkFactory(create_session_factory(engine), SystemClock())
    try:
        people = []
        async with uow_factory() as uow:
            for tg_id in telegram_ids:
                employee = await uow.repo.employees.by_telegram_id(tg_id)
                assert employee is not None
                people.append(Actor.of(employee))
        cards = [await new_deal(uow_factory, a, amount="1000") for a in people]
        return [(a.telegram_id, c.id, c.version) for a, c in zip(people, cards, strict=True)]
    finally:
        await engine.dispose()


async def outcome(path: Path, deals: list[tuple[int, int, int]], taps: list[int]):
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with engine.connect() as conn:
            versions = dict((await conn.execute(select(Deal.id, Deal.version))).all())
            moves = dict(
                (
                    await conn.execute(
                        select(StageHistory.deal_id, func.count())
                        .where(StageHistory.deal_id.is_not(None))
                        .group_by(StageHistory.deal_id)
                    )
                ).all()
            )
            recorded = set(
                (
                    await conn.execute(
                        select(ProcessedUpdate.update_id).where(ProcessedUpdate.update_id.in_(taps))
                    )
                ).scalars()
            )
    finally:
        await engine.dispose()
    per_person = WAVES * TAPS_PER_WAVE
    applied = {deal: versions[deal] - v0 for _, deal, v0 in deals}
    history = {deal: moves.get(deal, 0) - 1 for _, deal, _ in deals}  # minus the entry row
    return applied, history, recorded, per_person


@pytest.fixture
def db_path(sqlite_template: Path, tmp_path: Path) -> Path:
    target = tmp_path / "voronka.db"
    shutil.copyfile(sqlite_template, target)
    return target


async def test_taps_survive_sigterm_and_sigkill(db_path: Path, tmp_path: Path) -> None:
    """150 stage taps (NEXT/BACK, each with the version its card showed) while the process
    is stopped with SIGTERM and killed with SIGKILL again and again: every tap applied, none
    twice, in each person's order."""
    deals = await seed(db_path)
    rng = random.Random(11)
    taps: list[int] = []
    async with FakeBotApi() as api:
        runs = Runs(process_env(api, db_path), tmp_path)
        try:
            started = await runs.start()
            await wait_for(polled_since(api, started), START_TIMEOUT, "the first getUpdates")
            n = 0
            for wave in range(WAVES):
                last = 0
                for _ in range(TAPS_PER_WAVE):
                    for tg_id, deal_id, v0 in deals:
                        action = DealAction.NEXT if n % 2 == 0 else DealAction.BACK
                        data = DealCb(action=action, deal_id=deal_id, v=v0 + n).pack()
                        last = await api.push_tap(tg_id, data)
                        taps.append(last)
                    n += 1
                sig = KILLS.get(wave)
                if sig is not None:
                    # Hit the process while this wave is in its hands.
                    await wait_for(handed_out(api, last), 30, f"update {last} to be fetched")
                    await asyncio.sleep(rng.uniform(0.0, 0.04))
                    code = await runs.stop(sig)
                    if sig == signal.SIGTERM:
                        assert code == 0, f"exit {code} after SIGTERM{runs.tail()}"
                    started = await runs.start()
                    await wait_for(polled_since(api, started), START_TIMEOUT, "a restart")
                await wait_for(confirmed_past(api, last), 60, f"update {last} to be confirmed")
            assert await runs.stop(signal.SIGTERM) == 0, runs.tail()
        finally:
            await runs.close()

    applied, history, recorded, per_person = await outcome(db_path, deals, taps)
    assert len(taps) == 150
    lost = sum(per_person - a for a in applied.values())
    twice = sum(h - a for h, a in zip(history.values(), applied.values(), strict=True))
    assert (lost, twice) == (0, 0), (applied, history)
    assert recorded == set(taps)  # every tap's update id committed with its effect
    for index in range(len(runs.logs)):
        log = runs.text(index)
        assert "Traceback" not in log, log
        assert not re.search(r"update \d+ failed|Cause exception while process update", log), log


# --- start-up: one clear line, no traceback, nothing started -------------------------------


async def run_to_exit(env: dict[str, str], cwd: Path) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *voronka_command(),
        "run",
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), START_TIMEOUT)
    assert proc.returncode is not None
    return proc.returncode, err.decode(errors="replace")


def one_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


async def test_a_malformed_token_is_one_line(db_path: Path, tmp_path: Path) -> None:
    async with FakeBotApi() as api:
        env = process_env(api, db_path, BOT_TOKEN="not-a-token", LOG_LEVEL="WARNING")
        code, stderr = await run_to_exit(env, tmp_path)
    assert code != 0
    assert one_line(stderr) == (
        "error: BOT_TOKEN is not a bot token (expected <digits>:<letters> as @BotFather gives it)"
    )
    assert api.calls == []


async def test_a_refused_token_is_one_line_and_starts_nothing(
    db_path: Path, tmp_path: Path
) -> None:
    async with FakeBotApi(unauthorized=True) as api:
        env = process_env(api, db_path, LOG_LEVEL="WARNING")
        code, stderr = await run_to_exit(env, tmp_path)
    assert code != 0
    line = one_line(stderr)
    assert line.startswith(f"error: Telegram ({api.base_url}) refused BOT_TOKEN (Unauthorized)")
    assert [c.method for c in api.calls] == ["getMe"]  # no menus, no polling, no scheduler


async def test_no_network_is_one_line(db_path: Path, tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with FakeBotApi() as api:
        env = process_env(
            api, db_path, TELEGRAM_API_URL=f"http://127.0.0.1:{port}", LOG_LEVEL="WARNING"
        )
        code, stderr = await run_to_exit(env, tmp_path)
    assert code != 0
    line = one_line(stderr)
    assert line.startswith(f"error: cannot reach Telegram at http://127.0.0.1:{port} ("), line
    assert line.endswith("3 attempts): check the network or TELEGRAM_API_URL"), line


async def test_the_scheduler_starts_after_getme(db_path: Path, tmp_path: Path) -> None:
    """A refused token at INFO: the log shows no scheduler and no job, only the error."""
    async with FakeBotApi(unauthorized=True) as api:
        code, stderr = await run_to_exit(process_env(api, db_path), tmp_path)
    assert code != 0 and "Traceback" not in stderr
    assert "apscheduler" not in stderr and "Scheduler started" not in stderr, stderr
    assert stderr.strip().splitlines()[-1].startswith("error: Telegram (")


# --- start-up with 400 employees whose menus did not change -----------------------------------


async def test_an_unchanged_start_sends_no_menus(db_path: Path, tmp_path: Path) -> None:
    await add_staff(db_path, 400)
    async with FakeBotApi() as api:
        runs = Runs(process_env(api, db_path), tmp_path)
        try:
            first = await runs.start()
            await wait_for(polled_since(api, first), START_TIMEOUT, "the first start")
            # 400 managers + the admin from ADMIN_IDS + the default menus (ru, en)
            assert calls_since(api, "setMyCommands", first) == 403
            assert await runs.stop() == 0, runs.tail()

            await api.push_text(ADMIN_ID, "/menu")
            second = await runs.start()
            await wait_for(answered(api, ADMIN_ID, second), START_TIMEOUT, "the /menu answer")
            assert calls_since(api, "setMyCommands", second) == 0
            assert calls_since(api, "deleteMyCommands", second) == 0
            assert await runs.stop() == 0, runs.tail()
        finally:
            await runs.close()
    assert "commands menus: 0 set, 403 unchanged, 0 removed, 0 failed" in runs.text(), runs.tail()
