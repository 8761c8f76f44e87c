"""First response, daily norms, distribution (issue 26): the reads behind them.

- the leads still waiting for a first touch (the escalation scan), and per manager the
  stored first-response times (`leads.response_s`, working seconds) a response report
  adds up, plus the few rows without one (still waiting; or not back-filled yet);
- each employee's count of what a daily norm counts, over one local day;
- the open load per manager (open leads + open deals: least-loaded distribution);
- days off (`absences`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import (
    CursorResult,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    select,
    update,
)

from storage.enums import ActivityKind, LeadStatus, TaskKind
from storage.models import Absence, Activity, Deal, Lead, Task
from storage.repositories.base import Repo

OPEN_LEAD = (LeadStatus.NEW, LeadStatus.QUALIFYING)
NEXT_CONTACT_TASKS = (TaskKind.FOLLOW_UP, TaskKind.CALL_BACK, TaskKind.DEFERRED_CONTACT)


class ResponseRepo(Repo):
    # --- first response -------------------------------------------------------------------

    async def unanswered(self, came_after: datetime, came_before: datetime) -> Sequence[Lead]:
        """Open leads with no first touch, not escalated yet, that came in [came_after,
        came_before]."""
        rows = await self.session.scalars(
            select(Lead)
            .where(
                Lead.created_at >= came_after,
                Lead.created_at <= came_before,
                Lead.first_action_at.is_(None),
                Lead.late_at.is_(None),
                Lead.status.in_(OPEN_LEAD),
            )
            .order_by(Lead.created_at, Lead.id)
        )
        return rows.all()

    def _came(self, start: datetime, end: datetime, manager_ids: Iterable[int] | None) -> Any:
        where = [Lead.created_at >= start, Lead.created_at < end, Lead.manager_id.is_not(None)]
        if manager_ids is not None:
            where.append(Lead.manager_id.in_(list(manager_ids)))
        return and_(*where)

    async def response_summary(
        self,
        start: datetime,
        end: datetime,
        manager_ids: Iterable[int] | None,
        limit_s: int,
    ) -> list[tuple[int, int, int, int]]:
        """(manager id, leads, with a stored response time, of them within `limit_s`) of
        the assigned leads that came in [start, end): one aggregate."""
        stored = Lead.response_s.is_not(None)
        rows = await self.session.execute(
            select(
                Lead.manager_id,
                func.count(),
                func.count(Lead.response_s),
                func.coalesce(func.sum(case((and_(stored, Lead.response_s <= limit_s), 1))), 0),
            )
            .where(self._came(start, end, manager_ids))
            .group_by(Lead.manager_id)
        )
        return [(m, int(n), int(k), int(w)) for m, n, k, w in rows.all() if m is not None]

    async def response_unstored(
        self, start: datetime, end: datetime, manager_ids: Iterable[int] | None
    ) -> list[tuple[int, datetime, datetime | None]]:
        """(manager id, came, first touch or None) of those leads without a stored response
        time: still waiting, or touched before it was stored (not back-filled yet)."""
        rows = await self.session.execute(
            select(Lead.manager_id, Lead.created_at, Lead.first_action_at).where(
                self._came(start, end, manager_ids), Lead.response_s.is_(None)
            )
        )  # no ORDER BY: the index alone answers (ix_leads_came_response)
        return [(m, c, f) for m, c, f in rows.all() if m is not None]

    async def response_values(
        self, manager_id: int, start: datetime, end: datetime, offset: int = 0, limit: int = -1
    ) -> list[int]:
        """A manager's stored response times of the leads that came in [start, end),
        ascending: all of them, or `limit` from `offset` (the median's middle one or two).
        One range of ix_leads_manager_came_response, sorted."""
        stmt = (
            select(Lead.response_s)
            .where(
                Lead.manager_id == manager_id,
                Lead.created_at >= start,
                Lead.created_at < end,
                Lead.response_s.is_not(None),
            )
            .order_by(Lead.response_s)
        )
        if limit >= 0:
            stmt = stmt.offset(offset).limit(limit)
        return [int(v) for v in (await self.session.scalars(stmt)).all() if v is not None]

    async def mark_late(self, lead_ids: Sequence[int], at: datetime) -> None:
        """The leads' escalation was queued (no version bump: a mark, not an edit)."""
        if not lead_ids:
            return
        table = cast(Table, Lead.__table__)
        await self.session.execute(
            update(table).where(table.c.id.in_(list(lead_ids))).values(late_at=at)
        )

    async def response_unfilled(self, limit: int) -> list[tuple[int, datetime, datetime]]:
        """(id, came, first touch) of touched leads with no stored response time yet
        (the partial index ix_leads_response_unfilled), oldest id first."""
        rows = await self.session.execute(
            select(Lead.id, Lead.created_at, Lead.first_action_at)
            .where(Lead.first_action_at.is_not(None), Lead.response_s.is_(None))
            .order_by(Lead.id)
            .limit(limit)
        )
        return [(i, c, f) for i, c, f in rows.all() if f is not None]

    async def store_responses(self, values: Sequence[tuple[int, int]]) -> None:
        """Set `response_s` of leads by id (no version bump: a stored figure, not an edit)."""
        if not values:
            return
        table = cast(Table, Lead.__table__)
        await self.session.execute(
            update(table)
            .where(table.c.id == bindparam("lead_id"))
            .values(response_s=bindparam("seconds")),
            [{"lead_id": i, "seconds": s} for i, s in values],
        )

    # --- daily norms ----------------------------------------------------------------------

    async def norm_counts(
        self, start: datetime, end: datetime, employee_ids: Sequence[int]
    ) -> dict[tuple[int, str], int]:
        """{(employee id, what): count} over [start, end) for every kind of norm."""
        if not employee_ids:
            return {}
        ids = list(employee_ids)
        counts: dict[tuple[int, str], int] = {}
        logged = await self.session.execute(
            select(Activity.author_id, Activity.kind, func.count())
            .where(
                Activity.at >= start,
                Activity.at < end,
                Activity.author_id.in_(ids),
                Activity.kind.in_((ActivityKind.CALL, ActivityKind.NOTE)),
            )
            .group_by(Activity.author_id, Activity.kind)
        )
        for who, kind, n in logged.all():
            if who is None:
                continue
            counts[(who, "calls" if kind == ActivityKind.CALL else "notes")] = int(n)
        contacts = await self.session.execute(
            select(Task.created_by_id, func.count())
            .where(
                Task.created_at >= start,
                Task.created_at < end,
                Task.created_by_id.in_(ids),
                Task.kind.in_(NEXT_CONTACT_TASKS),
            )
            .group_by(Task.created_by_id)
        )
        for who, n in contacts.all():
            if who is None:
                continue
            counts[(who, "next_contacts")] = int(n)
        taken = await self.session.execute(
            select(Lead.manager_id, func.count())
            .where(
                Lead.first_action_at >= start,
                Lead.first_action_at < end,
                Lead.manager_id.in_(ids),
            )
            .group_by(Lead.manager_id)
        )
        for who, n in taken.all():
            if who is None:
                continue
            counts[(who, "leads_taken")] = int(n)
        booked = await self.session.execute(
            select(Deal.manager_id, func.count())
            .select_from(Task)
            .join(Deal, Deal.id == Task.deal_id)
            .where(
                Task.created_at >= start,
                Task.created_at < end,
                Task.kind == TaskKind.MEASURE,
                Deal.manager_id.in_(ids),
            )
            .group_by(Deal.manager_id)
        )
        for who, n in booked.all():
            if who is None:
                continue
            counts[(who, "measurements_booked")] = int(n)
        return counts

    # --- distribution ---------------------------------------------------------------------

    async def open_load(self, manager_ids: Sequence[int]) -> dict[int, int]:
        """Open leads + open deals per manager (zero for one with none)."""
        load = dict.fromkeys(manager_ids, 0)
        if not manager_ids:
            return load
        ids = list(manager_ids)
        leads = await self.session.execute(
            select(Lead.manager_id, func.count())
            .where(Lead.manager_id.in_(ids), Lead.status.in_(OPEN_LEAD))
            .group_by(Lead.manager_id)
        )
        deals = await self.session.execute(
            select(Deal.manager_id, func.count())
            .where(Deal.manager_id.in_(ids), Deal.closed_at.is_(None))
            .group_by(Deal.manager_id)
        )
        for who, n in [*leads.all(), *deals.all()]:
            if who is not None:
                load[who] += int(n)
        return load

    # --- days off -------------------------------------------------------------------------

    async def absent_on(self, day: date) -> set[int]:
        rows = await self.session.scalars(select(Absence.employee_id).where(Absence.day == day))
        return set(rows.all())

    async def absences_from(self, day: date, limit: int = 50) -> Sequence[Absence]:
        rows = await self.session.scalars(
            select(Absence)
            .where(Absence.day >= day)
            .order_by(Absence.day, Absence.employee_id)
            .limit(limit)
        )
        return rows.all()

    async def add_absence(
        self, employee_id: int, day: date, set_by_id: int | None, at: datetime
    ) -> bool:
        values = {"employee_id": employee_id, "day": day, "set_by_id": set_by_id, "set_at": at}
        return await self.insert_or_ignore(cast(Table, Absence.__table__), values)

    async def remove_absence(self, employee_id: int, day: date) -> bool:
        result = cast(
            CursorResult[Any],
            await self.session.execute(
                delete(Absence).where(Absence.employee_id == employee_id, Absence.day == day)
            ),
        )
        return bool(result.rowcount)
