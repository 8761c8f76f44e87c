"""Employees: bootstrap admins from settings, look up the acting person."""

from __future__ import annotations

from collections.abc import Iterable

from services.permissions import Actor
from storage.enums import Role
from storage.models import Employee
from storage.uow import UnitOfWork


def placeholder_name(telegram_id: int) -> str:
    """The name an ADMIN_IDS admin has until they first write to the bot."""
    return f"Admin {telegram_id}"


def has_placeholder_name(actor: Actor) -> bool:
    return actor.name == placeholder_name(actor.telegram_id)


async def name_from_profile(
    uow: UnitOfWork, actor: Actor, name: str, username: str | None
) -> Actor:
    """A first admin's first contact: their Telegram name replaces the placeholder (only
    while it is still the placeholder: a name set since is kept). Commits."""
    name = " ".join(name.split())[:200]
    emp = await uow.repo.employees.by_telegram_id(actor.telegram_id)
    if emp is None or not name or emp.name != placeholder_name(emp.telegram_id):
        return actor
    emp.name = name
    emp.username = username or emp.username
    await uow.commit()
    return Actor.of(emp)


async def ensure_admins(uow: UnitOfWork, telegram_ids: Iterable[int]) -> list[int]:
    """Make sure each id is an active admin (first admins come from ADMIN_IDS)."""
    created: list[int] = []
    for tg_id in telegram_ids:
        emp = await uow.repo.employees.by_telegram_id(tg_id)
        if emp is None:
            emp = Employee(
                telegram_id=tg_id,
                name=placeholder_name(tg_id),  # until their first message (name_from_profile)
                roles=[Role.ADMIN.value],
                active=True,
                created_at=uow.clock.now(),
            )
            uow.repo.add(emp)
            created.append(tg_id)
        elif Role.ADMIN not in emp.roles or not emp.active:
            emp.roles = sorted({*emp.roles, Role.ADMIN.value})
            emp.active = True
    await uow.commit()
    return created


async def actor_for(uow: UnitOfWork, telegram_id: int) -> Actor | None:
    """The acting employee, or None for anyone uninvited or deactivated; from the process
    cache while the staff is unchanged (every write to employees invalidates it)."""
    cache = await uow.cached("staff")
    key = ("actor", telegram_id)
    if key not in cache:
        emp = await uow.repo.employees.by_telegram_id(telegram_id)
        cache[key] = Actor.of(emp) if emp is not None and emp.active else None
    actor: Actor | None = cache[key]
    return actor


async def staff(uow: UnitOfWork) -> list[Actor]:
    """Every active employee, as actors (for per-person command menus)."""
    return [Actor.of(e) for e in await uow.repo.employees.active()]
