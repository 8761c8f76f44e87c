"""The reminder engine: an outbox of messages owed to people, swept by one interval job.

Rows, not scheduler jobs (docs ARCHITECTURE.md). Everything the bot must tell someone at some
moment is a `Reminder` row (recipient, kind, payload, due_at, state). Nothing else schedules.

Generators (what puts rows in), all idempotent through ``dedupe_key`` (a unique column; the
insert is ``INSERT ... ON CONFLICT (dedupe_key) DO NOTHING`` on both backends):

- at creation time, inside the same transaction as the domain change:
  ``services.tasks.create_task`` enqueues the task card for its assignee (``task.new``, due
  now, unless the assignee made the task) and the reminder at the task's due time
  (``task.due``; for a measurement an hour before it). Snoozing cancels the pending reminder
  and enqueues one at the new time. Installment plans enqueue ``installment.upcoming`` N days
  before each due date; measurement results enqueue ``measure.done`` to the manager.
- by periodic scans (cron jobs in bot/scheduler.py, each safe to run twice): overdue tasks
  escalated to leaders (``task.escalated``), installments past their grace period
  (``installment.overdue``), the morning summary (``summary.morning``).

Sweep (`Sweeper.sweep_once`, the interval job; every statement it runs is in
storage/repositories/outbox.py):

1. claim — in one transaction pick rows that are due (``pending`` and ``due_at <= now``, or
   ``claimed`` with an expired lease: a sweeper that died), at most ``max_recipients``
   people and ``max_items_per_recipient`` rows each; on PostgreSQL the row lock is
   ``FOR UPDATE SKIP LOCKED`` so several workers never claim the same row (SQLite runs every
   transaction as BEGIN IMMEDIATE: the claim is exclusive there). Each row's payload is
   parsed into its kind's class (services/outbox/payloads.py); one that does not parse is
   failed with the reason (and logged), the others go on. Rows that became moot are
   cancelled (their task is closed or was rescheduled, the installment is paid), rows for a
   deactivated person are cancelled, and so are rows for the made-up people of
   ``voronka demo`` (negative Telegram ids, which no real account has: they never get a
   message), for an unreachable person failed. The rest become
   ``claimed`` (``claimed_at = now``, ``attempts + 1``) and the transaction commits.
2. group — one message per person: all of a person's items together (``items_per_message``
   at most per message), except task cards (``task.new``) and summaries, which have their own
   buttons and go alone. Items due more than ``late_after`` ago are flagged ``late``.
3. send — through a `Notifier` (bot/notifier.py; no aiogram here), ``max_in_flight`` at a
   time, each send first taking a slot from the `RateLimiter` (≈30 messages/s per bot,
   1/s per chat). `DeliveryRetryAfter` (429): its scope -- that chat, or the whole bot
   when several chats are refused in a row -- holds for ``retry_after`` and the message is
   tried again; only a bot-wide 429 slows the limiter down to what the server accepted, and
   it regains speed slowly (`RateLimiter.throttled`). `DeliveryTransient` (5xx, network):
   the message is retried with exponential backoff of its own while the others go on (the
   bot's pace is not lowered), then released back to ``pending`` for the next sweep
   (``failed`` after ``max_attempts`` claims). `DeliveryForbidden` (403, the bot is
   blocked): the employee is marked unreachable, their rows fail, and every admin gets
   ``admin.unreachable``.
   `DeliveryRejected` (400): the rows fail with the reason.
4. mark — after each successful send its rows become ``sent``, fenced by ``attempts`` (a
   row re-claimed by someone else is not touched). One marker task commits everything sent
   since its last commit in one transaction, so a slow commit delays bookkeeping, not
   sending; senders wait while more than ``max_unmarked`` sent messages are unmarked
   (``max_unmarked=0``: every send waits for its own mark).

Crash safety: a sweeper killed between claim and mark leaves its rows ``claimed``; once the
lease expires the next sweep claims them again. The lease is short (20 s by default) and
renewed while the sweeper still holds the rows (``claimed_at = now`` every third of the
lease, fenced by ``attempts``: every wait of the sweeper, a 429 hold included, is cut
into pieces no longer than that, each followed by the renewal check), so a live sweeper
keeps its rows through a long flood wait and a dead one's rows are free again within a
lease plus a sweep interval (30 s by default). Rows marked ``sent`` are never sent again;
the messages in flight at the moment of the crash (being sent, or sent and not yet marked:
at most ``max_in_flight + max_unmarked``; exactly one with ``max_in_flight=1,
max_unmarked=0``) are sent a second time; nothing is lost. After downtime everything that
fell due is sent, flagged late. `sweep_until_idle` claims the next batch in the background
while the current one's last messages go out, so the send rate does not dip between batches.

Time: the clock is injected (``clock.now()``), and so are ``sleep`` and ``monotonic`` of the
sender, so tests move a fake clock instead of sleeping.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from services import policy, timeline
from services.clock import Clock
from services.outbox import payloads
from services.outbox.payloads import (
    AdminUnreachable,
    ClientPayload,
    ClientPayment,
    InstallmentUpcoming,
    Payload,
    PayloadError,
    TaskLine,
)
from storage.enums import ActivityKind, ReminderState, Role, TaskStatus
from storage.models import ClientLink, Employee, InstallmentDue, Task
from storage.repositories.outbox import DueReminder, Recipient
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

SleepFn = Callable[[float], Awaitable[None]]
MonotonicFn = Callable[[], float]
UowFactory = Callable[[], UnitOfWork]

CLOSED_TASK_STATES = (TaskStatus.DONE, TaskStatus.DECLINED, TaskStatus.CANCELLED)


class Kind(StrEnum):
    """What a reminder row is about: its payload's class is `payloads.PAYLOADS[kind]`, its
    view `handlers.notify.views.VIEWS[kind]`."""

    TASK_NEW = "task.new"  # a task card for its assignee (assign measurer, measure, given task)
    TASK_DUE = "task.due"  # a task (follow-up, deferred contact, manual...) is due
    TASK_ESCALATED = "task.escalated"  # to leaders: someone's task is overdue
    TASK_DECLINED = "task.declined"  # to heads of measurers: a measurer can't make it
    MEASURE_DONE = "measure.done"  # to the manager: the measurement is done, files on the card
    INSTALLMENT_UPCOMING = "installment.upcoming"
    INSTALLMENT_OVERDUE = "installment.overdue"
    INSTALLMENT_PAID = "installment.paid"
    SUMMARY_MORNING = "summary.morning"
    ADMIN_UNREACHABLE = "admin.unreachable"
    BACKUP_FAILED = "backup.failed"  # to admins: the nightly backup failed (services/backups.py)
    DIGEST_DAILY = "digest.daily"  # to leaders: services/reports/digests.py
    DIGEST_WEEKLY = "digest.weekly"
    DEAL_REASSIGNED = "deal.reassigned"  # to the new manager and the previous one
    DEAL_ROTTING = "deal.rotting"  # to the manager: a deal sat in its stage past the limit
    DATE_SLIPPED = "deal.date_slipped"  # to the manager: an order's date passed (issue 24)
    LEAD_NEW = "lead.new"  # a lead came in through the intake API (or came again)
    LEAD_LATE = "lead.late"  # to leaders: a new lead's first touch is late (issue 26)
    LEAD_LATE_MANY = "lead.late_many"  # ... more of them at once than are told one by one
    # To a client's own Telegram (issue 25; rows with client_link_id, services/outbox/clients.py)
    CLIENT_STAGE = "client.stage"  # the deal entered a stage with a [client] message
    CLIENT_ON_WAY = "client.on_way"  # the measurer / installer set off
    CLIENT_PAY_SOON = "client.pay_soon"  # a part of their payment plan is due soon
    CLIENT_PAY_LATE = "client.pay_late"  # ... or was missed
    PLAN_REACHED = "plan.reached"  # to a manager: 50/90/100% of the month's plan
    PLAN_BEHIND = "plan.behind"  # to leaders: a manager is behind the plan's pace


# Kinds written to clients: only to a client link, never merged (each has its own buttons).
CLIENT_KINDS = frozenset(
    {Kind.CLIENT_STAGE, Kind.CLIENT_ON_WAY, Kind.CLIENT_PAY_SOON, Kind.CLIENT_PAY_LATE}
)


# Kinds that carry their own buttons and are never merged with others into one message.
STANDALONE_KINDS = frozenset(
    {
        Kind.TASK_NEW,
        Kind.SUMMARY_MORNING,
        Kind.DIGEST_DAILY,
        Kind.DIGEST_WEEKLY,
        Kind.DEAL_ROTTING,
        Kind.LEAD_LATE,
        *CLIENT_KINDS,
    }
)
# Kinds that are moot once their task is closed.
TASK_BOUND_KINDS = frozenset({Kind.TASK_NEW, Kind.TASK_DUE, Kind.TASK_ESCALATED})


# --- what the notifier gets, and what it may raise ----------------------------------------


@dataclass(frozen=True)
class OutboxItem:
    id: int
    kind: str
    payload: Payload  # parsed from the row: `payloads.PAYLOADS[kind]` (or `Unknown`)
    due_at: datetime
    late: bool
    task_id: int | None
    deal_id: int | None


@dataclass(frozen=True)
class Delivery:
    """One message to one person: one or more items. To a client (issue 25):
    `client_link_id`, and `recipient_id` None."""

    recipient_id: int | None
    chat_id: int
    language: str | None
    items: tuple[OutboxItem, ...]
    now: datetime
    client_link_id: int | None = None


class Notifier(Protocol):
    async def deliver(self, delivery: Delivery) -> None:
        """Send one message; raise a Delivery* exception when it was not delivered."""
        ...


class DeliveryError(Exception):
    """Base of what a Notifier raises."""


class DeliveryRetryAfter(DeliveryError):
    """Flood control (HTTP 429): nothing may be sent for `seconds`."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry after {seconds}s")
        self.seconds = max(float(seconds), 0.0)


