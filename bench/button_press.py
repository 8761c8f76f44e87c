"""Benchmark: a stage-move button press through the real dispatcher, against two floors.

    .venv/bin/python bench/button_press.py [--rounds 40] [--per-round 50] [--warmup 100]

Three set-ups in one process, measured in interleaved rounds (floor 1, floor 2, Voronka,
floor 1, floor 2, Voronka, ...: a shared, noisy machine slows all three alike), each round
feeding pre-built callback-query updates one after another with ``dp.feed_update`` into a
recording Bot API session (tests/tg.py's RecordingSession: no network; every call goes
through aiogram's request/response code):

  floor 1  a bare aiogram Dispatcher, one callback handler that answers and edits the message;
  floor 2  floor 1 plus one SQLite write transaction per update (storage/db.py's engine:
           WAL, BEGIN IMMEDIATE) on a file database in bench/out/;
  voronka  bot.app.build_dispatcher (all middlewares, routers, the error router; throttle 0)
           on a migrated SQLite file database with the default pipelines, pressing DealCb
           NEXT and BACK alternately on one real deal (created through the services), each
           with the version the card would show.

Prints ms per press for each (median of the rounds), `cost ratio voronka / floor 2`
(the median of the rounds' time-per-press ratios, with their p10-p90 spread), and the SQL
statements per press of floor 2 and Voronka (BEGIN/COMMIT counted apart). The database is
the nearly empty one the bench creates (a 1M-deal database is not built here yet). Exit
status 1 if a Voronka move was refused (the numbers would not be stage moves then).
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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aiogram import Bot, Dispatcher, Router
from aiogram.methods import AnswerCallbackQuery
from aiogram.types import (
    CallbackQuery,
    Chat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
    User,
)
from sqlalchemy import Column, Integer, MetaData, String, Table, event, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import build_dispatcher
from handlers.ui.callbacks import DealAction, DealCb
from services.clock import SystemClock
from services.dto import DealCard
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


async def timed(dp: Dispatcher, bot: Bot, updates: list[Update]) -> float:
    """Seconds per press over `updates`, fed one after another."""
    started = time.perf_counter()
    for update in updates:
        await dp.feed_update(bot, update)
    return (time.perf_counter() - started) / len(updates)


class Statements:
    """SQL statements an engine executes (BEGIN/COMMIT/ROLLBACK counted apart)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.sql = 0
        self.control = 0
        event.listen(engine.sync_engine, "before_cursor_execute", self._seen)
        event.listen(engine.sync_engine, "commit", self._end)
        event.listen(engine.sync_engine, "rollback", self._end)

    def _seen(self, _c: Any, _cur: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            self.control += 1
        else:
            self.sql += 1

    def _end(self, _conn: Any) -> None:
        self.control += 1


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


@dataclass
class Setup:
    name: str
    dp: Dispatcher
    bot: Bot
    updates: list[Update]
    engine: AsyncEngine | None = None
    statements: Statements | None = None


async def floor_setup(total: int, with_db: bool) -> Setup:
    bot = make_bot(RecordingSession())
    user = User(id=MANAGER_TG, is_bot=False, first_name="Anna")
    updates = taps(user, ["x"] * total)
    if not with_db:
        return Setup("floor 1", bare_dispatcher(), bot, updates)
    path = fresh(OUT / "button_press_floor.db")
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    meta = MetaData()
    table = Table("taps", meta, Column("id", Integer, primary_key=True), Column("data", String(64)))
    async with engine.begin() as conn:
        await conn.run_sync(meta.create_all)

    async def write(data: str) -> None:
        async with engine.begin() as conn:  # BEGIN IMMEDIATE ... COMMIT
            await conn.execute(insert(table).values(data=data))

    return Setup("floor 2", bare_dispatcher(write), bot, updates, engine, Statements(engine))


async def voronka_setup(total: int) -> tuple[Setup, UnitOfWorkFactory, Actor, DealCard]:
    path = fresh(OUT / "button_press_voronka.db")
    url = f"sqlite+aiosqlite:///{path}"
    await migrate.upgrade(url)
    engine = create_engine(url)
    uow_factory = UnitOfWorkFactory(create_session_factory(engine), SystemClock())
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
        for i in range(total)
    ]
    bot = make_bot(RecordingSession())
    dp = build_dispatcher(make_settings(url, throttle_seconds=0), uow_factory)
    user = User(id=MANAGER_TG, is_bot=False, first_name="Anna", language_code="ru")
    setup = Setup("voronka", dp, bot, taps(user, datas), engine, Statements(engine))
    return setup, uow_factory, actor, card


