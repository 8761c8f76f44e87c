"""bot/polling.py against the fake Bot API over HTTP (tests/fake_bot_api.py): order within a
chat, chats at the same time, the offset held below what is not done, a clean stop."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator

import pytest
from aiogram import Bot, Dispatcher, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Message
from aiogram.utils.backoff import BackoffConfig
from sqlalchemy.exc import OperationalError

from bot.polling import Poller
from bot.webhook import install_outage_passthrough
from tests.fake_bot_api import FakeBotApi
from tests.integration.polling_kit import wait_for

FAST = BackoffConfig(min_delay=0.01, max_delay=0.05, factor=1.5, jitter=0.001)


class Recorder:
    """A dispatcher whose one message handler logs start/end per update and can be held."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int, str]] = []  # (start|end, chat, text)
        self.running = 0
        self.most = 0
        self.holds: dict[str, asyncio.Event] = {}
        self.failures: dict[str, list[BaseException]] = {}
        self.dp = Dispatcher()
        router = Router()
        router.message.register(self.handle)
        self.dp.include_router(router)
        install_outage_passthrough(self.dp)

    async def handle(self, message: Message) -> None:
        text = message.text or ""
        self.events.append(("start", message.chat.id, text))
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            if text in self.holds:
                await self.holds[text].wait()
            await asyncio.sleep(0.02)
            errors = self.failures.get(text)
            if errors:
                raise errors.pop(0)
        finally:
            self.running -= 1
            self.events.append(("end", message.chat.id, text))

    def handled(self, text: str) -> int:
        return sum(1 for kind, _, t in self.events if kind == "end" and t == text)


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as server:
        yield server


@pytest.fixture
async def bot(api: FakeBotApi) -> AsyncIterator[Bot]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(api.base_url))
    bot = Bot(api.token, session=session)
    try:
        yield bot
    finally:
        await session.close()


def start(recorder: Recorder, bot: Bot, **options) -> tuple[Poller, asyncio.Task[None]]:
    options.setdefault("polling_timeout", 1)
    options.setdefault("backoff_config", FAST)
    poller = Poller(recorder.dp, bot, **options)
    return poller, asyncio.get_running_loop().create_task(poller.run(handle_signals=False))


async def stop(poller: Poller, task: asyncio.Task[None]) -> None:
    poller.stop()
    await asyncio.wait_for(task, 10)


async def test_one_chat_in_order_chats_at_once(api: FakeBotApi, bot: Bot) -> None:
    rec = Recorder()
    for i in range(4):
        await api.push_text(1, f"a{i}")
        await api.push_text(2, f"b{i}")
    poller, task = start(rec, bot)
    last = api.updates[-1]["update_id"]
    await wait_for(lambda: api.confirmed > last, 10, "all confirmed")
    await stop(poller, task)
    for chat, prefix in ((1, "a"), (2, "b")):
        mine = [(kind, text) for kind, c, text in rec.events if c == chat]
        expected = []
        for i in range(4):
            expected += [("start", f"{prefix}{i}"), ("end", f"{prefix}{i}")]
        assert mine == expected  # in order, one at a time
    assert rec.most == 2  # the two chats ran side by side


async def test_the_offset_stays_below_an_unfinished_update(api: FakeBotApi, bot: Bot) -> None:
    rec = Recorder()
    rec.holds["slow"] = asyncio.Event()
    slow = await api.push_text(1, "slow")
    after = await api.push_text(1, "after")  # same chat: waits behind "slow"
    other = [await api.push_text(2, f"o{i}") for i in range(3)]
    poller, task = start(rec, bot, busy_interval=0.2)
    await wait_for(lambda: rec.handled("o2") == 1, 10, "the other chat")
    polls_before = len(api.polls())
    await asyncio.sleep(1.0)
    # Telegram was never told past "slow", though later updates are done; no busy loop
    # while it hangs (about one getUpdates per busy_interval), and nothing taken twice.
    assert api.confirmed <= slow
    assert len(api.polls()) - polls_before <= 8
    assert rec.handled("after") == 0 and all(rec.handled(f"o{i}") == 1 for i in range(3))
    assert poller.offset() == slow and poller.in_flight == 2
    rec.holds["slow"].set()
    await wait_for(lambda: api.confirmed > max(after, *other), 10, "all confirmed")
    await stop(poller, task)
    assert [rec.handled(t) for t in ("slow", "after", "o0", "o1", "o2")] == [1, 1, 1, 1, 1]


