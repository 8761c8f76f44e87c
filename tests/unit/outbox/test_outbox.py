"""The reminder engine: claim -> commit -> send -> mark, grouping, lateness, crash and
restart, Telegram's errors (429 / 5xx / 403) and rate limits. Fake clock, no sleeping."""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.clock import FakeClock
from services.outbox import payloads
from services.outbox import queue as outbox
from services.outbox.payloads import TaskPayload
from services.outbox.queue import (
    BOT_SCOPE_RUN,
    DeliveryForbidden,
    DeliveryRejected,
    DeliveryRetryAfter,
    DeliveryTransient,
    Kind,
    RateLimiter,
)
from storage.models import Employee
from tests.outbox_fakes import FakeTimer, RecordingNotifier, make_sweeper, reminders

TASK = TaskPayload(title="t")


async def put(uow_factory, recipient_id, due_at, kind=Kind.TASK_DUE, key=None, **payload):
    async with uow_factory() as uow:
        typed = payloads.parse(kind, payload or {"title": "t"})
        added = await outbox.enqueue(uow, recipient_id, kind, typed, due_at, dedupe_key=key)
        await uow.commit()
    return added


async def test_due_items_of_one_person_go_as_one_message(uow_factory, clock, make_actor):
    ann = await make_actor(name="Ann")
    bob = await make_actor(name="Bob")
    now = clock.now()
    for i in range(3):
        await put(uow_factory, ann.id, now - timedelta(minutes=i), title=f"a{i}")
    await put(uow_factory, bob.id, now, title="b")
    await put(uow_factory, bob.id, now + timedelta(minutes=1), title="later")  # not due yet
    await put(uow_factory, ann.id, now, Kind.SUMMARY_MORNING, date="2026-01-12")  # goes alone
    notifier = RecordingNotifier()
    sweeper, _ = make_sweeper(uow_factory, notifier, clock)

    stats = await sweeper.sweep_once()

    assert stats.claimed == 5 and stats.messages_sent == 3 and stats.items_sent == 5
    merged = [d for d in notifier.to(ann.id) if len(d.items) == 3]
    titles = [i.payload.title for i in merged[0].items if isinstance(i.payload, TaskPayload)]
    assert titles == ["a2", "a1", "a0"]  # by due time
    assert [len(d.items) for d in notifier.to(bob.id)] == [1]
    assert {r.state for r in await reminders(uow_factory, state="sent")} == {"sent"}
    assert len(await reminders(uow_factory, state="pending")) == 1
    assert (await sweeper.sweep_once()).claimed == 0  # nothing twice


async def test_long_lists_are_split_and_respect_the_per_chat_limit(uow_factory, clock, make_actor):
    ann = await make_actor(name="Ann")
    for i in range(25):
        await put(uow_factory, ann.id, clock.now(), title=str(i))
    notifier = RecordingNotifier()
    sweeper, _ = make_sweeper(uow_factory, notifier, clock, items_per_message=10)
    await sweeper.sweep_once()
    assert [len(d.items) for d in notifier.deliveries] == [10, 10, 5]
    times = [t for _, t in notifier.sent_at]
    assert all(b - a >= 1.0 - 1e-6 for a, b in zip(times, times[1:], strict=False))


async def test_dedupe_key_makes_generators_idempotent(uow_factory, clock, make_actor):
    ann = await make_actor()
    assert await put(uow_factory, ann.id, clock.now(), key="k:1") is True
    assert await put(uow_factory, ann.id, clock.now(), key="k:1") is False
    assert await put(uow_factory, ann.id, clock.now(), key="k:2") is True
    assert len(await reminders(uow_factory)) == 2


async def test_after_downtime_everything_due_is_sent_once_and_flagged_late(
    uow_factory, clock, make_actor
):
    ann = await make_actor()
    bob = await make_actor(name="Bob")
    start = clock.now()
    await put(uow_factory, ann.id, start + timedelta(minutes=5), title="during downtime")
    await put(uow_factory, bob.id, start + timedelta(hours=2, minutes=55), title="just now")
    await put(uow_factory, bob.id, start + timedelta(hours=4), title="future")
    clock.advance(hours=3)  # the bot was down for three hours
    notifier = RecordingNotifier()
    sweeper, _ = make_sweeper(uow_factory, notifier, clock)
    await sweeper.sweep_until_idle()
    late = {i.payload.title: i.late for i in notifier.items()}
    assert late == {"during downtime": True, "just now": False}
    await sweeper.sweep_until_idle()
    assert len(notifier.items()) == 2


