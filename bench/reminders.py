"""Benchmark: the reminder engine against a local Bot API that enforces Telegram's limits.

    .venv/bin/python bench/reminders.py [--people 300] [--reminders 3000] [--rate 29.5]
    .venv/bin/python bench/reminders.py --rate 45 --people 3000   # set above the limit
    .venv/bin/python bench/reminders.py --faults --blocked 10        # ordinary faults

A local aiohttp server (127.0.0.1, a random port; nothing else is contacted) speaks the Bot
API's ``POST /bot<token>/sendMessage`` and answers 429 with ``retry_after`` whenever the
sender goes over 30 messages in any one second overall or over 1 per second to one chat.
The real sender does the work: services.outbox.Sweeper + bot/notifier.py's BotNotifier on an
aiogram Bot whose session points at the server, over a SQLite file database holding
`--people` employees and `--reminders` due reminders (each carrying a unique token, so the
server can count what arrived).

With ``--rate`` above the server's 30/s (45: a rate set too high) the sender meets 429s and
adapts (services.outbox.RateLimiter.throttled): it slows down to what the server accepted
and probes upwards slowly; the figure shows what that costs.

``--faults``: on top of the limits, each send is answered at random with a 429 for that
chat (10%, ``retry_after`` 1-3 s, which the server then enforces for that chat), a 500
(10%), or the connection is dropped before an answer (5%); none of them delivers.
``--blocked N``: N of the people have blocked the bot (403); nothing may reach them, and
after their first 403 nothing more is tried (their reminders fail; they are not "lost").

Prints: delivered per second / allowed rate, lost, duplicates, messages sent, 429s, the
sender's lowest and final rate. Bounded: the
sweep gives up after `--timeout` seconds. Exit status 1 if anything was lost or duplicated.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import re
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from bot.notifier import BotNotifier
from services.clock import SystemClock
from services.outbox import queue as outbox
from services.outbox.payloads import TaskPayload
from services.outbox.queue import Kind, Sweeper
from storage import migrate
from storage.db import create_engine, create_session_factory
from storage.models import Employee
from storage.uow import UnitOfWorkFactory

ALLOWED_PER_SECOND = 30
PER_CHAT_SECONDS = 1.0
TOKEN = "123456:bench-token"
MARK = re.compile(r"bench-(\d+)\b")


@dataclass
class FakeTelegram:
    """sendMessage with Telegram's flood control: a sliding 1-second window overall and
    one message a second per chat; over either -> 429 with retry_after."""

    accepted: list[tuple[float, int]] = field(default_factory=list)  # (time, chat)
    tokens: Counter[int] = field(default_factory=Counter)
    too_many: int = 0
    window: deque[float] = field(default_factory=deque)
    last_by_chat: dict[int, float] = field(default_factory=dict)
    next_id: int = 1

    faults: bool = False
    blocked: set[int] = field(default_factory=set)
    rnd: random.Random = field(default_factory=lambda: random.Random(21))
    chat_hold: dict[int, float] = field(default_factory=dict)  # a fault 429's retry_after
    injected: Counter[str] = field(default_factory=Counter)
    to_blocked: Counter[int] = field(default_factory=Counter)  # attempts per blocked chat

    def _retry_after(self, seconds: float) -> web.Response:
        self.too_many += 1
        n = max(1, math.ceil(seconds))
        return web.json_response(
            {
                "ok": False,
                "error_code": 429,
                "description": f"Too Many Requests: retry after {n}",
                "parameters": {"retry_after": n},
            }
        )

    async def get_me(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "ok": True,
                "result": {"id": 123456, "is_bot": True, "first_name": "Bench", "username": "b"},
            }
        )

    async def send_message(self, request: web.Request) -> web.Response:
        form: Any = await request.post()
        if not form:
            form = await request.json()
        chat = int(form["chat_id"])
        text = str(form.get("text", ""))
        now = time.monotonic()
        if chat in self.blocked:
            self.to_blocked[chat] += 1
            return web.json_response(
                {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked"},
                status=403,
            )
        if self.faults:
            held = self.chat_hold.get(chat, 0.0)
            if now < held:  # a fault 429 said so for this chat: enforced
                return self._retry_after(held - now)
            roll = self.rnd.random()
            if roll < 0.10:
                self.injected["429"] += 1
                wait = self.rnd.choice((1, 2, 3))
                self.chat_hold[chat] = now + wait
                return self._retry_after(wait)
            if roll < 0.20:
                self.injected["500"] += 1
                return web.json_response(
                    {"ok": False, "error_code": 500, "description": "Internal Server Error"},
                    status=500,
                )
            if roll < 0.25:
                self.injected["drop"] += 1
                assert request.transport is not None
                request.transport.close()  # no answer at all
                return web.Response()
        while self.window and now - self.window[0] >= 1.0:
            self.window.popleft()
        if len(self.window) >= ALLOWED_PER_SECOND:
            return self._retry_after(self.window[0] + 1.0 - now)
        last = self.last_by_chat.get(chat)
        if last is not None and now - last < PER_CHAT_SECONDS:
            return self._retry_after(last + PER_CHAT_SECONDS - now)
        self.window.append(now)
        self.last_by_chat[chat] = now
        self.accepted.append((now, chat))
        for token in MARK.findall(text):
            self.tokens[int(token)] += 1
        message_id, self.next_id = self.next_id, self.next_id + 1
        return web.json_response(
            {
                "ok": True,
                "result": {
                    "message_id": message_id,
                    "date": int(time.time()),
                    "chat": {"id": chat, "type": "private"},
                    "text": text,
                },
            }
        )


class ServerThread:
    """The fake Bot API in a thread of its own with its own event loop, like a remote
    server: its clock reads arrivals as they come, not when the sender's loop gets to them."""

    def __init__(self, fake: FakeTelegram) -> None:
        self.fake = fake
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="fake-telegram", daemon=True)

    def start(self) -> int:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fake Bot API did not start")
        return self.port

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        app = web.Application()
        app.router.add_post(f"/bot{TOKEN}/getMe", self.fake.get_me)
        app.router.add_post(f"/bot{TOKEN}/sendMessage", self.fake.send_message)
        app.router.add_post(f"/bot{TOKEN}/sendmessage", self.fake.send_message)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server: Any = site._server
        self.port = int(server.sockets[0].getsockname()[1])
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()


