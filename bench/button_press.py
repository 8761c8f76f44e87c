"""Benchmark: a stage-move button press through the real dispatcher, against two floors.

    .venv/bin/python bench/button_press.py [--rounds 40] [--per-round 50] [--warmup 100]
                                           [--db bench/out/tap_1m.db]

Three set-ups in one process, measured in interleaved rounds (floor 1, floor 2, Voronka,
then the reverse order, ...: a shared, noisy machine slows all three alike), each round
feeding pre-built callback-query updates one after another with ``dp.feed_update`` into a
recording Bot API session (tests/tg.py's RecordingSession: no network; every call goes
through aiogram's request/response code):

  floor 1  a bare aiogram Dispatcher, one callback handler that answers the query and edits
           the message with the card Voronka shows (its text and keyboard, drawn once);
  floor 2  floor 1 plus the rows a stage move must read and write, in one SQLite write
           transaction, as plain SQLAlchemy Core statements on storage/db.py's engine (the
           same SQLite settings and driver as Voronka): read the deal and its client, update
           its stage and version, insert its stage_history row, read its last notes for the
           card, insert the update id (exactly-once) -- on its own deal in the same database;
  voronka  bot.app.build_dispatcher (all middlewares, routers, the error router; throttle 0)
           pressing DealCb NEXT and BACK alternately on one real deal (created through the
           services), each with the version the card would show.

The database is a migrated SQLite file with the default pipelines: nearly empty, or with
``--db`` a copy-free run on an existing database (e.g. a 1M-deal demo built by
bench/funnel.py or `voronka demo`) -- the bench adds one employee and two deals to it.

Prints, for each set-up, wall ms per press (median of the rounds, p10-p90) and CPU ms per
press (this process's CPU time: the figure a loaded machine disturbs least), then
`cost ratio voronka / floor 2` (the median of the rounds' wall-time ratios, with their p10-p90
spread, and the same for CPU time), and the SQL statements per press of floor 2 and
Voronka (BEGIN/COMMIT counted apart). Exit status 1 if a Voronka move was refused (the
numbers would not be stage moves then).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aiogram import Bot, Dispatcher, Router
from aiogram.methods import AnswerCallbackQuery
from aiogram.types import CallbackQuery, Chat, InlineKeyboardMarkup, Message, Update, User
from sqlalchemy import bindparam, event, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import build_dispatcher
from handlers.ui import deal_card
from handlers.ui.callbacks import DealAction, DealCb
from services.clock import SystemClock
from services.dto import DealCard
from services.permissions import Actor
from services.sales import deals
from services.sales.pipeline_config import load_config
from services.sales.pipelines import sync_config
from storage import migrate
from storage.db import create_engine, create_session_factory
from storage.models import Activity, Contact, Deal, Employee, ProcessedUpdate, StageHistory
from storage.uow import UnitOfWorkFactory
from tests.factories import new_deal
from tests.tg import BOT_ID, RecordingSession, make_bot, make_settings

OUT = ROOT / "bench" / "out"
DEFAULT_PIPELINES = ROOT / "config" / "pipelines" / "default.toml"
MANAGER_TG = 700_000_001
MSK = ZoneInfo("Europe/Moscow")


@dataclass
class Result:
    name: str
    updates: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.updates / self.seconds if self.seconds else 0.0


def taps(user: User, datas: list[str], ids: Iterator[int]) -> list[Update]:
    """One callback-query update per data string, on the same card message."""
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


async def timed(dp: Dispatcher, bot: Bot, updates: list[Update]) -> tuple[float, float]:
    """Wall and CPU seconds per press over `updates`, fed one after another."""
    wall, cpu = time.perf_counter(), time.process_time()
    for one in updates:
        await dp.feed_update(bot, one)
    n = len(updates)
    return (time.perf_counter() - wall) / n, (time.process_time() - cpu) / n


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


def bare_dispatcher(
    card: tuple[str, InlineKeyboardMarkup], write: Callable[[int], Awaitable[None]] | None = None
) -> Dispatcher:
    router = Router()
    text, markup = card

    @router.callback_query()
    async def press(query: CallbackQuery) -> None:
        if write is not None:
            await write(int(query.id))
        await query.answer()
        if isinstance(query.message, Message):
            await query.message.edit_text(text, reply_markup=markup)

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


def the_rows(
    engine: AsyncEngine, card: DealCard, actor_id: int
) -> Callable[[int], Awaitable[None]]:
    """Floor 2's write: what a stage move must read and write, as plain Core statements."""
    deals_t, contacts_t = Deal.__table__, Contact.__table__
    history_t, notes_t, updates_t = (
        StageHistory.__table__,
        Activity.__table__,
        ProcessedUpdate.__table__,
    )
    read_deal = (
        select(deals_t.c.version, deals_t.c.stage_id, deals_t.c.manager_id, contacts_t.c.name)
        .select_from(deals_t.outerjoin(contacts_t, contacts_t.c.id == deals_t.c.contact_id))
        .where(deals_t.c.id == bindparam("deal"))
    )
    move = (
        update(deals_t)
        .where(deals_t.c.id == bindparam("deal"), deals_t.c.version == bindparam("v"))
        .values(
            stage_id=bindparam("to"),
            version=deals_t.c.version + 1,
            stage_entered_at=bindparam("now"),
            updated_at=bindparam("now"),
            last_activity_at=bindparam("now"),
        )
    )
    history = insert(history_t).values(
        deal_id=bindparam("deal"),
        pipeline_id=card.pipeline.id,
        from_stage_id=bindparam("from_"),
        to_stage_id=bindparam("to"),
        actor_id=actor_id,
        at=bindparam("now"),
    )
    notes = (
        select(notes_t)
        .where(notes_t.c.deal_id == bindparam("deal"))
        .order_by(notes_t.c.at.desc(), notes_t.c.id.desc())
        .limit(3)
    )
    record = insert(updates_t).values(update_id=bindparam("u"), at=bindparam("now"))
    assert card.next_stage is not None
    stages = (card.stage.id, card.next_stage.id)

    async def write(update_id: int) -> None:
        now = datetime.now(UTC)
        async with engine.begin() as conn:  # BEGIN IMMEDIATE ... COMMIT
            row = (await conn.execute(read_deal, {"deal": card.id})).one()
            to = stages[1] if row.stage_id == stages[0] else stages[0]
            params = {"deal": card.id, "v": row.version, "to": to, "from_": row.stage_id}
            await conn.execute(move, {**params, "now": now})
            await conn.execute(history, {**params, "now": now})
            (await conn.execute(notes, {"deal": card.id})).all()
            await conn.execute(record, {"u": update_id, "now": now})

    return write


