"""Small helpers every service uses: commit with conflict mapping, loading with NotFound."""

from __future__ import annotations

from typing import Any, TypeVar

from services.errors import NotFound, StaleVersion
from storage.errors import Conflict
from storage.models import Base, Employee
from storage.uow import UnitOfWork

M = TypeVar("M", bound=Base)


async def commit(uow: UnitOfWork, entity: str = "deal") -> None:
    """Commit once; a concurrent update of a versioned row becomes StaleVersion."""
    try:
        await uow.commit()
    except Conflict as exc:
        raise StaleVersion(entity) from exc


async def flush(uow: UnitOfWork, entity: str = "deal") -> None:
    """Flush now; a concurrent update of a versioned row becomes StaleVersion."""
    try:
        await uow.flush()
    except Conflict as exc:
        raise StaleVersion(entity) from exc


def is_id(ident: object) -> bool:
    """A positive int (and not a bool): the only thing a row id from client input may be."""
    return isinstance(ident, int) and not isinstance(ident, bool) and ident > 0


async def load(uow: UnitOfWork, model: type[M], ident: Any, entity: str) -> M:
    if not is_id(ident):
        raise NotFound(entity, ident)
    obj = await uow.repo.get(model, ident)
    if obj is None:
        raise NotFound(entity, ident)
    return obj


def check_version(entity: str, current: int, expected: int | None) -> None:
    if expected is not None and current != expected:
        raise StaleVersion(entity, current)


async def employee_name(uow: UnitOfWork, employee_id: int | None) -> str | None:
    """An employee's name, from the process cache while the staff is unchanged."""
    if employee_id is None:
        return None
    cache = await uow.cached("staff")
    key = ("name", employee_id)
    if key not in cache:
        emp = await uow.repo.get(Employee, employee_id)
        cache[key] = emp.name if emp else None
    name: str | None = cache[key]
    return name
