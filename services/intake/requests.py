"""A request a stranger leaves in the bot (issue 25, `CLIENT_REQUESTS`): the contact they
shared and what they need become a lead through the intake's own path (services/intake/api.py
`receive`): the same checks, the same dedupe by phone (an open lead of that phone gets the
request on its timeline instead of a second lead), the same round-robin and notice to the
manager. Its form is ``telegram-bot`` (lead source Telegram). Per-person rate limiting is the
caller's (handlers/clients: one request per person per window)."""

from __future__ import annotations

from collections.abc import Sequence

from services.intake.api import IntakeResult, UowFactory, receive, source_of

BOT_FORM = source_of("telegram-bot")


async def leave_request(
    uow_factory: UowFactory,
    name: str,
    phone: str,
    need: str | None,
    *,
    manager_telegram_ids: Sequence[int] = (),
) -> IntakeResult:
    """The lead (new or the open one of this phone). InvalidSubmission: nothing stored."""
    fields = {"name": name, "phone": phone, "need": need or ""}
    return await receive(uow_factory, BOT_FORM, fields, manager_telegram_ids=manager_telegram_ids)
