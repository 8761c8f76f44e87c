"""The Mini App's JSON API over real HTTP (aiohttp on 127.0.0.1), on SQLite and PostgreSQL:
initData checked with the bot token and its age, the same services and permissions as the
chat, refusals in the chat's words with nothing saved."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from aiogram.methods import EditMessageText
from aiohttp import ClientSession

from handlers.ui.error_text import error_text
from services.errors import RuleViolation, ValidationError
from services.sales.edit import DEAL_FIELDS
from tests.factories import card_of, deal_row, new_deal
from tests.tg import harness, text_of, tg_user  # noqa: F401
from tests.webapp_kit import auth, client, sign_init_data, tamper


@pytest.fixture
async def app(harness, db_url, uow_factory):  # noqa: F811
    async with client(harness, db_url, uow_factory) as session:
        yield session


@pytest.fixture
async def team(make_actor, uow_factory):
    ann = await make_actor(roles=("manager",), name="Анна")
    bob = await make_actor(roles=("manager",), name="Борис")
    lea = await make_actor(roles=("leader",), name="Лена")
    a1 = await new_deal(uow_factory, ann, name="Клиент Анны 1", amount="100000")
    a2 = await new_deal(uow_factory, ann, name="Клиент Анны 2", amount="50000")
    b1 = await new_deal(uow_factory, bob, name="Клиент Бориса", amount="70000")
    return {"ann": ann, "bob": bob, "lea": lea, "a1": a1, "a2": a2, "b1": b1}


TZ_MSK = ZoneInfo("Europe/Moscow")


def titles(body):
    return sorted(c["title"] for col in body["columns"] for c in col["cards"])


async def test_board_shows_a_manager_only_their_deals(app, team, clock):
    ann = team["ann"]
    r = await app.get("/app/api/board", headers=auth(sign_init_data(ann.telegram_id, clock.now())))
    assert r.status == 200, await r.text()
    body = await r.json()
    assert body["pipeline"]["role"] == "sales" and not body["sees_all"]
    assert titles(body) == sorted([team["a1"].title, team["a2"].title])
    first = body["columns"][0]
    assert first["stage"]["name"] == "Сбор данных"
    assert (first["count"], first["amount"]) == (2, 15_000_000)
    assert "Server-Timing" in r.headers
    # Asking for Bob's deals changes nothing for a manager: the service decides the scope.
    bob_id = team["bob"].id
    r = await app.get(
        f"/app/api/board?manager={bob_id}",
        headers=auth(sign_init_data(ann.telegram_id, clock.now())),
    )
    assert titles(await r.json()) == sorted([team["a1"].title, team["a2"].title])
    # Nor can she open his deal.
    r = await app.get(
        f"/app/api/deals/{team['b1'].id}",
        headers=auth(sign_init_data(ann.telegram_id, clock.now())),
    )
    assert r.status == 404 and "deal" not in await r.json()  # as if it did not exist


async def test_a_leader_sees_everyone_and_filters_by_manager(app, team, clock):
    lea = team["lea"]
    head = auth(sign_init_data(lea.telegram_id, clock.now(), lang="en"))
    body = await (await app.get("/app/api/board", headers=head)).json()
    assert body["sees_all"] and len(titles(body)) == 3
    assert body["columns"][0]["stage"]["name"] == "Data collection"  # her language
    assert {m["name"] for m in body["managers"]} == {"Анна", "Борис"}
    body = await (await app.get(f"/app/api/board?manager={team['bob'].id}", headers=head)).json()
    assert titles(body) == [team["b1"].title]


@pytest.mark.parametrize("how", ["missing", "tampered", "expired", "other_bot"])
async def test_bad_init_data_gets_401_and_no_data(app, team, clock, how):
    ann = team["ann"]
    good = sign_init_data(ann.telegram_id, clock.now())
    headers = {
        "missing": {},
        "tampered": auth(tamper(good)),
        "expired": auth(sign_init_data(ann.telegram_id, clock.now() - timedelta(days=2))),
        "other_bot": auth(sign_init_data(ann.telegram_id, clock.now(), token="1:other-bot")),
    }[how]
    for path in ("/app/api/board", "/app/api/me", f"/app/api/deals/{team['a1'].id}"):
        r = await app.get(path, headers=headers)
        assert r.status == 401
        assert await r.json() == {"error": "unauthorized"}
    r = await app.post(
        f"/app/api/deals/{team['a1'].id}/move",
        headers=headers,
        json={"stage_id": 1, "version": team["a1"].version},
    )
    assert r.status == 401
    assert await r.json() == {"error": "unauthorized"}


async def test_a_stranger_gets_403(app, team, clock):
    r = await app.get("/app/api/board", headers=auth(sign_init_data(777_000_111, clock.now())))
    assert r.status == 403
    body = await r.json()
    assert body["error"] == "not_staff" and "columns" not in body


async def test_strict_skip_refused_with_the_chats_message_and_nothing_saved(
    app, team, clock, uow_factory, db_snapshot
):
    ann, deal = team["ann"], team["a1"]
    measured = next(s for s in deal.pipeline.stages if s.code == "measurement_done")
    before = await db_snapshot()
    r = await app.post(
        f"/app/api/deals/{deal.id}/move",
        headers=auth(sign_init_data(ann.telegram_id, clock.now())),
        json={"stage_id": measured.id, "version": deal.version},
    )
    assert r.status == 422
    body = await r.json()
    expected = error_text(
        RuleViolation("no_skipping", stage=measured.name, expected="КП отправлено"), "ru"
    )
    assert body["rule"] == "no_skipping" and body["message"] == expected
    assert await db_snapshot() == before


async def test_move_with_required_field_stale_version_and_chat_card(
    app,
    team,
    clock,
    uow_factory,
    harness,  # noqa: F811
):
    ann, deal = team["ann"], team["a1"]
    user = tg_user(ann.telegram_id)
    shown = await harness.send(user, f"/deal {deal.id}")  # the card in her chat
    card_message = shown.message.message_id
    head = auth(sign_init_data(ann.telegram_id, clock.now()))
    stages = {s.code: s for s in deal.pipeline.stages}
    # To "proposal sent" with an amount already there: one call.
    r = await app.post(
        f"/app/api/deals/{deal.id}/move",
        headers=head,
        json={"stage_id": stages["proposal_sent"].id, "version": deal.version},
    )
    assert r.status == 200, await r.text()
    moved = (await r.json())["deal"]
    assert moved["stage"]["name"] == "КП отправлено" and moved["version"] == deal.version + 1
    edits = [
        m
        for m in harness.session.requests
        if isinstance(m, EditMessageText) and m.message_id == card_message
    ]
    assert edits and edits[-1].chat_id == ann.telegram_id
    assert "<b>КП отправлено</b>" in text_of(edits[-1])
    # The old version again: 409, nothing moves.
    r = await app.post(
        f"/app/api/deals/{deal.id}/move",
        headers=head,
        json={"stage_id": stages["measurement_scheduled"].id, "version": deal.version},
    )
    assert r.status == 409
    # Measurement needs a date and an address: asked one by one, then saved with the move.
    target = {"stage_id": stages["measurement_scheduled"].id, "version": moved["version"]}
    r = await app.post(f"/app/api/deals/{deal.id}/move", headers=head, json=target)
    body = await r.json()
    assert r.status == 422 and body["error"] == "missing" and body["rule"] == "field_required"
    assert body["field"] == "measurement_at" and body["label"]
    assert body["fields"] == ["measurement_at", "address"]
    when = (clock.now() + timedelta(days=2)).strftime("%Y-%m-%dT10:00")
    r = await app.post(
        f"/app/api/deals/{deal.id}/move",
        headers=head,
        json={**target, "fields": {"measurement_at": when}},
    )
    body = await r.json()
    assert r.status == 422 and body["field"] == "address"
    past = (clock.now() - timedelta(days=2)).strftime("%Y-%m-%dT10:00")
    r = await app.post(
        f"/app/api/deals/{deal.id}/move",
        headers=head,
        json={**target, "fields": {"measurement_at": past, "address": "Тверская, 1"}},
    )
    assert r.status == 422 and (await r.json())["error"] == "invalid"
    assert (await card_of(uow_factory, ann, deal.id)).stage.code == "proposal_sent"
    r = await app.post(
        f"/app/api/deals/{deal.id}/move",
        headers=head,
        json={**target, "fields": {"measurement_at": when, "address": "Тверская, 1"}},
    )
    assert r.status == 200, await r.text()
    card = await card_of(uow_factory, ann, deal.id)
    assert card.stage.code == "measurement_scheduled" and card.address == "Тверская, 1"


async def test_lose_with_a_reason_and_the_deal_history(app, team, clock, uow_factory):
    ann, deal = team["ann"], team["a2"]
    head = auth(sign_init_data(ann.telegram_id, clock.now()))
    me = await (await app.get("/app/api/me", headers=head)).json()
    reason = next(r for r in me["reasons"] if r["name"] == "Дорого")
    r = await app.post(
        f"/app/api/deals/{deal.id}/lose",
        headers=head,
        json={"reason_id": reason["id"], "version": deal.version},
    )
    assert r.status == 200, await r.text()
    assert (await card_of(uow_factory, ann, deal.id)).stage.kind == "lost"
    view = await (await app.get(f"/app/api/deals/{deal.id}", headers=head)).json()
    assert view["deal"]["loss_reason"] == "Дорого"
    assert view["history"][0]["to"] == "Провал" and view["history"][0]["reason"] == "Дорого"
    english = auth(sign_init_data(ann.telegram_id, clock.now(), lang="en"))
    view = await (await app.get(f"/app/api/deals/{deal.id}", headers=english)).json()
    assert view["deal"]["loss_reason"] == "Too expensive"
    last = view["history"][0]  # every configured name in her language, through label()
    assert (last["to"], last["reason"]) == ("Lost", "Too expensive") and last["from"].isascii()
    body = await (await app.get("/app/api/board", headers=head)).json()
    assert deal.title not in titles(body)  # closed deals leave the board


async def test_the_sheet_edits_a_deal_through_the_chats_service(
    app, team, uow_factory, clock, db_snapshot
):
    """✏️ in the sheet: the chat's service (issue 20) — saved, or refused for another
    manager, a stale version, a bad value or an unknown field with nothing saved."""
    ann, bob = team["ann"], team["bob"]
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


async def test_column_pages_and_funnel_numbers(app, team, clock):
    lea = team["lea"]
    head = auth(sign_init_data(lea.telegram_id, clock.now()))
    body = await (await app.get("/app/api/board?per=1", headers=head)).json()
    first = body["columns"][0]
    assert first["count"] == 3 and len(first["cards"]) == 1 and first["more"]
    pid, sid = body["pipeline"]["id"], first["stage"]["id"]
    rest = await (
        await app.get(f"/app/api/column?pipeline={pid}&stage={sid}&offset=1", headers=head)
    ).json()
    shown = [first["cards"][0]["title"]] + [c["title"] for c in rest["cards"]]
    assert sorted(shown) == sorted(t.title for t in (team["a1"], team["a2"], team["b1"]))
    funnel = await (await app.get("/app/api/funnel?report=snapshot", headers=head)).json()
    assert funnel["data"]["bars"][0]["count"] == 3 and funnel["data"]["total"] == 3
    ann_only = await (
        await app.get(
            "/app/api/funnel?report=snapshot",
            headers=auth(sign_init_data(team["ann"].telegram_id, clock.now())),
        )
    ).json()
    assert ann_only["data"]["total"] == 2 and not ann_only["sees_all"]
    bad = await app.get("/app/api/funnel?report=nonsense", headers=head)
    assert bad.status == 422
    # A quarter picked is the quarter (said in words), and Speed is there too.
    month = await (await app.get("/app/api/funnel?report=losses", headers=head)).json()
    quarter = await (
        await app.get("/app/api/funnel?report=losses&period=this_quarter", headers=head)
    ).json()
    assert quarter["period"] == "this_quarter" and quarter["period_text"] != month["period_text"]
    assert "квартал" in quarter["period_text"]
    speed = await (await app.get("/app/api/funnel?report=velocity", headers=head)).json()
    assert speed["report"] == "velocity" and len(speed["data"]["bars"]) >= 1


async def test_the_dashboard_numbers_are_the_chats(app, team, clock, uow_factory):
    """One report service: the Mini App dashboard shows /funnel's numbers, view by view."""
    from services.reports import screens
    from services.reports.analytics import (
        LossReport,
        ManagerReport,
        Period,
        PeriodFunnel,
        ReportFilter,
        SnapshotFunnel,
        VelocityReport,
    )
    from services.sales.plans import PlanReport

    lea = team["lea"]
    head = auth(sign_init_data(lea.telegram_id, clock.now()))
    for kind in screens.ReportKind:
        body = await (await app.get(f"/app/api/funnel?report={kind.value}", headers=head)).json()
        async with uow_factory() as uow:
            chat = await screens.report_screen(
                uow, lea, kind, ReportFilter(period=Period.THIS_MONTH, tz="Europe/Moscow")
            )
        report = chat.report
        data = body["data"]
        if isinstance(report, PlanReport):  # rows, not bars: test_plan_numbers_are_the_same...
            rows = [report.company, *report.rows] if report.company else list(report.rows)
            assert [r["won"] for r in data["rows"]] == [r.won for r in rows]
            continue
        counts = [b["count"] for b in data["bars"]]
        if isinstance(report, SnapshotFunnel):
            assert counts == [s.count for s in report.stages]
        elif isinstance(report, PeriodFunnel):
            assert counts == [s.reached for s in report.steps]
            assert (data["won"], data["lost"]) == (report.won, report.lost)
        elif isinstance(report, LossReport):
            assert counts == [r.count for r in report.rows]
        elif isinstance(report, ManagerReport):
            ranked = [r for r in report.rows if r.manager_id is not None]
            assert [(b["count"], b["won"]) for b in data["bars"]] == [
                (r.deals, r.won) for r in ranked
            ]
        else:
            assert isinstance(report, VelocityReport)
            assert counts == [s.stays for s in report.stages]


