"""Messages to clients' own Telegram go through the outbox (issue 25): their chat and
language, the deal's timeline once sent, a restart, a 429, a 403 (blocked, not retried),
/stop and the quiet hours on a fake clock; stage messages and payment reminders enqueue
them. Both databases (the `backend` param)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from services.outbox import clients as client_messages
from services.outbox import queue as outbox
from services.outbox.payloads import ClientOnWay, ClientPayment, ClientStage, TaskPayload
from services.outbox.queue import DeliveryForbidden, DeliveryRetryAfter, Kind
from services.sales import deals
from services.sales.pipeline_config import ConfigError, parse_config
from services.sales.timeline import deal_timeline
from services.work import installments
from storage.enums import ActivityKind, TimelineFilter
from storage.models import Activity, ClientLink, Deal
from tests.factories import (
    DEFAULT_PIPELINES,
    contract_signed,
    link_client,
    new_deal,
    won_in_three_parts,
)
from tests.outbox_fakes import RecordingNotifier, make_sweeper, reminders

CLIENT_TG = 700_000_001


class Killed(BaseException):
    """The process dies (SIGKILL): nothing after it runs."""


async def _deal_with_client(uow_factory, ann, language="en"):
    card = await new_deal(uow_factory, ann, name="Ivan Petrov", amount="100000")
    link_id = await link_client(uow_factory, card.id, CLIENT_TG, "Ivan", language)
    return card, link_id


async def _on_way(uow_factory, deal_id, who="Mia"):
    async with uow_factory() as uow:
        deal = await uow.repo.get(Deal, deal_id)
        queued = await client_messages.send(uow, deal, Kind.CLIENT_ON_WAY, ClientOnWay(who=who))
        await uow.commit()
    return queued


async def _timeline(uow_factory, deal_id, kind=ActivityKind.CLIENT_OUT):
    async with uow_factory() as uow:
        rows = await uow.session.scalars(
            select(Activity).where(Activity.deal_id == deal_id, Activity.kind == kind.value)
        )
        return list(rows.all())


async def _link(uow_factory, link_id) -> ClientLink:
    async with uow_factory() as uow:
        link = await uow.repo.get(ClientLink, link_id)
    assert link is not None
    return link


async def test_a_client_message_goes_to_their_chat_in_their_language_and_on_the_timeline(
    uow_factory, clock, make_actor
):
    ann = await make_actor(name="Ann")
    card, link_id = await _deal_with_client(uow_factory, ann)
    assert await _on_way(uow_factory, card.id)
    notifier = RecordingNotifier()
    sweeper, _ = make_sweeper(uow_factory, notifier, clock)
    stats = await sweeper.sweep_once()
    [delivery] = notifier.deliveries
    assert (delivery.chat_id, delivery.language) == (CLIENT_TG, "en")
    assert (delivery.recipient_id, delivery.client_link_id) == (None, link_id)
    assert stats.messages_sent == 1 and stats.sent_ids == [delivery.items[0].id]
    [row] = await reminders(uow_factory)
    assert row.state == "sent" and row.client_link_id == link_id and row.recipient_id is None
    [entry] = await _timeline(uow_factory, card.id)
    assert entry.payload == {"kind": "client.on_way", "who": "Mia", "job": "measure"}
    assert entry.at == clock.now()  # written when it went out
    assert (await sweeper.sweep_once()).claimed == 0
    async with uow_factory() as uow:  # the manager's history, filtered to messages
        page = await deal_timeline(uow, ann, card.id, TimelineFilter.MESSAGES)
    assert [e.kind for e in page.items] == [ActivityKind.CLIENT_OUT]


async def test_nothing_lost_across_a_restart_claimed_rows_go_after_the_lease(
    uow_factory, clock, make_actor
):
    ann = await make_actor(name="Ann")
    card, _ = await _deal_with_client(uow_factory, ann)
    await _on_way(uow_factory, card.id)

    class Dies(RecordingNotifier):
        async def deliver(self, delivery):
            raise Killed

    crashing, _ = make_sweeper(uow_factory, Dies(), clock)
    with pytest.raises(BaseExceptionGroup):
        await crashing.sweep_once()
    assert [r.state for r in await reminders(uow_factory)] == ["claimed"]
    restarted = RecordingNotifier()
    sweeper, _ = make_sweeper(uow_factory, restarted, clock)
    assert (await sweeper.sweep_once()).claimed == 0  # the lease still holds it
    clock.advance(seconds=21)
    await sweeper.sweep_once()
    assert [d.chat_id for d in restarted.deliveries] == [CLIENT_TG]
    assert [r.state for r in await reminders(uow_factory)] == ["sent"]
    assert len(await _timeline(uow_factory, card.id)) == 1


async def test_a_429_holds_the_chat_and_the_message_goes_once_after_it(
    uow_factory, clock, make_actor
):
    ann = await make_actor(name="Ann")
    card, _ = await _deal_with_client(uow_factory, ann)
    await _on_way(uow_factory, card.id)
    notifier = RecordingNotifier()
    notifier.script.append(DeliveryRetryAfter(7))
    sweeper, timer = make_sweeper(uow_factory, notifier, clock)
    start = timer.monotonic()
    stats = await sweeper.sweep_once()
    assert stats.rate_limited == 1 and stats.messages_sent == 1
    (_, first), (_, second) = notifier.attempts
    assert first == start and second - first >= 7
    assert [r.state for r in await reminders(uow_factory)] == ["sent"]
    assert len(await _timeline(uow_factory, card.id)) == 1


async def test_a_403_marks_the_client_blocked_fails_their_rows_and_is_not_retried(
    uow_factory, clock, make_actor
):
    ann = await make_actor(name="Ann")
    card, link_id = await _deal_with_client(uow_factory, ann)
    await _on_way(uow_factory, card.id, "Mia")
    clock.advance(minutes=1)
    await _on_way(uow_factory, card.id, "Max")
    clock.advance(minutes=1)
    notifier = RecordingNotifier()
    notifier.script.append(DeliveryForbidden("blocked"))
    sweeper, _ = make_sweeper(uow_factory, notifier, clock)
    stats = await sweeper.sweep_once()
    assert stats.forbidden == 1 and notifier.deliveries == []
    assert {r.state for r in await reminders(uow_factory)} == {"failed"}
    assert (await _link(uow_factory, link_id)).blocked_at == clock.now()
    # Not retried, and nothing new is queued for them...
    assert await _on_way(uow_factory, card.id) is False
    clock.advance(hours=1)
    assert (await sweeper.sweep_once()).claimed == 0
    assert await _timeline(uow_factory, card.id) == []
    # ...until they write to the bot again.
    async with uow_factory() as uow:
        await client_messages.client_wrote(uow, CLIENT_TG)
    assert (await _link(uow_factory, link_id)).blocked_at is None
    assert await _on_way(uow_factory, card.id) is True


async def test_stop_cancels_what_is_queued_and_nothing_goes_until_start(
    uow_factory, clock, make_actor
):
    ann = await make_actor(name="Ann")
    card, link_id = await _deal_with_client(uow_factory, ann)
    await _on_way(uow_factory, card.id)
    async with uow_factory() as uow:
        assert await client_messages.stop(uow, [link_id]) == 1
        await uow.commit()
    [row] = await reminders(uow_factory)
    assert (row.state, row.last_error) == ("cancelled", "stopped")
    assert await _on_way(uow_factory, card.id, "Max") is False  # nothing queued
    notifier = RecordingNotifier()
    sweeper, _ = make_sweeper(uow_factory, notifier, clock)
    clock.advance(days=1)
    await sweeper.sweep_once()
    assert notifier.deliveries == []
    async with uow_factory() as uow:
        await client_messages.resume(uow, [link_id])
        await uow.commit()
    assert await _on_way(uow_factory, card.id, "Max") is True
    await sweeper.sweep_once()
    assert [i.payload for i in notifier.items()] == [ClientOnWay(who="Max")]


async def test_a_row_queued_before_stop_is_cancelled_at_claim_time(uow_factory, clock, make_actor):
    ann = await make_actor(name="Ann")
    card, link_id = await _deal_with_client(uow_factory, ann)
    await _on_way(uow_factory, card.id)
    async with uow_factory() as uow:  # stopped by another worker, after the enqueue
        link = await uow.repo.get(ClientLink, link_id)
        link.stopped_at = clock.now()
        await uow.commit()
    notifier = RecordingNotifier()
    sweeper, _ = make_sweeper(uow_factory, notifier, clock)
    stats = await sweeper.sweep_once()
    assert stats.cancelled == 1 and notifier.deliveries == []
    assert [r.last_error for r in await reminders(uow_factory)] == ["stopped"]


async def test_quiet_hours_hold_a_client_message_until_the_morning(uow_factory, clock, make_actor):
    """21:00-09:00 in the company's zone (Europe/Moscow, UTC+3)."""
    ann = await make_actor(name="Ann")
    card, _ = await _deal_with_client(uow_factory, ann)
    clock.set(datetime(2026, 1, 12, 17, 59, tzinfo=UTC))  # 20:59 in Moscow: not quiet yet
    await _on_way(uow_factory, card.id)
    [row] = await reminders(uow_factory)
    assert row.due_at == clock.now()
    clock.set(datetime(2026, 1, 12, 18, 30, tzinfo=UTC))  # 21:30: quiet, the sweep holds it
    notifier = RecordingNotifier()
    sweeper, _ = make_sweeper(uow_factory, notifier, clock)
    stats = await sweeper.sweep_once()
    morning = datetime(2026, 1, 13, 6, 0, tzinfo=UTC)  # 09:00 in Moscow
    assert stats.held == 1 and notifier.deliveries == []
    [row] = await reminders(uow_factory)
    assert (row.state, row.due_at, row.attempts) == ("pending", morning, 0)
    # Queued in the quiet hours: due when they end.
    clock.set(datetime(2026, 1, 13, 2, 0, tzinfo=UTC))  # 05:00
    await _on_way(uow_factory, card.id, "Max")
    assert {r.due_at for r in await reminders(uow_factory)} == {morning}
    # Staff rows are not held.
    async with uow_factory() as uow:
        await outbox.enqueue(uow, ann.id, Kind.TASK_DUE, TaskPayload(title="t"), clock.now())
        await uow.commit()
    clock.set(morning - timedelta(minutes=1))
    await sweeper.sweep_once()
    assert [(d.chat_id, d.client_link_id) for d in notifier.deliveries] == [(ann.telegram_id, None)]
    clock.set(morning)
    await sweeper.sweep_once()
    ways = [i.payload for d in notifier.deliveries[1:] for i in d.items]
    assert [p.who for p in ways if isinstance(p, ClientOnWay)] == ["Mia", "Max"]
    assert len(ways) == 2


