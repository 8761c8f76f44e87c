"""`bench/load.py --workers N`: the load run against N webhook workers behind one address.

    .venv/bin/python bench/load.py --workers 2 [--people 100] [--taps 20] [--redeliver 0.05]

What runs (all on 127.0.0.1, started and stopped by the bench):

- one throwaway PostgreSQL (tests/pg.py) and one Redis (tests/redis_server.py);
- a fake Bot API (this process): every method answers ``ok`` (a callback answer records
  whether it was an alert, i.e. a refusal);
- N workers: ``python -m bot.cli webhook`` each, in a process of its own, on its own port,
  with DATABASE_URL, REDIS_URL (FSM, event isolation, intake limits shared) and
  TELEGRAM_API_URL pointing at the above;
- a reverse proxy on one port (this process, aiohttp): each POST goes to the next worker in
  turn (round robin), like nginx's ``upstream`` in the README.

The simulated people (as in bench/load.py) post their NEXT/BACK taps to the proxy as
Telegram would (the secret header, the update as JSON), one after the other: the next tap
only after the answer to the previous one. With ``--redeliver p`` a tap is posted a second
time with probability p (Telegram redelivering an update), which must have no effect.

Checks: every tap applied exactly once (each deal's history and version), in the order
sent, no refusal, every answer 200, and no ERROR line or traceback in the workers' logs.
Prints taps/s and the latency of a tap through the proxy (p50/p95/p99/max).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "123456:bench-workers-token"
SECRET = "bench-secret_0123456789"
WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
BOT = {"id": 123456, "is_bot": True, "first_name": "Voronka", "username": "voronka_bench_bot"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FakeBotApi:
    """Answers every Bot API method ok; counts callback answers and alerts (refusals)."""

    def __init__(self) -> None:
        self.answers = 0
        self.alerts = 0
        self.calls = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        method = request.match_info["method"].lower()
        form: Any = await request.post()
        if not form:
            try:
                form = await request.json()
            except ValueError:
                form = {}
        result: Any = True
        if method == "getme":
            result = BOT
        elif method == "answercallbackquery":
            self.answers += 1
            self.alerts += str(form.get("show_alert", "")).lower() in ("true", "1")
        elif method in ("sendmessage", "editmessagetext", "editmessagereplymarkup"):
            chat = int(form.get("chat_id") or 1)
            result = {
                "message_id": int(form.get("message_id") or 1),
                "date": int(time.time()),
                "chat": {"id": chat, "type": "private"},
                "from": BOT,
                "text": str(form.get("text") or "card"),
            }
        return web.json_response({"ok": True, "result": result})


class Proxy:
    """One address in front of the workers: round robin, body and headers passed on."""

    def __init__(self, ports: list[int]) -> None:
        self.targets = itertools.cycle([f"http://127.0.0.1:{p}" for p in ports])
        self.http: ClientSession | None = None
        self.by_worker: dict[str, int] = {}

    async def handle(self, request: web.Request) -> web.Response:
        assert self.http is not None
        target = next(self.targets)
        self.by_worker[target] = self.by_worker.get(target, 0) + 1
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host",)}
        body = await request.read()
        async with self.http.request(
            request.method, target + request.path_qs, data=body, headers=headers
        ) as resp:
            return web.Response(
                status=resp.status, body=await resp.read(), content_type=resp.content_type
            )


async def serve(app: web.Application, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


def tap_json(user_id: int, update_id: int, data: str) -> dict[str, Any]:
    now = int(datetime.now(UTC).timestamp())
    user = {"id": user_id, "is_bot": False, "first_name": f"M{user_id}", "language_code": "ru"}
    return {
        "update_id": update_id,
        "callback_query": {
            "id": str(update_id),
            "from": user,
            "chat_instance": "ci",
            "data": data,
            "message": {
                "message_id": 1,
                "date": now,
                "chat": {"id": user_id, "type": "private"},
                "from": BOT,
                "text": "card",
            },
        },
    }


def start_worker(
    port: int, env: dict[str, str], log_path: Path, cwd: Path
) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "webhook"],
            env={**env, "WEBHOOK_PORT": str(port)},
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def wait_healthy(port: int, proc: subprocess.Popen[bytes], limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    async with ClientSession(timeout=ClientTimeout(total=5)) as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"worker on {port} exited with {proc.returncode}")
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            await asyncio.sleep(0.3)
    raise RuntimeError(f"worker on {port} not healthy after {limit}s")


async def run_workers(
    workers: int,
    people: int,
    taps: int,
    think: tuple[float, float],
    seed: int,
    redeliver: float,
    pool: tuple[int, int],
) -> int:
    from bench.button_press import quantile
    from bench.load import FIRST_TG, check_applied
    from bench.load import seed as seed_people
    from handlers.ui.callbacks import DealAction, DealCb
    from services.clock import SystemClock
    from storage import migrate
    from storage.db import create_engine, create_session_factory
    from storage.uow import UnitOfWorkFactory
    from tests.pg import PgServer
    from tests.redis_server import RedisServer

    rng = random.Random(seed)
    pg = PgServer.start()
    redis = RedisServer.start()
    workdir = Path(tempfile.mkdtemp(prefix="voronka-load-workers-"))
    runners: list[web.AppRunner] = []
    procs: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []
    try:
        url = pg.url("postgres")
        await migrate.upgrade(url)
        engine = create_engine(url)
        uow_factory = UnitOfWorkFactory(create_session_factory(engine), SystemClock())
        actors, cards, _ = await seed_people(uow_factory, people)

        api = FakeBotApi()
        api_app = web.Application()
        api_app.router.add_post("/bot{token}/{method}", api.handle)
        api_port = free_port()
        runners.append(await serve(api_app, api_port))

        ports = [free_port() for _ in range(workers)]
        proxy_port = free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DB_", "WEBHOOK_"))},
            "PYTHONPATH": str(ROOT),
            "BOT_TOKEN": TOKEN,
            "DATABASE_URL": url,
            "REDIS_URL": redis.url(),
            "TELEGRAM_API_URL": f"http://127.0.0.1:{api_port}",
            "WEBHOOK_BASE_URL": f"http://127.0.0.1:{proxy_port}",
            "WEBHOOK_SECRET": SECRET,
            "WEBHOOK_HOST": "127.0.0.1",
            "THROTTLE_SECONDS": "0",
            "LOG_LEVEL": "WARNING",
            "REMINDER_SWEEP_SECONDS": "60",
            "DB_POOL_SIZE": str(pool[0]),
            "DB_MAX_OVERFLOW": str(pool[1]),
        }
        for i, port in enumerate(ports):  # one at a time: the first syncs the menus
            logs.append(workdir / f"worker{i}.log")
            procs.append(start_worker(port, env, logs[-1], workdir))
            await wait_healthy(port, procs[-1])

        proxy = Proxy(ports)
        proxy.http = ClientSession(timeout=ClientTimeout(total=60))
        proxy_app = web.Application(client_max_size=1 << 20)
        proxy_app.router.add_route("*", "/{tail:.*}", proxy.handle)
        runners.append(await serve(proxy_app, proxy_port))

        latencies: list[float] = []
        statuses: dict[int, int] = {}
        redelivered = 0
        update_ids = itertools.count(1)
        target = f"http://127.0.0.1:{proxy_port}{WEBHOOK_PATH}"
        headers = {SECRET_HEADER: SECRET}

        async def person(i: int, http: ClientSession) -> None:
            nonlocal redelivered
            card = cards[i]
            await asyncio.sleep(rng.uniform(*think))
            for n in range(taps):
                action = DealAction.NEXT if n % 2 == 0 else DealAction.BACK
                data = DealCb(action=action, deal_id=card.id, v=card.version + n).pack()
                body = tap_json(FIRST_TG + i, next(update_ids), data)
                started = time.perf_counter()
                async with http.post(target, json=body, headers=headers) as resp:
                    await resp.read()
                    statuses[resp.status] = statuses.get(resp.status, 0) + 1
                latencies.append(time.perf_counter() - started)
                if rng.random() < redeliver:  # Telegram delivers it again
                    redelivered += 1
                    async with http.post(target, json=body, headers=headers) as resp:
                        await resp.read()
                        statuses[resp.status] = statuses.get(resp.status, 0) + 1
                if think[1] > 0:
                    await asyncio.sleep(rng.uniform(*think))

        async with ClientSession(timeout=ClientTimeout(total=60)) as http:
            started = time.perf_counter()
            await asyncio.gather(*(person(i, http) for i in range(people)))
            wall = time.perf_counter() - started
        await proxy.http.close()
        applied, wrong, disordered = await check_applied(uow_factory, actors, cards, taps)
        await engine.dispose()
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
        problems = 0
        for log in logs:
            text = log.read_text(errors="replace")
            problems += sum(
                1 for line in text.splitlines() if " ERROR " in line or "Traceback" in line
            )

        ms = [1000 * v for v in latencies]
        print(
            f"load: {people} people x {taps} taps, think {think[0]}-{think[1]} s, PostgreSQL + "
            f"Redis, {workers} webhook workers behind one proxy (pool {pool[0]}+{pool[1]} "
            f"each), {wall:.1f} s wall"
        )
        print(f"  {len(ms) / wall:.1f} taps/s; per worker: {sorted(proxy.by_worker.values())}")
        print(
            f"  latency ms (through the proxy): p50 {quantile(ms, 0.5):.1f}"
            f"  p95 {quantile(ms, 0.95):.1f}  p99 {quantile(ms, 0.99):.1f}  max {max(ms):.1f}"
        )
        print(
            f"  answers: {statuses}; redelivered {redelivered}; refusals (alerts) {api.alerts};"
            f" ERROR lines/tracebacks in the workers' logs: {problems}"
        )
        print(
            f"  applied {applied} of {people * taps} taps (exactly once each: "
            f"{'yes' if wrong == 0 else f'no, {wrong} people wrong'}); out of order: {disordered}"
        )
        ok = (
            wrong == 0
            and disordered == 0
            and applied == people * taps
            and set(statuses) == {200}
            and api.alerts == 0
            and problems == 0
        )
        return 0 if ok else 1
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        for runner in runners:
            await runner.cleanup()
        redis.stop()
        pg.stop()