class DeliveryForbidden(DeliveryError):
    """HTTP 403: the person blocked the bot (or the account is gone)."""


class DeliveryTransient(DeliveryError):
    """5xx or a network error: worth trying again later."""


class DeliveryRejected(DeliveryError):
    """HTTP 400 and the like: this message will never go through as it is."""


# --- enqueueing ---------------------------------------------------------------------------


def is_made_up(telegram_id: int) -> bool:
    """A person `voronka demo` invented (bot/demo.py gives them negative ids)."""
    return telegram_id < 0


async def enqueue(
    uow: UnitOfWork,
    recipient_id: int | None,
    kind: str,
    payload: Payload,
    due_at: datetime,
    dedupe_key: str | None = None,
    task_id: int | None = None,
    deal_id: int | None = None,
    *,
    client_link_id: int | None = None,
) -> bool:
    """Add a row to the outbox in the caller's transaction (the caller commits).

    `payload` must be the kind's class (services/outbox/payloads.py): anything else raises
    `PayloadMismatch` here, in the transaction of the change that enqueues it.
    With a ``dedupe_key`` a second call with the same key adds nothing (returns False):
    generators can run again after a crash or on two workers without sending twice.
    """
    payloads.check(str(kind), payload)
    if (recipient_id is None) == (client_link_id is None):
        raise ValueError("a row is for an employee or for a client link, one of them")
    if (client_link_id is not None) != (kind in CLIENT_KINDS):
        raise ValueError(f"{kind} is not for this kind of recipient")
    if due_at.tzinfo is None:
        raise ValueError("enqueue needs an aware due_at")
    if dedupe_key is not None and len(dedupe_key) > 128:
        raise ValueError("dedupe_key longer than 128")
    await uow.flush()  # rows this one references (a task just made) must exist
    return await uow.repo.outbox.enqueue(
        recipient_id=recipient_id,
        kind=str(kind),
        payload=payloads.dump(payload),
        due_at=due_at,
        dedupe_key=dedupe_key,
        task_id=task_id,
        deal_id=deal_id,
        client_link_id=client_link_id,
    )


async def cancel_pending(
    uow: UnitOfWork, *, task_id: int, kinds: Sequence[str] | None = None
) -> int:
    """Cancel a task's reminders that have not gone out yet (caller commits)."""
    return await uow.repo.outbox.cancel_pending(
        task_id, None if kinds is None else [str(k) for k in kinds]
    )


