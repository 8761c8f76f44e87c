"""The commands menu (setMyCommands): per role, in each person's language.

Telegram keeps a menu until it is replaced, so a start sends only the menus that changed:
each scope's digest (services/team/menus.py, table bot_menus) is compared with the menu
computed now. A change at run time (roles, language, deactivation) is sent at once and its
digest recorded; a failed call forgets the digest, so the next start tries again."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramRetryAfter
from aiogram.types import (
    BotCommand,
    BotCommandScopeChat,
    BotCommandScopeDefault,
)

from handlers.ui.i18n import LANGUAGES, t
from services.outbox.queue import RateLimiter
from services.permissions import Actor
from services.team import employees, menus
from storage.enums import Role
from storage.uow import UnitOfWorkFactory

log = logging.getLogger(__name__)

SALES = (Role.MANAGER, Role.LEADER, Role.ADMIN)
# command -> roles that see it (None: everyone on staff)
COMMANDS: tuple[tuple[str, tuple[Role, ...] | None], ...] = (
    ("menu", None),
    ("lead", SALES),
    ("deals", SALES),
    ("search", SALES),
    ("tasks", None),
    ("task", (Role.MANAGER, Role.LEADER, Role.ADMIN, Role.HEAD_MEASURER)),
    ("funnel", SALES),
    ("export", SALES),
    ("receivables", (Role.LEADER, Role.ADMIN, Role.MANAGER)),
    ("invite", (Role.ADMIN,)),
    ("team", (Role.ADMIN,)),
    ("lang", None),
    ("cancel", None),
)


def commands_for(roles: frozenset[Role], lang: str) -> list[BotCommand]:
    return [
        BotCommand(command=name, description=t(f"cmd.{name}", lang))
        for name, allowed in COMMANDS
        if allowed is None or any(r in roles for r in allowed)
    ]


@dataclass(frozen=True)
class Menu:
    """One scope's menu: what to send, and its digest (the bot, scope, language and
    commands: equal digests, equal menus)."""

    key: str  # "default", "default:en", "chat:<telegram id>"
    scope: BotCommandScopeChat | BotCommandScopeDefault
    language_code: str | None
    commands: list[BotCommand]
    digest: str

    @classmethod
    def of(
        cls,
        bot: Bot,
        key: str,
        scope: BotCommandScopeChat | BotCommandScopeDefault,
        commands: list[BotCommand],
        language_code: str | None = None,
    ) -> Menu:
        blob = json.dumps(
            [bot.id, key, language_code, [(c.command, c.description) for c in commands]],
            ensure_ascii=False,
        )
        return cls(key, scope, language_code, commands, hashlib.sha256(blob.encode()).hexdigest())


def chat_key(telegram_id: int) -> str:
    return f"chat:{telegram_id}"


def default_menus(bot: Bot) -> list[Menu]:
    """Strangers see only /start, per language."""
    return [
        Menu.of(
            bot,
            "default" if lang == "ru" else f"default:{lang}",
            BotCommandScopeDefault(),
            [BotCommand(command="start", description=t("cmd.start", lang))],
            None if lang == "ru" else lang,
        )
        for lang in LANGUAGES
    ]


def menu_of(bot: Bot, actor: Actor) -> Menu:
    """One person's menu, in their language (a chat scope beats the default scope)."""
    return Menu.of(
        bot,
        chat_key(actor.telegram_id),
        BotCommandScopeChat(chat_id=actor.telegram_id),
        commands_for(actor.roles, actor.language or "ru"),
    )


async def _send(bot: Bot, menu: Menu) -> None:
    await bot.set_my_commands(menu.commands, scope=menu.scope, language_code=menu.language_code)


async def set_commands_for(bot: Bot, actor: Actor, uow_factory: UnitOfWorkFactory) -> None:
    """Set one person's menu now (their roles or language changed) and remember it."""
    menu = menu_of(bot, actor)
    try:
        await _send(bot, menu)
    except TelegramAPIError as exc:  # a person who never opened the bot, etc.
        log.info("commands for %s not set: %s", actor.telegram_id, exc)
        async with uow_factory() as uow:
            await menus.record(uow, {}, forget=[menu.key])  # the next start tries again
        return
    async with uow_factory() as uow:
        await menus.record(uow, {menu.key: menu.digest})


