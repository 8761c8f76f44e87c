"""Hand-computed: what *came in* during a period (the cohort funnel) against what
*happened* in it (won, lost by the date of it), with calendar periods and their previous
periods, on both databases; and the digest counts what /funnel's "what happened" counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.reports import analytics, digests
from services.reports.analytics import Period, ReportFilter
from services.sales import deals
from tests.factories import loose_sales, new_deal

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)  # Monday; December is running (1-7)
TZ = "Europe/Moscow"


def at(month: int, day: int) -> datetime:
    return datetime(2026, month, day, 9, 0, tzinfo=UTC)  # noon in Moscow


async def story(uow_factory, clock, make_actor):
    """deal  came in   then                           money
    A     20 Nov    lost 3 Dec, "expensive"        100 000
    B      2 Dec    lost 4 Dec, "competitor"        50 000
    C      2 Dec    open                            10 000
    D     10 Nov    won 5 Dec                      200 000
    E     12 Nov    lost 25 Nov, "expensive"        30 000"""
    clock.set(at(11, 1))
    ann = await make_actor(roles=("manager",), name="Ann")
    lea = await make_actor(roles=("leader",), name="Lea")
    st = await loose_sales(uow_factory)

    async def deal(came: datetime, amount: str) -> int:
        clock.set(came)
        card = await new_deal(uow_factory, ann)
        async with uow_factory() as uow:
            await deals.move_to(uow, ann, card.id, st["proposal_sent"], None, {"amount": amount})
        return card.id

    async def lose(deal_id: int, when: datetime, reason: str) -> None:
        clock.set(when)
        async with uow_factory() as uow:
            await deals.lose(uow, ann, deal_id, reason)

    a = await deal(at(11, 20), "100000")
    b = await deal(at(12, 2), "50000")
    await deal(at(12, 2), "10000")
    d = await deal(at(11, 10), "200000")
    e = await deal(at(11, 12), "30000")
    await lose(e, at(11, 25), "expensive")
    await lose(a, at(12, 3), "expensive")
    await lose(b, at(12, 4), "competitor")
    clock.set(at(12, 5))
    async with uow_factory() as uow:
        await deals.move_to(uow, ann, d, st["won"], None, None)
    clock.set(NOW)
    return lea


def month(period: Period, **kw) -> ReportFilter:
    return ReportFilter(period=period, tz=TZ, compare=True, **kw)


async def test_came_in_against_happened_by_hand(uow_factory, clock, make_actor):
    lea = await story(uow_factory, clock, make_actor)
    async with uow_factory() as uow:
        dec = await analytics.period_funnel(uow, lea, month(Period.THIS_MONTH))
        nov = await analytics.period_funnel(uow, lea, month(Period.LAST_MONTH))
        dec_losses = await analytics.loss_reasons(uow, lea, month(Period.THIS_MONTH))
        dec_cohort_losses = await analytics.loss_reasons(
            uow, lea, month(Period.THIS_MONTH, came_in=True)
        )
        nov_losses = await analytics.loss_reasons(uow, lea, month(Period.LAST_MONTH))
    # December (running, 1-7): came in B and C; B refused, nothing won yet.
    assert (dec.range.first_day.isoformat(), dec.range.last_day.isoformat()) == (
        "2026-12-01",
        "2026-12-31",
    )
    assert (dec.cohort, dec.won, dec.lost, dec.open) == (2, 0, 1, 1)
    # ... what happened in it: A and B lost (whenever they came in), D won.
    h = dec.happened
    assert (h.won, h.won_amount, h.lost, h.lost_amount) == (1, 20_000_000, 2, 15_000_000)
    # Losses default to what happened: A (came in November) is in December's losses.
    assert not dec_losses.came_in
    assert {(r.reason.code, r.count, r.amount) for r in dec_losses.rows if r.reason} == {
        ("expensive", 1, 10_000_000),
        ("competitor", 1, 5_000_000),
    }
    assert dec_cohort_losses.came_in and dec_cohort_losses.count == 1  # B only
    # The previous period of the running month is 1-7 November: nothing came in or happened.
    assert dec.previous is not None
    assert (dec.previous.range.first_day.day, dec.previous.range.last_day.day) == (1, 7)
    assert (dec.previous.cohort, dec.previous.happened.won, dec.previous.happened.lost) == (0, 0, 0)
    # November (finished): came in A, D, E (D won since, A and E refused); in November
    # itself only E was lost. Its previous period is all of October.
    assert (nov.cohort, nov.won, nov.won_amount, nov.lost) == (3, 1, 20_000_000, 2)
    assert (nov.happened.won, nov.happened.lost, nov.happened.lost_amount) == (0, 1, 3_000_000)
    reason = nov_losses.rows[0].reason
    assert nov_losses.count == 1 and reason is not None and reason.code == "expensive"
    assert nov.previous is not None
    assert (nov.previous.range.first_day.isoformat(), nov.previous.range.last_day.isoformat()) == (
        "2026-10-01",
        "2026-10-31",
    )


async def test_the_digest_counts_what_funnel_says_happened(uow_factory, clock, make_actor):
    lea = await story(uow_factory, clock, make_actor)
    # The digest window of the week 30 Nov - 7 Dec (Moscow midnights) and /funnel's
    # custom period of the same days.
    since = datetime(2026, 11, 29, 21, 0, tzinfo=UTC)
    until = datetime(2026, 12, 6, 21, 0, tzinfo=UTC)
    async with uow_factory() as uow:
        digest = await digests.compose_digest(uow, lea, "weekly", since, until, tz=TZ)
        week = ReportFilter(
            period=Period.CUSTOM,
            start=(since + timedelta(hours=3)).date(),
            end=(until + timedelta(hours=3)).date() - timedelta(days=1),
            tz=TZ,
        )
        funnel = await analytics.period_funnel(uow, lea, week)
        losses = await analytics.loss_reasons(uow, lea, week)
    h = funnel.happened
    assert (digest.won, digest.won_amount) == (h.won, h.won_amount) == (1, 20_000_000)
    assert (digest.lost, digest.lost_amount) == (h.refused, h.refused_amount) == (2, 15_000_000)
    by_reason = {r.name_en: (r.count, r.amount) for r in digest.reasons}
    assert by_reason == {
        r.reason.name_en: (r.count, r.amount) for r in losses.rows if r.reason is not None
    }
