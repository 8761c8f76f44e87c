"""What the client-side handler tests share: an invite made from the deal card through the
real dispatcher, and a client who opens it."""

from __future__ import annotations

import re

from aiogram.methods import SendPhoto
from aiogram.types import BufferedInputFile, User

from services.permissions import Actor
from tests.tg import BotHarness, Sent, tg_user

PAYLOAD = re.compile(r"\?start=(c_[A-Za-z0-9_-]{32})(?![A-Za-z0-9_-])")
_client_ids = iter(range(880_000_001, 890_000_000))


def new_client(first_name: str = "Мария", lang: str = "ru") -> User:
    """A Telegram user who is nobody yet (not staff, not linked)."""
    return tg_user(next(_client_ids), first_name, lang)


async def invite(harness: BotHarness, manager: Actor, deal_id: int) -> tuple[str, Sent]:
    """📲 Invite the client on the deal's card: (the link's payload, what the bot did)."""
    u_manager = tg_user(manager.telegram_id)
    card = await harness.send(u_manager, f"/deal {deal_id}")
    sent = await harness.tap(u_manager, card.button("Пригласить клиента"), card)
    [photo] = sent.of(SendPhoto)
    assert isinstance(photo.photo, BufferedInputFile)
    assert photo.photo.data.startswith(b"\x89PNG\r\n\x1a\n")  # the QR code as a picture
    assert photo.caption is not None
    found = PAYLOAD.search(photo.caption)
    assert found is not None, photo.caption
    return found.group(1), sent


async def open_link(harness: BotHarness, user: User, payload: str) -> Sent:
    return await harness.send(user, f"/start {payload}")
