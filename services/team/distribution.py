"""Who gets a new lead, and who is on duty (issue 26).

One service for every automatic channel (the site form, a stranger's Business chat when
its manager is off, the bot's client requests, imports without a manager): `assign` picks
a manager on duty by the company's rule (`CompanyPolicy.distribution`):

- ``round_robin``: the manager after the last one given a lead, in employee-id order,
  wrapping;
- ``least_loaded``: the one with the fewest open leads + open deals; a tie goes to the
  next one after the last given a lead (so equal loads take turns).

"On duty": an active manager with no day off (`absences`) on the company's local day;
managers who blocked the bot are passed over while someone reachable is on duty. The
pointer is the ``assignment_cursors`` row "intake", locked for the rest of the caller's
transaction (FOR UPDATE on PostgreSQL), so workers take turns on one sequence and a
rolled-back intake gives its turn back. A leader's reassignment (the lead's or the deal's
card, the escalation's buttons) overrides the choice at any time.

Days off are set by leaders and admins (`set_absence`): the /team screen and /dayoff.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from services import dates, policy
from services.errors import ValidationError
from services.permissions import Action, Actor, require
from storage.enums import Role
from storage.models import Employee
from storage.models.intake import AssignmentCursor
from storage.uow import UnitOfWork

CURSOR_NAME = "intake"


def today(uow: UnitOfWork) -> date:
    return dates.local_today(uow.clock, policy.of(uow).timezone)


async def on_duty(
    uow: UnitOfWork, telegram_ids: Sequence[int] = (), day: date | None = None
) -> list[Employee]:
    """Active managers without a day off on `day` (today), reachable ones first choice;
    only those with one of `telegram_ids` when given. In employee-id order."""
    managers = await uow.repo.employees.with_role(Role.MANAGER)  # active ones
    if telegram_ids:
        wanted = set(telegram_ids)
        managers = [e for e in managers if e.telegram_id in wanted]
    absent = await uow.repo.response.absent_on(day or today(uow))
    present = [e for e in managers if e.id not in absent]
    reachable = [e for e in present if not e.unreachable]
    return sorted(reachable or present, key=lambda e: e.id)


async def lock(uow: UnitOfWork) -> AssignmentCursor:
    """The distribution pointer, locked until the caller's transaction ends."""
    return await uow.repo.intake.lock_cursor(CURSOR_NAME, uow.clock.now())


async def assign(uow: UnitOfWork, telegram_ids: Sequence[int] = ()) -> Employee | None:
    """The manager the next new lead goes to (None: nobody on duty); moves the pointer."""
    return await take_turn(uow, await lock(uow), telegram_ids)


async def take_turn(
    uow: UnitOfWork, cursor: AssignmentCursor, telegram_ids: Sequence[int] = ()
) -> Employee | None:
    """`assign` with the pointer already locked (the intake locks it before its duplicate
    check)."""
    chosen = await assign_many(uow, 1, telegram_ids, cursor=cursor)
    return chosen[0] if chosen else None


async def assign_many(
    uow: UnitOfWork,
    count: int,
    telegram_ids: Sequence[int] = (),
    *,
    cursor: AssignmentCursor | None = None,
) -> list[Employee]:
    """The managers the next `count` new leads go to, in order (empty: nobody on duty), as
    if each were assigned in turn (an import's rows); moves the pointer past the last."""
    if cursor is None:
        cursor = await lock(uow)
    managers = await on_duty(uow, telegram_ids)
    if not managers or count <= 0:
        return []
    load = None
    if policy.of(uow).distribution == "least_loaded":
        load = await uow.repo.response.open_load([e.id for e in managers])
    last = cursor.last_employee_id
    chosen: list[Employee] = []
    for _ in range(count):
        # the turn order: those after the last given a lead, then those before (wrapping)
        order = [e for e in managers if last is None or e.id > last]
        order += [e for e in managers if last is not None and e.id <= last]
        pick = order[0]
        if load is not None:
            pick = min(order, key=lambda e: load[e.id])  # min keeps the first of a tie
            load[pick.id] += 1
        chosen.append(pick)
        last = pick.id
    cursor.last_employee_id = last
    cursor.updated_at = uow.clock.now()
    return chosen


async def stand_in(uow: UnitOfWork, employee: Employee) -> Employee:
    """`employee` when they are on duty today (or not a manager: a leader's own chats stay
    theirs), else the manager the rule picks (`employee` again with nobody on duty)."""
    if Role.MANAGER not in employee.roles:
        return employee
    if employee.id not in await uow.repo.response.absent_on(today(uow)):
        return employee
    return await assign(uow) or employee


# --- days off -----------------------------------------------------------------------------


async def set_absence(
    uow: UnitOfWork, actor: Actor, employee_id: int, day: date, absent: bool = True
) -> bool:
    """Mark (or clear) an employee's day off; leaders and admins only. Commits; True when
    something changed. A past day is refused (it would rewrite who was on duty)."""
    require(actor, Action.ABSENCE_SET)
    emp = await uow.repo.get(Employee, employee_id) if isinstance(employee_id, int) else None
    if emp is None or not emp.active:
        raise ValidationError("employee", "unknown")
    if day < today(uow):
        raise ValidationError("day", "past")
    if absent:
        changed = await uow.repo.response.add_absence(
            emp.id, day, actor.employee_id, uow.clock.now()
        )
    else:
        changed = await uow.repo.response.remove_absence(emp.id, day)
    await uow.commit()
    return changed


@dataclass(frozen=True)
class DayOffBoard:
    """/dayoff: the managers, today, and the days off from today on."""

    today: date
    managers: tuple[tuple[int, str], ...]  # (employee id, name), by name
    days_off: tuple[tuple[date, int, str], ...]  # (day, employee id, name)

    def is_off(self, employee_id: int, day: date) -> bool:
        return any(d == day and e == employee_id for d, e, _ in self.days_off)


async def day_off_board(uow: UnitOfWork, actor: Actor) -> DayOffBoard:
    require(actor, Action.ABSENCE_SET)
    managers = await uow.repo.employees.with_role(Role.MANAGER)  # active, by name
    return DayOffBoard(
        today(uow),
        tuple((e.id, e.name) for e in managers),
        tuple(await absences(uow, actor)),
    )


async def toggle_day_off(uow: UnitOfWork, actor: Actor, employee_id: int, day: date) -> bool:
    """Set the day off, or clear it when it is set; True: the person is now off that day.
    Commits."""
    require(actor, Action.ABSENCE_SET)
    off = employee_id in await uow.repo.response.absent_on(day)
    await set_absence(uow, actor, employee_id, day, absent=not off)
    return not off


async def absences(uow: UnitOfWork, actor: Actor) -> list[tuple[date, int, str]]:
    """Days off from today on: (day, employee id, name); leaders and admins only."""
    require(actor, Action.ABSENCE_SET)
    rows = await uow.repo.response.absences_from(today(uow))
    names = {e.id: e.name for e in await uow.repo.employees.all()}
    return [(a.day, a.employee_id, names.get(a.employee_id, "?")) for a in rows]
