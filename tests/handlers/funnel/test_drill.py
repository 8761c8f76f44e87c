"""Drill-down from /funnel (issue 14, Must show 2): every tappable number opens exactly its
deals, through the real dispatcher; a manager cannot drill into another's deals."""

from __future__ import annotations

from aiogram.methods import EditMessageText, SendMessage

from handlers.ui.callbacks import DealCb, DrillCb, DrillWhat, FunnelCb, FunnelReport
from services.sales import deals
from tests.factories import loose_sales, new_deal
from tests.tg import Sent, tg_user


def drill_buttons(sent: Sent) -> dict[str, str]:
    return {text: data for text, data in sent.buttons() if data.startswith("fd:")}


def listed(sent: Sent) -> list[int]:
    """The deal ids of a drill-down list, in order."""
    return [DealCb.unpack(data).deal_id for _, data in sent.buttons() if data.startswith("d:")]


async def world(uow_factory, clock, make_actor):
    lea = await make_actor(roles=("leader",), name="Lea", language="en")
    ann = await make_actor(roles=("manager",), name="Ann", language="en")
    bob = await make_actor(roles=("manager",), name="Bob", language="en")
    st = await loose_sales(uow_factory)

    async def deal(who, amount: str = "1000") -> int:
        return (await new_deal(uow_factory, who, amount=amount)).id

    async def to(who, deal_id: int, code: str) -> None:
        async with uow_factory() as uow:
            await deals.move_to(uow, who, deal_id, st[code], None, None)

    async def lose(who, deal_id: int, reason: str) -> None:
        async with uow_factory() as uow:
            await deals.lose(uow, who, deal_id, reason)

    a1, a2, a3, a4 = [await deal(ann) for _ in range(4)]
    clock.advance(days=1)
    await to(ann, a2, "proposal_sent")
    await lose(ann, a3, "expensive")
    await to(ann, a4, "won")
    clock.advance(days=1)
    b1, b2, b3 = [await deal(bob) for _ in range(3)]
    await to(bob, b2, "proposal_sent")
    await lose(bob, b2, "competitor")
    await to(bob, b3, "won")
    clock.advance(hours=1)
    ids = dict(a1=a1, a2=a2, a3=a3, a4=a4, b1=b1, b2=b2, b3=b3)
    return lea, ann, bob, ids


async def test_every_number_opens_exactly_its_deals(harness, uow_factory, clock, make_actor):
    lea, ann, bob, d = await world(uow_factory, clock, make_actor)
    user = tg_user(lea.telegram_id, lang="en")
    expected = {
        FunnelReport.SNAPSHOT: {
            "Data collection · 2": [d["a1"], d["b1"]],  # longest in the stage first
            "Proposal sent · 1": [d["a2"]],
        },
        FunnelReport.PERIOD: {
            "Data collection · 7": sorted(d.values()),
            "Proposal sent · 4": [d["a2"], d["a4"], d["b2"], d["b3"]],  # won reached all
            **{
                f"{stage} · 2": [d["a4"], d["b3"]]
                for stage in (
                    "Measurement scheduled",
                    "Measurer assigned",
                    "Measurement done",
                    "Contract signed",
                    "Won",
                )
            },
        },
        FunnelReport.LOSSES: {
            "Too expensive · 1": [d["a3"]],
            "Chose a competitor · 1": [d["b2"]],
        },
        FunnelReport.MANAGERS: {"Ann · 1": [d["a4"]], "Bob · 1": [d["b3"]]},
        FunnelReport.VELOCITY: {"Ann · 1": [d["a4"]], "Bob · 1": [d["b3"]]},
    }
    opened = await harness.send(user, "/funnel")
    for report, numbers in expected.items():
        shown = await harness.tap(user, FunnelCb(report=report, photo=0), on=opened)
        buttons = {k.removeprefix("🔎 "): v for k, v in drill_buttons(shown).items()}
        for label, deal_ids in numbers.items():
            assert label in buttons, (report, label, sorted(buttons))
            sent = await harness.tap(user, buttons[label], on=shown)
            assert sent.alert is None
            assert isinstance(sent.last, SendMessage)
            got = listed(sent)
            if report is FunnelReport.PERIOD or report is FunnelReport.LOSSES:
                assert sorted(got) == sorted(deal_ids), (report, label)
            else:
                assert got == deal_ids, (report, label)
            assert f"{len(deal_ids)} deals" in sent.last.text
        assert set(buttons) == set(numbers), report  # every tappable number was checked
    # an item opens the deal card
    item = next(data for _, data in sent.buttons() if data.startswith("d:"))
    card = await harness.tap(user, item, on=sent)
    assert f"#{DealCb.unpack(item).deal_id}" in card.texts[-1]