class Killed(BaseException):
    """What SIGKILL looks like from inside: nothing after it runs, no except clause sees it."""


@pytest.mark.parametrize(("in_flight", "backlog"), [(1, 0), (4, 16)])
async def test_killed_between_send_and_mark_nothing_lost_at_most_in_flight_twice(
    uow_factory, clock, make_actor, in_flight, backlog
):
    """(1, 0): each send waits for its own mark, one at a time: exactly the one in flight
    goes twice. Defaults (4, 16): at most in_flight + backlog go twice."""
    people = [await make_actor(name=f"P{i}") for i in range(12)]
    for i, person in enumerate(people):
        await put(uow_factory, person.id, clock.now() - timedelta(seconds=i), title=f"r{i}")
    delivered: list[int] = []  # reminder ids that reached Telegram, in order

    class DiesAfterThird(RecordingNotifier):
        async def deliver(self, delivery):
            delivered.extend(i.id for i in delivery.items)  # Telegram has it now...
            if len(delivered) == 3:
                raise Killed  # ...and the process dies before marking it sent
            await super().deliver(delivery)

    options = {"max_in_flight": in_flight, "max_unmarked": backlog}
    crashing, _ = make_sweeper(uow_factory, DiesAfterThird(), clock, **options)
    with pytest.raises(BaseExceptionGroup) as died:
        await crashing.sweep_once()
    assert died.group_contains(Killed)
    sent_before = {r.id for r in await reminders(uow_factory, state="sent")}
    claimed = {r.id for r in await reminders(uow_factory, state="claimed")}
    assert claimed  # the crash left claimed rows behind
    if (in_flight, backlog) == (1, 0):
        assert len(sent_before) == 2  # the two before the fatal one were marked

    # Restart: a new sweeper before the lease expires claims nothing (the dead one's rows
    # might still be in flight) ...
    restarted_notifier = RecordingNotifier()
    restarted, _ = make_sweeper(uow_factory, restarted_notifier, clock, **options)
    assert (await restarted.sweep_once()).claimed == 0
    # ... after it, everything not marked sent goes out (late by now).
    clock.advance(minutes=15)
    await restarted.sweep_until_idle()
    resent = [i.id for i in restarted_notifier.items()]
    delivered.extend(resent)

    everything = {r.id for r in await reminders(uow_factory)}
    assert set(delivered) == everything, "lost reminders"
    assert not sent_before & set(resent), "a reminder marked sent went out again"
    twice = [rid for rid, n in Counter(delivered).items() if n > 1]
    assert len(twice) <= in_flight + backlog
    if (in_flight, backlog) == (1, 0):
        assert len(twice) == 1  # exactly the one in flight
    assert {r.state for r in await reminders(uow_factory)} == {"sent"}
    assert all(i.late for i in restarted_notifier.items())


async def test_a_429_holds_its_chat_for_retry_after_and_the_others_go_on(
    uow_factory, clock, make_actor
):
    """A 429 to one chat (the others are accepted): that chat waits its retry_after, the
    bot does not, and its pace is not lowered."""
    ann = await make_actor()
    bob = await make_actor(name="Bob")
    await put(uow_factory, ann.id, clock.now())
    await put(uow_factory, bob.id, clock.now())
    notifier = RecordingNotifier()
    notifier.script.extend([DeliveryRetryAfter(7)])
    sweeper, timer = make_sweeper(uow_factory, notifier, clock, max_in_flight=1)
    start = timer.monotonic()

    stats = await sweeper.sweep_once()

    assert stats.rate_limited == 1 and stats.messages_sent == 2
    assert [d.recipient_id for d in notifier.deliveries] == [bob.id, ann.id]
    (ann_chat, first_try), (bob_chat, bob_sent) = notifier.attempts[:2]
    assert bob_sent - first_try < 1  # Bob did not wait for Ann's flood wait
    ann_retry = [t for chat, t in notifier.attempts if chat == ann_chat][1]
    assert ann_retry - first_try >= 7 and timer.monotonic() - start >= 7
    assert sweeper.limiter.rate == 29.0 and sweeper.limiter.bot_throttles == 0
    assert {r.state for r in await reminders(uow_factory)} == {"sent"}


