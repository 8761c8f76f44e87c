"""Benchmark: a stage-move button press through the real dispatcher, against two floors.

    .venv/bin/python bench/button_press.py [--updates 2000] [--warmup 100] [--cap 120]

Three measurements in one run, each feeding pre-built callback-query updates one after
another with ``dp.feed_update`` into a recording Bot API session (tests/tg.py's
RecordingSession: no network; every call goes through aiogram's request/response code):

  floor 1  a bare aiogram Dispatcher, one callback handler that answers and edits the message;
  floor 2  floor 1 plus one SQLite write transaction per update (storage/db.py's engine:
           WAL, BEGIN IMMEDIATE) on a file database in bench/out/;
  voronka  bot.app.build_dispatcher (all middlewares, routers, the error router; throttle 0)
           on a migrated SQLite file database with the default pipelines, pressing DealCb
           NEXT and BACK alternately on one real deal (created through the services), each
           with the version the card would show.

Prints updates/s for each and the ratio voronka / floor 2. Bounded: `--updates` per
measurement, and each stops after `--cap` seconds. Exit status 1 if a Voronka move was
refused (the numbers would not be stage moves then).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aiogram import Bot, Dispatcher, Router
from aiogram.methods import AnswerCallbackQuery, EditMessageText
from aiogram.types import (
    CallbackQuery,
    Chat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
    User,
)
from sqlalchemy import Column, Integer, MetaData, String, Table, insert

from bot.app import build_dispatcher
from handlers.ui.callbacks import DealAction, DealCb
from services.clock import SystemClock
from services.permissions import Actor
from services.sales import deals
from services.sales.pipeline_config import load_config
from services.sales.pipelines import sync_config
from storage import migrate
from storage.db import create_engine, create_session_factory
from storage.models import Employee
from storage.uow import UnitOfWorkFactory
from tests.factories import new_deal
from tests.tg import BOT_ID, RecordingSession, make_bot, make_settings

OUT = ROOT / "bench" / "out"
DEFAULT_PIPELINES = ROOT / "config" / "pipelines" / "default.toml"
MANAGER_TG = 700_000_001


@dataclass
class Result:
    name: str
    updates: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.updates / self.seconds if self.seconds else 0.0


def taps(user: User, datas: list[str]) -> list[Update]:
    """One callback-query update per data string, on the same card message."""
    ids = itertools.count(1)
    card = Message(
        message_id=1,
        date=datetime.now(UTC),
        chat=Chat(id=user.id, type="private"),
        from_user=User(id=BOT_ID, is_bot=True, first_name="Voronka"),
        text="card",
    )
    updates = []
    for data in datas:
        n = next(ids)
        query = CallbackQuery(
            id=str(n), from_user=user, chat_instance="ci", data=data, message=card
        )
        updates.append(Update(update_id=n, callback_query=query))
    return updates


async def run(
    name: str, dp: Dispatcher, bot: Bot, updates: list[Update], warmup: int, cap: float
) -> Result:
    for update in updates[:warmup]:
        await dp.feed_update(bot, update)
    timed = updates[warmup:]
    done = 0
    started = time.perf_counter()
    for update in timed:
        await dp.feed_update(bot, update)
        done += 1
        if time.perf_counter() - started > cap:
            break
    return Result(name, done, time.perf_counter() - started)


# --- floors -------------------------------------------------------------------------------

MARKUP = InlineKeyboardMarkup(
    inline_keyboard=[[InlineKeyboardButton(text="next", callback_data="x")]]
)


def bare_dispatcher(write: Callable[[str], object] | None = None) -> Dispatcher:
    router = Router()

    @router.callback_query()
    async def press(query: CallbackQuery) -> None:
        if write is not None:
            await write(query.data or "")  # type: ignore[misc]
        await query.answer()
        if isinstance(query.message, Message):
            await query.message.edit_text("card", reply_markup=MARKUP)

    dp = Dispatcher()
    dp.include_router(router)
    return dp


async def floor(n: int, warmup: int, cap: float, with_db: bool) -> tuple[Result, int]:
    session = RecordingSession()
    bot = make_bot(session)
    user = User(id=MANAGER_TG, is_bot=False, first_name="Anna")
    updates = taps(user, ["x"] * (n + warmup))
    if not with_db:
        result = await run("floor 1", bare_dispatcher(), bot, updates, warmup, cap)
        return result, len(session.requests)
    path = fresh(OUT / "button_press_floor.db")
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    meta = MetaData()
    table = Table("taps", meta, Column("id", Integer, primary_key=True), Column("data", String(64)))
    async with engine.begin() as conn:
        await conn.run_sync(meta.create_all)

    async def write(data: str) -> None:
        async with engine.begin() as conn:  # BEGIN IMMEDIATE ... COMMIT
            await conn.execute(insert(table).values(data=data))

    try:
        result = await run("floor 2", bare_dispatcher(write), bot, updates, warmup, cap)
    finally:
        await engine.dispose()
    return result, len(session.requests)


# --- Voronka ------------------------------------------------------------------------------


async def voronka(n: int, warmup: int, cap: float) -> tuple[Result, int, int]:
    """Returns the result, the moves applied and the alerts shown (refusals)."""
    path = fresh(OUT / "button_press_voronka.db")
    url = f"sqlite+aiosqlite:///{path}"
    await migrate.upgrade(url)
    engine = create_engine(url)
    uow_factory = UnitOfWorkFactory(create_session_factory(engine), SystemClock())
    try:
        async with uow_factory() as uow:
            await sync_config(uow, load_config(DEFAULT_PIPELINES))
        async with uow_factory() as uow:
            emp = Employee(
                telegram_id=MANAGER_TG,
                name="Анна",
                roles=["manager"],
                active=True,
                created_at=uow.clock.now(),
            )
            uow.repo.add(emp)
            await uow.commit()
            actor = Actor.of(emp)
        card = await new_deal(uow_factory, actor, name="Иван Петров", amount="150000")
        # The card after press i shows version v0 + i + 1; NEXT and BACK alternate.
        datas = [
            DealCb(
                action=DealAction.NEXT if i % 2 == 0 else DealAction.BACK,
                deal_id=card.id,
                v=card.version + i,
            ).pack()
            for i in range(n + warmup)
        ]
        session = RecordingSession()
        bot = make_bot(session)
        dp = build_dispatcher(make_settings(url, throttle_seconds=0), uow_factory)
        user = User(id=MANAGER_TG, is_bot=False, first_name="Anna", language_code="ru")
        result = await run("voronka", dp, bot, taps(user, datas), warmup, cap)
        async with uow_factory() as uow:
            after = await deals.get_card(uow, actor, card.id)
        alerts = sum(
            1 for r in session.requests if isinstance(r, AnswerCallbackQuery) and r.show_alert
        )
        edits = sum(1 for r in session.requests if isinstance(r, EditMessageText))
        assert edits == after.version - card.version, (edits, after.version)
        return result, after.version - card.version, alerts
    finally:
        await engine.dispose()


def fresh(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


async def main(n: int, warmup: int, cap: float) -> int:
    floor1, _ = await floor(n, warmup, cap, with_db=False)
    floor2, _ = await floor(n, warmup, cap, with_db=True)
    real, moved, alerts = await voronka(n, warmup, cap)
    print(f"button_press: {n} updates per measurement after {warmup} warm-up, cap {cap:.0f} s")
    rows = [
        (floor1, "bare aiogram: answer + edit"),
        (floor2, "floor 1 + one SQLite write transaction"),
        (real, "DealCb NEXT/BACK through build_dispatcher"),
    ]
    for res, what in rows:
        ms = 1000 * res.seconds / res.updates if res.updates else 0.0
        print(
            f"  {res.name:<8} {what:<42} {res.rate:>9,.0f} updates/s"
            f"  ({res.updates} in {res.seconds:.2f} s, {ms:.2f} ms each)"
        )
    ratio = real.rate / floor2.rate if floor2.rate else 0.0
    print(f"  ratio voronka / floor 2: {ratio:.2f}  (floor 1: {real.rate / floor1.rate:.3f})")
    print(f"  stage moves applied: {moved} of {n + warmup}, refusals: {alerts}")
    return 0 if moved == n + warmup and alerts == 0 else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=2000, help="timed updates per run")
    parser.add_argument("--warmup", type=int, default=100, help="untimed updates first")
    parser.add_argument("--cap", type=float, default=120.0, help="seconds per measurement")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(max(1, args.updates), max(0, args.warmup), args.cap)))