async def test_plan_numbers_are_the_same_in_funnel_digest_and_dashboard(
    app, uow_factory, clock, make_actor
):
    """Issue 26, Must show 2: one service (services/sales/plans.py) feeds /funnel's Plan
    view, the digest and the Mini App dashboard; the numbers are the hand-computed ones."""
    from handlers.funnel import views
    from services.reports import digests, screens
    from services.reports.analytics import ReportFilter
    from services.sales.plans import PlanReport
    from tests.unit.sales.test_plans import story

    people = await story(uow_factory, clock, make_actor)
    lea = people["lea"]
    async with uow_factory() as uow:
        chat = await screens.report_screen(
            uow, lea, screens.ReportKind.PLAN, ReportFilter(tz="Europe/Moscow")
        )
        digest = await digests.compose_digest(
            uow, lea, "daily", clock.now() - timedelta(days=1), clock.now(), tz="Europe/Moscow"
        )
    body = await (
        await app.get(
            "/app/api/funnel?report=plan",
            headers=auth(sign_init_data(lea.telegram_id, clock.now())),
        )
    ).json()
    report = chat.report
    assert isinstance(report, PlanReport) and report.company is not None
    rows = [report.company, *report.rows]
    shown = [
        (r.plan_count, r.plan_amount, r.won, r.won_amount, r.weighted, r.pace_count, r.pace_amount)
        for r in rows
    ]
    assert shown[:2] == [
        (10, 200_000_000, 2, 40_000_000, 12_210_000, 1, 8_421_100),  # the company
        (2, 0, 1, 10_000_000, 0, 1, None),  # Bob (a plan in sales only)
    ]
    in_digest = [
        (p.plan_count, p.plan_amount, p.won, p.won_amount, p.weighted, p.pace_count, p.pace_amount)
        for p in digest.plan
    ]
    assert in_digest == shown  # everyone has a plan in the story

    def value(money):
        return None if money is None else money["value"]

    in_app = [
        (
            r["plan_count"],
            value(r["plan_amount"]),
            r["won"],
            value(r["won_amount"]),
            value(r["weighted"]),
            r["pace_count"],
            value(r["pace_amount"]),
        )
        for r in body["data"]["rows"]
    ]
    assert in_app == shown
    assert [r["label"] for r in body["data"]["rows"]] == ["Компания", "Bob", "Ann", "Cy"]
    # The words, too: Ann's forecast and pace read the same in the chat and in the digest.
    ann = next(r for r in report.rows if r.name == "Ann")
    line = views.plan_line(ann, "Ann", "ru")
    assert line in views.screen_text(chat, "ru", TZ_MSK)
    assert line in "\n".join(views.digest_lines(digest, "ru", TZ_MSK))


