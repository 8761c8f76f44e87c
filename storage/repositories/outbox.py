"""The reminder outbox: enqueueing, cancelling, claiming and marking messages owed to people.
``uow.repo.outbox``; the engine that drives it is services/outbox/queue.py.

Every update here is set-based (one statement, ``synchronize_session=False``: no row objects
are loaded or refreshed). The sweeper's own writes are *fenced*: a row it claimed is touched
only while it is still ``claimed`` with the ``attempts`` value of that claim, so a row that
another sweeper re-claimed after the lease ran out is left alone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Table, and_, func, or_, select, update

from storage.enums import ReminderState
from storage.models import ClientLink, Employee, InstallmentDue, Reminder, Task
from storage.repositories.base import Repo


@dataclass(frozen=True, slots=True)
class DueReminder:
    """A due row as the claim reads it (a plain column select: no ORM objects to build)."""

    id: int
    recipient_id: int | None
    kind: str
    payload: Mapping[str, Any]
    due_at: datetime
    task_id: int | None
    deal_id: int | None
    attempts: int
    client_link_id: int | None = None


# Who a row is for: (employee id, None) or (None, client link id) (issue 25).
Recipient = tuple[int | None, int | None]

_DUE_COLUMNS = (
    Reminder.id,
    Reminder.recipient_id,
    Reminder.kind,
    Reminder.payload,
    Reminder.due_at,
    Reminder.task_id,
    Reminder.deal_id,
    Reminder.attempts,
    Reminder.client_link_id,
)


def _due(now: datetime, lease: timedelta) -> ColumnElement[bool]:
    """Pending and due, or claimed by a sweeper whose lease ran out (it died)."""
    return or_(
        and_(Reminder.state == ReminderState.PENDING.value, Reminder.due_at <= now),
        and_(
            Reminder.state == ReminderState.CLAIMED.value,
            Reminder.claimed_at <= now - lease,
        ),
    )


def _fence(claims: Mapping[int, int]) -> ColumnElement[bool]:
    """Still claimed, by the claim that set these attempts (reminder id -> attempts)."""
    by_attempts: dict[int, list[int]] = defaultdict(list)
    for rid, attempts in claims.items():
        by_attempts[attempts].append(rid)
    return and_(
        Reminder.state == ReminderState.CLAIMED.value,
        or_(
            *(
                and_(Reminder.id.in_(ids), Reminder.attempts == attempts)
                for attempts, ids in by_attempts.items()
            )
        ),
    )


class OutboxRepo(Repo):
    # --- writes from the domain (in the caller's transaction) ------------------------------

    async def enqueue(
        self,
        *,
        recipient_id: int | None,
        kind: str,
        payload: Mapping[str, Any],
        due_at: datetime,
        dedupe_key: str | None,
        task_id: int | None,
        deal_id: int | None,
        client_link_id: int | None = None,
    ) -> bool:
        """A pending row; ``INSERT ... ON CONFLICT (dedupe_key) DO NOTHING``, so a second
        row with the same key adds nothing (False). For a client: `client_link_id`, and
        `recipient_id` None."""
        values = {
            "due_at": due_at,
            "recipient_id": recipient_id,
            "client_link_id": client_link_id,
            "kind": kind,
            "payload": dict(payload),
            "state": ReminderState.PENDING.value,
            "attempts": 0,
            "task_id": task_id,
            "deal_id": deal_id,
            "dedupe_key": dedupe_key,
        }
        table = cast(Table, Reminder.__table__)
        return await self.insert_or_ignore(table, values, conflict_on=["dedupe_key"])

    async def _update(self, where: Sequence[ColumnElement[bool]], **values: Any) -> int:
        result = cast(
            CursorResult[Any],
            await self.session.execute(
                update(Reminder)
                .where(*where)
                .values(**values)
                .execution_options(synchronize_session=False)
            ),
        )
        return int(result.rowcount or 0)

    async def cancel_pending(self, task_id: int, kinds: Sequence[str] | None = None) -> int:
        """Cancel a task's rows that have not gone out yet (of these kinds, or all)."""
        conds = [Reminder.task_id == task_id, Reminder.state == ReminderState.PENDING.value]
        if kinds is not None:
            conds.append(Reminder.kind.in_(list(kinds)))
        return await self._update(conds, state=ReminderState.CANCELLED.value)

    async def cancel_by_dedupe(self, dedupe_keys: Sequence[str]) -> int:
        if not dedupe_keys:
            return 0
        return await self._update(
            [
                Reminder.dedupe_key.in_(list(dedupe_keys)),
                Reminder.state == ReminderState.PENDING.value,
            ],
            state=ReminderState.CANCELLED.value,
        )

    async def requeue_failed(
        self, recipient_id: int, errors: Collection[str], since: datetime
    ) -> int:
        """The person's rows that failed for one of these reasons and fell due since
        `since` are pending again, with their attempts counted from zero."""
        return await self._update(
            [
                Reminder.recipient_id == recipient_id,
                Reminder.state == ReminderState.FAILED.value,
                Reminder.last_error.in_(list(errors)),
                Reminder.due_at >= since,
            ],
            state=ReminderState.PENDING.value,
            attempts=0,
        )

    async def fail_pending(self, recipient_id: int, error: str) -> int:
        """Every pending row of the person fails with `error`."""
        return await self._update(
            [
                Reminder.recipient_id == recipient_id,
                Reminder.state == ReminderState.PENDING.value,
            ],
            state=ReminderState.FAILED.value,
            last_error=error,
        )

    # --- the sweeper's claim ----------------------------------------------------------------

    def writes_serialized(self) -> bool:
        """SQLite: one writer at a time (the sweeper queues its writes in asyncio instead of
        in SQLite's busy handler). PostgreSQL: row locks do the job."""
        return self.dialect == "sqlite"

    async def due_recipients(self, now: datetime, lease: timedelta, limit: int) -> list[Recipient]:
        """Who has rows due (or left by a dead sweeper), the longest waiting first: an
        employee (id, None) or a client's link (None, id)."""
        rows = await self.session.execute(
            select(Reminder.recipient_id, Reminder.client_link_id)
            .where(_due(now, lease))
            .group_by(Reminder.recipient_id, Reminder.client_link_id)
            .order_by(func.min(Reminder.due_at), Reminder.recipient_id, Reminder.client_link_id)
            .limit(limit)
        )
        return [(r, c) for r, c in rows.all()]

    async def lock_due(
        self, now: datetime, lease: timedelta, recipients: Sequence[Recipient], limit: int
    ) -> list[DueReminder]:
        """These people's due rows, oldest first; on PostgreSQL locked ``FOR UPDATE SKIP
        LOCKED`` so several sweepers never claim the same row (SQLite runs every transaction
        as BEGIN IMMEDIATE: the claim is exclusive there)."""
        staff = [r for r, _ in recipients if r is not None]
        clients = [c for _, c in recipients if c is not None]
        whose = []
        if staff:
            whose.append(Reminder.recipient_id.in_(staff))
        if clients:
            whose.append(Reminder.client_link_id.in_(clients))
        stmt = (
            select(*_DUE_COLUMNS)
            .where(_due(now, lease), or_(*whose))
            .order_by(Reminder.due_at, Reminder.id)
            .limit(limit)
        )
        if self.dialect == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        return [DueReminder(*row) for row in await self.session.execute(stmt)]

    async def recipients(self, ids: Collection[int]) -> dict[int, Employee]:
        if not ids:
            return {}
        found = await self.session.scalars(select(Employee).where(Employee.id.in_(list(ids))))
        return {e.id: e for e in found.all()}

    async def client_recipients(self, ids: Collection[int]) -> dict[int, ClientLink]:
        """The client links of client rows (issue 25): chat, language, /stop, blocked."""
        if not ids:
            return {}
        found = await self.session.scalars(select(ClientLink).where(ClientLink.id.in_(list(ids))))
        return {c.id: c for c in found.all()}

    async def tasks(self, ids: Collection[int]) -> dict[int, Task]:
        """The tasks of task-bound rows (a row whose task is closed is moot)."""
        if not ids:
            return {}
        found = await self.session.scalars(select(Task).where(Task.id.in_(list(ids))))
        return {t.id: t for t in found.all()}

    async def dues(self, ids: Collection[int]) -> dict[int, InstallmentDue]:
        """The installment dues of upcoming-payment rows (a paid one is moot)."""
        if not ids:
            return {}
        found = await self.session.scalars(
            select(InstallmentDue).where(InstallmentDue.id.in_(list(ids)))
        )
        return {d.id: d for d in found.all()}

    async def claim(self, ids: Sequence[int], now: datetime) -> None:
        """``claimed``, ``claimed_at = now``, ``attempts + 1`` (the new attempts value is the
        fence of everything the claimer does with the row afterwards)."""
        if ids:
            await self._update(
                [Reminder.id.in_(list(ids))],
                state=ReminderState.CLAIMED.value,
                claimed_at=now,
                attempts=Reminder.attempts + 1,
            )

    async def postpone(self, ids: Sequence[int], due_at: datetime, reason: str) -> None:
        """Rows held back (a client's quiet hours): still pending, due later."""
        if ids:
            await self._update(
                [Reminder.id.in_(list(ids))],
                state=ReminderState.PENDING.value,
                due_at=due_at,
                last_error=reason,
            )

    async def settle_client(self, link_ids: Collection[int], state: str, error: str) -> int:
        """Every pending row of these client links is cancelled or failed with `error`
        (/stop, a blocked bot)."""
        if not link_ids:
            return 0
        return await self._update(
            [
                Reminder.client_link_id.in_(list(link_ids)),
                Reminder.state == ReminderState.PENDING.value,
            ],
            state=state,
            last_error=error,
        )

    async def settle(self, ids: Sequence[int], state: str, error: str) -> None:
        """Rows found cancelled or failed at claim time, with the reason."""
        if ids:
            await self._update([Reminder.id.in_(list(ids))], state=state, last_error=error)

    # --- after the claim: fenced by the claim's attempts ------------------------------------

    async def update_claimed(self, claims: Mapping[int, int], **values: Any) -> int:
        """Set `values` on the rows still held by these claims (reminder id -> attempts);
        returns how many were."""
        return await self._update([_fence(claims)], **values)
