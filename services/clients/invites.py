"""Linking a client's Telegram to their contact (issue 25): a one-time, expiring invite made
from a deal card (`create`), opened by the client as ``/start c_<token>`` (`accept`).

- Only the token's SHA-256 is stored; the token itself exists in the link alone.
- `create`: staff with the right to edit the deal (`Action.DEAL_EDIT`), on a deal that has a
  contact. Several open invites for one contact may exist; each is used once.
- `accept`: a valid, unused, unexpired token links the account to the invite's contact,
  marks the invite used (one UPDATE that only an unused invite matches: two people opening
  the same link at once cannot both use it) and writes the deal's timeline row. A staff
  member is never made a client by a link. A contact already linked to another account is
  re-linked to the newer one: a fresh invite is the manager's word that this is now the
  client's Telegram (a new phone, a family member who takes over); the old account loses
  that contact. Anything refused changes nothing.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from services import timeline
from services.clients.links import client_for
from services.common import commit, load
from services.errors import RuleViolation
from services.permissions import Action, Actor, ClientActor, require
from storage.enums import ActivityKind
from storage.models import ClientInvite, ClientLink, Contact, Deal
from storage.uow import UnitOfWork

# What ``/start`` carries: "c_" and 32 characters of token_urlsafe(24). Staff invite tokens
# are 24 characters (services/team/staff.py), so the two never collide.
PREFIX = "c_"
TOKEN_LENGTH = 32
PAYLOAD_RE = re.compile(rf"^{PREFIX}[A-Za-z0-9_-]{{{TOKEN_LENGTH}}}$")
LANGUAGES = ("ru", "en")
DEFAULT_TTL = timedelta(hours=72)


@dataclass(frozen=True)
class InviteInfo:
    payload: str  # what goes after ?start= : "c_<token>"
    expires_at: datetime
    contact_name: str
    deal_id: int


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """32 URL-safe characters that end in a letter or digit (an SMS app or a chat's link
    detection may leave a trailing "-" or "_" out of the link)."""
    while True:
        token = secrets.token_urlsafe(24)
        if len(token) == TOKEN_LENGTH and token[-1].isalnum():
            return token


async def create(
    uow: UnitOfWork, actor: Actor, deal_id: int, ttl: timedelta = DEFAULT_TTL
) -> InviteInfo:
    """A one-time invite for the deal's contact; the link's payload and when it expires."""
    deal = await load(uow, Deal, deal_id, "deal")
    require(actor, Action.DEAL_EDIT, deal)
    if deal.contact_id is None:
        raise RuleViolation("client_invite_no_contact")
    contact = await load(uow, Contact, deal.contact_id, "contact")
    token = new_token()
    now = uow.clock.now()
    invite = ClientInvite(
        token_hash=token_hash(token),
        contact_id=contact.id,
        deal_id=deal.id,
        created_by_id=actor.id,
        created_at=now,
        expires_at=now + ttl,
    )
    uow.repo.add(invite)
    await uow.commit()
    return InviteInfo(PREFIX + token, invite.expires_at, contact.name, deal.id)


async def accept(
    uow: UnitOfWork,
    telegram_id: int,
    first_name: str,
    payload: str,
    language: str | None = None,
) -> ClientActor:
    """Link the Telegram account holding a valid invite to the invite's contact: the
    client as they are now (every contact of theirs). Refused (nothing changes): a
    malformed or unknown token (`client_invite_unknown`), a used one (`client_invite_used`),
    an expired one (`client_invite_expired`), a staff member (`client_invite_staff`)."""
    if not PAYLOAD_RE.match(payload or ""):
        raise RuleViolation("client_invite_unknown")
    invite = await uow.repo.client_links.invite_by_hash(token_hash(payload[len(PREFIX) :]))
    if invite is None:
        raise RuleViolation("client_invite_unknown")
    now = uow.clock.now()
    if invite.used_at is not None:
        raise RuleViolation("client_invite_used")
    if invite.expires_at <= now:
        raise RuleViolation("client_invite_expired")
    staff = await uow.repo.employees.by_telegram_id(telegram_id)
    if staff is not None and staff.active:  # a former employee may well be a client
        raise RuleViolation("client_invite_staff")
    if not await uow.repo.client_links.claim_invite(invite.id, now, telegram_id):
        raise RuleViolation("client_invite_used")
    name = (first_name or "").strip()[:100] or str(telegram_id)
    lang = language if language in LANGUAGES else None
    link = await uow.repo.client_links.of_contact(invite.contact_id)
    replaced = None
    if link is None:
        link = ClientLink(contact_id=invite.contact_id, telegram_id=telegram_id, linked_at=now)
        uow.repo.add(link)
    elif link.telegram_id != telegram_id:
        replaced = link.telegram_id
    link.telegram_id = telegram_id
    link.first_name = name
    link.language = lang
    link.linked_at = now
    link.stopped_at = None
    link.blocked_at = None
    payload_row: dict[str, object] = {"client": "linked", "name": name}
    if replaced is not None:
        payload_row["replaced"] = True
    timeline.record(
        uow,
        ActivityKind.SYSTEM,
        actor_id=None,
        deal_id=invite.deal_id,
        contact_id=None if invite.deal_id is not None else invite.contact_id,
        payload=payload_row,
    )
    await commit(uow, "client")
    client = await client_for(uow, telegram_id)
    assert client is not None  # linked just now
    return client