async def test_stop_finishes_what_is_in_flight_then_confirms(
    api: FakeBotApi, bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recorder()
    rec.holds["slow"] = asyncio.Event()
    slow = await api.push_text(1, "slow")
    poller, task = start(rec, bot)
    await wait_for(lambda: rec.running == 1, 10, "the slow update to start")
    caplog.set_level(logging.INFO, logger="bot.polling")
    poller.stop()
    await asyncio.sleep(0.2)
    polls = len(api.polls())
    late = await api.push_text(2, "late")  # arrives after the stop: not fetched
    await asyncio.sleep(0.2)
    assert not task.done() and api.confirmed <= slow
    rec.holds["slow"].set()
    await asyncio.wait_for(task, 10)
    assert rec.handled("slow") == 1 and rec.handled("late") == 0
    assert api.confirmed == slow + 1 <= late  # confirmed on the way out, "late" stays
    assert len(api.polls()) == polls + 1  # only that last confirming call
    messages = [r.getMessage() for r in caplog.records]
    assert messages[-1] == "Polling stopped"
    assert "polling stopped: finishing 1 update(s) in flight" in messages


async def test_a_second_stop_does_not_wait(api: FakeBotApi, bot: Bot) -> None:
    rec = Recorder()
    rec.holds["stuck"] = asyncio.Event()
    stuck = await api.push_text(1, "stuck")
    poller, task = start(rec, bot)
    await wait_for(lambda: rec.running == 1, 10, "the update to start")
    poller.stop()
    poller.stop()
    await asyncio.wait_for(task, 10)
    assert rec.handled("stuck") == 1  # cancelled (its finally ran), never finished
    assert api.confirmed <= stuck  # not confirmed: Telegram delivers it again


async def test_an_outage_is_retried_a_bug_is_not(
    api: FakeBotApi, bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recorder()
    outage = OperationalError("SELECT 1", {}, Exception("database is locked"))
    rec.failures["db"] = [outage, outage]
    rec.failures["bug"] = [ValueError("broken")]
    await api.push_text(1, "db")
    await api.push_text(1, "next")
    last = await api.push_text(2, "bug")
    poller, task = start(rec, bot)
    await wait_for(lambda: api.confirmed > last, 10, "all confirmed")
    await stop(poller, task)
    assert rec.handled("db") == 3  # two outages, then applied; "next" waited behind it
    chat1 = [text for kind, c, text in rec.events if c == 1 and kind == "end"]
    assert chat1 == ["db", "db", "db", "next"]
    assert rec.handled("bug") == 1  # logged, counted as done
    assert any(r.getMessage() == f"update {last} failed" for r in caplog.records)


async def test_a_redelivered_update_in_flight_is_not_taken_twice(api: FakeBotApi, bot: Bot) -> None:
    rec = Recorder()
    rec.holds["slow"] = asyncio.Event()
    await api.push_text(1, "slow")
    poller, task = start(rec, bot, busy_interval=0.05)
    await wait_for(lambda: len(api.polls()) >= 5, 10, "a few polls while it hangs")
    rec.holds["slow"].set()
    await stop(poller, task)
    assert rec.handled("slow") == 1


async def test_network_errors_back_off_and_stop_still_works(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    session = AiohttpSession(api=TelegramAPIServer.from_base(f"http://127.0.0.1:{port}"))
    bot = Bot("42:nobody-listens", session=session)
    try:
        caplog.set_level(logging.INFO, logger="bot.polling")
        poller, task = start(Recorder(), bot)
        await wait_for(
            lambda: sum("Failed to fetch updates" in r.getMessage() for r in caplog.records) >= 3,
            10,
            "a few failed fetches",
        )
        delays = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Sleep for")]
        assert len(delays) >= 3  # backing off between tries, not spinning
        await stop(poller, task)
    finally:
        await session.close()