async def test_429s_to_several_chats_in_a_row_hold_the_whole_bot(uow_factory, clock, make_actor):
    """Refusals from BOT_SCOPE_RUN chats in a row, none accepted between: the bot's own
    limit -- nobody sends for retry_after, and the rate comes down."""
    people = [await make_actor(name=f"P{i}") for i in range(6)]
    for person in people:
        await put(uow_factory, person.id, clock.now())
    notifier = RecordingNotifier()
    notifier.script.extend([DeliveryRetryAfter(5)] * BOT_SCOPE_RUN)
    sweeper, timer = make_sweeper(uow_factory, notifier, clock, max_in_flight=1)

    stats = await sweeper.sweep_once()

    assert stats.rate_limited == BOT_SCOPE_RUN and stats.messages_sent == 6
    last_refused = notifier.attempts[BOT_SCOPE_RUN - 1][1]
    next_try = notifier.attempts[BOT_SCOPE_RUN][1]
    assert next_try - last_refused >= 5  # everybody held
    assert sweeper.limiter.bot_throttles == 1 and sweeper.limiter.lowest_rate < 29.0


async def test_5xx_and_dropped_connections_wait_per_message_not_the_bot(
    uow_factory, clock, make_actor
):
    """Ann's message meets a 502 and a dropped connection: it backs off on its own (1 s,
    then 2 s) while Bob's and Cid's go at once; the bot's rate and the 1-second cap are
    untouched."""
    ann, bob, cid = [await make_actor(name=n) for n in ("Ann", "Bob", "Cid")]
    for person in (ann, bob, cid):
        await put(uow_factory, person.id, clock.now())
    faults = [DeliveryTransient("502"), DeliveryTransient("disconnected")]

    class AnnsChatFails(RecordingNotifier):
        async def deliver(self, delivery):
            if delivery.chat_id == ann.telegram_id and faults:
                assert self.timer is not None
                self.attempts.append((delivery.chat_id, self.timer.monotonic()))
                raise faults.pop(0)
            await super().deliver(delivery)

    notifier = AnnsChatFails()
    sweeper, timer = make_sweeper(uow_factory, notifier, clock, max_in_flight=1)
    start = timer.monotonic()

    stats = await sweeper.sweep_once()

    assert stats.transient_errors == 2 and stats.messages_sent == 3
    sent = {
        d.recipient_id: t for d, (_, t) in zip(notifier.deliveries, notifier.sent_at, strict=True)
    }
    assert sent[bob.id] - start < 1 and sent[cid.id] - start < 1  # not behind Ann's backoff
    assert sent[ann.id] - start >= 3  # 1 s, then 2 s
    assert sweeper.limiter.rate == 29.0 and sweeper.limiter.throttles == 0
    assert {r.state for r in await reminders(uow_factory)} == {"sent"}


async def test_5xx_retried_with_backoff_then_released_then_failed(uow_factory, clock, make_actor):
    ann = await make_actor()
    await put(uow_factory, ann.id, clock.now())
    notifier = RecordingNotifier()
    notifier.script.extend([DeliveryTransient("502"), DeliveryTransient("timeout")])
    sweeper, timer = make_sweeper(uow_factory, notifier, clock, send_retries=4)
    stats = await sweeper.sweep_once()
    assert stats.transient_errors == 2 and stats.messages_sent == 1
    assert sum(timer.slept) >= 3.0  # exponential backoff: 1 s, then 2 s
    [row] = await reminders(uow_factory)
    assert row.state == "sent" and row.attempts == 1

    # Always failing: released to pending after the in-sweep retries, failed after
    # max_attempts claims; never lost silently, never sent.
    await put(uow_factory, ann.id, clock.now(), title="doomed")
    notifier.script.extend([DeliveryTransient("500")] * 100)
    sweeper, _ = make_sweeper(uow_factory, notifier, clock, send_retries=1, max_attempts=3)
    first = await sweeper.sweep_once()
    assert first.released == 1
    [row] = await reminders(uow_factory, state="pending")
    assert row.attempts == 1 and row.last_error is not None and "500" in row.last_error
    await sweeper.sweep_once()
    final = await sweeper.sweep_once()
    assert final.failed == 1
    [row] = await reminders(uow_factory, state="failed")
    assert row.attempts == 3