async def prepare(url: str) -> tuple[AsyncEngine, UnitOfWorkFactory, Actor]:
    await migrate.upgrade(url)
    engine = create_engine(url)
    uow_factory = UnitOfWorkFactory(create_session_factory(engine), SystemClock())
    async with uow_factory() as uow:
        await sync_config(uow, load_config(DEFAULT_PIPELINES))
    async with uow_factory() as uow:
        emp = await uow.repo.employees.by_telegram_id(MANAGER_TG)
        if emp is None:
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
    return engine, uow_factory, actor


def presses(card: DealCard, total: int, first_update: int) -> list[str]:
    """NEXT and BACK alternately; the card after press i shows version v0 + i + 1."""
    return [
        DealCb(
            action=DealAction.NEXT if i % 2 == 0 else DealAction.BACK,
            deal_id=card.id,
            v=card.version + i,
        ).pack()
        for i in range(total)
    ]


async def setups(url: str, total: int) -> tuple[list[Setup], UnitOfWorkFactory, Actor, DealCard]:
    engine, uow_factory, actor = await prepare(url)
    card = await new_deal(uow_factory, actor, name="Иван Петров", amount="150000")
    floor_card = await new_deal(uow_factory, actor, name="Пётр Иванов", amount="150000")
    drawn = (deal_card.card_text(card, "ru", MSK), deal_card.card_keyboard(card, "ru"))
    user = User(id=MANAGER_TG, is_bot=False, first_name="Anna", language_code="ru")
    ids = itertools.count(10**9 + 1)  # never a real update id of the database's own past
    floor_updates = taps(user, ["x"] * total, ids)
    floor2_engine = create_engine(url)
    write = the_rows(floor2_engine, floor_card, actor.employee_id or 0)
    real = Setup(
        "voronka",
        build_dispatcher(make_settings(url, throttle_seconds=0), uow_factory),
        make_bot(RecordingSession()),
        taps(user, presses(card, total, 0), ids),
        engine,
        Statements(engine),
    )
    floor1 = Setup("floor 1", bare_dispatcher(drawn), make_bot(RecordingSession()), floor_updates)
    floor2 = Setup(
        "floor 2",
        bare_dispatcher(drawn, write),
        make_bot(RecordingSession()),
        taps(user, ["x"] * total, ids),
        floor2_engine,
        Statements(floor2_engine),
    )
    return [floor1, floor2, real], uow_factory, actor, card


