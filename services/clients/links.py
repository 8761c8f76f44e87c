"""Who a client is: their Telegram account's linked contacts, as a `ClientActor`."""

from __future__ import annotations

from services.permissions import ClientActor
from storage.uow import UnitOfWork


async def client_for(uow: UnitOfWork, telegram_id: int) -> ClientActor | None:
    """The client writing from this Telegram account, or None (not linked to any contact).
    Asked only for people who are not staff: an employee is never a client."""
    links = await uow.repo.client_links.of_telegram(telegram_id)
    if not links:
        return None
    first = links[0]
    return ClientActor(
        telegram_id=telegram_id,
        contact_ids=frozenset(link.contact_id for link in links),
        first_name=first.first_name,
        language=first.language,
        stopped=any(link.stopped_at is not None for link in links),
        blocked=any(link.blocked_at is not None for link in links),
    )