async def test_403_marks_unreachable_and_tells_admins(uow_factory, clock, make_actor):
    ann = await make_actor(name="Ann")
    admin = await make_actor(roles=("admin",), name="Root")
    await put(uow_factory, ann.id, clock.now(), title="first")
    await put(uow_factory, ann.id, clock.now() + timedelta(hours=1), title="later")
    notifier = RecordingNotifier()
    notifier.script.append(DeliveryForbidden("bot was blocked by the user"))
    sweeper, _ = make_sweeper(uow_factory, notifier, clock)

    stats = await sweeper.sweep_once()
    assert stats.forbidden == 1 and stats.messages_sent == 0
    async with uow_factory() as uow:
        assert (await uow.repo.get(Employee, ann.id)).unreachable
    states = {r.payload.get("title"): (r.state, r.last_error) for r in await reminders(uow_factory)}
    assert states["first"] == ("failed", "forbidden")
    assert states["later"] == ("failed", "unreachable")

    await sweeper.sweep_once()  # the admin's notice
    [notice] = notifier.items(admin.id)
    assert notice.kind == Kind.ADMIN_UNREACHABLE and notice.payload.name == "Ann"
    await put(uow_factory, ann.id, clock.now(), title="while blocked")
    await sweeper.sweep_once()
    assert notifier.items(ann.id) == []  # no more attempts at a blocked chat

    # She unblocks and writes to the bot: recent failures go out again.
    async with uow_factory() as uow:
        assert await outbox.mark_reachable(uow, ann.id) == 3
    clock.advance(hours=1)
    await sweeper.sweep_until_idle()
    assert sorted(i.payload.title for i in notifier.items(ann.id)) == [
        "first",
        "later",
        "while blocked",
    ]


async def test_rejected_message_fails_and_others_go_on(uow_factory, clock, make_actor):
    ann = await make_actor()
    bob = await make_actor(name="Bob")
    await put(uow_factory, ann.id, clock.now())
    await put(uow_factory, bob.id, clock.now())
    notifier = RecordingNotifier()
    notifier.script.append(DeliveryRejected("Bad Request: message is too long"))
    sweeper, _ = make_sweeper(uow_factory, notifier, clock, max_in_flight=1)
    stats = await sweeper.sweep_once()
    assert stats.failed == 1 and stats.messages_sent == 1
    failed = await reminders(uow_factory, state="failed")
    assert len(failed) == 1 and failed[0].last_error is not None
    assert "too long" in failed[0].last_error


async def test_inactive_people_are_skipped(uow_factory, clock, make_actor):
    ann = await make_actor()
    await put(uow_factory, ann.id, clock.now())
    async with uow_factory() as uow:
        (await uow.repo.get(Employee, ann.id)).active = False
        await uow.commit()
    notifier = RecordingNotifier()
    sweeper, _ = make_sweeper(uow_factory, notifier, clock)
    stats = await sweeper.sweep_once()
    assert stats.cancelled == 1 and notifier.deliveries == []


# --- the rate limiter on its own, in logical time ----------------------------------------


def _check_limits(sends: list[tuple[int, float]], per_second: float, per_chat: float) -> None:
    times = sorted(t for _, t in sends)
    n = int(per_second)
    for i in range(len(times) - n):
        assert times[i + n] - times[i] >= 1.0 - 1e-6, "more than the global limit in 1 s"
    by_chat: dict[int, list[float]] = {}
    for chat, t in sends:
        by_chat.setdefault(chat, []).append(t)
    for chat_times in by_chat.values():
        chat_times.sort()
        for a, b in zip(chat_times, chat_times[1:], strict=False):
            assert b - a >= per_chat - 1e-6, "more than one message a second to one chat"


@settings(max_examples=40, deadline=None)
@given(
    chats=st.lists(st.integers(min_value=1, max_value=12), min_size=1, max_size=120),
    workers=st.integers(min_value=1, max_value=8),
    latency=st.floats(min_value=0.0, max_value=0.5),
)
def test_rate_limiter_never_exceeds_telegram_limits(chats, workers, latency):
    clock = FakeClock()
    timer = FakeTimer(clock)
    limiter = RateLimiter(30, 1.0, monotonic=timer.monotonic, sleep=timer.sleep)
    sends: list[tuple[int, float]] = []
    queue = list(chats)

    async def worker():
        while queue:
            chat = queue.pop(0)
            await limiter.acquire(chat)
            sends.append((chat, timer.monotonic()))
            await timer.sleep(latency)  # the request takes a while
            limiter.sent(chat)

    async def main():
        await asyncio.gather(*(worker() for _ in range(workers)))

    asyncio.run(main())
    assert len(sends) == len(chats)
    _check_limits(sends, 30, 1.0)