def fresh(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def main(rounds: int, per_round: int, warmup: int, db: Path | None) -> int:
    total = warmup + rounds * per_round
    path = db if db is not None else fresh(OUT / "button_press.db")
    url = f"sqlite+aiosqlite:///{path}"
    all_, uow_factory, actor, card = await setups(url, total)
    try:
        for s in all_:
            await timed(s.dp, s.bot, s.updates[:warmup])
        wall: dict[str, list[float]] = {s.name: [] for s in all_}
        cpu: dict[str, list[float]] = {s.name: [] for s in all_}
        counted = {s.name: (s.statements.sql, s.statements.control) for s in all_ if s.statements}
        for r in range(rounds):
            lo = warmup + r * per_round
            order = all_ if r % 2 == 0 else all_[::-1]  # who goes first alternates too
            for s in order:
                w, c = await timed(s.dp, s.bot, s.updates[lo : lo + per_round])
                wall[s.name].append(w)
                cpu[s.name].append(c)
        async with uow_factory() as uow:
            after = await deals.get_card(uow, actor, card.id)
            deals_in_db = (
                await uow.session.execute(select(func.count()).select_from(Deal))
            ).scalar_one()
        requests = all_[2].bot.session.requests  # type: ignore[attr-defined]
        alerts = sum(1 for q in requests if isinstance(q, AnswerCallbackQuery) and q.show_alert)
        moved = after.version - card.version
        timed_n = rounds * per_round
        print(
            f"button_press: {rounds} interleaved rounds x {per_round} presses"
            f" (after {warmup} warm-up), SQLite file database with {deals_in_db:,} deals"
        )
        what = {
            "floor 1": "bare aiogram: answer + edit (the card)",
            "floor 2": "floor 1 + the move's rows, one write txn",
            "voronka": "DealCb NEXT/BACK through build_dispatcher",
        }
        for s in all_:
            ms = [1000 * v for v in wall[s.name]]
            cms = [1000 * v for v in cpu[s.name]]
            line = (
                f"  {s.name:<8} {what[s.name]:<42} {quantile(ms, 0.5):6.2f} ms/press"
                f" (p10 {quantile(ms, 0.1):.2f}, p90 {quantile(ms, 0.9):.2f});"
                f" CPU {quantile(cms, 0.5):.2f} ms"
            )
            if s.statements is not None:
                sql0, ctl0 = counted[s.name]
                sql = (s.statements.sql - sql0) / timed_n
                ctl = (s.statements.control - ctl0) / timed_n
                line += f"; {sql:.1f} statements + {ctl:.1f} BEGIN/COMMIT per press"
            print(line)
        for base in ("floor 2", "floor 1"):
            for label, per in (("", wall), (" (CPU time)", cpu)):
                ratios = [v / f for v, f in zip(per["voronka"], per[base], strict=True)]
                print(
                    f"  cost ratio voronka / {base}{label}: {quantile(ratios, 0.5):.2f}"
                    f" (spread p10-p90 {quantile(ratios, 0.1):.2f}-{quantile(ratios, 0.9):.2f})"
                )
        print(f"  stage moves applied: {moved} of {total}, refusals: {alerts}")
        return 0 if moved == total and alerts == 0 else 1
    finally:
        for s in all_:
            if s.engine is not None:
                await s.engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40, help="interleaved rounds")
    parser.add_argument("--per-round", type=int, default=50, help="presses per set-up per round")
    parser.add_argument("--warmup", type=int, default=100, help="untimed presses first")
    parser.add_argument("--db", type=Path, help="an existing SQLite database (e.g. 1M deals)")
    args = parser.parse_args()
    sys.exit(
        asyncio.run(main(max(1, args.rounds), max(1, args.per_round), max(0, args.warmup), args.db))
    )