async def test_a_plan_set_from_the_dashboard_is_checked(app, team, clock, db_snapshot):
    """POST /plans: the chat's service decides (leaders and admins; the month, the person,
    the sums as typed); a refusal saves nothing."""
    ann, lea = team["ann"], team["lea"]
    month = clock.now().date().replace(day=1).isoformat()
    before = await db_snapshot()
    for who, body, status in (
        (ann, {"month": month, "employee_id": ann.id, "sales": "5", "amount": "1"}, 403),
        (lea, {"month": "2020-01-01", "employee_id": ann.id, "sales": "5", "amount": "1"}, 422),
        (lea, {"month": month, "employee_id": 999, "sales": "5", "amount": "1"}, 422),
        (lea, {"month": month, "employee_id": ann.id, "sales": "пять", "amount": "1"}, 422),
        (lea, {"month": month, "employee_id": "1", "sales": "5", "amount": "1"}, 422),
        (lea, {"month": month, "employee_id": 2**63, "sales": "5", "amount": "1"}, 400),
    ):
        head = auth(sign_init_data(who.telegram_id, clock.now()))
        refused = await app.post("/app/api/plans", json=body, headers=head)
        assert refused.status == status, (body, await refused.text())
    assert await db_snapshot() == before
    head = auth(sign_init_data(lea.telegram_id, clock.now()))
    body = {"month": month, "employee_id": None, "sales": "10", "amount": "2 млн"}
    saved = await (await app.post("/app/api/plans", json=body, headers=head)).json()
    assert saved["saved"] == "План сохранён"
    company = saved["data"]["rows"][0]
    assert (company["employee_id"], company["plan_count"]) == (None, 10)
    assert company["plan_amount"]["value"] == 200_000_000


