"""The first-response promise (issue 26): a new lead from any channel gets its first touch
(services/sales/leads.py `TOUCH_KINDS`) within `CompanyPolicy.first_response` of working
time (services/worktime.py: the clock stops outside working hours), or the head of sales
is asked to reassign it.

`first_response_scan` (every scan, bot/scheduler.py) finds the open leads with no touch
whose due moment (came + limit, in working time) has come, and queues one `lead.late`
message per leader (none: per admin), deduplicated per lead and person, and marks the lead
(`late_at`): a lead is escalated once. More than `AT_ONCE` late leads in one scan (a big
import nobody touched): the oldest one by one, the rest in one `lead.late_many` message.
It runs only while the office is open (or within `GRACE` after a due moment that fell at
the close): a lead that came at night is due at the morning's start plus the
limit, and nobody is woken up. The message's buttons give the lead to a manager on duty
(services/sales/leads.py `reassign`: the leader's right is checked there at the tap).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from services import policy
from services.common import employee_name
from services.outbox import queue as outbox
from services.outbox.payloads import LeadLate, LeadLateMany
from services.outbox.queue import Kind
from services.team import distribution
from storage.enums import Role
from storage.models import Lead
from storage.uow import UnitOfWork

# How far back the scan looks for leads still waiting (older ones were escalated already,
# or came before the promise existed).
LOOKBACK = timedelta(days=14)
# A due moment at the very close of the day is still told this long after it.
GRACE = timedelta(minutes=10)
# Buttons: at most this many managers on duty are offered.
MAX_CHOICES = 8
# At most this many late leads are told one by one per scan (oldest first); the rest of
# them (a big import nobody touched) in one message.
AT_ONCE = 10


def dedupe_key(lead_id: int, person_id: int) -> str:
    return f"lead.late:{lead_id}:{person_id}"


async def heads_of_sales(uow: UnitOfWork) -> list[int]:
    """Who is told of a late lead: the leaders (the admins when there is none)."""
    for role in (Role.LEADER, Role.ADMIN):
        people = await uow.repo.employees.with_role(role)
        if people:
            return sorted(e.id for e in people)
    return []


async def first_response_scan(uow: UnitOfWork) -> int:
    """Queue the late leads' escalations; commits. Returns how many leads were escalated
    (queued for at least one person now)."""
    pol = policy.of(uow)
    limit, hours = pol.first_response, pol.work_hours
    if limit <= timedelta():
        return 0
    now = uow.clock.now()
    waiting = await uow.repo.response.unanswered(now - LOOKBACK - limit, now - limit)
    late: list[tuple[Lead, datetime]] = []
    for lead in waiting:
        due = hours.add(lead.created_at, limit)
        if due <= now and (hours.is_open(now) or now - due <= GRACE):
            late.append((lead, due))
    if not late:
        return 0
    people = await heads_of_sales(uow)
    duty = [(e.id, e.name) for e in await distribution.on_duty(uow)]
    limit_minutes = round(limit.total_seconds() / 60)
    escalated = 0
    one_by_one, rest = late[:AT_ONCE], late[AT_ONCE:]
    for lead, due in one_by_one:
        payload = LeadLate(
            lead_id=lead.id,
            name=lead.name,
            source=lead.source,
            came_at=lead.created_at,
            due_at=due,
            limit_minutes=limit_minutes,
            manager=await employee_name(uow, lead.manager_id),
            manager_id=lead.manager_id,
            choices=tuple(c for c in duty if c[0] != lead.manager_id)[:MAX_CHOICES],
        )
        queued = False
        for person in people:
            queued |= await outbox.enqueue(
                uow, person, Kind.LEAD_LATE, payload, due, dedupe_key=dedupe_key(lead.id, person)
            )
        escalated += queued
    if rest:  # a big import: one message for the rest, not one each
        many = LeadLateMany(
            count=len(rest), oldest_came_at=rest[0][0].created_at, limit_minutes=limit_minutes
        )
        first = min(lead.id for lead, _ in rest)
        for person in people:
            await outbox.enqueue(
                uow,
                person,
                Kind.LEAD_LATE_MANY,
                many,
                now,
                dedupe_key=f"lead.late_many:{first}:{person}",
            )
        escalated += len(rest)
    await uow.repo.response.mark_late([lead.id for lead, _ in late], now)
    await uow.commit()
    return escalated
