"""The Mini App in headless Chromium at a phone's 360x640: the board, a move by tap (the
database and the chat card change), a strict skip refused, scopes, a refused login, the
dashboard. Screenshots go to tests/browser/screenshots/."""

from __future__ import annotations

from datetime import timedelta

from aiogram.methods import EditMessageText

from handlers.ui.error_text import error_text
from services.errors import RuleViolation
from services.sales import deals
from tests.factories import card_of, new_deal
from tests.tg import text_of, tg_user
from tests.webapp_kit import sign_init_data, tamper


async def move(uow_factory, actor, deal, code, **fields):
    card = await card_of(uow_factory, actor, deal.id)
    stage = next(s for s in card.pipeline.stages if s.code == code)
    async with uow_factory() as uow:
        return await deals.move_to(uow, actor, deal.id, stage.id, card.version, fields or None)


async def stale_after(uow_factory, code, days):
    async with uow_factory() as uow:
        sales = await uow.repo.pipelines.by_role("sales")
        for stage in await uow.repo.pipelines.stages(sales.id):
            if stage.code == code:
                stage.rot_after_days = days
        await uow.commit()


async def sales_floor(make_actor, uow_factory, clock):
    """Two managers and a leader; Ann's deals spread over the first stages, one stale."""
    ann = await make_actor(roles=("manager",), name="Анна Смирнова")
    bob = await make_actor(roles=("manager",), name="Борис Орлов")
    lea = await make_actor(roles=("leader",), name="Елена Руководитель")
    await stale_after(uow_factory, "data_collection", 3)
    old = await new_deal(uow_factory, ann, name="Ольга Старова", amount="90000")
    clock.advance(days=5)
    mine = [old]
    for name, amount in (("Иван Петров", "150000"), ("ООО Ромашка", "420000")):
        mine.append(await new_deal(uow_factory, ann, name=name, amount=amount))
    for name, amount in (("Пётр Сидоров", "210000"), ("Мария Лебедева", "86000")):
        deal = await new_deal(uow_factory, ann, name=name, amount=amount)
        await move(uow_factory, ann, deal, "proposal_sent")
        mine.append(deal)
    theirs = await new_deal(uow_factory, bob, name="Клиент Бориса", amount="300000")
    clock.advance(hours=1)
    return ann, bob, lea, mine, theirs


async def titles_on(page):
    return sorted(await page.locator(".card .title").all_inner_texts())


async def test_board_renders_and_a_tap_moves_the_deal_and_its_chat_card(
    miniapp, harness, make_actor, uow_factory, clock
):
    ann, _, _, mine, theirs = await sales_floor(make_actor, uow_factory, clock)
    deal = mine[1]
    shown = await harness.send(tg_user(ann.telegram_id), f"/deal {deal.id}")  # her chat card
    page = await miniapp(ann)
    await page.locator(".card").first.wait_for()
    columns = page.locator(".column")
    assert await columns.count() == 7  # six active stages and the conditional refusal
    first = columns.nth(0)
    assert await first.locator(".stage-name").inner_text() == "Сбор данных"
    assert await first.locator(".count").inner_text() == "3"
    assert await titles_on(page) == sorted(d.title for d in mine)  # not Boris's deal
    stale = page.locator(".card.stale")
    assert await stale.count() == 1 and "Ольга" in await stale.inner_text()
    await miniapp.screenshot(page, "board-360x640")

    await page.tap(f'.card[data-deal="{deal.id}"]')
    await page.locator("#move-to").wait_for()
    await miniapp.screenshot(page, "deal-360x640")
    await page.tap('#move-to .stage-btn:has-text("КП отправлено")')
    await page.locator("#toast.ok").wait_for()
    assert "КП отправлено" in await page.locator("#toast").inner_text()
    assert (await card_of(uow_factory, ann, deal.id)).stage.code == "proposal_sent"
    # The board reloaded: the card sits in the second column now.
    second = page.locator(".column").nth(1)
    await second.locator(f'.card[data-deal="{deal.id}"]').wait_for()
    # And the card in her chat was redrawn in place.
    edits = [
        m
        for m in harness.session.requests
        if isinstance(m, EditMessageText) and m.message_id == shown.message.message_id
    ]
    assert edits and edits[-1].chat_id == ann.telegram_id
    assert "<b>КП отправлено</b>" in text_of(edits[-1])