async def test_the_page_and_its_texts_are_served(app):
    page = await app.get("/app/")
    assert page.status == 200 and "static/app.js" in await page.text()
    js = await app.get("/app/static/app.js")
    assert js.status == 200
    texts = await (await app.get("/app/api/texts?lang=en")).json()
    assert texts["texts"]["app.tab.board"] == "Board"


async def test_voronka_run_serves_the_mini_app_when_web_app_url_is_set(
    harness,  # noqa: F811
    db_url,
    uow_factory,
    clock,
    team,
):
    """`voronka run` (polling) has no webhook server: bot/webapp.start_server is its own."""
    from aiohttp.test_utils import unused_port

    from bot.webapp import start_server
    from tests.tg import make_settings

    port = unused_port()
    settings = make_settings(
        db_url,
        web_app_url="https://crm.example.test/app/",
        webhook_host="127.0.0.1",
        webhook_port=port,
    )
    runner = await start_server(settings, uow_factory, harness.bot, harness.dp.storage)
    try:
        async with ClientSession(base_url=f"http://127.0.0.1:{port}") as client:
            page = await client.get("/app/")
            assert page.status == 200
            head = auth(sign_init_data(team["ann"].telegram_id, clock.now()))
            r = await client.get("/app/api/board", headers=head)
            assert r.status == 200 and len(titles(await r.json())) == 2
    finally:
        await runner.cleanup()