async def test_sweeper_sends_at_most_30_per_second_and_1_per_chat(uow_factory, clock, make_actor):
    people = [await make_actor(name=f"P{i}") for i in range(40)]
    async with uow_factory() as uow:
        for person in people:
            for _ in range(12):  # two messages each with items_per_message=10
                await outbox.enqueue(uow, person.id, Kind.TASK_DUE, TASK, clock.now())
        await uow.commit()
    notifier = RecordingNotifier()
    sweeper, _ = make_sweeper(uow_factory, notifier, clock, per_second=30, max_in_flight=6)
    stats = await sweeper.sweep_until_idle()
    assert stats.messages_sent == 80 and stats.items_sent == 480
    _check_limits(notifier.sent_at, 30, 1.0)


# --- a crash mid-sweep: the dead sweeper's claims are free again soon (issue 11) ----------


def production_jobs(uow_factory, notifier, clock):
    """The reminder jobs as `voronka run` builds them from the default settings (lease,
    sweep interval, rate, concurrency), on a fake timer."""
    from bot.scheduler import ReminderJobs
    from bot.settings import Settings

    settings = Settings(_env_file=None)
    timer = FakeTimer(clock)
    if isinstance(notifier, RecordingNotifier):
        notifier.timer = timer
    jobs = ReminderJobs(
        uow_factory, notifier, clock, settings, sleep=timer.sleep, monotonic=timer.monotonic
    )
    return jobs, settings


async def test_crash_mid_sweep_claimed_reminders_go_within_30s_of_restart(
    uow_factory, clock, make_actor
):
    people = [await make_actor(name=f"P{i}") for i in range(150)]
    for i, person in enumerate(people):
        await put(uow_factory, person.id, clock.now() - timedelta(seconds=i), title=f"r{i}")
    delivered: list[int] = []  # reminder ids that reached Telegram, in order
    delivered_at: dict[int, object] = {}

    class DiesMidSweep(RecordingNotifier):
        async def deliver(self, delivery):
            delivered.extend(i.id for i in delivery.items)
            if len(delivered) == 40:
                raise Killed  # SIGKILL with rows claimed and one message in flight
            await super().deliver(delivery)

    crashing, settings = production_jobs(uow_factory, DiesMidSweep(), clock)
    with pytest.raises(BaseExceptionGroup):
        await crashing.sweep()
    claimed = {r.id for r in await reminders(uow_factory, state="claimed")}
    assert len(claimed) >= 50  # the dead sweeper's claims

    clock.advance(seconds=3)  # the process restarts
    restart = clock.now()

    class Records(RecordingNotifier):
        async def deliver(self, delivery):
            await super().deliver(delivery)
            for item in delivery.items:
                delivered_at.setdefault(item.id, clock.now())

    restarted_notifier = Records()
    restarted, _ = production_jobs(uow_factory, restarted_notifier, clock)
    # The interval job as APScheduler runs it: every REMINDER_SWEEP_SECONDS after the start.
    step = timedelta(seconds=settings.reminder_sweep_seconds)
    tick = restart
    while tick + step <= restart + timedelta(seconds=30):
        tick += step
        if clock.now() < tick:
            clock.set(tick)
        await restarted.sweep()
    delivered.extend(i.id for i in restarted_notifier.items())

    everything = {r.id for r in await reminders(uow_factory)}
    assert set(delivered) == everything, "lost reminders"
    assert claimed <= set(delivered_at)
    late = {
        rid: at - restart
        for rid, at in delivered_at.items()
        if at - restart > timedelta(seconds=30)
    }
    assert not late, f"{len(late)} claimed reminders later than 30 s after the restart"
    twice = [rid for rid, n in Counter(delivered).items() if n > 1]
    assert len(twice) <= settings.telegram_send_concurrency  # at most what was in flight
    assert {r.state for r in await reminders(uow_factory)} == {"sent"}


