"""Lead intake: site forms and email-to-lead forwarders hand leads to the CRM.

The HTTP side (``POST /api/leads``) lives in bot/webhook.py; this module knows nothing about
HTTP or Telegram. What it does:

- **sources and tokens** — ``INTAKE_TOKENS`` ("site:TOKEN1,email-info:TOKEN2") names each
  source and its bearer token. A source's name starts with the lead source it produces
  (``site``, ``email``, ``call``… see storage.enums.LeadSource), optionally followed by
  ``-suffix`` to tell several forms apart ("site-promo"). Tokens are compared in constant
  time, every configured token every time.
- **validation** — the posted fields (``name``, ``phone``, ``email``, ``need`` or its aliases
  ``message``/``comment``, ``company``, ``amount``; anything else is ignored) are checked by
  the same rules as the bot's lead wizard (services.validation / services.leads.clean), and
  every bad field is reported at once: ``InvalidSubmission.errors`` maps the field name to a
  code (``empty``, ``invalid``, ``too_long``, ``contact_required``: a phone or an email is
  needed, ``not_a_number``…).
- **idempotency** — with an Idempotency-Key the first request's outcome is stored in
  ``idempotency_keys`` (per source) in the same transaction as the lead: a retry with the same
  key and the same fields gets the same answer (``replayed=True``) and creates nothing; the
  same key with different fields raises ``IdempotencyConflict``. The key row is inserted
  first, so a retry racing the original on another worker waits on the primary key
  (PostgreSQL) or on the write lock (SQLite), then reads the stored outcome. Failed
  requests store nothing (a corrected retry may reuse the key).
- **duplicates** — a phone or email that already has an open lead creates no second lead:
  the answer names the open lead (outcome ``duplicate``) and its manager is told that the
  client wrote again.
- **assignment** — a new lead goes to a manager on duty by the company's rule
  (``LEAD_DISTRIBUTION``: round-robin or least loaded; services/team/distribution.py, the
  one distribution of every channel), among ``INTAKE_MANAGER_IDS`` (Telegram ids) when
  given. The pointer is the ``assignment_cursors`` row "intake", locked for the rest of the
  transaction, so workers take turns on one sequence. With no manager on duty the lead stays
  unassigned and leaders and admins are told.
- **notification** — an outbox row (``lead.new``, due now) in the same transaction; the
  caller kicks the sweeper so it goes out within seconds.
- **rate limit** — per source, a fixed one-minute window: ``RedisRateLimiter`` (one counter
  shared by every worker) when Redis is configured, ``MemoryRateLimiter`` otherwise.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from services import timeline, validation
from services.errors import DomainError, ValidationError
from services.outbox.queue import Kind, enqueue
from services.sales.leads import LeadInput, clean, insert_lead, lead_new
from services.team import distribution
from storage.enums import ActivityKind, LeadSource, LeadStatus, Role
from storage.errors import Duplicate
from storage.models import Employee, Lead
from storage.models.intake import IdempotencyKey

# The rate-limit counters live in storage (this process's memory, or Redis shared by every
# worker); re-exported for the endpoint and the wiring.
from storage.ratelimit import MemoryRateLimiter as MemoryRateLimiter
from storage.ratelimit import RateDecision as RateDecision
from storage.ratelimit import RateLimiter as RateLimiter
from storage.ratelimit import RedisRateLimiter as RedisRateLimiter
from storage.uow import UnitOfWork

LEAD_NEW = Kind.LEAD_NEW  # a lead came in through the intake API (or came again)

CREATED = "created"
DUPLICATE = "duplicate"

CURSOR_NAME = distribution.CURSOR_NAME
MAX_KEY_LENGTH = 200
MIN_TOKEN_LENGTH = 16

UowFactory = Callable[[], UnitOfWork]


# --- errors -------------------------------------------------------------------------------


class InvalidSubmission(DomainError):
    """The posted fields are wrong; ``errors`` maps each bad field to a code."""

    key = "error.intake.invalid"

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__(self.key, errors=dict(errors))
        self.errors = dict(errors)


class IdempotencyConflict(DomainError):
    """The Idempotency-Key was already used for a request with other fields."""

    key = "error.intake.idempotency_conflict"


# --- sources and tokens -------------------------------------------------------------------


@dataclass(frozen=True)
class IntakeSource:
    name: str  # as configured: "site", "site-promo", "email"
    lead_source: str  # the LeadSource value its leads get


_LABEL = re.compile(r"^[a-z][a-z0-9_]*(-[a-z0-9_-]+)?$")
_TOKEN = re.compile(r"^[\x21-\x7e]+$")  # visible ASCII, no spaces


def source_of(label: str) -> IntakeSource:
    """The source named `label` ("site-promo" is a "site" source); ValueError if bad."""
    if len(label) > 64 or not _LABEL.match(label):
        raise ValueError(
            f"source name {label!r}: use lowercase letters, digits, _ and - (at most 64)"
        )
    base = label.split("-", 1)[0]
    if base not in LeadSource._value2member_map_:
        known = ", ".join(s.value for s in LeadSource)
        raise ValueError(f"source name {label!r} must start with a lead source ({known})")
    return IntakeSource(label, base)


def parse_tokens(text: str | None) -> dict[str, str]:
    """INTAKE_TOKENS ("site:TOKEN1,email:TOKEN2") as {"site": "TOKEN1", "email": "TOKEN2"};
    ValueError when the text is malformed (the message never contains a token)."""
    result: dict[str, str] = {}
    seen_tokens: set[str] = set()
    for part in re.split(r"[,\s]+", (text or "").strip()):
        if not part:
            continue
        label, sep, token = part.partition(":")
        if not sep or not label:
            raise ValueError("expected SOURCE:TOKEN pairs separated by commas")
        source_of(label)
        if label in result:
            raise ValueError(f"source {label!r} is listed twice")
        if len(token) < MIN_TOKEN_LENGTH or not _TOKEN.match(token):
            raise ValueError(
                f"the token of {label!r} must be at least {MIN_TOKEN_LENGTH} visible ASCII "
                "characters (e.g. the output of `openssl rand -hex 24`)"
            )
        if token in seen_tokens:
            raise ValueError(f"the token of {label!r} is used by another source too")
        seen_tokens.add(token)
        result[label] = token
    return result


class TokenRegistry:
    """Bearer token -> source. Every configured token is compared, in constant time."""

    def __init__(self, tokens: Mapping[str, str]) -> None:
        self._entries = [(source_of(label), token.encode()) for label, token in tokens.items()]

    @classmethod
    def from_setting(cls, text: str | None) -> TokenRegistry:
        return cls(parse_tokens(text))

    def __bool__(self) -> bool:
        return bool(self._entries)

    @property
    def sources(self) -> list[IntakeSource]:
        return [source for source, _ in self._entries]

    def authenticate(self, token: str | None) -> IntakeSource | None:
        if not token:
            return None
        given = token.encode("utf-8", "replace")
        found: IntakeSource | None = None
        for source, expected in self._entries:
            if hmac.compare_digest(given, expected):  # no early exit: same work either way
                found = source
        return found


# --- fields -------------------------------------------------------------------------------

FIELDS = ("name", "phone", "email", "need", "company", "amount")
ALIASES = {"message": "need", "comment": "need", "company_name": "company"}
_DOMAIN_TO_API = {"company_name": "company"}


def normalize_fields(raw: Mapping[str, object]) -> dict[str, str]:
    """The known fields as stripped strings (aliases folded in, unknown keys dropped).

    A number is taken as its text (a phone or an amount sent as a JSON number); a list, an
    object or a boolean is an ``invalid`` field. Blank values count as absent.
    """
    fields: dict[str, str] = {}
    errors: dict[str, str] = {}
    for key, value in raw.items():
        name = ALIASES.get(key, key)
        if name not in FIELDS or value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            errors[name] = "invalid"
            continue
        text = value.strip() if isinstance(value, str) else str(value)
        if text and (key == name or name not in fields):  # the canonical name wins
            fields[name] = text
    if errors:
        raise InvalidSubmission(errors)
    return fields


def request_hash(fields: Mapping[str, str]) -> str:
    """What the Idempotency-Key is bound to: the normalized fields (JSON or form alike)."""
    canonical = json.dumps(dict(fields), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_idempotency_key(key: str | None) -> str | None:
    """None (no key) or the key; ValueError when it is not 1-200 visible ASCII characters."""
    if key is None:
        return None
    if not 0 < len(key) <= MAX_KEY_LENGTH or not _TOKEN.match(key):
        raise ValueError(f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} visible ASCII characters")
    return key


def lead_input(source: IntakeSource, fields: Mapping[str, str]) -> LeadInput:
    """Validate every field (all errors at once) and build the LeadInput."""
    errors: dict[str, str] = {}

    def check(field: str, fn: Callable[[], object]) -> None:
        try:
            fn()
        except ValidationError as exc:
            errors.setdefault(_DOMAIN_TO_API.get(exc.field, field), exc.code)

    name = fields.get("name", "")
    phone = fields.get("phone")
    email = fields.get("email")
    company = fields.get("company")
    check("name", lambda: validation.name(name))
    if phone:
        check("phone", lambda: validation.phone(phone))
    if email:
        check("email", lambda: validation.email(email))
    if not phone and not email:
        errors["phone"] = "contact_required"
    check("need", lambda: validation.optional_text(fields.get("need"), "need"))
    if company:
        check("company", lambda: validation.name(company, "company_name", max_len=300))
    if fields.get("amount"):
        check("amount", lambda: validation.amount(fields["amount"]))
    if errors:
        raise InvalidSubmission(errors)
    data = LeadInput(
        name=name,
        source=source.lead_source,
        phone=phone,
        email=email,
        need=fields.get("need"),
        is_legal_entity=bool(company),
        company_name=company,
        amount=fields.get("amount"),
    )
    try:
        clean(data)  # the domain's own rules, in case they say more than the checks above
    except ValidationError as exc:
        raise InvalidSubmission({_DOMAIN_TO_API.get(exc.field, exc.field): exc.code}) from exc
    return data


# --- receiving a lead ---------------------------------------------------------------------


@dataclass(frozen=True)
class IntakeResult:
    outcome: str  # CREATED | DUPLICATE
    lead_id: int | None  # None only if the lead was deleted since (a replay)
    replayed: bool = False
    notified: tuple[int, ...] = ()  # employee ids an outbox row was added for

    def body(self) -> dict[str, Any]:
        """The response body; a replay gives exactly the body of the original answer."""
        return {"lead_id": self.lead_id, "status": self.outcome}


class _KeyTaken(Exception):
    """Another request inserted this Idempotency-Key first (we rolled back)."""


async def receive(
    uow_factory: UowFactory,
    source: IntakeSource,
    raw_fields: Mapping[str, object],
    *,
    idempotency_key: str | None = None,
    manager_telegram_ids: Sequence[int] = (),
) -> IntakeResult:
    """Validate, then create the lead, assign it, queue its notification: one commit.

    Raises InvalidSubmission (nothing stored) or IdempotencyConflict.
    """
    key = check_idempotency_key(idempotency_key)
    fields = normalize_fields(raw_fields)
    data = lead_input(source, fields)
    digest = request_hash(fields)
    for _ in range(3):
        async with uow_factory() as uow:
            if key is not None:
                stored = await uow.repo.intake.idempotency_key(source.name, key)
                if stored is not None:
                    return _replay(stored, digest)
            try:
                return await _create(uow, source, data, key, digest, manager_telegram_ids)
            except _KeyTaken:
                continue  # the winner committed: the next round reads its row
    raise RuntimeError(f"Idempotency-Key of {source.name} neither stored nor insertable")


def _replay(stored: IdempotencyKey, digest: str) -> IntakeResult:
    if not hmac.compare_digest(stored.request_hash, digest):
        raise IdempotencyConflict()
    return IntakeResult(stored.outcome, stored.lead_id, replayed=True)


async def _create(
    uow: UnitOfWork,
    source: IntakeSource,
    data: LeadInput,
    key: str | None,
    digest: str,
    manager_telegram_ids: Sequence[int],
) -> IntakeResult:
    now = uow.clock.now()
    stored: IdempotencyKey | None = None
    if key is not None:
        # First, so a concurrent retry blocks here before doing any work of its own.
        stored = IdempotencyKey(
            source=source.name,
            key=key,
            request_hash=digest,
            outcome=CREATED,
            lead_id=None,
            created_at=now,
        )
        uow.repo.add(stored)
        try:
            await uow.flush()
        except Duplicate as exc:
            await uow.rollback()
            raise _KeyTaken() from exc

    cleaned = clean(data)
    # The pointer row is locked before the duplicate check: intake requests for one client
    # cannot both find "no open lead" and create two (the second waits, then sees the first).
    cursor = await distribution.lock(uow)
    open_leads = [
        lead
        for lead in await uow.repo.leads.duplicates(cleaned.phone, cleaned.email)
        if lead.status in (LeadStatus.NEW, LeadStatus.QUALIFYING)
    ]
    if open_leads:
        lead = open_leads[-1]  # the most recent open lead of this client
        outcome = DUPLICATE
        timeline.record(  # the client asked again: on that lead's timeline
            uow,
            ActivityKind.INTAKE,
            actor_id=None,
            text=cleaned.need or "",
            lead_id=lead.id,
            payload={"source": str(cleaned.source), "repeat": True, "form": source.name},
        )
        recipients = await _people_for_existing(uow, lead)
    else:
        manager = await distribution.take_turn(uow, cursor, manager_telegram_ids)
        try:
            lead = await insert_lead(
                uow,
                None,
                replace(data, manager_id=manager.id if manager else None),
                allow_duplicate=True,
            )
        except ValidationError as exc:
            raise InvalidSubmission({_DOMAIN_TO_API.get(exc.field, exc.field): exc.code}) from exc
        outcome = CREATED
        recipients = [manager.id] if manager else await _fallback_recipients(uow)

    payload = lead_new(lead.id, cleaned, source.name, repeat=outcome == DUPLICATE)
    for employee_id in recipients:
        await enqueue(
            uow,
            employee_id,
            LEAD_NEW,
            payload,
            now,
            dedupe_key=f"{LEAD_NEW}:{lead.id}:{employee_id}" if outcome == CREATED else None,
        )
    if stored is not None:
        stored.outcome = outcome
        stored.lead_id = lead.id
    await uow.commit()
    return IntakeResult(outcome, lead.id, notified=tuple(recipients))


# --- assignment ---------------------------------------------------------------------------


async def next_manager(uow: UnitOfWork, telegram_ids: Sequence[int] = ()) -> Employee | None:
    """The manager the next lead goes to, by the company's rule (services/team/distribution),
    and move the pointer. The caller's transaction holds the pointer row until it commits or
    rolls back: two workers never hand out the same turn."""
    return await distribution.assign(uow, telegram_ids)


async def _fallback_recipients(uow: UnitOfWork) -> list[int]:
    """Nobody to assign: leaders and admins hear about the lead."""
    people = {
        e.id: e
        for role in (Role.LEADER, Role.ADMIN)
        for e in await uow.repo.employees.with_role(role)
    }
    return sorted(people)


async def _people_for_existing(uow: UnitOfWork, lead: Lead) -> list[int]:
    if lead.manager_id is not None:
        manager = await uow.repo.get(Employee, lead.manager_id)
        if manager is not None and manager.active:
            return [manager.id]
    return await _fallback_recipients(uow)


# --- housekeeping -------------------------------------------------------------------------


async def purge_idempotency_keys(uow: UnitOfWork, older_than: timedelta = timedelta(days=7)) -> int:
    """Forget keys older than ``older_than`` (clients retry within minutes); commits."""
    purged = await uow.repo.intake.purge_keys_before(uow.clock.now() - older_than)
    await uow.commit()
    return purged