async def clear_commands_for(bot: Bot, telegram_id: int, uow_factory: UnitOfWorkFactory) -> None:
    """A deactivated person keeps only the default (/start) menu."""
    try:
        await bot.delete_my_commands(scope=BotCommandScopeChat(chat_id=telegram_id))
    except TelegramAPIError as exc:  # they never opened the bot, blocked it, etc.
        log.info("commands for %s not removed: %s", telegram_id, exc)
        return  # the row stays: the next start tries again
    async with uow_factory() as uow:
        await menus.record(uow, {}, forget=[chat_key(telegram_id)])


@dataclass
class MenuStats:
    set: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: int = 0


class _Pacer:
    """At most `concurrency` calls at a time and `per_second` started per second (the
    outbox's RateLimiter, one bucket); a 429 holds everyone for its retry_after."""

    def __init__(self, per_second: float, concurrency: int) -> None:
        self.limiter = RateLimiter(per_second, per_chat=0.0, window_max=max(1, int(per_second)))
        self.slots = asyncio.Semaphore(concurrency)

    async def call(self, request: Callable[[], Awaitable[Any]], attempts: int = 3) -> None:
        async with self.slots:
            for attempt in range(1, attempts + 1):
                await self.limiter.acquire(0)
                try:
                    await request()
                    return
                except TelegramRetryAfter as exc:
                    if attempt == attempts:
                        raise
                    self.limiter.hold(exc.retry_after)
                finally:
                    self.limiter.sent(0)


async def set_commands(
    bot: Bot,
    uow_factory: UnitOfWorkFactory,
    *,
    per_second: float = 20.0,
    concurrency: int = 8,
) -> MenuStats:
    """At start: every menu whose digest differs from the one stored (a new employee, a
    changed role, language or command list, another bot) is set, concurrently within
    `per_second`; menus of people no longer on staff are removed. Unchanged menus cost no
    call at all."""
    async with uow_factory() as uow:
        staff = await employees.staff(uow)
        known = await menus.stored(uow)
    wanted = default_menus(bot) + [menu_of(bot, actor) for actor in staff]
    keys = {m.key for m in wanted}
    stale = [m for m in wanted if known.get(m.key) != m.digest]
    gone = [k for k in known if k.startswith("chat:") and k not in keys]
    stats = MenuStats(unchanged=len(wanted) - len(stale))
    done: dict[str, str] = {}
    cleared: list[str] = []
    pacer = _Pacer(per_second, concurrency)

    async def put(menu: Menu) -> None:
        try:
            await pacer.call(lambda: _send(bot, menu))
        except TelegramAPIError as exc:  # a person who never opened the bot, etc.
            stats.failed += 1
            log.info("commands for %s not set: %s", menu.key, exc)
            return
        done[menu.key] = menu.digest
        stats.set += 1

    async def drop(key: str) -> None:
        chat_id = int(key.removeprefix("chat:"))
        try:
            await pacer.call(
                lambda: bot.delete_my_commands(scope=BotCommandScopeChat(chat_id=chat_id))
            )
        except TelegramBadRequest:  # the chat is gone: nothing left to remove
            pass
        except TelegramAPIError as exc:
            stats.failed += 1
            log.info("commands for %s not removed: %s", key, exc)
            return
        cleared.append(key)
        stats.removed += 1

    await asyncio.gather(*(put(m) for m in stale), *(drop(k) for k in gone))
    if done or cleared:
        async with uow_factory() as uow:
            await menus.record(uow, done, forget=cleared)
    log.info(
        "commands menus: %d set, %d unchanged, %d removed, %d failed",
        stats.set,
        stats.unchanged,
        stats.removed,
        stats.failed,
    )
    return stats
