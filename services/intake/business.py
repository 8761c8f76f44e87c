"""Client chats through Telegram Business (Bot API business connections).

A manager connects Voronka as the chatbot of their Telegram Business account: each
`business_connection` update is recorded (which employee, may it reply, enabled or not).
While a connection is enabled and the company's capture is on (`CompanyPolicy.business_
capture`), a client's message in that manager's chats lands on a timeline:

- a known client -- the chat was linked before, or the contact is known by their Telegram
  user id, or by the phone they shared in the chat -- on their open deal's (or lead's)
  timeline, and on the contact's;
- a stranger -> a new lead in Leads (source Telegram, the first message as the need,
  trimmed with "…" to the need's limit while the timeline keeps it whole), assigned to that
  employee (a leader's or an admin's own chat: theirs), with the usual duplicate check
  (services.sales.leads).

Whose chats are recorded is `CompanyPolicy.business_roles` (BUSINESS_ROLES: managers,
leaders, admins by default); anyone else is told so when they connect and nothing of theirs
is read. Edits and deletions are matched by (connection, chat, message): a client's chat id
is the same in every manager's account while message ids are numbered per account.

Photos, documents, voice and contacts are kept as Telegram file ids (or the shared phone);
edits and deletions are recorded as events of their own (the original stays). The manager's
own messages in a linked chat are recorded as replies. Updates on an unknown, disabled or
disconnected connection, or from an inactive employee, are ignored: nothing is saved.
A manager replies from the deal card through the connection (`prepare_reply` /
`record_reply`), refused when the connection cannot reply or the chat's reply window (24 h
since the client's last message) has passed; a manager can stop recording a chat.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from services import policy, timeline, validation
from services.common import commit, is_id
from services.dto import DealCard
from services.errors import RuleViolation, ValidationError
from services.permissions import Action, Actor, require
from services.sales import leads
from services.sales import stage as stage_core
from services.sales.pipelines import PipelineRules
from services.team import distribution
from storage.enums import ActivityKind, LeadSource, Role
from storage.models import Activity, BusinessChat, BusinessConnection, Contact, Deal, Employee
from storage.uow import UnitOfWork

REPLY_WINDOW = timedelta(hours=24)
MEDIA_TYPES = frozenset(
    {"photo", "video", "document", "voice", "audio", "animation", "video_note", "sticker"}
)


class Outcome(StrEnum):
    CONNECTED = "connected"
    DISABLED = "disabled"  # the manager turned the connection off (or removed the bot)
    NOT_STAFF = "not_staff"  # someone who is not an active employee connected the bot
    ROLE_OFF = "role_off"  # an employee whose roles' chats are not captured (BUSINESS_ROLES)
    NEW_LEAD = "new_lead"
    APPENDED = "appended"
    IGNORED = "ignored"


@dataclass(frozen=True)
class ConnectionIn:
    """A `business_connection` update, as plain values."""

    id: str
    user_id: int
    user_chat_id: int
    can_reply: bool
    enabled: bool


@dataclass(frozen=True)
class MessageIn:
    """A business message (new or edited), as plain values."""

    connection_id: str
    chat_id: int
    message_id: int
    from_id: int | None
    first_name: str
    last_name: str | None = None
    username: str | None = None
    text: str | None = None
    media_type: str | None = None
    file_id: str | None = None
    file_unique_id: str | None = None
    caption: str | None = None
    shared_phone: str | None = None  # a contact the client shared...
    shared_user_id: int | None = None  # ...and whose Telegram user it is


@dataclass(frozen=True)
class BusinessResult:
    outcome: Outcome
    employee_id: int | None = None
    employee_chat_id: int | None = None  # where to tell the manager
    language: str | None = None
    can_reply: bool = False
    lead_id: int | None = None
    deal_id: int | None = None
    client: str | None = None
    capture: bool = True  # the company records client chats (CompanyPolicy.business_capture)


@dataclass(frozen=True)
class ReplyTarget:
    connection_id: str
    chat_id: int
    deal_id: int
    text: str


IGNORED = BusinessResult(Outcome.IGNORED)


# --- connections ----------------------------------------------------------------------------


async def connection_update(uow: UnitOfWork, conn: ConnectionIn) -> BusinessResult:
    """Record a connection's state. Only an active employee's connection is kept enabled;
    someone else's is recorded as disabled (their chats are never read)."""
    if not isinstance(conn.id, str) or not 0 < len(conn.id) <= 128:
        return IGNORED  # not a connection Telegram makes: nothing to record, nothing to retry
    emp = await uow.repo.employees.by_telegram_id(conn.user_id)
    staff = emp is not None and emp.active
    captured = emp is not None and _captured_role(uow, emp)
    now = uow.clock.now()
    row = await uow.repo.business.connection(conn.id)
    if row is None:
        row = BusinessConnection(
            id=conn.id,
            telegram_user_id=conn.user_id,
            user_chat_id=conn.user_chat_id,
            connected_at=now,
        )
        uow.repo.add(row)
    elif row.telegram_user_id != conn.user_id:
        return IGNORED  # the id is someone else's: refused, nothing changes
    row.employee_id = emp.id if staff and emp is not None else None
    row.user_chat_id = conn.user_chat_id
    row.can_reply = bool(conn.can_reply)
    row.enabled = bool(conn.enabled) and staff and captured
    row.updated_at = now
    await commit(uow, "connection")
    if not staff or emp is None:
        return BusinessResult(Outcome.NOT_STAFF, employee_chat_id=conn.user_chat_id)
    if not captured:
        return BusinessResult(
            Outcome.ROLE_OFF,
            employee_id=emp.id,
            employee_chat_id=conn.user_chat_id,
            language=emp.language,
        )
    return BusinessResult(
        Outcome.CONNECTED if row.enabled else Outcome.DISABLED,
        employee_id=emp.id,
        employee_chat_id=conn.user_chat_id,
        language=emp.language,
        can_reply=row.can_reply,
        capture=policy.of(uow).business_capture,
    )