async def test_a_strict_skip_is_refused_with_the_chats_message(
    miniapp, make_actor, uow_factory, clock, db_snapshot
):
    ann, _, _, mine, _ = await sales_floor(make_actor, uow_factory, clock)
    deal = mine[1]
    before = await db_snapshot()
    page = await miniapp(ann)
    await page.tap(f'.card[data-deal="{deal.id}"]')
    await page.tap('#move-to .stage-btn:has-text("Замер выполнен")')
    toast = page.locator("#toast.error")
    await toast.wait_for()
    expected = error_text(
        RuleViolation("no_skipping", stage="Замер выполнен", expected="КП отправлено"), "ru"
    )
    assert await toast.inner_text() == expected
    assert await db_snapshot() == before
    assert (await card_of(uow_factory, ann, deal.id)).stage.code == "data_collection"


async def test_required_fields_are_asked_in_a_form(miniapp, make_actor, uow_factory, clock):
    ann, _, _, mine, _ = await sales_floor(make_actor, uow_factory, clock)
    deal = mine[3]  # in "proposal sent": measurement needs a date and an address
    page = await miniapp(ann)
    await page.tap(f'.card[data-deal="{deal.id}"]')
    await page.tap('#move-to .stage-btn:has-text("Замер запланирован")')
    form = page.locator("#field-form")
    await form.wait_for()
    assert await page.get_attribute("#field-input", "name") == "measurement_at"
    when = (clock.now() + timedelta(days=2)).strftime("%Y-%m-%dT10:00")
    await page.fill("#field-input", when)
    await miniapp.screenshot(page, "required-field-360x640")
    await page.tap("#field-form .primary")
    await page.locator('#field-input[name="address"]').wait_for()
    await page.fill("#field-input", "Москва, Тверская, 1")
    await page.tap("#field-form .primary")
    await page.locator("#toast.ok").wait_for()
    card = await card_of(uow_factory, ann, deal.id)
    assert card.stage.code == "measurement_scheduled" and card.address == "Москва, Тверская, 1"


async def test_a_leader_sees_everyone_and_picks_a_manager(miniapp, make_actor, uow_factory, clock):
    ann, bob, lea, mine, theirs = await sales_floor(make_actor, uow_factory, clock)
    page = await miniapp(lea, lang="en")
    await page.locator(".card").first.wait_for()
    assert await titles_on(page) == sorted([*(d.title for d in mine), theirs.title])
    assert await page.locator(".column .stage-name").first.inner_text() == "Data collection"
    await page.select_option("#scope", str(bob.id))
    await page.locator(f'.card[data-deal="{mine[0].id}"]').wait_for(state="detached")
    assert await titles_on(page) == [theirs.title]


async def test_a_manager_sees_only_their_deals_even_when_asking_for_others(
    miniapp, make_actor, uow_factory, clock
):
    ann, bob, _, mine, theirs = await sales_floor(make_actor, uow_factory, clock)
    page = await miniapp(bob)
    await page.locator(".card").first.wait_for()
    assert await titles_on(page) == [theirs.title]
    assert await page.locator("#scope").count() == 0  # no picker for a manager
    # The page's own fetch with someone else's scope gets his deals only.
    body = await page.evaluate(
        """async (m) => (await fetch('api/board?manager=' + m,
             {headers: {Authorization: 'tma ' + Telegram.WebApp.initData}})).json()""",
        ann.id,
    )
    assert [c["title"] for col in body["columns"] for c in col["cards"]] == [theirs.title]


async def test_tampered_or_expired_init_data_gets_401_and_no_data(
    miniapp, make_actor, uow_factory, clock
):
    ann, *_ = await sales_floor(make_actor, uow_factory, clock)
    good = sign_init_data(ann.telegram_id, clock.now())
    expired = sign_init_data(ann.telegram_id, clock.now() - timedelta(days=2))
    for init_data in (tamper(good), expired):
        page = await miniapp(ann, init_data=init_data)
        refused = page.locator("#refused")
        await refused.wait_for()
        assert "откройте" in (await refused.inner_text()).lower()
        assert await page.locator(".card").count() == 0
        assert await page.locator(".column").count() == 0
        api = [status for status, url in miniapp.responses if "/texts" not in url]
        assert api and set(api) == {401}
        miniapp.responses.clear()
        if init_data == expired:
            await miniapp.screenshot(page, "refused-360x640")