async def seed(url: str, people: int, reminders: int) -> tuple[AsyncEngine, UnitOfWorkFactory]:
    await migrate.upgrade(url)
    engine = create_engine(url)
    clock = SystemClock()
    factory = UnitOfWorkFactory(create_session_factory(engine), clock)
    now = clock.now()
    rnd = random.Random(4)
    async with factory() as uow:
        staff = [
            Employee(
                telegram_id=7_000_000 + i,
                name=f"Employee {i}",
                roles=["manager"],
                active=True,
                language=rnd.choice(["ru", "en"]),
                created_at=now,
            )
            for i in range(people)
        ]
        for e in staff:
            uow.repo.add(e)
        await uow.flush()
        for n in range(reminders):
            who = staff[n % people]
            due = now - timedelta(seconds=rnd.randint(0, 3600))
            await outbox.enqueue(
                uow,
                who.id,
                Kind.TASK_DUE,
                TaskPayload(task_kind="custom", title=f"bench-{n}", due_at=due),
                due,
                dedupe_key=f"bench:{n}",
            )
        await uow.commit()
    return engine, factory


async def run(args: argparse.Namespace) -> int:
    fake = FakeTelegram(faults=args.faults)
    # the blocked people: spread over the list (telegram id = 7_000_000 + index)
    step = max(1, args.people // max(1, args.blocked)) if args.blocked else 0
    fake.blocked = {7_000_000 + i * step for i in range(args.blocked)} if step else set()
    server = ServerThread(fake)
    port = server.start()
    workdir = Path(tempfile.mkdtemp(prefix="voronka-bench-", dir=args.db_dir))
    url = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    engine, factory = await seed(url, args.people, args.reminders)
    session = AiohttpSession(api=TelegramAPIServer.from_base(f"http://127.0.0.1:{port}"))
    bot = Bot(TOKEN, session=session)
    sweeper = Sweeper(
        factory,
        BotNotifier(bot, "Europe/Moscow"),
        factory.clock,
        per_second=args.rate,
        window_max=args.window,
        max_in_flight=args.concurrency,
        max_recipients=args.batch,
    )
    await bot.get_me()  # what every aiogram bot does at start (and it warms the session)
    started = time.monotonic()
    stats = outbox.SweepStats()
    try:
        async with asyncio.timeout(args.timeout):
            while True:  # the scheduler's interval job, back to back
                round_stats = await sweeper.sweep_until_idle(max_rounds=1000)
                stats.add(round_stats)
                if round_stats.claimed == 0:
                    break
    except TimeoutError:
        print(f"gave up after {args.timeout}s", file=sys.stderr)
    wall = time.monotonic() - started
    await bot.session.close()
    server.stop()
    await engine.dispose()
    shutil.rmtree(workdir, ignore_errors=True)

    sent = len(fake.accepted)
    if sent >= 2:
        span = fake.accepted[-1][0] - fake.accepted[0][0]
        achieved = (sent - 1) / span if span > 0 else float("inf")
    else:
        achieved = 0.0
    blocked_index = {chat - 7_000_000 for chat in fake.blocked}
    expected = {n for n in range(args.reminders) if n % args.people not in blocked_index}
    lost = len(expected - set(fake.tokens))
    to_blocked = {n for n in fake.tokens if n % args.people in blocked_index}
    duplicates = sum(n - 1 for n in fake.tokens.values() if n > 1)
    print(f"reminders: {args.reminders} for {args.people} people ({len(fake.blocked)} blocked)")
    mode = "with faults" if args.faults else "no faults"
    print(
        f"delivered/s against the allowed rate ({mode}): {achieved:.2f} / "
        f"{ALLOWED_PER_SECOND} msg/s = {100 * achieved / ALLOWED_PER_SECOND:.1f}%"
    )
    print(f"lost: {lost}")
    print(f"duplicates: {duplicates}")
    print(
        f"sent to blocked people: {len(to_blocked)}; tries to a blocked chat after its 403: "
        f"{sum(n - 1 for n in fake.to_blocked.values())}"
    )
    print(f"messages sent: {sent} (items {stats.items_sent})")
    injected = ", ".join(f"{k} {v}" for k, v in sorted(fake.injected.items())) or "none"
    print(
        f"429 answers: {fake.too_many}; faults injected: {injected}; "
        f"transient errors seen: {stats.transient_errors}"
    )
    limiter = sweeper.limiter
    print(
        f"sender rate: set {args.rate}/s, lowest {limiter.lowest_rate:.2f}/s after 429s, "
        f"{limiter.rate:.2f}/s at the end"
    )
    setting = f"sender rate setting {args.rate}/s, {args.concurrency} in flight"
    print(f"wall time: {wall:.2f}s ({setting})")
    ok = lost == 0 and duplicates == 0 and not to_blocked
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=300)
    parser.add_argument("--reminders", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=29.0, help="sender's messages per second")
    parser.add_argument(
        "--window",
        type=int,
        default=None,
        help="sender's cap in any 1 s (default: what the rate implies, at least 30)",
    )
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--faults", action="store_true", help="10%% 429 (per chat), 10%% 500, 5%% dropped"
    )
    parser.add_argument("--blocked", type=int, default=0, help="people who blocked the bot")
    parser.add_argument("--batch", type=int, default=100, help="people claimed per sweep")
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument(
        "--db-dir",
        default=None,
        help="where the SQLite file goes (default: the temp dir; /dev/shm keeps disk "
        "contention from other processes out of the figures)",
    )
    args = parser.parse_args()
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
