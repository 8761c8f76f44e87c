"""The Mini App in tests: initData signed like Telegram signs it, and the real aiohttp app
(handlers/webapp, wired by bot/webapp.py) served on 127.0.0.1 next to the real dispatcher,
whose bot talks to a RecordingSession (tests/tg.py).

Telegram's recipe (core.telegram.org/bots/webapps#validating-data-received-via-the-mini-app):
secret = HMAC_SHA256(key="WebAppData", msg=bot_token); hash = HMAC_SHA256(key=secret,
msg="\\n".join(sorted("k=v" for every field but hash))), hex.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from bot.webapp import webapp_state
from handlers.routers import mount_http
from tests.tg import BOT_TOKEN, BotHarness, make_settings


def sign_init_data(
    user_id: int,
    auth_date: datetime,
    *,
    lang: str = "ru",
    token: str = BOT_TOKEN,
    first_name: str = "Anna",
) -> str:
    user = {"id": user_id, "first_name": first_name, "language_code": lang}
    fields = {
        "auth_date": str(int(auth_date.timestamp())),
        "query_id": "AAHdF6IQAAAAAN0XohDhrOrc",
        "user": json.dumps(user, separators=(",", ":"), ensure_ascii=False),
    }
    check = "\n".join(f"{k}={v}" for k, v in sorted(fields.items()))
    secret = hmac.new(b"WebAppData", token.encode(), hashlib.sha256).digest()
    fields["hash"] = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    return urlencode(fields)


def tamper(init_data: str) -> str:
    """The same initData with the user id changed by one digit (the hash no longer fits)."""
    return init_data.replace("%22id%22%3A", "%22id%22%3A9", 1)


def auth(init_data: str) -> dict[str, str]:
    return {"Authorization": f"tma {init_data}"}


async def serve(harness: BotHarness, db_url: str, uow_factory: Any, **settings: Any) -> TestServer:
    """The Mini App on a free port, sharing the harness's bot and FSM storage (the card a
    chat message shows is found there and redrawn through the recording session)."""
    app = web.Application()
    state = webapp_state(
        make_settings(db_url, **settings), uow_factory, harness.bot, harness.dp.storage
    )
    mount_http(app, webapp=state)  # with the headers every answer carries
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


@asynccontextmanager
async def client(
    harness: BotHarness, db_url: str, uow_factory: Any, **settings: Any
) -> AsyncIterator[ClientSession]:
    """`serve`, and an HTTP client on it (closed with the server)."""
    server = await serve(harness, db_url, uow_factory, **settings)
    try:
        async with ClientSession(base_url=str(server.make_url(""))) as session:
            yield session
    finally:
        await server.close()
