"""Staff: one-time invites, registration, roles, deactivation, access attempts, language."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from services import validation
from services.common import load
from services.errors import NotFound, RuleViolation, ValidationError
from services.permissions import Action, Actor, require
from storage.enums import Role
from storage.models import AccessAttempt, Employee, Invite
from storage.uow import UnitOfWork

TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
LANGUAGES = ("ru", "en")


@dataclass(frozen=True)
class InviteInfo:
    token: str
    role: str
    expires_at: datetime


@dataclass(frozen=True)
class EmployeeInfo:
    id: int
    telegram_id: int
    name: str
    username: str | None
    roles: tuple[str, ...]
    active: bool
    unreachable: bool
    language: str | None = None


@dataclass(frozen=True)
class AttemptInfo:
    telegram_id: int
    name: str
    username: str | None
    at: datetime


def _info(emp: Employee) -> EmployeeInfo:
    return EmployeeInfo(
        id=emp.id,
        telegram_id=emp.telegram_id,
        name=emp.name,
        username=emp.username,
        roles=tuple(emp.roles),
        active=emp.active,
        unreachable=emp.unreachable,
        language=emp.language,
    )


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError as exc:
        raise ValidationError("role", "unknown") from exc


def invite_roles(actor: Actor) -> list[str]:
    """The roles an invite may carry (only admins invite)."""
    require(actor, Action.TEAM_MANAGE)
    return [r.value for r in Role]


async def create_invite(
    uow: UnitOfWork, actor: Actor, role: str, ttl: timedelta = timedelta(hours=72)
) -> InviteInfo:
    require(actor, Action.TEAM_MANAGE)
    the_role = _role(role)
    now = uow.clock.now()
    invite = Invite(
        token=secrets.token_urlsafe(18),  # 24 chars of [A-Za-z0-9_-]: fits a deep link
        role=the_role.value,
        created_by_id=actor.id,
        created_at=now,
        expires_at=now + ttl,
    )
    uow.repo.add(invite)
    await uow.commit()
    return InviteInfo(invite.token, invite.role, invite.expires_at)


async def accept_invite(
    uow: UnitOfWork,
    telegram_id: int,
    name: str,
    username: str | None,
    token: str,
    language: str | None = None,
) -> Actor:
    """Register (or add a role to) the person holding a valid one-time invite."""
    if not TOKEN_RE.match(token or ""):
        raise NotFound("invite", None)
    invite = await uow.repo.team.invite_by_token(token)
    if invite is None:
        raise NotFound("invite", None)
    now = uow.clock.now()
    if invite.used_at is not None:
        raise RuleViolation("invite_used")
    if invite.expires_at <= now:
        raise RuleViolation("invite_expired")
    emp = await uow.repo.employees.by_telegram_id(telegram_id)
    clean_name = validation.name(name or str(telegram_id), "name")
    if emp is None:
        emp = Employee(
            telegram_id=telegram_id,
            name=clean_name,
            username=username,
            roles=[invite.role],
            active=True,
            language=language if language in LANGUAGES else None,
            created_at=now,
        )
        uow.repo.add(emp)
    elif not emp.active:
        raise RuleViolation("deactivated")
    else:
        emp.roles = sorted({*emp.roles, invite.role})
    await uow.flush()
    # One-time even when two people open the link at once (see TeamRepo.claim_invite).
    if not await uow.repo.team.claim_invite(invite.id, now, emp.id):
        raise RuleViolation("invite_used")
    await uow.commit()
    return Actor.of(emp)


async def record_attempt(
    uow: UnitOfWork, telegram_id: int, name: str, username: str | None, text: str | None
) -> None:
    """Someone uninvited wrote: keep a trace admins can see (one row per person per hour)."""
    now = uow.clock.now()
    last = await uow.repo.team.last_attempt(telegram_id)
    if last is not None and now - last.at < timedelta(hours=1):
        return
    uow.repo.add(
        AccessAttempt(
            telegram_id=telegram_id,
            name=(name or "?")[:200],
            username=(username or None) and username[:64],
            text=(text or None) and text[:200],
            at=now,
        )
    )
    await uow.commit()


async def attempts(uow: UnitOfWork, actor: Actor, limit: int = 10) -> list[AttemptInfo]:
    require(actor, Action.TEAM_MANAGE)
    rows = await uow.repo.team.recent_attempts(limit)
    return [AttemptInfo(r.telegram_id, r.name, r.username, r.at) for r in rows]


async def setting_up(uow: UnitOfWork, actor: Actor) -> bool:
    """True when an admin has nobody to work with yet: every active employee is an admin
    (the ADMIN_IDS people, before the first invitation is accepted). Their /start then
    gets the setup guide instead of the bare menu."""
    if not actor.has(Role.ADMIN):
        return False
    return all(Role.ADMIN in e.roles for e in await uow.repo.employees.active())


async def team(uow: UnitOfWork, actor: Actor) -> list[EmployeeInfo]:
    require(actor, Action.TEAM_MANAGE)
    return [_info(e) for e in await uow.repo.employees.all()]


async def employee(uow: UnitOfWork, actor: Actor, employee_id: int) -> EmployeeInfo:
    require(actor, Action.TEAM_MANAGE)
    return _info(await load(uow, Employee, employee_id, "employee"))


async def toggle_role(uow: UnitOfWork, actor: Actor, employee_id: int, role: str) -> EmployeeInfo:
    require(actor, Action.TEAM_MANAGE)
    the_role = _role(role)
    emp = await load(uow, Employee, employee_id, "employee")
    roles = set(emp.roles)
    if the_role.value in roles:
        if the_role == Role.ADMIN and emp.id == actor.id:
            raise RuleViolation("cannot_demote_self")
        if len(roles) == 1:
            raise RuleViolation("needs_a_role")
        roles.discard(the_role.value)
    else:
        roles.add(the_role.value)
    emp.roles = sorted(roles)
    await uow.commit()
    return _info(emp)


async def set_active(uow: UnitOfWork, actor: Actor, employee_id: int, active: bool) -> EmployeeInfo:
    """Deactivation takes effect at once: the next update from that person is refused."""
    require(actor, Action.TEAM_MANAGE)
    emp = await load(uow, Employee, employee_id, "employee")
    if emp.id == actor.id and not active:
        raise RuleViolation("cannot_deactivate_self")
    emp.active = bool(active)
    await uow.commit()
    return _info(emp)


async def set_language(uow: UnitOfWork, actor: Actor, language: str) -> Actor:
    if language not in LANGUAGES:
        raise ValidationError("language", "unknown")
    emp = await load(uow, Employee, actor.id, "employee")
    emp.language = language
    await uow.commit()
    return Actor.of(emp)