async def cancel_by_dedupe(uow: UnitOfWork, dedupe_keys: Sequence[str]) -> int:
    return await uow.repo.outbox.cancel_by_dedupe(dedupe_keys)


async def mark_reachable(
    uow: UnitOfWork, employee_id: int, *, requeue_within: timedelta = timedelta(days=3)
) -> int:
    """The person wrote to the bot again: clear `unreachable` and re-queue what failed for
    that reason in the last days. Returns the number of re-queued rows. Commits."""
    emp = await uow.repo.get(Employee, employee_id)
    if emp is None:
        return 0
    emp.unreachable = False
    since = uow.clock.now() - requeue_within
    requeued = await uow.repo.outbox.requeue_failed(
        employee_id, ("forbidden", "unreachable"), since
    )
    await uow.commit()
    return requeued


# --- rate limiting ------------------------------------------------------------------------

BOT_SCOPE_RUN = 4  # 429s in a row, from as many chats, that mean the bot's own limit


class RateLimiter:
    """Telegram's limits on one bot: `per_second` messages overall (and never more than
    `window_max` in any one second) and one per `per_chat` seconds to one chat.

    The guarantee is the 1-second cap: a send may start only while fewer than
    `window_max` sends are in flight or *finished* within the last second. Every message
    the server received in its last second is one of those (it finished after it arrived),
    so the server never counts more than `window_max` in any second, whatever the network
    or the event loop did. Within that, sends follow a grid of 1/`per_second` (smooth, not
    in bursts); after a stall of up to `catch_up` seconds the grid keeps its place and the
    missed slots are caught up (the cap still holds), so stalls don't cost throughput.
    A slot is taken at the moment of sending, never reserved ahead. Senders to one chat
    queue in order (a FIFO lock per chat) and keep `per_chat` seconds apart, counted from
    when the previous send finished. Call `sent(chat)` after each attempt.

    It adapts to what Telegram actually allows (AIMD-like), so a rate set too high costs
    little; only 429s move it. A 429 holds its scope for `retry_after` (`throttled`): one
    chat (whose per-chat pace grows when it had a message just before: x1.5, at most
    4 x `per_chat`), or -- several chats refused in a row -- the whole bot, whose rate then
    drops to below what the server had accepted (the sends of the second before the
    refused one, minus one; at most `decrease` times the rate) with the 1-second cap
    following it. A send that never arrived (`not_delivered`: 5xx, a dropped connection, a
    429) gives its slot back.
    Every second of sending without a 429 gives back `recovery` messages/s and
    `pace_recovery` seconds of the pace, up to the configured values: the limit is found
    again by probing slowly.
    """

    def __init__(
        self,
        per_second: float = 29.0,
        per_chat: float = 1.0,
        *,
        window_max: int | None = None,
        catch_up: float = 1.0,
        monotonic: MonotonicFn = time.monotonic,
        sleep: SleepFn = asyncio.sleep,
        decrease: float = 0.95,
        recovery: float = 0.05,
        pace_recovery: float = 0.01,
    ) -> None:
        if window_max is None:  # the configured rate's own cap (30 at Telegram's 29-30/s)
            window_max = max(30, math.ceil(per_second))
        if per_second <= 0 or per_chat < 0 or window_max < 1:
            raise ValueError("rates must be positive")
        self.ceiling = per_second  # the configured rate: never above it
        self.rate = per_second  # the current rate (lowered by 429s, regained slowly)
        self.interval = 1.0 / per_second
        self.catch_up = max(catch_up, self.interval)
        self.per_chat = per_chat
        self.chat_pace = per_chat  # the current per-chat gap (grown by a chat's 429s)
        self.decrease = decrease
        self.recovery = recovery
        self.pace_recovery = pace_recovery
        self.throttles = 0  # 429s seen
        self.bot_throttles = 0  # of them, taken as the bot's limit (everybody held)
        self._refused_run: set[int] = set()  # chats refused in a row, none accepted since
        self._chat_delivered: dict[int, float] = {}  # chat -> when a send to it last went
        self.lowest_rate = per_second
        self._monotonic = monotonic
        self._sleep = sleep
        self._slot = 0.0  # the next send's slot on the grid
        self._hold_until = 0.0
        self.window_max = window_max
        self.cap = window_max  # the current 1-second cap (follows the rate)
        self._window: deque[float] = deque()  # when recent sends finished, oldest first
        self._in_flight = 0
        self._chat_next: dict[int, float] = {}
        self._chat_done: dict[int, tuple[float, float]] = {}  # chat -> (last, previous) end
        self._sent_before: dict[int, int] = {}  # chat -> sends in the second before its own
        self._chat_locks: dict[int, asyncio.Lock] = {}
        self._grown_at = monotonic()

    def hold(self, seconds: float) -> None:
        """A 429 for the whole bot: nobody sends for `seconds`."""
        self._hold_until = max(self._hold_until, self._monotonic() + seconds)

    def hold_chat(self, chat_id: int, seconds: float) -> None:
        """A 429 for one chat: nothing goes to it for `seconds`; the others go on."""
        until = self._monotonic() + seconds
        self._chat_next[chat_id] = max(self._chat_next.get(chat_id, 0.0), until)

    def throttled(self, chat_id: int, retry_after: float) -> bool:
        """Telegram answered 429 to a send to `chat_id` (after `sent`). Its `retry_after`
        applies to its scope, which the answer does not name:

        - the bot's: `BOT_SCOPE_RUN` refusals in a row (no send accepted in between) from
          different chats -- over the bot's limit the server refuses every chat. Everybody
          holds, and the rate drops (multiplicative decrease) to below what the server had
          accepted in the second before.
        - else the chat's: only that chat waits (its per-chat pace grows when it had a
          message just before); the bot's pace is untouched.

        Returns True when the bot holds."""
        now = self._monotonic()
        self.throttles += 1
        self._refused_run.add(chat_id)
        delivered = self._chat_delivered.get(chat_id, float("-inf"))
        if now - delivered < 2 * self.chat_pace:  # a message just before: too fast for it
            self.chat_pace = min(4 * self.per_chat, max(self.chat_pace * 1.5, 1e-3))
        self.hold_chat(chat_id, retry_after + (self.chat_pace if self.chat_pace else 0.0))
        if len(self._refused_run) < BOT_SCOPE_RUN:
            return False
        self._refused_run.clear()
        self.bot_throttles += 1
        self.hold(retry_after)
        self._grown_at = max(self._grown_at, self._hold_until)  # no regain while holding
        # What the server had accepted when it refused: the sends of the second before the
        # refused one started (counted then; later the window has moved on).
        accepted = self._sent_before.get(chat_id, 0)
        self._set_rate(max(1.0, min(self.rate * self.decrease, accepted - 1)))
        return True

    def accepted(self, chat_id: int) -> None:
        """A send to `chat_id` went through: the run of refusals that would mean the bot's
        limit ends."""
        self._refused_run.clear()
        self._chat_delivered[chat_id] = self._monotonic()

    def not_delivered(self, chat_id: int) -> None:
        """The send to `chat_id` taken by the last `sent` never reached the chat (5xx, a
        dropped connection, a 429): it does not count against the 1-second cap, the grid or
        the chat's gap, so ordinary faults do not lower the pace. (Called right after
        `sent`; a 429's hold is set after this, by `throttled`.)"""
        if self._window:
            self._window.pop()
        now = self._monotonic()
        if self._slot - self.interval >= now - self.catch_up:
            self._slot -= self.interval  # the slot it used is given back
        self._chat_next[chat_id] = self._chat_delivered.get(chat_id, now - self.chat_pace) + (
            self.chat_pace
        )
        last, previous = self._chat_done.get(chat_id, (now, float("-inf")))
        self._chat_done[chat_id] = (previous, previous)

    def _set_rate(self, rate: float) -> None:
        self.rate = min(self.ceiling, rate)
        self.lowest_rate = min(self.lowest_rate, self.rate)
        self.interval = 1.0 / self.rate
        self.cap = max(1, min(self.window_max, math.floor(self.rate) + 1))

    def _regain(self, now: float) -> None:
        """Additive increase: `recovery` msg/s per second of sending since the last 429."""
        elapsed = min(max(0.0, now - self._grown_at), 1.0)  # idle time does not count
        self._grown_at = max(self._grown_at, now)
        if elapsed <= 0:
            return
        if self.rate < self.ceiling:
            self._set_rate(self.rate + self.recovery * elapsed)
        if self.chat_pace > self.per_chat:
            self.chat_pace = max(self.per_chat, self.chat_pace - self.pace_recovery * elapsed)

    async def acquire(self, chat_id: int) -> None:
        lock = self._chat_locks.get(chat_id)
        if lock is None:
            lock = self._chat_locks[chat_id] = asyncio.Lock()
        async with lock:
            while True:
                now = self._monotonic()
                ready = max(self._slot, self._hold_until, self._chat_next.get(chat_id, 0.0))
                while self._window and self._window[0] <= now - 1.0:
                    self._window.popleft()
                if len(self._window) + self._in_flight >= self.cap:
                    oldest = self._window[0] if self._window else now
                    ready = max(ready, oldest + 1.0, now + 1e-3)
                if ready > now + 1e-6:  # (a microsecond is "now": clocks have that resolution)
                    await self._sleep(ready - now)
                    continue
                # On time or late by up to `catch_up`: the next slot stays on the grid. Idle
                # for longer (or after a hold): the grid restarts from now.
                late = now - self._slot
                self._slot = (self._slot if late <= self.catch_up else now) + self.interval
                self._sent_before[chat_id] = len(self._window) + self._in_flight
                self._in_flight += 1
                self._chat_next[chat_id] = now + self.chat_pace
                break
        if len(self._chat_next) > 10_000:
            self._forget(now)

    def now(self) -> float:
        return self._monotonic()

    def chat_ready(self, chat_id: int) -> bool:
        """Could a message to this chat go now as far as the per-chat limit goes?"""
        return self._chat_next.get(chat_id, 0.0) <= self._monotonic()

    def sent(self, chat_id: int) -> None:
        """The send taken by `acquire` is over (delivered or not): count it from now."""
        now = self._monotonic()
        self._in_flight = max(0, self._in_flight - 1)
        self._window.append(now)
        self._chat_next[chat_id] = max(self._chat_next.get(chat_id, 0.0), now + self.chat_pace)
        last = self._chat_done.get(chat_id, (float("-inf"), float("-inf")))[0]
        self._chat_done[chat_id] = (now, last)
        self._regain(now)

    def _forget(self, now: float) -> None:
        for chat, free in list(self._chat_next.items()):
            lock = self._chat_locks.get(chat)
            if free <= now and (lock is None or not lock.locked()):
                del self._chat_next[chat]
                self._chat_locks.pop(chat, None)
                self._chat_done.pop(chat, None)
                self._sent_before.pop(chat, None)
                self._chat_delivered.pop(chat, None)


