"""A small fake Telegram Bot API server (aiohttp) for running the real `voronka` process.

Serves ``/bot<token>/<method>`` for real over HTTP, like api.telegram.org:

- ``getUpdates`` keeps Telegram's contract: updates below ``offset`` are confirmed (dropped
  for good), the earliest ``limit`` unconfirmed ones from ``offset`` on are returned, and
  with nothing to return the request waits up to ``timeout`` seconds for one;
- ``getMe``, ``sendMessage``, ``editMessageText`` (a message), ``answerCallbackQuery``,
  ``setMyCommands``, ``deleteMyCommands`` and any other method (``true``);
- ``unauthorized=True``: every method answers 401 Unauthorized, as for a revoked token;
- ``latency``: seconds added to every answer, like a round trip to api.telegram.org.

Every call is recorded (``calls``); ``push_*`` queue updates. Runs in the test's event
loop: ``async with FakeBotApi() as api: ... api.base_url``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

BOT_ID = 42_424_242


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float  # time.monotonic()
    result: Any = None


@dataclass
class FakeBotApi:
    token: str = f"{BOT_ID}:AAFakeTokenForTheVoronkaTests_0123456789"
    unauthorized: bool = False
    latency: float = 0.0  # seconds added to every answer (a network round trip)
    host: str = "127.0.0.1"
    calls: list[Call] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)  # unconfirmed, by id
    confirmed: int = 0  # every update below this id is confirmed
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _message_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))
    _arrived: asyncio.Condition | None = None
    _runner: web.AppRunner | None = None
    port: int = 0

    # --- running -----------------------------------------------------------------------

    async def __aenter__(self) -> FakeBotApi:
        self._arrived = asyncio.Condition()
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._serve)
        app.router.add_get("/bot{token}/{method}", self._serve)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        server: Any = site._server  # the listening socket's port (aiohttp has no getter)
        self.port = server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # --- updates -----------------------------------------------------------------------

    async def push(self, **update: Any) -> int:
        """Queue one update (``callback_query={...}`` or ``message={...}``); its id."""
        assert self._arrived is not None
        update_id = next(self._ids)
        self.updates.append({"update_id": update_id, **update})
        async with self._arrived:
            self._arrived.notify_all()
        return update_id

    async def push_tap(self, user_id: int, data: str, message_id: int = 1) -> int:
        """A press of an inline button under the bot's message `message_id` in the user's
        private chat."""
        user = {"id": user_id, "is_bot": False, "first_name": f"U{user_id}", "language_code": "ru"}
        return await self.push(
            callback_query={
                "id": f"cq{user_id}-{len(self.updates)}-{time.monotonic_ns()}",
                "from": user,
                "chat_instance": f"ci{user_id}",
                "data": data,
                "message": {
                    "message_id": message_id,
                    "date": int(time.time()),
                    "chat": {"id": user_id, "type": "private"},
                    "from": {"id": BOT_ID, "is_bot": True, "first_name": "Voronka"},
                    "text": "card",
                },
            }
        )

    async def push_text(self, user_id: int, text: str) -> int:
        user = {"id": user_id, "is_bot": False, "first_name": f"U{user_id}", "language_code": "ru"}
        return await self.push(
            message={
                "message_id": next(self._message_ids),
                "date": int(time.time()),
                "chat": {"id": user_id, "type": "private"},
                "from": user,
                "text": text,
            }
        )

    def count(self, method: str) -> int:
        return sum(1 for c in self.calls if c.method == method)

    def polls(self) -> list[Call]:
        return [c for c in self.calls if c.method == "getUpdates"]

    # --- serving -----------------------------------------------------------------------

    async def _params(self, request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            body = await request.json()
            return dict(body) if isinstance(body, dict) else {}
        form = await request.post()
        params: dict[str, Any] = {}
        for key, value in {**request.query, **form}.items():
            if not isinstance(value, str):
                continue
            try:
                params[key] = json.loads(value)
            except ValueError:
                params[key] = value
        return params

    async def _serve(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        call = Call(method, params, time.monotonic())
        self.calls.append(call)
        if self.latency:
            await asyncio.sleep(self.latency)
        if self.unauthorized or request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        if method == "getUpdates":
            result: Any = await self._get_updates(params)
        else:
            result = self._answer(method, params)
        call.result = result
        return web.json_response({"ok": True, "result": result})

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        assert self._arrived is not None
        offset = int(params.get("offset") or 0)
        limit = max(1, min(100, int(params.get("limit") or 100)))
        wait = float(params.get("timeout") or 0)
        if offset > self.confirmed:
            self.confirmed = offset
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        deadline = time.monotonic() + wait
        while True:
            ready = [u for u in self.updates if u["update_id"] >= self.confirmed][:limit]
            left = deadline - time.monotonic()
            if ready or left <= 0:
                return ready
            async with self._arrived:
                try:
                    await asyncio.wait_for(self._arrived.wait(), left)
                except TimeoutError:
                    pass

    def _message(self, chat_id: Any, text: Any, message_id: Any = None) -> dict[str, Any]:
        return {
            "message_id": int(message_id) if message_id else next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": int(chat_id), "type": "private"},
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "Voronka"},
            "text": str(text) if text is not None else "",
        }

    def _answer(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return {
                "id": BOT_ID,
                "is_bot": True,
                "first_name": "Voronka",
                "username": "voronka_fake_bot",
            }
        if method in ("sendMessage", "sendPhoto", "sendDocument"):
            return self._message(params.get("chat_id"), params.get("text"))
        if method in ("editMessageText", "editMessageReplyMarkup"):
            if params.get("chat_id") is None:
                return True
            return self._message(params["chat_id"], params.get("text"), params.get("message_id"))
        if method == "getWebhookInfo":
            return {"url": "", "has_custom_certificate": False, "pending_update_count": 0}
        return True