async def test_dashboard_charts_are_drawn_from_the_api(miniapp, make_actor, uow_factory, clock):
    ann, _, lea, mine, theirs = await sales_floor(make_actor, uow_factory, clock)
    async with uow_factory() as uow:
        await deals.lose(uow, ann, mine[2].id, "expensive", None, None)
    page = await miniapp(lea, view="dashboard")
    chart = page.locator("#chart")
    await chart.wait_for()
    counts = [
        int(c)
        for c in await chart.locator("rect.bar").evaluate_all(
            "bars => bars.map(b => b.dataset.count)"
        )
    ]
    assert counts[:2] == [3, 2]  # the snapshot: active deals per stage
    await miniapp.screenshot(page, "dashboard-360x640")
    await page.tap('#reports button[data-report="losses"]')
    await page.locator("#chart text.bar-label", has_text="Дорого").wait_for()
    await page.tap('#reports button[data-report="managers"]')
    await page.locator("#chart text.bar-label", has_text="Анна Смирнова").wait_for()
    # issue 26: first response under the ranking, the words of /funnel and the digests
    await page.locator("#team .team-line", has_text="Первый ответ").wait_for()
    await miniapp.screenshot(page, "dashboard-managers-360x640")
    # Speed is a view too, and a quarter picked is the quarter, said in words.
    await page.tap('#reports button[data-report="velocity"]')
    await page.locator('#reports button.on[data-report="velocity"]').wait_for()
    await page.select_option("#period", "this_quarter")
    await page.locator("#dashboard .summary", has_text="квартал").wait_for()
    await miniapp.screenshot(page, "dashboard-speed-quarter-360x640")


async def test_drag_and_drop_on_desktop(miniapp, make_actor, uow_factory, clock):
    ann, _, _, mine, _ = await sales_floor(make_actor, uow_factory, clock)
    deal = mine[1]
    page = await miniapp(ann, viewport={"width": 1280, "height": 800}, touch=False)
    await page.locator(".card").first.wait_for()
    second = page.locator(".column").nth(1)
    await page.drag_and_drop(f'.card[data-deal="{deal.id}"]', ".column >> nth=1")
    await second.locator(f'.card[data-deal="{deal.id}"]').wait_for()
    assert (await card_of(uow_factory, ann, deal.id)).stage.code == "proposal_sent"
    await miniapp.screenshot(page, "board-desktop")


async def test_theme_colours_come_from_telegram(miniapp, make_actor, uow_factory, clock):
    ann, *_ = await sales_floor(make_actor, uow_factory, clock)
    page = await miniapp(ann)
    await page.locator(".card").first.wait_for()
    colour = await page.evaluate(
        "getComputedStyle(document.querySelector('#tab-board.on')).backgroundColor"
    )
    assert colour == "rgb(51, 144, 236)"  # the stub's button_color #3390ec


async def test_outside_telegram_the_page_says_where_to_open_it(
    miniapp, make_actor, uow_factory, clock
):
    ann = await make_actor(roles=("manager",))
    page = await miniapp(ann, init_data="", lang="en")
    refused = page.locator("#refused")
    await refused.wait_for()
    assert "Open this app from Telegram" in await refused.inner_text()
    assert [url for _, url in miniapp.responses if "/texts" not in url] == []


async def test_a_leader_sets_a_plan_on_the_dashboard(miniapp, make_actor, uow_factory, clock):
    """Issue 26: the dashboard's Plan view and its form (POST /plans, the chat's service)."""
    ann, _, lea, _, _ = await sales_floor(make_actor, uow_factory, clock)
    page = await miniapp(lea, view="dashboard")
    await page.locator("#chart").wait_for()
    await page.tap('#reports button[data-report="plan"]')
    await page.locator("#plan-form").wait_for()
    await page.select_option("#plan-who", str(ann.id))
    await page.fill("#plan-sales", "5")
    await page.fill("#plan-amount", "1,5 млн")
    await page.tap("#plan-save")
    row = page.locator(f'#plan tr[data-employee="{ann.id}"]')
    await row.locator("td.won", has_text="0/5").wait_for()
    assert "1\u00a0500\u00a0000" in await row.locator("td.money").inner_text()
    await miniapp.screenshot(page, "dashboard-plan-360x640")
    async with uow_factory() as uow:
        [plan] = await uow.repo.plans.of_month(clock.now().date().replace(day=1))
    assert (plan.employee_id, plan.sales_count, plan.amount) == (ann.id, 5, 150_000_000)
    # A manager sees their own row, and no form.
    mine = await miniapp(ann, view="dashboard")
    await mine.locator("#chart").wait_for()
    await mine.tap('#reports button[data-report="plan"]')
    await mine.locator("#plan").wait_for()
    assert await mine.locator("#plan-form").count() == 0
    assert await mine.locator("#plan tbody tr").count() == 1