def _captured_role(uow: UnitOfWork, emp: Employee) -> bool:
    """Are this employee's Business chats recorded (a role of theirs is in BUSINESS_ROLES)?"""
    return any(role in policy.of(uow).business_roles for role in emp.roles)


async def _live_connection(
    uow: UnitOfWork, connection_id: str
) -> tuple[BusinessConnection, Employee] | None:
    """The connection and its employee, if messages through it are to be recorded."""
    if not policy.of(uow).business_capture:
        return None
    if not isinstance(connection_id, str) or not 0 < len(connection_id) <= 128:
        return None
    conn = await uow.repo.business.connection(connection_id)
    if conn is None or not conn.enabled or conn.employee_id is None:
        return None
    emp = await uow.repo.get(Employee, conn.employee_id)
    if emp is None or not emp.active or emp.telegram_id != conn.telegram_user_id:
        return None
    if not _captured_role(uow, emp):  # their roles changed since they connected
        return None
    return conn, emp


# --- messages -------------------------------------------------------------------------------


def _name(msg: MessageIn) -> str:
    full = " ".join(x for x in (msg.first_name, msg.last_name) if x and x.strip())
    try:
        return validation.name(full)
    except ValidationError:
        return f"@{msg.username}" if msg.username else f"Telegram {msg.from_id}"


def _need(text: str | None) -> str | None:
    """The first message as the lead's need, trimmed with "…" to the need's limit (the
    whole message is on the timeline)."""
    if text is None:
        return None
    text = text.strip()
    if len(text) <= validation.MAX_TEXT:
        return text or None
    return text[: validation.MAX_TEXT - 1].rstrip() + "…"


def _media(msg: MessageIn) -> tuple[str | None, str | None, str | None]:
    if msg.media_type in MEDIA_TYPES and msg.file_id and len(msg.file_id) <= 256:
        unique = (
            msg.file_unique_id if msg.file_unique_id and len(msg.file_unique_id) <= 128 else None
        )
        return msg.media_type, msg.file_id, unique
    return None, None, None


