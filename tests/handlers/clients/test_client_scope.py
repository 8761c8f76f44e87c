"""A client reaches nothing but their own orders (issue 25), through the real dispatcher:
what they read is in their words and holds nothing internal (notes, calls, other clients,
staff beyond the manager's first name, internal stage names); another client's deal by a
forged callback, staff callbacks and staff commands change nothing and show nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from handlers.clients import views
from handlers.ui.callbacks import (
    ClientAction,
    ClientCb,
    DealAction,
    DealCb,
    MenuAction,
    MenuCb,
    TaskAction,
    TaskCb,
)
from services.clients.views import ClientStatus
from services.sales import deals
from services.sales.pipeline_config import ClientSpec
from storage.enums import ActivityKind
from storage.models import Deal
from tests.client_kit import invite, new_client, open_link
from tests.factories import (
    contract_signed,
    deal_row,
    new_deal,
    order_at_installation,
    plain,
    with_measurer,
    won_in_three_parts,
)

DENIED = "⚠️ Нет доступа."
STALE = "Эта кнопка больше не работает. Ваши заказы: /start"
NOTE = "Клиент торгуется, скидка до 5% согласована с Lee"
CALL = "Перезвонить после 18:00, жена против белых рам"


def flat(html: str) -> str:
    """The text without tags, no-break spaces as spaces (money is "150 000 ₽")."""
    return plain(html).replace("\xa0", " ")


async def measured_deal(uow_factory, clock, manager, measurer, name: str):
    """A deal of `name` at Measurement scheduled for tomorrow (Mia measures), with a note
    and a call on its timeline."""
    deal = await new_deal(uow_factory, manager, name=name, amount="150000", need="3 окна")
    async with uow_factory() as uow:
        card = await deals.advance(uow, manager, deal.id, deal.version)
    fields = {"measurement_at": clock.now() + timedelta(days=1), "address": "ул. Мира, 1"}
    async with uow_factory() as uow:
        card = await deals.advance(uow, manager, deal.id, card.version, fields=fields)
    await with_measurer(uow_factory, manager, deal.id, measurer.id)
    async with uow_factory() as uow:
        await deals.add_note(uow, manager, deal.id, NOTE)
    async with uow_factory() as uow:
        await deals.add_note(uow, manager, deal.id, CALL, kind=ActivityKind.CALL)
    return card


@pytest.fixture
async def two_clients(harness, uow_factory, clock, team, make_actor):
    """Maria (a measured deal and a sale won in three parts) and Pyotr (a measured deal),
    each linked through their own invite; their manager is "Анна Кузнецова"."""
    anna = await make_actor(roles=("manager",), name="Анна Кузнецова")
    maria_deal = await measured_deal(uow_factory, clock, anna, team["mia"], "Мария Соколова")
    pyotr_deal = await measured_deal(uow_factory, clock, anna, team["mia"], "Пётр Волков")
    maria, pyotr = new_client("Мария"), new_client("Пётр")
    await open_link(harness, maria, (await invite(harness, anna, maria_deal.id))[0])
    await open_link(harness, pyotr, (await invite(harness, anna, pyotr_deal.id))[0])
    return {"maria": (maria, maria_deal), "pyotr": (pyotr, pyotr_deal), "anna": anna}


async def test_the_client_reads_their_order_in_their_words(harness, two_clients):
    maria, deal = two_clients["maria"]
    home = await harness.send(maria, "/start")
    assert f"Заказ №{deal.id} · Замер назначен: вт, 13 января, 12:00" in plain(home.text)
    opened = await harness.tap(maria, ClientCb(action=ClientAction.DEAL, deal_id=deal.id), home)
    text = flat(opened.text)
    assert text.splitlines() == [
        f"📦 Заказ №{deal.id}",
        "Замер назначен: вт, 13 января, 12:00",
        "📍 ул. Мира, 1",
        "💰 Сумма: 150 000 ₽",
        "👤 Ваш менеджер: Анна",
    ]
    # Nothing internal, on either screen.
    for screen in (plain(home.text), text):
        for secret in (NOTE, CALL, "Кузнецова", "Mia", "Пётр", "Волков", "Замер запланирован"):
            assert secret not in screen, secret
        assert "+7" not in screen and "8 (916)" not in screen  # no phone, not even theirs


async def test_the_order_its_installation_and_the_payment_schedule(
    harness, uow_factory, clock, team
):
    """A won sale paid in three parts and its order at Installation scheduled: the order in
    the client's words, the schedule under the sale (the Installment control copy is folded
    into it, never listed by itself)."""
    ann = team["ann"]
    sale_id, order_id = await order_at_installation(uow_factory, clock, ann)
    maria = new_client()
    await open_link(harness, maria, (await invite(harness, ann, sale_id))[0])
    home = await harness.send(maria, "/start")
    lines = plain(home.text).splitlines()
    assert lines[2:] == [
        f"📦 Заказ №{order_id} · Монтаж: чт, 22 января, 12:00",
        f"📦 Заказ №{sale_id} · Договор заключён, заказ в работе",
    ]
    assert len(home.buttons()) == 3  # two orders and "My orders"

    # The same client's second purchase, won in three parts: the schedule under it.
    other = await contract_signed(uow_factory, ann, clock, amount="300000")
    async with uow_factory() as uow:
        row = await uow.repo.get(Deal, other.id)
        first = await uow.repo.get(Deal, sale_id)
        row.contact_id = first.contact_id
        await uow.commit()
    await won_in_three_parts(
        uow_factory, ann, other.id, (await deal_row(uow_factory, other.id)).version
    )
    home = await harness.send(maria, "/start")
    assert f"Заказ №{other.id} · Договор заключён, заказ в работе" in plain(home.text)
    async with uow_factory() as uow:
        plan = await uow.repo.installments.plan_from_source(other.id)
        assert plan is not None
        copy_id = plan.deal_id  # its copy in Installment control: never listed by itself
        [new_order] = [d.id for d in await uow.repo.deals.linked(other.id, None) if d.id != copy_id]
    listed = [data for _, data in home.buttons()]
    assert listed == [f"cl:d:{i}" for i in (new_order, other.id, order_id, sale_id)] + ["cl:o:0"]
    assert copy_id not in (new_order, other.id, order_id, sale_id)
    opened = await harness.tap(maria, ClientCb(action=ClientAction.DEAL, deal_id=other.id), home)
    text = flat(opened.text)
    assert "💳 График платежей" in text
    assert "▫️ 1 февраля — 100 000 ₽" in text and "▫️ 1 апреля — 100 000 ₽" in text
    assert "Оплачено 0 ₽ из 300 000 ₽" in text
    assert "Следующий платёж: 1 февраля — 100 000 ₽" in text


async def test_forged_callbacks_reach_nothing(harness, two_clients, db_snapshot):
    maria, mine = two_clients["maria"]
    _, theirs = two_clients["pyotr"]
    before = await db_snapshot()
    for forged in (
        ClientCb(action=ClientAction.DEAL, deal_id=theirs.id),  # another client's deal
        ClientCb(action=ClientAction.DEAL, deal_id=999_999),  # no such deal
    ):
        refused = await harness.tap(maria, forged)
        assert refused.alert == DENIED and not refused.texts, forged
    for staff in (
        f"cl:d:0{theirs.id}",  # not canonical
        DealCb(action=DealAction.OPEN, deal_id=mine.id),
        DealCb(action=DealAction.NEXT, deal_id=mine.id, v=mine.version),
        DealCb(action=DealAction.INVITE_CLIENT, deal_id=mine.id),
        DealCb(action=DealAction.HISTORY, deal_id=theirs.id),
        TaskCb(action=TaskAction.DONE, task_id=1),
        MenuCb(action=MenuAction.FUNNEL),
    ):
        refused = await harness.tap(maria, staff)
        assert refused.alert == STALE and not refused.texts, staff
    assert await db_snapshot() == before


async def test_staff_commands_show_a_client_only_their_orders(harness, two_clients, db_snapshot):
    maria, mine = two_clients["maria"]
    before = await db_snapshot()
    for command in ("/funnel", "/tasks", "/deals", "/menu", "/team", "/invite", "/search x"):
        got = await harness.send(maria, command)
        assert len(got.texts) == 2, (command, got.texts)
        assert got.texts[0].startswith("Я показываю, как идут ваши заказы"), command
        assert f"Заказ №{mine.id}" in got.texts[1] and len(got.buttons()) == 2, command
    assert await db_snapshot() == before


# --- the client's words, drawn --------------------------------------------------------------

TZ = ZoneInfo("Europe/Moscow")
NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def test_stage_names_fill_dates_in_words():
    ready = datetime(2026, 12, 25, 7, 0, tzinfo=UTC)
    made = ClientStatus(
        "В производстве, готовность ~{production_at:day}",
        "In production, ready by ~{production_at:day}",
        {"production_at": ready},
    )
    assert views.status(made, "ru", TZ, NOW) == "В производстве, готовность ~25 декабря"
    assert views.status(made, "en", TZ, NOW) == "In production, ready by ~December 25"
    visit = ClientStatus("Монтаж: {installation_at}", None, {"installation_at": ready})
    assert views.status(visit, "ru", TZ, NOW) == "Монтаж: пт, 25 декабря, 10:00"
    # No English name: a plain English state, never the Russian one.
    assert views.status(visit, "en", TZ, NOW) == "Your request is in progress"
    unknown = ClientStatus("Замер: {measurement_at}", None, {"measurement_at": None})
    assert views.status(unknown, "ru", TZ, NOW) == "Замер: —"


@pytest.mark.parametrize("bad", ["{amount}", "{notes}", "{measurement_at:%Y}", "{address!r}", "{"])
def test_a_client_name_names_only_what_a_client_may_see(bad):
    with pytest.raises(ValueError):
        ClientSpec(name=f"Заказ {bad}")
    assert ClientSpec(name="Доставка: {delivery_at} · {address} · {production_at:day}")
