"""The first admin's /start (issue 20): with nobody invited yet, a short setup guide with
buttons (invite people, check the pipelines, connect Telegram Business, open the board);
once someone else is on the team, /start is the main menu."""

from __future__ import annotations

from handlers.ui.callbacks import MenuAction, MenuCb
from handlers.ui.i18n import t
from tests.tg import tg_user


async def test_first_admin_gets_the_setup_guide_until_someone_joins(harness, make_actor):
    alla = await make_actor(roles=("admin",), name="Alla", language="en")
    user = tg_user(alla.telegram_id, lang="en")
    guide = await harness.send(user, "/start")
    assert guide.last.text == t("start.setup.title", "en")
    assert guide.buttons() == [
        (t("start.setup.invite", "en"), MenuCb(action=MenuAction.INVITE).pack()),
        (t("start.setup.pipelines", "en"), MenuCb(action=MenuAction.SETUP_PIPELINES).pack()),
        (t("start.setup.business", "en"), MenuCb(action=MenuAction.SETUP_BUSINESS).pack()),
        (t("start.setup.board", "en"), MenuCb(action=MenuAction.FUNNEL).pack()),
        (t("start.setup.menu", "en"), MenuCb(action=MenuAction.HOME).pack()),
    ]
    pipelines = await harness.tap(user, guide.button("pipelines"), guide)
    text = pipelines.last.text
    assert text.startswith(t("start.setup.pipelines.title", "en"))
    assert "<b>Sales</b>" in text and "Data collection → Proposal sent" in text
    assert not any("\u0400" <= ch <= "\u04ff" for ch in text)  # names from the config's *_en
    business = await harness.tap(user, guide.button("Business"), guide)
    assert business.last.text == t("start.setup.business.how", "en")
    invite = await harness.tap(user, guide.button("Invite"), guide)
    assert invite.last.text == t("team.invite.pick", "en")

    await make_actor(roles=("manager",), name="Misha")  # the team is no longer just admins
    menu = await harness.send(user, "/start")
    assert menu.last.text == t("menu.title", "en")


async def test_other_people_get_the_menu(harness, make_actor):
    await make_actor(roles=("admin",), name="Alla")
    ann = await make_actor(roles=("manager",), name="Ann")
    shown = await harness.send(tg_user(ann.telegram_id), "/start")
    assert shown.last.text == t("menu.title", "ru")
