"""Order fulfilment (issue 24): a won sale's order, the crew, the installer's job and its
refusals, partial completion, the client's sign-off, the quality check and a claim."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from services.errors import PermissionDenied, RuleViolation
from services.sales import deals
from services.work import installation, installments, orders
from storage.enums import TaskKind
from storage.models import Activity, Reminder, Task
from tests.factories import cast, contract_signed, open_tasks, order_at_installation, stage_code

CHECKS = ("dismantling", "installation", "foam", "slopes", "sills", "cleanup")


@pytest.fixture
async def crew(make_actor):
    return await cast(make_actor, "ann", "lee", "mia", "ivan", "igor", "ilya")


async def assigned(uow_factory, clock, crew) -> tuple[int, int, int]:
    sale_id, order_id = await order_at_installation(uow_factory, clock, crew["ann"])
    [assign] = await open_tasks(uow_factory, order_id, TaskKind.ASSIGN_CREW)
    async with uow_factory() as uow:
        loads = await installation.crew_loads(uow, crew["ivan"], clock.now() + timedelta(days=10))
        assert [(x.name, x.load) for x in loads] == [("Igor", 0), ("Ilya", 0)]
        job = await installation.assign_crew(uow, crew["ivan"], assign.id, crew["igor"].id)
    return sale_id, order_id, job.task_id


async def test_the_order_links_back_and_carries_the_sale(uow_factory, clock, crew):
    sale_id, order_id = await order_at_installation(uow_factory, clock, crew["ann"])
    async with uow_factory() as uow:
        order = await deals.get_card(uow, crew["ann"], order_id)
        sale = await deals.get_card(uow, crew["ann"], sale_id)
    assert [link.deal_id for link in order.links] == [sale_id]
    assert [link.deal_id for link in sale.links] == [order_id]
    assert order.amount == 10_000_000 and order.items == ("Окно кухня", "Окно спальня")
    assert order.contact_name == sale.contact_name and order.manager_id == crew["ann"].id
    assert order.production_at is not None and order.delivery_at is not None


async def test_job_flow_partial_then_done_signed_checked_and_a_claim(uow_factory, clock, crew):
    igor, ivan = crew["igor"], crew["ivan"]
    _, order_id, job_id = await assigned(uow_factory, clock, crew)
    async with uow_factory() as uow:
        card = await installation.job_card(uow, await uow.repo.get(Task, job_id))
    assert card.to_collect == 0 and card.installer_id == igor.id
    assert card.map_url and card.map_url.startswith("https://yandex.ru/maps/")
    async with uow_factory() as uow:
        await installation.step(uow, igor, job_id, "accept")
    for phase in ("before", "after"):
        async with uow_factory() as uow:
            await installation.add_photo(uow, igor, job_id, phase, f"photo-{phase}")
    for code in CHECKS:
        async with uow_factory() as uow:
            card = await installation.tick(uow, igor, job_id, code)
    assert card.ready
    async with uow_factory() as uow:
        await installation.finish(
            uow, igor, job_id, ["Окно спальня"], clock.now() + timedelta(days=12)
        )
    async with uow_factory() as uow:
        with pytest.raises(RuleViolation) as early:  # one item is still to install
            await installation.sign_off(uow, igor, job_id, "too-early")
    assert early.value.rule == "job_not_done"
    assert await stage_code(uow_factory, order_id) == "installation_scheduled"
    [rest] = await open_tasks(uow_factory, order_id, TaskKind.INSTALL)
    assert rest.assignee_id == igor.id and rest.payload["items"] == ["Окно спальня"]
    for phase in ("before", "after"):
        async with uow_factory() as uow:
            await installation.add_photo(uow, igor, rest.id, phase, f"p2-{phase}")
    for code in CHECKS:
        async with uow_factory() as uow:
            await installation.tick(uow, igor, rest.id, code)
    async with uow_factory() as uow:
        await installation.finish(uow, igor, rest.id)
    assert await stage_code(uow_factory, order_id) == "installed"
    async with uow_factory() as uow:
        check_id = await installation.sign_off(uow, igor, rest.id, "signature-file")
    # 30 % of 100 000 is owed: the head's acceptance is refused, nothing changes.
    async with uow_factory() as uow:
        with pytest.raises(RuleViolation) as refused:
            await installation.quality_check(uow, ivan, check_id, accepted=True)
    assert refused.value.rule == "money_owed" and refused.value.params["amount"] == 3_000_000
    assert await stage_code(uow_factory, order_id) == "installed"
    async with uow_factory() as uow:
        await installments.record_payment(uow, crew["ann"], order_id, 3_000_000)
    assert await stage_code(uow_factory, order_id) == "installed"  # paid: no move by itself
    async with uow_factory() as uow:
        await installation.quality_check(uow, ivan, check_id, accepted=True)
    assert await stage_code(uow_factory, order_id) == "accepted"
    async with uow_factory() as uow:
        claim_id = await installation.open_claim(uow, crew["ann"], order_id, "Дует из-под окна")
        files = (
            await uow.session.scalars(select(Activity.file_id).where(Activity.deal_id == order_id))
        ).all()
    assert await stage_code(uow_factory, claim_id) == "claim_received"
    assert {"photo-before", "photo-after", "signature-file"} <= set(files)


async def test_refusals_leave_the_job_unchanged(uow_factory, clock, crew):
    igor, ilya, ann, mia = crew["igor"], crew["ilya"], crew["ann"], crew["mia"]
    _, _, job_id = await assigned(uow_factory, clock, crew)
    # Another crew's job, a manager, a measurer, a leader: not theirs to act on.
    for who in (ilya, ann, mia, crew["lee"]):
        async with uow_factory() as uow:
            with pytest.raises(PermissionDenied):
                await installation.tick(uow, who, job_id, "foam")
        async with uow_factory() as uow:
            with pytest.raises(PermissionDenied):
                await installation.finish(uow, who, job_id)
    # Done without the checklist, then without the photos.
    async with uow_factory() as uow:
        with pytest.raises(RuleViolation) as no_checks:
            await installation.finish(uow, igor, job_id)
    assert no_checks.value.rule == "checklist_incomplete"
    for code in CHECKS:
        async with uow_factory() as uow:
            await installation.tick(uow, igor, job_id, code)
    async with uow_factory() as uow:
        with pytest.raises(RuleViolation) as no_photos:
            await installation.finish(uow, igor, job_id)
    assert no_photos.value.rule == "photos_before_missing"
    async with uow_factory() as uow:
        task = await uow.repo.get(Task, job_id)
        assert task.status == "open" and task.payload["photos"] == {}


async def test_order_dates_remind_and_a_slipped_date_alerts_the_manager_once(
    uow_factory, clock, crew
):
    ann = crew["ann"]
    card = await contract_signed(uow_factory, ann, clock, amount="100000")
    async with uow_factory() as uow:
        [link] = (await deals.win(uow, ann, card.id, None)).links
    async with uow_factory() as uow:
        order = await deals.get_card(uow, ann, link.deal_id)
        stage = next(s for s in order.pipeline.stages if s.code == "in_production")
        when = clock.now() + timedelta(days=5)
        await deals.move_to(uow, ann, order.id, stage.id, order.version, {"production_at": when})
    [reminder] = await open_tasks(uow_factory, order.id, TaskKind.CUSTOM)
    assert reminder.due_at == when and reminder.assignee_id == ann.id
    assert reminder.payload["title_en"] == "Production date: is the order ready?"
    async with uow_factory() as uow:
        assert await orders.slipped_scan(uow) == 0  # not yet
    clock.advance(days=6)
    for expected in (1, 0):  # once per date
        async with uow_factory() as uow:
            assert await orders.slipped_scan(uow) == expected
    async with uow_factory() as uow:
        [alert] = (
            await uow.session.scalars(select(Reminder).where(Reminder.kind == "deal.date_slipped"))
        ).all()
    assert alert.recipient_id == ann.id and alert.deal_id == order.id
    assert alert.payload["field"] == "production_at"
