"""The Mini App's deal sheet edits the fields the chat's ✏️ edits, through the same service
(issue 20): saved with a timeline row and the chat card redrawn; another manager, a stale
version and a bad value are refused with the chat's words and nothing saved."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aiohttp import ClientSession

from services.sales.edit import DEAL_FIELDS
from tests.factories import deal_row, new_deal
from tests.tg import harness  # noqa: F401
from tests.webapp_kit import auth, serve, sign_init_data


@pytest.fixture
async def app(harness, db_url, uow_factory):  # noqa: F811
    server = await serve(harness, db_url, uow_factory)
    async with ClientSession(base_url=str(server.make_url(""))) as client:
        yield client
    await server.close()


async def test_the_sheet_edits_a_deal_through_the_chats_service(
    app, make_actor, uow_factory, clock, db_snapshot
):
    ann = await make_actor(roles=("manager",), name="Анна")
    bob = await make_actor(roles=("manager",), name="Борис")
    deal = await new_deal(uow_factory, ann, name="Иван", amount="120000")
    head = auth(sign_init_data(ann.telegram_id, clock.now()))
    url = f"/app/api/deals/{deal.id}/edit"

    r = await app.get(f"/app/api/deals/{deal.id}", headers=head)
    sheet = (await r.json())["deal"]
    assert sheet["may_edit"] and [f["field"] for f in sheet["edit"]] == list(DEAL_FIELDS)
    assert {"field": "amount", "label": "Сумма", "type": "text", "value": "120000"} in sheet["edit"]

    # refusals: nothing saved
    before = await db_snapshot()
    other = auth(sign_init_data(bob.telegram_id, clock.now()))
    r = await app.post(url, headers=other, json={"field": "amount", "value": "1", "version": 1})
    assert r.status == 403
    r = await app.post(
        url, headers=head, json={"field": "amount", "value": "1,200", "version": deal.version}
    )
    assert r.status == 422 and "1 200" in (await r.json())["message"]
    r = await app.post(url, headers=head, json={"field": "amount", "value": "5", "version": 99})
    assert r.status == 409
    r = await app.post(
        url, headers=head, json={"field": "manager_id", "value": "1", "version": deal.version}
    )
    assert r.status == 422
    assert await db_snapshot() == before

    r = await app.post(
        url, headers=head, json={"field": "amount", "value": "135 тыс", "version": deal.version}
    )
    assert r.status == 200, await r.text()
    body = (await r.json())["deal"]
    assert body["amount_text"] == "135\u00a0000\u00a0₽"
    r = await app.post(
        url,
        headers=head,
        json={"field": "measurement_at", "value": "2026-01-20T15:30", "version": body["version"]},
    )
    assert r.status == 200, await r.text()
    row = await deal_row(uow_factory, deal.id)
    assert row.amount == 13_500_000
    assert row.measurement_at == datetime(2026, 1, 20, 12, 30, tzinfo=UTC)  # Moscow time typed