async def _link(uow: UnitOfWork, chat: BusinessChat) -> tuple[int | None, int | None, int | None]:
    """(deal, lead, contact) a linked chat's messages go to now: a converted lead's deal,
    the contact's open deal when the chat's deal is closed."""
    deal_id, lead_id, contact_id = chat.deal_id, chat.lead_id, chat.contact_id
    if deal_id is None and lead_id is not None:
        lead = await uow.repo.business.lead(lead_id)
        if lead is not None and lead.deal_id is not None:
            deal_id = chat.deal_id = lead.deal_id
    if deal_id is not None and contact_id is None:
        deal = await uow.repo.deals.with_client(deal_id)
        if deal is not None and deal.contact_id is not None:
            contact_id = chat.contact_id = deal.contact_id
    if contact_id is not None:
        contact = await uow.repo.get(Contact, contact_id)
        if contact is not None and contact.telegram_id is None:
            contact.telegram_id = chat.chat_id
        current = await uow.repo.deals.with_client(deal_id) if deal_id else None
        if current is None or current.closed_at is not None:
            newer = await uow.repo.business.open_deal_of_contact(contact_id)
            if newer is not None:
                deal_id = chat.deal_id = newer.id
    return deal_id, (None if deal_id else lead_id), contact_id


async def _known(uow: UnitOfWork, chat: BusinessChat, msg: MessageIn) -> bool:
    """Link a new chat to a client the CRM knows (by Telegram user id, or the phone they
    shared); False for a stranger."""
    contact = await uow.repo.business.contact_by_telegram(chat.chat_id)
    if contact is None and msg.shared_phone and msg.shared_user_id == msg.from_id:
        try:
            phone = validation.phone(msg.shared_phone)
        except ValidationError:
            phone = None
        found = await uow.repo.contacts.duplicates(phone, None) if phone else []
        contact = found[0] if found else None
        if contact is not None:
            contact.telegram_id = chat.chat_id
    if contact is None:
        return False
    chat.contact_id = contact.id
    # their open deal; a client whose deals are all closed: the newest one, where the
    # manager will see the message (a new request is then worked from that card)
    deal = await uow.repo.business.deal_of_contact(contact.id)
    chat.deal_id = deal.id if deal is not None else None
    return True


def _phone(raw: str) -> str | None:
    """A shared contact's number (Telegram gives digits without '+'), or None."""
    for candidate in (raw.strip(), "+" + raw.strip().lstrip("+")):
        try:
            return validation.phone(candidate)
        except ValidationError:
            continue
    return None


async def _keep_phone(
    uow: UnitOfWork, phone: str, lead_id: int | None, contact_id: int | None
) -> None:
    """The client shared their own number in the chat: their lead and contact keep it
    (where they have none yet: a typed number is never overwritten)."""
    if lead_id is not None:
        lead = await uow.repo.business.lead(lead_id)
        if lead is not None and not lead.phone and not lead.email:
            lead.phone = phone
    if contact_id is not None:
        contact = await uow.repo.get(Contact, contact_id)
        if contact is not None and not contact.phone:
            contact.phone = phone


async def _chat(
    uow: UnitOfWork, conn: BusinessConnection, emp: Employee, chat_id: int
) -> BusinessChat:
    chat = await uow.repo.business.chat(emp.id, chat_id)
    if chat is None:
        chat = BusinessChat(
            employee_id=emp.id,
            connection_id=conn.id,
            chat_id=chat_id,
            excluded=False,
            created_at=uow.clock.now(),
        )
        uow.repo.add(chat)
    chat.connection_id = conn.id
    return chat


