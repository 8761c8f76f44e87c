"""How the Mini App is opened from the chat: an "Open board" button under /deals, "Open
dashboard" under /funnel, and the menu button of sales roles — only when WEB_APP_URL is set."""

from __future__ import annotations

from aiogram.methods import SendMessage, SetChatMenuButton
from aiogram.types import InlineKeyboardMarkup, MenuButtonCommands, MenuButtonWebApp

from bot.app import build_dispatcher
from handlers.ui.commands import set_commands
from tests.factories import new_deal
from tests.tg import BotHarness, RecordingSession, make_bot, make_settings, tg_user

URL = "https://crm.example.test/app/"


def app_buttons(sent):
    found = []
    for message in sent.of(SendMessage):
        markup = message.reply_markup
        if isinstance(markup, InlineKeyboardMarkup):
            found += [b for row in markup.inline_keyboard for b in row if b.web_app]
    return found


def with_app(db_url, uow_factory, clock, url=URL):
    session = RecordingSession()
    dp = build_dispatcher(make_settings(db_url, web_app_url=url), uow_factory, clock)
    return BotHarness(dp, make_bot(session), session)


async def test_deals_and_funnel_offer_the_mini_app(db_url, uow_factory, clock, make_actor):
    bot = with_app(db_url, uow_factory, clock)
    ann = await make_actor(roles=("manager",))
    await new_deal(uow_factory, ann)
    user = tg_user(ann.telegram_id)
    [board] = app_buttons(await bot.send(user, "/deals"))
    assert board.text == "📋 Открыть доску" and board.web_app.url == URL + "?view=board"
    [dash] = app_buttons(await bot.send(user, "/funnel"))
    assert dash.web_app.url == URL + "?view=dashboard"


async def test_no_mini_app_no_button(db_url, uow_factory, clock, make_actor):
    bot = with_app(db_url, uow_factory, clock, url=None)
    ann = await make_actor(roles=("manager",))
    user = tg_user(ann.telegram_id)
    assert app_buttons(await bot.send(user, "/deals")) == []
    assert app_buttons(await bot.send(user, "/funnel")) == []


async def test_menu_button_for_sales_roles(db_url, uow_factory, clock, make_actor):
    session = RecordingSession()
    ann = await make_actor(roles=("manager",), language="en")
    mark = await make_actor(roles=("measurer",))
    await set_commands(make_bot(session), uow_factory, URL)
    buttons = {
        m.chat_id: m.menu_button for m in session.requests if isinstance(m, SetChatMenuButton)
    }
    menu = buttons[ann.telegram_id]
    assert isinstance(menu, MenuButtonWebApp)
    assert menu.web_app.url == URL
    assert menu.text == "Board"
    assert isinstance(buttons[mark.telegram_id], MenuButtonCommands)
    session.requests.clear()
    await set_commands(make_bot(session), uow_factory)  # no Mini App: menu buttons untouched
    assert not [m for m in session.requests if isinstance(m, SetChatMenuButton)]


async def test_menu_button_follows_role_changes(db_url, uow_factory, clock, make_actor):
    from handlers.ui.callbacks import TeamAction, TeamCb

    bot = with_app(db_url, uow_factory, clock)
    admin = await make_actor(roles=("admin",))
    mark = await make_actor(roles=("measurer",))
    boss = tg_user(admin.telegram_id)
    manager_on = TeamCb(action=TeamAction.ROLE, employee_id=mark.id, value=2)
    sent = await bot.tap(boss, manager_on)
    [button] = [m.menu_button for m in sent.of(SetChatMenuButton) if m.chat_id == mark.telegram_id]
    assert isinstance(button, MenuButtonWebApp)  # a manager now: the board
    sent = await bot.tap(boss, manager_on)  # and off again
    [button] = [m.menu_button for m in sent.of(SetChatMenuButton) if m.chat_id == mark.telegram_id]
    assert isinstance(button, MenuButtonCommands)
    off = TeamCb(action=TeamAction.ACTIVE, employee_id=mark.id, value=0)
    sent = await bot.tap(boss, off)
    [button] = [m.menu_button for m in sent.of(SetChatMenuButton) if m.chat_id == mark.telegram_id]
    assert isinstance(button, MenuButtonCommands)