async def test_a_stage_with_a_client_message_enqueues_it_with_the_deal_fields(
    uow_factory, clock, make_actor
):
    ann = await make_actor(name="Ann Smith")
    card, link_id = await _deal_with_client(uow_factory, ann)
    async with uow_factory() as uow:
        card = await deals.advance(uow, ann, card.id, card.version)  # Proposal sent: no message
    assert await reminders(uow_factory) == [] or all(
        r.client_link_id is None for r in await reminders(uow_factory)
    )
    when = clock.now() + timedelta(days=2)
    fields = {"measurement_at": when, "address": "ул. Мира, 1"}
    async with uow_factory() as uow:
        await deals.advance(uow, ann, card.id, card.version, fields=fields)
    [row] = await reminders(uow_factory, client_link_id=link_id)
    assert row.kind == Kind.CLIENT_STAGE and row.deal_id == card.id
    p = ClientStage.model_validate(row.payload)
    assert p.confirm and not p.accept and p.stage_en == "Measurement scheduled"
    assert p.fields["measurement_at"] == when.isoformat()
    assert p.fields["address"] == "ул. Мира, 1" and p.fields["manager"] == "Ann"  # first name


async def test_payment_reminders_reach_the_client_before_the_date_and_after_a_miss(
    uow_factory, clock, make_actor
):
    ann = await make_actor(name="Ann")
    card = await contract_signed(uow_factory, ann, clock)
    await link_client(uow_factory, card.id, CLIENT_TG, "Ivan", "en")
    await won_in_three_parts(uow_factory, ann, card.id, card.version)  # from 2026-02-01
    async with uow_factory() as uow:
        links = await uow.repo.client_links.of_telegram(CLIENT_TG)
    rows = await reminders(uow_factory, kind=Kind.CLIENT_PAY_SOON)
    assert len(rows) == 3 and {r.client_link_id for r in rows} == {links[0].id}
    first = ClientPayment.model_validate(rows[0].payload)
    assert (first.n, first.count, first.amount) == (1, 3, 10000000)
    assert rows[0].due_at == datetime(2026, 1, 29, 7, 0, tzinfo=UTC)  # 3 days before, 10:00
    clock.set(datetime(2026, 2, 6, 9, 0, tzinfo=UTC))  # past the 3 days of grace
    async with uow_factory() as uow:
        assert await installments.mark_overdue(uow) == 1
    [late] = await reminders(uow_factory, kind=Kind.CLIENT_PAY_LATE)
    p = ClientPayment.model_validate(late.payload)
    assert (p.n, p.amount, p.days) == (1, 10000000, 5)
    async with uow_factory() as uow:  # a second scan adds nothing
        await installments.mark_overdue(uow)
    assert len(await reminders(uow_factory, kind=Kind.CLIENT_PAY_LATE)) == 1


def test_a_client_message_naming_an_unknown_field_is_refused_with_its_place():
    text = DEFAULT_PIPELINES.read_text(encoding="utf-8")
    parse_config(text)  # the shipped messages name known fields only
    with pytest.raises(ConfigError, match=r"in_production.*\{ready_at\}: a client's text"):
        parse_config(text.replace("готовность ~{production_at:day}.", "готовность {ready_at}."))