async def test_the_webhook_server_mounts_the_mini_app(harness, db_url, uow_factory, clock, team):  # noqa: F811
    from aiohttp.test_utils import TestServer

    from bot.webapp import webapp_state
    from bot.webhook import build_app
    from tests.integration.webhook_kit import webhook_settings

    settings = webhook_settings(db_url, web_app_url="https://crm.example.test/app/")
    app = build_app(
        settings,
        harness.dp,
        harness.bot,
        uow_factory,
        webapp=webapp_state(settings, uow_factory, harness.bot, harness.dp.storage),
    )
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with ClientSession(base_url=str(server.make_url(""))) as client:
            head = auth(sign_init_data(team["lea"].telegram_id, clock.now()))
            r = await client.get("/app/api/board", headers=head)
            assert r.status == 200 and len(titles(await r.json())) == 3
            assert (await client.get("/healthz")).status == 200
            hook = await client.post(settings.webhook_path, json={})
            assert hook.status == 401  # the webhook is still there, still guarded
    finally:
        await server.close()


async def test_a_card_converted_from_a_lead_is_redrawn_too(
    app,
    harness,  # noqa: F811
    make_actor,
    uow_factory,
    clock,
):
    from tests.factories import new_lead

    ann = await make_actor(roles=("manager",))
    lead = await new_lead(uow_factory, ann, name="Иван Петров", amount="90000")
    user = tg_user(ann.telegram_id)
    card = await harness.send(user, f"/lead {lead.id}")
    on = await harness.tap(user, card.button("Объект в зоне"), card)
    on = await harness.tap(user, on.button("Понятно, что нужно"), card)
    await harness.tap(user, on.button("В сделку"), card)  # the lead's message: the deal's card
    head = auth(sign_init_data(ann.telegram_id, clock.now()))
    body = await (await app.get("/app/api/board", headers=head)).json()
    [deal] = body["columns"][0]["cards"]
    target = body["columns"][1]["stage"]["id"]
    r = await app.post(
        f"/app/api/deals/{deal['id']}/move",
        headers=head,
        json={"stage_id": target, "version": deal["version"]},
    )
    assert r.status == 200, await r.text()
    last = harness.session.requests[-1]
    assert isinstance(last, EditMessageText) and last.message_id == card.message.message_id
    assert "<b>КП отправлено</b>" in text_of(last)