async def client_message(uow: UnitOfWork, msg: MessageIn) -> BusinessResult:
    """A new message in a connected manager's chat (from the client, or the manager's own)."""
    live = await _live_connection(uow, msg.connection_id)
    if live is None or not is_id(msg.message_id) or msg.from_id is None:
        return IGNORED
    conn, emp = live
    own = msg.from_id == conn.telegram_user_id  # the manager wrote it from their phone
    existing = await uow.repo.business.chat(emp.id, msg.chat_id)
    if existing is not None and existing.excluded:
        return IGNORED
    if own and (existing is None or not (existing.deal_id or existing.lead_id)):
        return IGNORED  # the manager writing to someone the CRM does not follow
    chat = await _chat(uow, conn, emp, msg.chat_id)
    actor = Actor.of(emp)
    outcome = Outcome.APPENDED
    if existing is None or not (chat.deal_id or chat.lead_id or chat.contact_id):
        await uow.flush()
        if not await _known(uow, chat, msg):
            # The client wrote to this manager: theirs, unless they are off today (then the
            # distribution rule picks who calls back; the chat stays recorded here).
            owner = await distribution.stand_in(uow, emp)
            lead = await leads.insert_lead(
                uow,
                actor if Role.MANAGER in emp.roles else None,
                leads.LeadInput(
                    name=_name(msg),
                    source=LeadSource.TELEGRAM,
                    need=_need(msg.text or msg.caption),
                    manager_id=owner.id if Role.MANAGER in owner.roles else None,
                ),
                allow_duplicate=False,
            )
            # a leader's or an admin's own client chat: the lead is theirs, not the pool's
            lead.manager_id = owner.id
            chat.lead_id = lead.id
            outcome = Outcome.NEW_LEAD
    deal_id, lead_id, contact_id = await _link(uow, chat)
    now = uow.clock.now()
    media_type, file_id, unique = _media(msg)
    payload: dict[str, object] = {"connection": conn.id, "from": _name(msg)}
    if msg.username:
        payload["username"] = msg.username
    if msg.shared_phone:
        phone = _phone(msg.shared_phone)
        payload["phone"] = phone or msg.shared_phone[:32]
        if phone and not own and msg.shared_user_id == msg.from_id:
            await _keep_phone(uow, phone, lead_id, contact_id)
    timeline.record(
        uow,
        ActivityKind.MESSAGE_OUT if own else ActivityKind.MESSAGE_IN,
        actor_id=emp.id if own else None,
        text=(msg.text or "")[:4096],
        deal_id=deal_id,
        lead_id=lead_id,
        contact_id=contact_id,
        at=now,
        media_type=media_type,
        file_id=file_id,
        file_unique_id=unique,
        caption=(msg.caption or None) and str(msg.caption)[:1024],
        chat_id=msg.chat_id,
        message_id=msg.message_id,
        payload=payload,
    )
    if not own:
        chat.last_client_message_at = now
    elif lead_id is not None:  # the manager answered the lead's client: a first touch
        await leads.touched(uow, lead_id, ActivityKind.MESSAGE_OUT)
    await commit(uow, "chat")
    return BusinessResult(
        outcome,
        employee_id=emp.id,
        employee_chat_id=conn.user_chat_id,
        language=emp.language,
        can_reply=conn.can_reply,
        lead_id=lead_id,
        deal_id=deal_id,
        client=_name(msg),
    )


async def _followed(
    uow: UnitOfWork, connection_id: str, chat_id: int
) -> tuple[BusinessChat, Employee] | None:
    live = await _live_connection(uow, connection_id)
    if live is None:
        return None
    _, emp = live
    chat = await uow.repo.business.chat(emp.id, chat_id)
    if chat is None or chat.excluded:
        return None
    return chat, emp


def _after_original(
    uow: UnitOfWork,
    kind: ActivityKind,
    original: Activity,
    text: str,
    connection_id: str,
    *,
    media: tuple[str | None, str | None, str | None] = (None, None, None),
    caption: str | None = None,
) -> None:
    """An edit or a deletion of a recorded message: an event of its own on the same
    timeline (the original row stays as it was)."""
    media_type, file_id, unique = media
    timeline.record(
        uow,
        kind,
        actor_id=original.author_id,
        text=text,
        deal_id=original.deal_id,
        lead_id=original.lead_id,
        contact_id=original.contact_id,
        media_type=media_type,
        file_id=file_id,
        file_unique_id=unique,
        caption=caption,
        chat_id=original.chat_id,
        message_id=original.message_id,
        payload={"connection": connection_id},
    )


async def edited_message(uow: UnitOfWork, msg: MessageIn) -> BusinessResult:
    """An edit of a recorded message: the new text as an event of its own."""
    followed = await _followed(uow, msg.connection_id, msg.chat_id)
    if followed is None or not is_id(msg.message_id):
        return IGNORED
    _, emp = followed
    originals = await uow.repo.timeline.by_message(msg.connection_id, msg.chat_id, msg.message_id)
    if not originals:
        return IGNORED
    first = originals[0]
    _after_original(
        uow,
        ActivityKind.MESSAGE_EDITED,
        first,
        (msg.text or "")[:4096],
        msg.connection_id,
        media=_media(msg),
        caption=(msg.caption or None) and str(msg.caption)[:1024],
    )
    await commit(uow, "chat")
    return BusinessResult(Outcome.APPENDED, employee_id=emp.id, deal_id=first.deal_id)