# --- the sweeper --------------------------------------------------------------------------


@dataclass
class SweepStats:
    claimed: int = 0  # rows claimed for sending
    cancelled: int = 0  # rows found moot at claim time
    messages_sent: int = 0
    items_sent: int = 0
    rate_limited: int = 0  # 429 answers
    transient_errors: int = 0  # 5xx / network errors (each try)
    forbidden: int = 0  # 403 answers
    failed: int = 0  # rows given up on
    released: int = 0  # rows put back to pending for a later sweep
    held: int = 0  # clients' rows put off by their quiet hours
    sent_ids: list[int] = field(default_factory=list)

    def add(self, other: SweepStats) -> None:
        for name in (
            "claimed",
            "cancelled",
            "messages_sent",
            "items_sent",
            "rate_limited",
            "transient_errors",
            "forbidden",
            "failed",
            "released",
            "held",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.sent_ids.extend(other.sent_ids)


@dataclass
class _Message:
    delivery: Delivery
    claims: dict[int, int]  # reminder id -> attempts value of our claim (the fence)
    tries: int = 0  # failed sends so far in this sweep (429s and transient errors)
    transient: int = 0  # of them, 5xx / network: the backoff's exponent
    not_before: float = 0.0  # monotonic time before which it is not tried again


class _Marker:
    """Marks sent messages: one transaction for everything sent since the last one, so a
    slow commit delays the bookkeeping, not the sending. Senders wait (back-pressure) while
    more than `backlog` sent messages are unmarked; `backlog=0` means each send waits for
    its own mark."""

    def __init__(
        self, sweeper: Sweeper, stats: SweepStats, group: asyncio.TaskGroup, backlog: int
    ) -> None:
        self.sweeper = sweeper
        self.stats = stats
        self.group = group
        self.backlog = backlog
        self.pending: list[_Message] = []
        self.unmarked = 0
        self.task: asyncio.Task[None] | None = None
        self.progress = asyncio.Condition()

    async def sent(self, message: _Message) -> None:
        self.pending.append(message)
        self.unmarked += 1
        if self.task is None or self.task.done():
            self.task = self.group.create_task(self._run())
        async with self.progress:
            await self.progress.wait_for(lambda: self.unmarked <= self.backlog)

    async def _run(self) -> None:
        while self.pending:
            batch, self.pending = self.pending, []
            await self.sweeper.mark_sent(batch, self.stats)
            self.unmarked -= len(batch)
            async with self.progress:
                self.progress.notify_all()


class Sweeper:
    def __init__(
        self,
        uow_factory: UowFactory,
        notifier: Notifier,
        clock: Clock,
        *,
        limiter: RateLimiter | None = None,
        sleep: SleepFn = asyncio.sleep,
        monotonic: MonotonicFn = time.monotonic,
        per_second: float = 29.0,
        per_chat: float = 1.0,
        window_max: int | None = None,
        max_recipients: int = 100,
        max_items_per_recipient: int = 30,
        items_per_message: int = 10,
        max_in_flight: int = 4,
        max_unmarked: int = 0,
        lease: timedelta = timedelta(seconds=20),
        late_after: timedelta = timedelta(minutes=10),
        send_retries: int = 4,
        backoff_base: float = 1.0,
        backoff_max: float = 30.0,
        max_attempts: int = 10,
    ) -> None:
        self.uow_factory = uow_factory
        self.notifier = notifier
        self.clock = clock
        self.sleep = sleep
        self.limiter = limiter or RateLimiter(
            per_second, per_chat, window_max=window_max, monotonic=monotonic, sleep=self._sleep
        )
        self.max_recipients = max_recipients
        self.max_items_per_recipient = max_items_per_recipient
        self.items_per_message = max(1, items_per_message)
        self.max_in_flight = max(1, max_in_flight)
        self.max_unmarked = max(0, max_unmarked)
        self.lease = lease
        self.late_after = late_after
        self.send_retries = send_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_attempts = max_attempts
        self._write_lock = asyncio.Lock()
        self._serialize_writes: bool | None = None
        # The lease is renewed every third of it while rows wait to be sent (any sleep of
        # the sweeper is cut into pieces of at most that, each followed by a renewal check).
        self.renew_every = max(lease.total_seconds() / 3, 1e-3)
        self._held: dict[int, int] = {}  # claimed here, not yet marked: id -> attempts
        self._renewed_at: datetime | None = None
        self._renewing = False
        self.renewals = 0
        self._blocked_links: set[int] = set()  # clients who answered 403 (this process)

    # -- public --------------------------------------------------------------------------

    async def sweep_once(self) -> SweepStats:
        """Claim what is due, send it, mark it. Returns what happened."""
        stats = SweepStats()
        messages = await self._claim(stats)
        if not messages:
            return stats
        queue: deque[_Message] = deque(messages)
        try:
            async with asyncio.TaskGroup() as group:
                marker = _Marker(self, stats, group, self.max_unmarked)

                async def worker() -> None:
                    while queue:
                        message = self._next_message(queue)
                        if message is None:
                            await self._sleep(self._wait_for(queue))
                            continue
                        await self._send(message, stats, marker, queue)

                for _ in range(min(self.max_in_flight, len(messages))):
                    group.create_task(worker())
        finally:
            self._forget_claims(messages)
        return stats

    def _forget_claims(self, messages: Sequence[_Message]) -> None:
        """The sweep is over: what it still holds (unmarked after an error) is no longer
        renewed, so its lease runs out and a later sweep claims it again."""
        for message in messages:
            self._let_go(message.claims)

    async def sweep_until_idle(self, max_rounds: int = 20) -> SweepStats:
        """The interval job: claim and send until nothing is due (at most `max_rounds`
        claims). One pool of senders runs throughout; the next batch is claimed in the
        background while the current one's last messages go out, so the rate does not dip
        between batches."""
        stats = SweepStats()
        mine = await self._claim(stats)
        if not mine:
            return stats
        queue: deque[_Message] = deque(mine)
        try:
            await self._send_all(queue, stats, mine, max_rounds - 1)
        finally:
            self._forget_claims(mine)
        return stats

    async def _send_all(
        self, queue: deque[_Message], stats: SweepStats, mine: list[_Message], claims_left: int
    ) -> None:
        exhausted = False
        refill: asyncio.Task[None] | None = None
        async with asyncio.TaskGroup() as group:
            marker = _Marker(self, stats, group, self.max_unmarked)

            async def claim_more() -> None:
                nonlocal exhausted, refill
                try:
                    more = await self._claim(stats)
                    mine.extend(more)
                    queue.extend(more)
                    exhausted = exhausted or not more
                finally:
                    refill = None

            async def worker() -> None:
                nonlocal claims_left, refill
                while True:
                    # (messages waiting for their retry time do not count: more is claimed
                    # while they wait)
                    now = self.limiter.now()
                    ready = sum(1 for m in queue if m.not_before <= now)
                    low = ready <= self.max_in_flight
                    if low and refill is None and not exhausted and claims_left > 0:
                        claims_left -= 1
                        refill = group.create_task(claim_more())
                    if queue:
                        message = self._next_message(queue)
                        if message is not None:
                            await self._send(message, stats, marker, queue)
                        elif refill is not None:  # all waiting for a retry time
                            await asyncio.wait({refill})
                        else:
                            await self._sleep(self._wait_for(queue))
                        continue
                    pending = refill
                    if pending is None:
                        return
                    await asyncio.wait({pending})

            for _ in range(self.max_in_flight):
                group.create_task(worker())

    def _next_message(self, queue: deque[_Message], look_ahead: int = 64) -> _Message | None:
        """The first queued message whose chat may be written to now (so a sender does not
        sit out a per-chat second while other chats could go); else the first one not
        waiting for its retry time; None when every one is waiting (see `_wait_for`).
        Messages waiting for a retry are passed over without counting against
        `look_ahead`."""
        now = self.limiter.now()
        first: int | None = None
        looked = 0
        for i, message in enumerate(queue):
            if message.not_before > now:
                continue
            if self.limiter.chat_ready(message.delivery.chat_id):
                del queue[i]
                return message
            if first is None:
                first = i
            looked += 1
            if looked >= look_ahead:
                break
        if first is None:
            return None
        message = queue[first]
        del queue[first]
        return message

    def _wait_for(self, queue: deque[_Message]) -> float:
        """How long until the soonest queued retry is due (at least a millisecond)."""
        now = self.limiter.now()
        soonest = min((m.not_before for m in queue), default=now)
        return min(max(soonest - now, 1e-3), self.renew_every)

    # -- the lease -----------------------------------------------------------------------

    async def _sleep(self, seconds: float) -> None:
        """Every wait of this sweeper (rate limiter, flood hold, backoff): in pieces of at
        most `renew_every`, renewing the lease of the rows it holds in between, so a long
        429 hold does not let the lease run out under rows that are still to be sent."""
        while True:
            step = min(seconds, self.renew_every)
            await self.sleep(step)
            seconds -= step
            await self._renew_if_due()
            if seconds <= 1e-9:
                return

    async def _renew_if_due(self) -> None:
        """`claimed_at = now` for every row this sweeper holds (fenced by attempts: a row
        re-claimed by another sweeper is not touched), at most every `renew_every`."""
        if self._renewing or not self._held:
            return
        now = self.clock.now()
        last = self._renewed_at
        if last is not None and (now - last).total_seconds() < self.renew_every:
            return
        self._renewing = True
        try:
            held = dict(self._held)
            async with self._writing(), self.uow_factory() as uow:
                await uow.repo.outbox.update_claimed(held, claimed_at=now)
                await uow.commit()
            self._renewed_at = now
            self.renewals += 1
        finally:
            self._renewing = False

    def _hold(self, messages: Sequence[_Message], now: datetime) -> None:
        if not self._held:
            self._renewed_at = now  # the claim itself set claimed_at = now
        for message in messages:
            self._held.update(message.claims)

    def _let_go(self, claims: Mapping[int, int]) -> None:
        for rid, attempts in claims.items():
            if self._held.get(rid) == attempts:
                del self._held[rid]

    # -- claim ---------------------------------------------------------------------------

    def _writing(self) -> AbstractAsyncContextManager[Any]:
        """SQLite: this process's write transactions queue here, in asyncio, instead of
        in SQLite's busy handler (which sleeps up to 100 ms at a time and stalls sending).
        PostgreSQL: no queue (row locks do the job)."""
        return self._write_lock if self._serialize_writes else nullcontext()

    async def _claim(self, stats: SweepStats) -> list[_Message]:
        if self._serialize_writes is None:
            async with self.uow_factory() as probe:
                self._serialize_writes = probe.repo.outbox.writes_serialized()
        async with self._writing():
            return await self._claim_locked(stats)

    async def _claim_locked(self, stats: SweepStats) -> list[_Message]:
        now = self.clock.now()
        async with self.uow_factory() as uow:
            repo = uow.repo.outbox
            recipients = await repo.due_recipients(now, self.lease, self.max_recipients)
            if not recipients:
                return []
            rows = await repo.lock_due(
                now, self.lease, recipients, len(recipients) * self.max_items_per_recipient
            )
            parsed, broken = _parse(rows)
            employees = await repo.recipients({r for r, _ in recipients if r is not None})
            links = await repo.client_recipients({c for _, c in recipients if c is not None})
            self._blocked_links -= {i for i, link in links.items() if link.blocked_at is None}
            tasks = await repo.tasks(
                {r.task_id for r in parsed if r.task_id is not None and r.kind in TASK_BOUND_KINDS}
            )
            dues = await repo.dues(
                {
                    r.payload.due_id
                    for r in parsed
                    if isinstance(r.payload, InstallmentUpcoming | ClientPayment)
                    and r.payload.due_id is not None
                }
            )
            quiet_until = policy.of(uow).quiet_until(now)

            per_person: dict[Recipient, list[_Parsed]] = defaultdict(list)
            cancelled: dict[str, list[int]] = defaultdict(list)
            failed: dict[str, list[int]] = defaultdict(list)
            held: list[int] = []
            for row in parsed:
                key = (row.recipient_id, row.client_link_id)
                if len(per_person[key]) >= self.max_items_per_recipient:
                    continue  # left pending for the next sweep
                if row.client_link_id is not None:
                    link = links.get(row.client_link_id)
                    if link is None or is_made_up(link.telegram_id):
                        cancelled["demo"].append(row.id)
                    elif link.stopped_at is not None:
                        cancelled["stopped"].append(row.id)  # /stop: nothing is sent
                    elif link.blocked_at is not None:
                        failed["blocked"].append(row.id)  # not retried
                    elif _moot(row, tasks, dues):
                        cancelled["moot"].append(row.id)
                    elif quiet_until is not None:
                        held.append(row.id)  # the client's quiet hours: later
                    else:
                        per_person[key].append(row)
                    continue
                emp = employees.get(row.recipient_id) if row.recipient_id is not None else None
                if emp is None or not emp.active:
                    cancelled["inactive"].append(row.id)
                elif is_made_up(emp.telegram_id):
                    cancelled["demo"].append(row.id)
                elif emp.unreachable:
                    failed["unreachable"].append(row.id)
                elif _moot(row, tasks, dues):
                    cancelled["moot"].append(row.id)
                else:
                    per_person[key].append(row)
            # Set-based updates (one statement each), not a flush of every row object.
            claimed_ids = [r.id for people in per_person.values() for r in people]
            await repo.claim(claimed_ids, now)
            for reason, ids in cancelled.items():
                await repo.settle(ids, ReminderState.CANCELLED.value, reason)
            for reason, ids in failed.items():
                await repo.settle(ids, ReminderState.FAILED.value, reason)
            if quiet_until is not None:
                await repo.postpone(held, quiet_until, "quiet hours")
            for rid, error in broken.items():  # kept, with the reason: never sent half-drawn
                await repo.settle([rid], ReminderState.FAILED.value, error)
            await uow.commit()
        stats.claimed += len(claimed_ids)
        stats.cancelled += sum(len(ids) for ids in cancelled.values())
        stats.failed += sum(len(ids) for ids in failed.values()) + len(broken)
        stats.held += len(held)

        messages_per_person: list[list[_Message]] = []
        for (recipient_id, link_id), claimed in per_person.items():
            if not claimed:
                continue
            if link_id is not None:
                link = links[link_id]
                whom = _Whom(None, link.telegram_id, link.language, link.id)
            else:
                assert recipient_id is not None
                emp = employees[recipient_id]
                whom = _Whom(emp.id, emp.telegram_id, emp.language, None)
            messages_per_person.append(self._messages_for(whom, claimed, now))
        # Round-robin: everyone's first message, then everyone's second... so one person's
        # second message is not waiting on the per-chat limit while others could go.
        ordered: list[_Message] = []
        for round_ in range(max((len(m) for m in messages_per_person), default=0)):
            for person in messages_per_person:
                if round_ < len(person):
                    ordered.append(person[round_])
        self._hold(ordered, now)
        return ordered

    def _messages_for(self, whom: _Whom, rows: list[_Parsed], now: datetime) -> list[_Message]:
        items = [
            OutboxItem(
                id=r.id,
                kind=r.kind,
                payload=r.payload,
                due_at=r.due_at,
                late=now - r.due_at > self.late_after,
                task_id=r.task_id,
                deal_id=r.deal_id,
            )
            for r in rows
        ]
        attempts = {r.id: r.attempts + 1 for r in rows}  # what our claim set (the fence)
        alone = [i for i in items if i.kind in STANDALONE_KINDS]
        merged = [i for i in items if i.kind not in STANDALONE_KINDS]
        groups: list[list[OutboxItem]] = [[i] for i in alone]
        for start in range(0, len(merged), self.items_per_message):
            groups.append(merged[start : start + self.items_per_message])
        return [
            _Message(
                Delivery(
                    recipient_id=whom.recipient_id,
                    chat_id=whom.chat_id,
                    language=whom.language,
                    items=tuple(group),
                    now=now,
                    client_link_id=whom.client_link_id,
                ),
                {i.id: attempts[i.id] for i in group},
            )
            for group in groups
        ]

    # -- send ----------------------------------------------------------------------------

    async def _send(
        self,
        message: _Message,
        stats: SweepStats,
        marker: _Marker,
        queue: deque[_Message] | None = None,
    ) -> None:
        """One try. A 429 or a transient error puts the message back in `queue` with the
        time it may be tried again (its chat's `retry_after`, or its own exponential
        backoff): the sender goes on with other chats meanwhile. After `send_retries`
        failed tries it is released to pending for a later sweep."""
        while True:
            retry_in = await self._try(message, stats, marker)
            if retry_in is None:
                return
            if queue is None:  # a caller without a queue: wait here
                await self._sleep(retry_in)
                continue
            message.not_before = self.limiter.now() + retry_in
            queue.append(message)
            return

    async def _try(self, message: _Message, stats: SweepStats, marker: _Marker) -> float | None:
        """Send once; None when the message is done with (sent, failed, released), else
        the seconds before it may be tried again."""
        delivery = message.delivery
        if delivery.client_link_id in self._blocked_links:  # a 403 came meanwhile: don't try
            await self._give_up(message, stats, "blocked")
            return None
        await self._renew_if_due()
        await self.limiter.acquire(delivery.chat_id)
        delivered = False
        try:
            try:
                await self.notifier.deliver(delivery)
                delivered = True
            finally:
                self.limiter.sent(delivery.chat_id)
                if not delivered:
                    self.limiter.not_delivered(delivery.chat_id)
        except DeliveryRetryAfter as exc:
            stats.rate_limited += 1
            self.limiter.throttled(delivery.chat_id, exc.seconds)
            message.tries += 1
            if message.tries > self.send_retries:
                await self._release(message, stats, "429")
                return None
            return float(exc.seconds)  # its chat (or the bot) holds as long
        except DeliveryForbidden:
            stats.forbidden += 1
            await self._forbidden(message, stats)
            return None
        except DeliveryRejected as exc:
            await self._give_up(message, stats, f"rejected: {exc}"[:500])
            return None
        except Exception as exc:  # DeliveryTransient, or a bug in rendering
            if not isinstance(exc, DeliveryTransient):
                log.exception("notifier failed on reminders %s", list(message.claims))
            stats.transient_errors += 1
            message.tries += 1
            message.transient += 1
            if message.tries > self.send_retries:
                await self._release(message, stats, f"transient: {exc}"[:500])
                return None
            backoff = self.backoff_base * 2.0 ** (message.transient - 1)
            return float(min(backoff, self.backoff_max))
        self.limiter.accepted(delivery.chat_id)
        await marker.sent(message)
        return None

    # -- bookkeeping (each its own short transaction, fenced by the claim's attempts) ------

    async def _update(self, message: _Message, **values: Any) -> int:
        async with self._writing(), self.uow_factory() as uow:
            updated = await uow.repo.outbox.update_claimed(message.claims, **values)
            await uow.commit()
        self._let_go(message.claims)
        return updated

    async def mark_sent(self, messages: Sequence[_Message], stats: SweepStats) -> None:
        claims = {rid: a for m in messages for rid, a in m.claims.items()}
        stats.items_sent += len(claims)
        stats.sent_ids.extend(claims)
        to_clients = [m for m in messages if m.delivery.client_link_id is not None]
        if to_clients:  # marked with their timeline rows, in one transaction
            await self._mark_client_messages(to_clients, claims)
        if claims:
            together = _Message(messages[0].delivery, claims)
            await self._update(
                together, state=ReminderState.SENT.value, sent_at=self.clock.now(), last_error=None
            )
        stats.messages_sent += len(messages)

    async def _mark_client_messages(
        self, messages: Sequence[_Message], claims: dict[int, int]
    ) -> None:
        """A client's messages are marked sent together with a row on each deal's timeline
        ("Sent to the client: ..."): what the client was actually sent, written when it
        went out (not when it was queued: a message held by quiet hours, /stop or a block
        never shows as sent). A row re-claimed by another sweeper meanwhile (the fence) gets
        no timeline row here; that sweeper writes it when it sends. Their claims are taken
        out of `claims` (marked here)."""
        now = self.clock.now()
        async with self._writing(), self.uow_factory() as uow:
            for message in messages:
                marked = await uow.repo.outbox.update_claimed(
                    message.claims,
                    state=ReminderState.SENT.value,
                    sent_at=now,
                    last_error=None,
                )
                if not marked:
                    continue
                for item in message.delivery.items:
                    p = item.payload
                    if item.deal_id is None or not isinstance(p, ClientPayload):
                        continue
                    timeline.record(
                        uow,
                        ActivityKind.CLIENT_OUT,
                        actor_id=None,
                        deal_id=item.deal_id,
                        at=now,
                        payload={"kind": item.kind, **p.facts()},
                    )
            await uow.commit()
        for message in messages:
            self._let_go(message.claims)
            for rid in message.claims:
                claims.pop(rid, None)

    async def _give_up(self, message: _Message, stats: SweepStats, error: str) -> None:
        await self._update(message, state=ReminderState.FAILED.value, last_error=error)
        stats.failed += len(message.claims)

    async def _release(self, message: _Message, stats: SweepStats, error: str) -> None:
        """Back to pending for a later sweep, or failed after max_attempts claims."""
        exhausted = {rid: a for rid, a in message.claims.items() if a >= self.max_attempts}
        retry = {rid: a for rid, a in message.claims.items() if a < self.max_attempts}
        if exhausted:
            await self._give_up(_Message(message.delivery, exhausted), stats, error)
        if retry:
            await self._update(
                _Message(message.delivery, retry),
                state=ReminderState.PENDING.value,
                last_error=error,
            )
            stats.released += len(retry)

    async def _forbidden(self, message: _Message, stats: SweepStats) -> None:
        """403: mark the person unreachable, fail their rows, tell the admins. A client
        (issue 25): their link is marked blocked and their pending rows fail; nothing is
        retried until they write to the bot again (`client_wrote`)."""
        recipient_id = message.delivery.recipient_id
        link_id = message.delivery.client_link_id
        now = self.clock.now()
        if recipient_id is None:
            assert link_id is not None
            self._blocked_links.add(link_id)
            async with self._writing(), self.uow_factory() as uow:
                await uow.repo.outbox.update_claimed(
                    message.claims, state=ReminderState.FAILED.value, last_error="forbidden"
                )
                await uow.repo.outbox.settle_client(
                    [link_id], ReminderState.FAILED.value, "blocked"
                )
                link = await uow.repo.get(ClientLink, link_id)
                if link is not None and link.blocked_at is None:
                    link.blocked_at = now
                await uow.commit()
            self._let_go(message.claims)
            stats.failed += len(message.claims)
            return
        async with self._writing(), self.uow_factory() as uow:
            await uow.repo.outbox.update_claimed(
                message.claims, state=ReminderState.FAILED.value, last_error="forbidden"
            )
            await uow.repo.outbox.fail_pending(recipient_id, "unreachable")
            emp = await uow.repo.get(Employee, recipient_id)
            if emp is not None and not emp.unreachable:
                emp.unreachable = True
                day = now.date().isoformat()
                for admin in await uow.repo.employees.with_role(Role.ADMIN):
                    if admin.id == recipient_id or admin.unreachable:
                        continue
                    await enqueue(
                        uow,
                        admin.id,
                        Kind.ADMIN_UNREACHABLE,
                        AdminUnreachable(employee_id=emp.id, name=emp.name, username=emp.username),
                        now,
                        dedupe_key=f"unreachable:{emp.id}:{admin.id}:{day}",
                    )
            await uow.commit()
        self._let_go(message.claims)
        stats.failed += len(message.claims)


@dataclass(frozen=True, slots=True)
class _Parsed:
    """A claimed row whose payload parsed into its kind's class."""

    id: int
    recipient_id: int | None
    kind: str
    payload: Payload
    due_at: datetime
    task_id: int | None
    deal_id: int | None
    attempts: int
    client_link_id: int | None = None


@dataclass(frozen=True, slots=True)
class _Whom:
    """Where a person's messages go: an employee's chat, or a client link's."""

    recipient_id: int | None
    chat_id: int
    language: str | None
    client_link_id: int | None


def _parse(rows: Sequence[DueReminder]) -> tuple[list[_Parsed], dict[int, str]]:
    """Each row's payload as its kind's class (services/outbox/payloads.py). A row that does
    not parse is logged and goes to `broken` (id -> the reason), to be failed: no message
    is drawn from it, and the rest of the sweep goes on."""
    parsed: list[_Parsed] = []
    broken: dict[int, str] = {}
    for r in rows:
        try:
            payload = payloads.parse(r.kind, r.payload)
        except PayloadError as exc:
            log.error("reminder %s (%s): the payload does not parse: %s", r.id, r.kind, exc)
            broken[r.id] = f"payload: {exc}"[:500]
            continue
        parsed.append(
            _Parsed(
                r.id,
                r.recipient_id,
                r.kind,
                payload,
                r.due_at,
                r.task_id,
                r.deal_id,
                r.attempts,
                r.client_link_id,
            )
        )
    return parsed, broken


def _moot(row: _Parsed, tasks: Mapping[int, Task], dues: Mapping[int, InstallmentDue]) -> bool:
    p = row.payload
    if row.kind in TASK_BOUND_KINDS and row.task_id is not None:
        task = tasks.get(row.task_id)
        if task is None or task.status in CLOSED_TASK_STATES:
            return True
        if row.kind in (Kind.TASK_DUE, Kind.TASK_ESCALATED) and isinstance(p, TaskLine):
            if p.due_at is not None and task.due_at is not None and p.due_at != task.due_at:
                return True  # rescheduled (snoozed) since: a newer row exists
    if isinstance(p, InstallmentUpcoming | ClientPayment):
        due = dues.get(p.due_id) if p.due_id is not None else None
        if due is None or due.paid >= due.amount:
            return True
    return False
