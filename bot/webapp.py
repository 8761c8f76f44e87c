"""Wiring of the Mini App (handlers/webapp): its state, the chat card it redraws
(handlers/ui/deal_card.py), and the HTTP server `voronka run` starts for it when WEB_APP_URL
is set (`voronka webhook` mounts it on its own server: bot/webhook.py). The routes are put on
the app by handlers.routers.mount_http."""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from aiogram import Bot
from aiogram.fsm.storage.base import BaseStorage
from aiogram.types import BufferedInputFile
from aiohttp import web

from bot.settings import Settings
from handlers.routers import mount_http
from handlers.ui.deal_card import refresh_in_chat
from handlers.webapp import api
from services.dto import DealCard
from services.permissions import Actor
from storage.uow import UnitOfWorkFactory

log = logging.getLogger(__name__)


def webapp_state(
    settings: Settings, uow_factory: UnitOfWorkFactory, bot: Bot, storage: BaseStorage
) -> api.WebAppState:
    tz = ZoneInfo(settings.timezone)

    async def redraw(actor: Actor, lang: str, card: DealCard) -> None:
        await refresh_in_chat(bot, storage, actor, lang, tz, card)

    async def send_file(chat_id: int, content: bytes, filename: str) -> str:
        sent = await bot.send_document(chat_id, BufferedInputFile(content, filename))
        assert sent.document is not None
        return sent.document.file_id

    return api.WebAppState(
        uow_factory=uow_factory,
        bot_token=settings.require_token(),
        tz=tz,
        max_age=settings.web_app_max_age,
        on_deal_changed=redraw,
        send_file=send_file,
    )


async def start_server(
    settings: Settings, uow_factory: UnitOfWorkFactory, bot: Bot, storage: BaseStorage
) -> web.AppRunner:
    """`voronka run` with WEB_APP_URL: serve the Mini App on WEBHOOK_HOST:WEBHOOK_PORT."""
    app = web.Application()
    mount_http(app, webapp=webapp_state(settings, uow_factory, bot, storage))
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=5.0)
    await runner.setup()
    await web.TCPSite(runner, settings.webhook_host, settings.webhook_port).start()
    log.info(
        "Mini App on %s:%s/app/ (%s)",
        settings.webhook_host,
        settings.webhook_port,
        settings.web_app_url,
    )
    return runner
