"""One function decides whether an actor may do an action on an object.

Every service calls `require` before it changes or shows anything. Callback data
is client input: ids in it are never trusted, the object is loaded and checked.

Scheduled work (deferred-demand dates, installment overdue checks) acts as `SYSTEM`: an
actor the table below knows, allowed only what those jobs do, and no employee (its rows
carry ``actor_id`` NULL: use `Actor.employee_id` for a row, never `Actor.id`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from services.errors import PermissionDenied
from storage.enums import Role
from storage.models import Deal, Employee, Lead, Task


@dataclass(frozen=True)
class Actor:
    id: int
    telegram_id: int
    name: str
    roles: frozenset[Role] = field(default_factory=frozenset)
    language: str | None = None
    active: bool = True
    unreachable: bool = False  # the bot was blocked by this person (outbox marks it)
    system: bool = False  # scheduled work, not a person (see SYSTEM)

    @classmethod
    def of(cls, employee: Employee) -> Actor:
        return cls(
            id=employee.id,
            telegram_id=employee.telegram_id,
            name=employee.name,
            roles=frozenset(Role(r) for r in employee.roles if r in Role._value2member_map_),
            language=employee.language,
            active=employee.active,
            unreachable=employee.unreachable,
        )

    @property
    def employee_id(self) -> int | None:
        """Who to record on a row (history, task author): None for the system."""
        return None if self.system else self.id

    def has(self, *roles: Role) -> bool:
        return any(r in self.roles for r in roles)

    @property
    def sees_all(self) -> bool:
        return self.has(Role.ADMIN, Role.LEADER)


class Action(StrEnum):
    LEAD_CREATE = "lead.create"
    LEAD_VIEW = "lead.view"
    LEAD_EDIT = "lead.edit"
    DEAL_VIEW = "deal.view"
    DEAL_MOVE = "deal.move"
    DEAL_EDIT = "deal.edit"
    DEAL_REASSIGN = "deal.reassign"
    TASK_CREATE = "task.create"
    TASK_CREATE_FOR_OTHERS = "task.create_for_others"
    TASK_VIEW = "task.view"
    TASK_ACT = "task.act"
    ASSIGN_MEASURER = "task.assign_measurer"
    ASSIGN_CREW = "task.assign_crew"  # the head of installation's choice of a crew
    QUALITY_CHECK = "task.quality_check"
    INSTALL_ACT = "task.install"  # a step of an installation job: its own installer only
    TEAM_MANAGE = "team.manage"
    ABSENCE_SET = "team.absence"  # a manager's day off (lead distribution passes them over)
    CONFIG_EDIT = "config.edit"
    REPORTS_OWN = "reports.own"
    REPORTS_ALL = "reports.all"
    PLAN_SET = "plan.set"  # a month's sales plan, per manager or for the company
    IMPORT = "import"
    PAYMENT_RECORD = "payment.record"
    # A client's Telegram Business messages on a deal or lead: read by its manager, leaders
    # and admins, never by other managers or measurers; replied to by its manager only.
    MESSAGES_READ = "messages.read"
    MESSAGES_REPLY = "messages.reply"


SALES_ROLES = (Role.MANAGER, Role.LEADER, Role.ADMIN)

_ROLE_ONLY: dict[Action, tuple[Role, ...]] = {
    Action.LEAD_CREATE: SALES_ROLES,
    Action.TASK_CREATE: (*SALES_ROLES, Role.HEAD_MEASURER),
    Action.TASK_CREATE_FOR_OTHERS: (Role.LEADER, Role.ADMIN),
    Action.DEAL_REASSIGN: (Role.LEADER, Role.ADMIN),
    Action.TEAM_MANAGE: (Role.ADMIN,),
    Action.ABSENCE_SET: (Role.LEADER, Role.ADMIN),
    Action.CONFIG_EDIT: (Role.ADMIN,),
    Action.REPORTS_OWN: SALES_ROLES,
    Action.REPORTS_ALL: (Role.LEADER, Role.ADMIN),
    Action.PLAN_SET: (Role.LEADER, Role.ADMIN),
    Action.IMPORT: (Role.LEADER, Role.ADMIN),
    Action.ASSIGN_MEASURER: (Role.HEAD_MEASURER, Role.LEADER, Role.ADMIN),
    Action.ASSIGN_CREW: (Role.HEAD_INSTALLER, Role.LEADER, Role.ADMIN),
    Action.QUALITY_CHECK: (Role.HEAD_INSTALLER, Role.LEADER, Role.ADMIN),
}


# What scheduled work may do: move any deal under the pipeline's rules (which make entry
# tasks). Nothing else: it never views, edits or acts for a person.
SYSTEM_ACTIONS = frozenset({Action.DEAL_MOVE, Action.TASK_CREATE})

# The one system actor. Its id 0 is never a row id (ids are positive); rows take
# `employee_id`, which is None.
SYSTEM = Actor(id=0, telegram_id=0, name="system", system=True)


def can(actor: Actor, action: Action, obj: object = None) -> bool:
    if not actor.active:
        return False
    if actor.system:
        return action in SYSTEM_ACTIONS
    if action in _ROLE_ONLY:
        return actor.has(*_ROLE_ONLY[action])
    if isinstance(obj, Deal) and action in (
        Action.DEAL_VIEW,
        Action.DEAL_MOVE,
        Action.DEAL_EDIT,
        Action.PAYMENT_RECORD,
    ):
        if actor.sees_all:
            return True
        return actor.has(Role.MANAGER) and obj.manager_id == actor.id
    if isinstance(obj, Deal | Lead) and action == Action.MESSAGES_READ:
        if actor.sees_all:
            return True
        return actor.has(Role.MANAGER) and obj.manager_id == actor.id
    if isinstance(obj, Deal | Lead) and action == Action.MESSAGES_REPLY:
        # Replies go out through the manager's own business account: theirs alone.
        return actor.has(Role.MANAGER) and obj.manager_id == actor.id
    if isinstance(obj, Lead) and action in (Action.LEAD_VIEW, Action.LEAD_EDIT):
        if actor.sees_all:
            return True
        # An unassigned lead (site form, import) can be taken by any manager.
        return actor.has(Role.MANAGER) and obj.manager_id in (actor.id, None)
    if isinstance(obj, Task) and action == Action.INSTALL_ACT:
        # Only the installer the job was given to: not another crew, not a manager, not a
        # measurer, not a leader acting for them.
        return actor.has(Role.INSTALLER) and obj.assignee_id == actor.id
    if isinstance(obj, Task) and action in (Action.TASK_VIEW, Action.TASK_ACT):
        if obj.assignee_id == actor.id:
            return True
        if obj.assignee_id is None and obj.assignee_role is not None:
            return obj.assignee_role in actor.roles
        # Leaders oversee every task; measurers and managers see only their own.
        return actor.sees_all
    return False


def require(actor: Actor, action: Action, obj: object = None) -> None:
    if not can(actor, action, obj):
        raise PermissionDenied(str(action))


# --- clients (issue 25) ---------------------------------------------------------------------


@dataclass(frozen=True)
class ClientActor:
    """A client writing to the bot from their own Telegram: never an employee (a staff
    member is never made a client by a link). Their scope is the contacts linked to their
    account (storage ClientLink rows); nothing else exists for them."""

    telegram_id: int
    contact_ids: frozenset[int]
    first_name: str
    language: str | None = None
    stopped: bool = False  # they said /stop (any of their links): /start turns it back on
    blocked: bool = False  # a send was refused (403): cleared when they write again


def client_can(client: ClientActor | None, obj: object) -> bool:
    """The one check of every client action: the object belongs to one of the client's
    contacts. `obj` is a Deal (its contact), or a contact id."""
    if client is None or not client.contact_ids:
        return False
    if isinstance(obj, Deal):
        return obj.contact_id is not None and obj.contact_id in client.contact_ids
    if isinstance(obj, int) and not isinstance(obj, bool):
        return obj in client.contact_ids
    return False


def require_client(client: ClientActor | None, obj: object) -> None:
    if not client_can(client, obj):
        raise PermissionDenied("client")