# --- issue 21: what an outsider sends ---------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("get", "/app/api/deals/9223372036854775808", None, 404),
        ("get", "/app/api/deals/2147483648", None, 404),
        ("get", "/app/api/deals/99999999999999999999999999", None, 404),
        ("get", "/app/api/board?pipeline=100000000000000000000", None, 400),
        ("get", "/app/api/board?manager=9223372036854775808", None, 400),
        ("get", "/app/api/column?pipeline=1&stage=1&offset=9223372036854775808", None, 400),
        ("get", "/app/api/column?pipeline=1&stage=2147483648", None, 400),
        ("get", "/app/api/funnel?manager=-9223372036854775809", None, 400),
        ("post", "/app/api/deals/{a1}/lose", {"reason_id": 2**63, "version": 1}, 400),
        ("post", "/app/api/deals/{a1}/move", {"stage_id": 2**31, "version": 1}, 400),
        ("post", "/app/api/deals/{a1}/move", {"stage_id": 1, "version": -(2**63) - 1}, 400),
        ("post", "/app/api/deals/{a1}/move", "[" * 100_000, 400),
        ("post", "/app/api/deals/{a1}/move", '{"fields": {"x": ' + "[" * 40 + "]" * 40 + "}}", 400),
        (
            "post",
            "/app/api/deals/{a1}/move",
            {"stage_id": 1, "version": 1, "fields": {"address": "a\x00b"}},
            400,
        ),
        (
            "post",
            "/app/api/deals/{a1}/move",
            {"stage_id": 1, "version": 1, "fields": {"a\x00": "b"}},
            400,
        ),
    ],
)
async def test_numbers_beyond_the_database_deep_json_and_nul_are_refused(
    app, team, clock, db_snapshot, method, path, body, status
):
    """Ids and numbers beyond the database's INTEGER (PostgreSQL: 32 bits), JSON nested
    deeper than 16 (100,000 levels used to be a RecursionError), a NUL in any string
    (PostgreSQL's text cannot hold one): 404 or 400 with a message, never a 500, nothing
    saved -- on both databases."""
    head = auth(sign_init_data(team["ann"].telegram_id, clock.now()))
    before = await db_snapshot()
    url = path.format(a1=team["a1"].id)
    if isinstance(body, str):
        r = await app.post(url, headers={**head, "Content-Type": "application/json"}, data=body)
    elif body is not None:
        r = await app.post(url, headers=head, json=body)
    else:
        r = await app.get(url, headers=head)
    assert r.status == status, await r.text()
    assert (await r.json())["message"]
    assert await db_snapshot() == before


