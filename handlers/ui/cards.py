"""Where a deal's card is in a person's chat, so a change made elsewhere (the Mini App)
can redraw it in place.

The bot remembers the message of the last card it sent for a deal in a private chat, in the
FSM storage under a key of its own (``destiny``), apart from any wizard's data: memory
with one process, Redis (shared by the workers) when REDIS_URL is set. Edits in place keep
the message, so only a card sent anew is remembered. A few dozen deals per chat are kept.
"""

from __future__ import annotations

from aiogram.fsm.storage.base import BaseStorage, StorageKey

DESTINY = "deal_cards"
KEEP = 50


def _key(bot_id: int, chat_id: int) -> StorageKey:
    return StorageKey(bot_id=bot_id, chat_id=chat_id, user_id=chat_id, destiny=DESTINY)


async def remember(
    storage: BaseStorage, bot_id: int, chat_id: int, deal_id: int, message_id: int
) -> None:
    key = _key(bot_id, chat_id)
    cards = dict(await storage.get_data(key))
    cards.pop(str(deal_id), None)  # the newest last
    cards[str(deal_id)] = message_id
    while len(cards) > KEEP:
        cards.pop(next(iter(cards)))
    await storage.set_data(key, cards)


async def message_of(storage: BaseStorage, bot_id: int, chat_id: int, deal_id: int) -> int | None:
    """The message showing this deal's card in this chat, if the bot sent one."""
    found = (await storage.get_data(_key(bot_id, chat_id))).get(str(deal_id))
    return found if isinstance(found, int) else None