def fresh(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def main(rounds: int, per_round: int, warmup: int) -> int:
    total = warmup + rounds * per_round
    floor1 = await floor_setup(total, with_db=False)
    floor2 = await floor_setup(total, with_db=True)
    real, uow_factory, actor, card = await voronka_setup(total)
    setups = (floor1, floor2, real)
    try:
        for s in setups:
            await timed(s.dp, s.bot, s.updates[:warmup])
        per: dict[str, list[float]] = {s.name: [] for s in setups}
        counted = {s.name: (s.statements.sql, s.statements.control) for s in setups if s.statements}
        for r in range(rounds):
            lo = warmup + r * per_round
            order = setups if r % 2 == 0 else setups[::-1]  # who goes first alternates too
            for s in order:
                per[s.name].append(await timed(s.dp, s.bot, s.updates[lo : lo + per_round]))
        async with uow_factory() as uow:
            after = await deals.get_card(uow, actor, card.id)
        requests = real.bot.session.requests  # type: ignore[attr-defined]
        alerts = sum(1 for q in requests if isinstance(q, AnswerCallbackQuery) and q.show_alert)
        moved = after.version - card.version
        timed_n = rounds * per_round
        print(
            f"button_press: {rounds} interleaved rounds x {per_round} presses"
            f" (after {warmup} warm-up), nearly empty SQLite file database"
        )
        what = {
            "floor 1": "bare aiogram: answer + edit",
            "floor 2": "floor 1 + one SQLite write transaction",
            "voronka": "DealCb NEXT/BACK through build_dispatcher",
        }
        for s in setups:
            ms = [1000 * v for v in per[s.name]]
            line = (
                f"  {s.name:<8} {what[s.name]:<42} {quantile(ms, 0.5):6.2f} ms/press"
                f"  (p10 {quantile(ms, 0.1):.2f}, p90 {quantile(ms, 0.9):.2f})"
            )
            if s.statements is not None:
                sql0, ctl0 = counted[s.name]
                sql = (s.statements.sql - sql0) / timed_n
                ctl = (s.statements.control - ctl0) / timed_n
                line += f"  {sql:.1f} statements + {ctl:.1f} BEGIN/COMMIT per press"
            print(line)
        ratios = [v / f for v, f in zip(per["voronka"], per["floor 2"], strict=True)]
        print(
            f"  cost ratio voronka / floor 2: {quantile(ratios, 0.5):.2f}"
            f" (spread p10-p90 {quantile(ratios, 0.1):.2f}-{quantile(ratios, 0.9):.2f})"
        )
        r1 = [v / f for v, f in zip(per["voronka"], per["floor 1"], strict=True)]
        print(f"  cost ratio voronka / floor 1: {quantile(r1, 0.5):.2f}")
        print(f"  stage moves applied: {moved} of {total}, refusals: {alerts}")
        return 0 if moved == total and alerts == 0 else 1
    finally:
        for s in setups:
            if s.engine is not None:
                await s.engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40, help="interleaved rounds")
    parser.add_argument("--per-round", type=int, default=50, help="presses per set-up per round")
    parser.add_argument("--warmup", type=int, default=100, help="untimed presses first")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(max(1, args.rounds), max(1, args.per_round), max(0, args.warmup))))