async def test_a_long_flood_wait_keeps_the_lease(uow_factory, clock, make_actor):
    """The lease is short, so it is renewed while the rows wait: a 429 asking for 60 s does
    not let a second sweeper take (and send again) rows the first still holds."""
    people = [await make_actor(name=f"P{i}") for i in range(6)]
    for person in people:
        await put(uow_factory, person.id, clock.now())
    first_notifier = RecordingNotifier()
    first_notifier.script.append(DeliveryRetryAfter(60))
    first, timer = make_sweeper(uow_factory, first_notifier, clock, max_in_flight=1)
    second_notifier = RecordingNotifier(timer=timer)
    second, _ = make_sweeper(uow_factory, second_notifier, clock, timer=timer)
    assert first.lease == timedelta(seconds=20)

    async def second_sweeps() -> int:
        claimed = 0
        for _ in range(8):  # every 10 s during the minute the first one waits
            await timer.sleep(10)
            # The fake timer moves the clock whenever every task waits, database I/O
            # included: let a renewal that is under way land, as it would in real time.
            await asyncio.sleep(0.05)
            claimed += (await second.sweep_once()).claimed
        return claimed

    stats, stolen = await asyncio.gather(first.sweep_once(), second_sweeps())
    assert stolen == 0 and not second_notifier.deliveries
    assert stats.messages_sent == 6 and first.renewals >= 3
    assert Counter(d.recipient_id for d in first_notifier.deliveries) == Counter(
        p.id for p in people
    )


# --- the sender adapts to what Telegram allows (issue 11) ---------------------------------


class FloodControlled(RecordingNotifier):
    """Telegram's flood control in virtual time: at most `per_second` messages in any one
    second overall and one per `chat_gap` seconds to one chat; over either -> 429 with
    retry_after rounded up to whole seconds (as Telegram does)."""

    def __init__(self, timer, per_second: int = 30, chat_gap: float = 1.0) -> None:
        super().__init__(timer=timer)
        self.per_second, self.chat_gap = per_second, chat_gap
        self.window: list[float] = []
        self.last: dict[int, float] = {}
        self.too_many = 0

    async def deliver(self, delivery):
        assert self.timer is not None  # given to __init__
        now = self.timer.monotonic()
        self.window = [t for t in self.window if now - t < 1.0]
        wait = 0.0
        if len(self.window) >= self.per_second:
            wait = self.window[0] + 1.0 - now
        last = self.last.get(delivery.chat_id)
        if last is not None and now - last < self.chat_gap:
            wait = max(wait, last + self.chat_gap - now)
        if wait > 0:
            self.too_many += 1
            raise DeliveryRetryAfter(max(1, math.ceil(wait)))
        self.window.append(now)
        self.last[delivery.chat_id] = now
        await super().deliver(delivery)


async def test_a_rate_set_too_high_learns_the_limit(uow_factory, clock, make_actor):
    """45/s configured against a 30/s server: a few 429s, then close to 30/s."""
    people = [await make_actor(name=f"P{i}") for i in range(600)]
    for person in people:
        await put(uow_factory, person.id, clock.now())
    timer = FakeTimer(clock)
    server = FloodControlled(timer)
    sweeper, _ = make_sweeper(
        uow_factory, server, clock, timer=timer, per_second=45, window_max=45, max_recipients=600
    )

    stats = await sweeper.sweep_until_idle()

    assert stats.messages_sent == 600 and {r.state for r in await reminders(uow_factory)} == {
        "sent"
    }
    times = sorted(t for _, t in server.sent_at)
    achieved = (len(times) - 1) / (times[-1] - times[0])
    assert achieved >= 0.9 * 30, achieved
    assert 1 <= server.too_many <= 5 and stats.rate_limited == server.too_many
    limiter = sweeper.limiter
    assert limiter.window_max == 45 and limiter.cap <= 31  # the 1-second cap followed
    assert limiter.lowest_rate < 30 <= limiter.ceiling  # it slowed down to what was accepted
    assert limiter.rate < 32  # and probes upwards slowly, not straight back to 45


async def test_a_chat_that_wants_more_time_gets_it(uow_factory, clock, make_actor):
    """Per-chat 429s grow the per-chat pace, not the bot's rate."""
    ann = await make_actor(name="Ann")
    for i in range(8):
        await put(uow_factory, ann.id, clock.now(), title=f"r{i}")
    timer = FakeTimer(clock)
    server = FloodControlled(timer, chat_gap=2.0)
    sweeper, _ = make_sweeper(uow_factory, server, clock, timer=timer, items_per_message=1)

    stats = await sweeper.sweep_once()

    assert stats.messages_sent == 8 and len(server.items()) == 8
    assert server.too_many <= 2, server.too_many
    assert sweeper.limiter.chat_pace >= 2.0 and sweeper.limiter.rate == 29.0


def test_the_one_second_cap_follows_the_configured_rate():
    assert RateLimiter(29.0).cap == 30 and RateLimiter(45.0).cap == 45
    assert RateLimiter(10.0).cap == 30  # below Telegram's limit: the usual cap