async def deleted_messages(
    uow: UnitOfWork, connection_id: str, chat_id: int, message_ids: list[int]
) -> BusinessResult:
    """Messages deleted in the chat: each recorded one gets a deletion event (the CRM keeps
    what was said)."""
    followed = await _followed(uow, connection_id, chat_id)
    if followed is None:
        return IGNORED
    _, emp = followed
    recorded = 0
    for message_id in message_ids[:100]:
        if not is_id(message_id):
            continue
        originals = await uow.repo.timeline.by_message(connection_id, chat_id, message_id)
        if not originals:
            continue
        first = originals[0]
        _after_original(uow, ActivityKind.MESSAGE_DELETED, first, first.text, connection_id)
        recorded += 1
    if not recorded:
        return IGNORED
    await commit(uow, "chat")
    return BusinessResult(Outcome.APPENDED, employee_id=emp.id)


# --- replies from the deal card, excluding a chat ----------------------------------------------


async def _my_chats(
    uow: UnitOfWork, actor: Actor, deal_id: int, expected_version: int | None = None
) -> tuple[Deal, PipelineRules, list[BusinessChat]]:
    """The deal (its manager only: replies go through their own account) and their chats
    with its client, newest first; RuleViolation when there are none."""
    deal, rules = await stage_core.load_for(uow, actor, deal_id, Action.DEAL_VIEW, expected_version)
    require(actor, Action.MESSAGES_REPLY, deal)
    chats = [c for c in await uow.repo.business.chats_of_deal(deal.id) if c.employee_id == actor.id]
    if not chats:
        raise RuleViolation("no_client_chat")
    return deal, rules, chats


async def _reply_chat(uow: UnitOfWork, actor: Actor, deal_id: int) -> BusinessChat:
    _, _, chats = await _my_chats(uow, actor, deal_id)
    chat = chats[0]
    if chat.excluded:
        raise RuleViolation("chat_excluded")
    return chat


async def check_reply(uow: UnitOfWork, actor: Actor, deal_id: int) -> ReplyTarget:
    """May `actor` reply to this deal's client now? Refused at the tap (not after typing):
    no chat of theirs, the connection is off or may not reply, the window has passed."""
    chat = await _reply_chat(uow, actor, deal_id)
    conn = await uow.repo.business.connection(chat.connection_id)
    if conn is None or not conn.enabled or conn.employee_id != actor.id:
        raise RuleViolation("chat_disconnected")
    if not conn.can_reply:
        raise RuleViolation("chat_cannot_reply")
    last = chat.last_client_message_at
    if last is None or uow.clock.now() - last > REPLY_WINDOW:
        raise RuleViolation("reply_window_closed", hours=int(REPLY_WINDOW.total_seconds() // 3600))
    return ReplyTarget(conn.id, chat.chat_id, deal_id, "")


async def prepare_reply(uow: UnitOfWork, actor: Actor, deal_id: int, text: str) -> ReplyTarget:
    """Check the reply and its text; ends the transaction (nothing is held while the
    handler sends it)."""
    body = validation.optional_text(text, "reply", 4096)
    if body is None:
        raise ValidationError("reply", "empty")
    target = await check_reply(uow, actor, deal_id)
    await uow.rollback()
    return ReplyTarget(target.connection_id, target.chat_id, deal_id, body)


async def record_reply(
    uow: UnitOfWork, actor: Actor, target: ReplyTarget, message_id: int
) -> DealCard:
    """The reply went out: on the deal's timeline; the fresh card back."""
    deal, rules = await stage_core.load_for(uow, actor, target.deal_id, Action.DEAL_VIEW, None)
    require(actor, Action.MESSAGES_REPLY, deal)
    timeline.record(
        uow,
        ActivityKind.MESSAGE_OUT,
        actor_id=actor.id,
        text=target.text,
        deal_id=deal.id,
        contact_id=deal.contact_id,
        chat_id=target.chat_id,
        message_id=message_id,
        payload={"connection": target.connection_id},
    )
    card = await stage_core.build_card(uow, deal, actor, rules)
    await commit(uow, "chat")
    return card


async def exclude_chat(
    uow: UnitOfWork, actor: Actor, deal_id: int, expected_version: int | None
) -> DealCard:
    """The manager stops recording their chat with this deal's client (from now on)."""
    deal, rules, chats = await _my_chats(uow, actor, deal_id, expected_version)
    for chat in chats:
        chat.excluded = True
    card = await stage_core.build_card(uow, deal, actor, rules)
    await commit(uow, "chat")
    return card
