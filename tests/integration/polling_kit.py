"""The real `voronka run` process against tests/fake_bot_api.py (shared by the polling
tests and bench/startup.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tests.factories import clean_env, voronka_command
from tests.fake_bot_api import FakeBotApi

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ADMIN_ID = 4_000_001


def process_env(api: FakeBotApi, db_path: Path, **extra: str) -> dict[str, str]:
    """The settings of a `voronka run` against `api`; this checkout first on PYTHONPATH, so
    the process runs the code under test (not whatever the virtualenv was installed from)."""
    path = os.environ.get("PYTHONPATH", "")
    env = clean_env(
        BOT_TOKEN=api.token,
        TELEGRAM_API_URL=api.base_url,
        DATABASE_URL=f"sqlite+aiosqlite:///{db_path}",
        ADMIN_IDS=str(ADMIN_ID),
        THROTTLE_SECONDS="0",
        LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join(p for p in (str(PROJECT_ROOT), path) if p),
    )
    env.update(extra)
    return env


async def wait_for(
    condition: Callable[[], bool], within: float, what: str, *, step: float = 0.005
) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:.0f} s waiting for {what}")
        await asyncio.sleep(step)


@dataclass
class Runs:
    """`voronka run`, started again and again; each run logs to its own file."""

    env: dict[str, str]
    workdir: Path
    logs: list[Path] = field(default_factory=list)
    proc: asyncio.subprocess.Process | None = None
    _log: IO[bytes] | None = None

    async def start(self) -> float:
        """Start a run; returns its start time (time.monotonic())."""
        assert self.proc is None or self.proc.returncode is not None
        path = self.workdir / f"voronka-run-{len(self.logs) + 1}.log"
        self.logs.append(path)
        self._log = path.open("wb")
        started = time.monotonic()
        self.proc = await asyncio.create_subprocess_exec(
            *voronka_command(),
            "run",
            cwd=self.workdir,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=asyncio.subprocess.STDOUT,
        )
        return started

    async def stop(self, sig: int = signal.SIGTERM, grace: float = 60.0) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        try:
            code = await asyncio.wait_for(self.proc.wait(), grace)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            message = f"voronka did not stop within {grace:.0f} s{self.tail()}"
            raise AssertionError(message) from None
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None
        return code

    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def text(self, index: int = -1) -> str:
        return self.logs[index].read_text(errors="replace") if self.logs else ""

    def tail(self, lines: int = 40) -> str:
        return "\n--- voronka log (tail) ---\n" + "\n".join(self.text().splitlines()[-lines:])

    async def close(self) -> None:
        if self.alive():
            await self.stop(signal.SIGKILL)


def polled_since(api: FakeBotApi, since: float) -> Callable[[], bool]:
    return lambda: any(c.method == "getUpdates" and c.at >= since for c in api.calls)


def confirmed_past(api: FakeBotApi, update_id: int) -> Callable[[], bool]:
    return lambda: api.confirmed > update_id


def handed_out(api: FakeBotApi, update_id: int) -> Callable[[], bool]:
    """Has a getUpdates answer carried this update?"""

    def check() -> bool:
        return any(
            c.method == "getUpdates"
            and isinstance(c.result, list)
            and any(u["update_id"] == update_id for u in c.result)
            for c in api.calls
        )

    return check


def process_ids(results: Any) -> list[int]:
    return [u["update_id"] for u in results] if isinstance(results, list) else []


async def add_staff(db_path: Path, count: int, first: int = 730_000_001) -> list[int]:
    """`count` active managers (their telegram ids), straight into the database file."""
    from services.clock import SystemClock
    from storage.db import create_engine, create_session_factory
    from storage.uow import UnitOfWorkFactory
    from tests.factories import new_staff

    engine = create_engine(f"sqlite+aiosqlite:///{db_path}")
    try:
        uow_factory = UnitOfWorkFactory(create_session_factory(engine), SystemClock())
        return await new_staff(uow_factory, count, first)
    finally:
        await engine.dispose()


def answered(api: FakeBotApi, chat_id: int, since: float) -> Callable[[], bool]:
    """Has the bot sent a message to this chat since `since`?"""
    return lambda: any(
        c.method == "sendMessage" and c.at >= since and c.params.get("chat_id") == chat_id
        for c in api.calls
    )


def calls_since(api: FakeBotApi, method: str, since: float) -> int:
    return sum(1 for c in api.calls if c.method == method and c.at >= since)