async def test_pages_and_the_manager_filter(harness, uow_factory, clock, make_actor):
    lea, ann, bob, d = await world(uow_factory, clock, make_actor)
    more = [(await new_deal(uow_factory, ann)).id for _ in range(8)]  # 10 in data collection
    clock.advance(hours=1)
    user = tg_user(lea.telegram_id, lang="en")
    async with uow_factory() as uow:
        dc = (
            await uow.repo.pipelines.stage_by_code(
                (await uow.repo.pipelines.by_code("sales")).id, "data_collection"
            )
        ).id
    first = await harness.tap(user, DrillCb(what=DrillWhat.STAGE, key=dc))
    assert listed(first) == [d["a1"], d["b1"], *more[:6]]
    assert "10 deals · page 1 of 2" in first.last.text
    nxt = next(data for text, data in first.buttons() if text == "▶")
    second = await harness.tap(user, nxt, on=first)
    assert isinstance(second.last, EditMessageText)
    assert listed(second) == more[6:]
    # the leader's filter on Bob: only Bob's
    bobs = await harness.tap(user, DrillCb(what=DrillWhat.STAGE, key=dc, manager_id=bob.id))
    assert listed(bobs) == [d["b1"]]
    # Ann (a manager) sees only her own, whatever she asks for without a manager
    mine = await harness.tap(
        tg_user(ann.telegram_id, lang="en"), DrillCb(what=DrillWhat.STAGE, key=dc)
    )
    assert listed(mine) == [d["a1"], *more[:7]]  # a page of 8 of her 9


async def test_a_manager_cannot_drill_into_anothers_deals(
    harness, uow_factory, clock, make_actor, db_snapshot
):
    lea, ann, bob, d = await world(uow_factory, clock, make_actor)
    user = tg_user(ann.telegram_id, lang="en")
    async with uow_factory() as uow:
        sales = await uow.repo.pipelines.by_code("sales")
        dc = (await uow.repo.pipelines.stage_by_code(sales.id, "data_collection")).id
        reasons = {r.code: r.id for r in await uow.repo.catalog.loss_reasons()}
    before = await db_snapshot()
    forged = [
        DrillCb(what=DrillWhat.WON, key=bob.id),  # Bob's won deals
        DrillCb(what=DrillWhat.STAGE, key=dc, manager_id=bob.id),  # the filter on Bob
        DrillCb(what=DrillWhat.REASON, key=reasons["competitor"], manager_id=bob.id),
        DrillCb(what=DrillWhat.REACHED, key=dc, manager_id=lea.id),
    ]
    for cb in forged:
        sent = await harness.tap(user, cb)
        assert sent.alert, cb
        assert not sent.of(SendMessage) and not sent.of(EditMessageText), cb
    assert await db_snapshot() == before
    # her own: fine, and never Bob's deal
    own = await harness.tap(user, DrillCb(what=DrillWhat.REASON, key=reasons["expensive"]))
    assert listed(own) == [d["a3"]]
    assert (
        listed(await harness.tap(user, DrillCb(what=DrillWhat.REASON, key=reasons["competitor"])))
        == []
    )
    assert listed(await harness.tap(user, DrillCb(what=DrillWhat.WON, key=ann.id))) == [d["a4"]]