async def test_a_date_follows_the_chats_rules(app, team, clock, uow_factory, db_snapshot):
    """The form's date is held to the chat's rules: a year-9999 date (an OverflowError in
    the measurers' load before) and one in 2046 are "too far", like the chat says."""
    ann, deal = team["ann"], team["a1"]
    head = auth(sign_init_data(ann.telegram_id, clock.now()))
    stages = {s.code: s for s in deal.pipeline.stages}
    r = await app.post(
        f"/app/api/deals/{deal.id}/move",
        headers=head,
        json={"stage_id": stages["proposal_sent"].id, "version": deal.version},
    )
    version = (await r.json())["deal"]["version"]
    before = await db_snapshot()
    for when in ("9999-12-31T23:59", "9999-12-31T23:59:59-12:00", "2046-06-01T10:00"):
        r = await app.post(
            f"/app/api/deals/{deal.id}/move",
            headers=head,
            json={
                "stage_id": stages["measurement_scheduled"].id,
                "version": version,
                "fields": {"measurement_at": when, "address": "Тверская, 1"},
            },
        )
        body = await r.json()
        assert r.status == 422 and body["field"] == "measurement_at", (when, body)
        assert body["message"] == error_text(ValidationError("measurement_at", "too_far"), "ru")
    assert await db_snapshot() == before


async def test_a_deal_the_person_may_not_see_is_not_found(app, team, clock, db_snapshot):
    """Another manager's deal answers exactly like a missing one, read or changed."""
    ann, b1 = team["ann"], team["b1"]
    head = auth(sign_init_data(ann.telegram_id, clock.now()))
    before = await db_snapshot()
    missing = b1.id + 1000
    for deal_id in (b1.id, missing):
        r = await app.get(f"/app/api/deals/{deal_id}", headers=head)
        assert r.status == 404
        moved = await app.post(
            f"/app/api/deals/{deal_id}/move", headers=head, json={"stage_id": 1, "version": 1}
        )
        lost = await app.post(
            f"/app/api/deals/{deal_id}/lose", headers=head, json={"reason_id": 1, "version": 1}
        )
        assert (moved.status, lost.status) == (404, 404)
    assert await db_snapshot() == before


async def test_security_headers_on_the_page_and_the_api(app, team, clock):
    head = auth(sign_init_data(team["ann"].telegram_id, clock.now()))
    for r in (
        await app.get("/app/"),
        await app.get("/app/static/app.js"),
        await app.get("/app/api/me", headers=head),
        await app.get("/app/api/me"),  # a 401 too
    ):
        csp = r.headers.get("Content-Security-Policy", "")
        assert "script-src 'self'" in csp and "https://telegram.org" in csp, r.url
        assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
        assert r.headers.get("X-Content-Type-Options") == "nosniff"
        assert r.headers.get("Referrer-Policy") == "no-referrer"
        assert r.headers.get("Server") == "Voronka"


async def test_an_oversized_authorization_header_is_not_logged_as_an_error(app, caplog):
    caplog.set_level(logging.DEBUG)
    r = await app.get("/app/api/me", headers={"Authorization": "tma " + "x" * 20_000})
    assert r.status in (400, 431)
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert "xxxxxxxxxx" not in caplog.text
