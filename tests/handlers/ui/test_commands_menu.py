"""Commands menus at start (handlers/ui/commands.py): only the menus that changed since the
last start cost a setMyCommands call, sent concurrently within a rate; run-time changes are
recorded so the next start does not send them again."""

from __future__ import annotations

import asyncio
from typing import Any

from aiogram import Bot
from aiogram.methods import DeleteMyCommands, SetChatMenuButton, SetMyCommands, TelegramMethod
from aiogram.types import BotCommandScopeChat
from sqlalchemy import update

from handlers.ui.callbacks import TeamAction, TeamCb
from handlers.ui.commands import set_commands
from services.team import staff as team
from storage.models import Employee
from tests.factories import new_staff
from tests.tg import RecordingSession, make_bot, tg_user

STAFF = 400


async def add_staff(uow_factory, clock, count: int) -> None:
    await new_staff(uow_factory, count, first=300_000_001)


def calls(session: RecordingSession, method: type[TelegramMethod[Any]]) -> list[Any]:
    return [r for r in session.requests if isinstance(r, method)]


async def test_an_unchanged_start_sends_no_menu(harness, uow_factory, clock):
    await add_staff(uow_factory, clock, STAFF)
    first = await set_commands(harness.bot, uow_factory)
    assert len(calls(harness.session, SetMyCommands)) == STAFF + 2  # + default ru and en
    assert (first.set, first.unchanged, first.failed) == (STAFF + 2, 0, 0)

    harness.session.requests.clear()
    again = await set_commands(harness.bot, uow_factory)
    assert calls(harness.session, SetMyCommands) == []
    assert (again.set, again.unchanged) == (0, STAFF + 2)

    # One language changed, one person deactivated: one call each, nothing else.
    async with uow_factory() as uow:
        await uow.session.execute(
            update(Employee).where(Employee.telegram_id == 300_000_001).values(language="en")
        )
        await uow.session.execute(
            update(Employee).where(Employee.telegram_id == 300_000_002).values(active=False)
        )
        await uow.commit()
    harness.session.requests.clear()
    changed = await set_commands(harness.bot, uow_factory)
    (menu,) = calls(harness.session, SetMyCommands)
    assert menu.scope == BotCommandScopeChat(chat_id=300_000_001)
    assert menu.commands[0].description == "Main menu"
    (removed,) = calls(harness.session, DeleteMyCommands)
    assert removed.scope == BotCommandScopeChat(chat_id=300_000_002)
    assert (changed.set, changed.removed) == (1, 1)

    harness.session.requests.clear()
    await set_commands(harness.bot, uow_factory)
    assert harness.session.requests == []

    # Another bot (a new token on the same database): its menus are all new.
    other = RecordingSession()
    other_bot = Bot("4343:another-bot", session=other)
    assert other_bot.id != harness.bot.id
    await set_commands(other_bot, uow_factory)
    assert len(calls(other, SetMyCommands)) == STAFF - 1 + 2


async def test_a_failed_menu_is_sent_again_at_the_next_start(harness, uow_factory, clock):
    await add_staff(uow_factory, clock, 3)
    harness.session.fail_next(SetMyCommands, 400, "Bad Request: chat not found")
    stats = await set_commands(harness.bot, uow_factory)
    assert (stats.set, stats.failed) == (4, 1)
    harness.session.requests.clear()
    await set_commands(harness.bot, uow_factory)
    assert len(calls(harness.session, SetMyCommands)) == 1


async def test_429_waits_and_retries(harness, uow_factory, clock):
    await add_staff(uow_factory, clock, 3)
    harness.session.fail_next(SetMyCommands, 429, "Too Many Requests: retry after 1", retry_after=1)
    stats = await set_commands(harness.bot, uow_factory)
    assert (stats.set, stats.failed) == (5, 0)
    assert len(calls(harness.session, SetMyCommands)) == 6


class SlowSession(RecordingSession):
    """Each call takes a while; records how many were in flight at once."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0
        self.most = 0

    async def make_request(self, bot, method, timeout=None):  # noqa: ASYNC109
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await asyncio.sleep(0.02)
            return await super().make_request(bot, method, timeout)
        finally:
            self.now -= 1


async def test_menus_go_concurrently_within_the_limit(uow_factory, clock):
    await add_staff(uow_factory, clock, 40)
    session = SlowSession()
    await set_commands(make_bot(session), uow_factory, per_second=1000.0, concurrency=8)
    assert len(calls(session, SetMyCommands)) == 42
    assert session.most == 8


async def test_run_time_changes_are_remembered(harness, make_actor, uow_factory):
    admin = await make_actor(roles=("admin",), name="Ольга")
    ann = await make_actor(roles=("manager",), name="Анна")
    await set_commands(harness.bot, uow_factory)
    boss = tg_user(admin.telegram_id)
    listing = await harness.send(boss, "/team")
    promote = TeamCb(action=TeamAction.ROLE, employee_id=ann.id, value=0)
    assert calls(await harness.tap(boss, promote, listing), SetMyCommands)
    off = TeamCb(action=TeamAction.ACTIVE, employee_id=ann.id, value=0)
    assert calls(await harness.tap(boss, off, listing), DeleteMyCommands)
    on = TeamCb(action=TeamAction.ACTIVE, employee_id=ann.id, value=1)
    assert calls(await harness.tap(boss, on, listing), SetMyCommands)
    async with uow_factory() as uow:
        await team.set_language(uow, admin, "en")  # (not sent: recorded as changed)
    harness.session.requests.clear()
    await set_commands(harness.bot, uow_factory)
    # Ann's menu was sent when it changed; only the admin's new language is left.
    (menu,) = calls(harness.session, SetMyCommands)
    assert menu.scope == BotCommandScopeChat(chat_id=admin.telegram_id)


async def test_menu_buttons_count_as_part_of_the_menu(harness, uow_factory, clock):
    """With a Mini App, each person's menu button goes with their commands: sent when it
    changes (a new WEB_APP_URL), not at every start."""
    await add_staff(uow_factory, clock, 3)
    url = "https://crm.example/app/"
    await set_commands(harness.bot, uow_factory, url)
    assert len(calls(harness.session, SetChatMenuButton)) == 3
    harness.session.requests.clear()
    await set_commands(harness.bot, uow_factory, url)
    assert harness.session.requests == []
    await set_commands(harness.bot, uow_factory, url + "v2")
    buttons = calls(harness.session, SetChatMenuButton)
    assert len(buttons) == 3 and all(b.menu_button.web_app.url == url + "v2" for b in buttons)
    assert len(calls(harness.session, SetMyCommands)) == 3  # the chats' menus, not the defaults
