"""The commands menu (setMyCommands): per role, in each person's language; with a Mini App
(WEB_APP_URL) also each person's chat menu button (setChatMenuButton).

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
from html import escape
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramRetryAfter
from aiogram.types import (
    BotCommand,
    BotCommandScopeChat,
    BotCommandScopeDefault,
    MenuButtonCommands,
    MenuButtonWebApp,
    WebAppInfo,
)

from handlers.ui.i18n import DEFAULT_LANG, LANGUAGES, t
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
    ("plan", (Role.LEADER, Role.ADMIN)),
    ("receivables", (Role.LEADER, Role.ADMIN, Role.MANAGER)),
    ("invite", (Role.ADMIN,)),
    ("team", (Role.ADMIN,)),
    ("dayoff", (Role.LEADER, Role.ADMIN)),
    ("lang", None),
    ("help", None),
    ("cancel", None),
)


def commands_for(roles: frozenset[Role], lang: str) -> list[BotCommand]:
    return [
        BotCommand(command=name, description=t(f"cmd.{name}", lang))
        for name, allowed in COMMANDS
        if allowed is None or any(r in roles for r in allowed)
    ]


def help_text(actor: Actor, lang: str) -> str:
    """/help: who this person is, what each of their roles may do, and their commands."""
    roles = [r for r in Role if r in actor.roles]
    lines = [
        t(
            "help.title",
            lang,
            name=escape(actor.name),
            roles=", ".join(t(f"role.{r}", lang) for r in roles),
        ),
        "",
        *(t(f"help.role.{r}", lang) for r in roles),
        "",
        t("help.commands", lang),
        *(f"/{c.command} — {escape(c.description)}" for c in commands_for(actor.roles, lang)),
        "",
        t("help.footer", lang),
    ]
    return "\n".join(lines)


def has_board(actor: Actor) -> bool:
    """Whose chat menu button opens the Mini App (the board is about deals)."""
    return any(r in actor.roles for r in SALES)


def menu_button(actor: Actor, web_app_url: str) -> MenuButtonWebApp | MenuButtonCommands:
    """The chat's menu button: the Mini App for sales roles, the commands for the others."""
    if has_board(actor):
        text = t("app.menu_button", actor.language or "ru")
        return MenuButtonWebApp(text=text, web_app=WebAppInfo(url=web_app_url))
    return MenuButtonCommands()


async def set_menu_button_for(bot: Bot, actor: Actor, web_app_url: str) -> None:
    try:
        await bot.set_chat_menu_button(
            chat_id=actor.telegram_id, menu_button=menu_button(actor, web_app_url)
        )
    except TelegramAPIError as exc:
        log.info("menu button for %s not set: %s", actor.telegram_id, exc)


@dataclass(frozen=True)
class Menu:
    """One scope's menu: what to send, and its digest (the bot, scope, language, commands
    and chat menu button: equal digests, equal menus)."""

    key: str  # "default", "default:en", "chat:<telegram id>"
    scope: BotCommandScopeChat | BotCommandScopeDefault
    language_code: str | None
    commands: list[BotCommand]
    button: MenuButtonWebApp | MenuButtonCommands | None
    digest: str

    @classmethod
    def of(
        cls,
        bot: Bot,
        key: str,
        scope: BotCommandScopeChat | BotCommandScopeDefault,
        commands: list[BotCommand],
        language_code: str | None = None,
        button: MenuButtonWebApp | MenuButtonCommands | None = None,
    ) -> Menu:
        blob = json.dumps(
            [
                bot.id,
                key,
                language_code,
                [(c.command, c.description) for c in commands],
                button.model_dump(mode="json", exclude_none=True) if button else None,
            ],
            ensure_ascii=False,
        )
        digest = hashlib.sha256(blob.encode()).hexdigest()
        return cls(key, scope, language_code, commands, button, digest)


def chat_key(telegram_id: int) -> str:
    return f"chat:{telegram_id}"


def default_menus(bot: Bot) -> list[Menu]:
    """Strangers see only /start, per language."""
    return [
        Menu.of(
            bot,
            "default" if lang == DEFAULT_LANG else f"default:{lang}",
            BotCommandScopeDefault(),
            [BotCommand(command="start", description=t("cmd.start", lang))],
            None if lang == DEFAULT_LANG else lang,
        )
        for lang in LANGUAGES
    ]


def menu_of(bot: Bot, actor: Actor, web_app_url: str | None = None) -> Menu:
    """One person's menu, in their language (a chat scope beats the default scope), with
    their chat's menu button when there is a Mini App."""
    return Menu.of(
        bot,
        chat_key(actor.telegram_id),
        BotCommandScopeChat(chat_id=actor.telegram_id),
        commands_for(actor.roles, actor.language or "ru"),
        button=menu_button(actor, web_app_url) if web_app_url else None,
    )


def _requests(bot: Bot, menu: Menu) -> list[Callable[[], Awaitable[Any]]]:
    """The calls that set this menu: its commands, and its chat's menu button if any."""
    calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: bot.set_my_commands(
            menu.commands, scope=menu.scope, language_code=menu.language_code
        )
    ]
    scope, button = menu.scope, menu.button
    if button is not None and isinstance(scope, BotCommandScopeChat):
        chat_id = int(scope.chat_id)  # ours are always numeric ids
        calls.append(lambda: bot.set_chat_menu_button(chat_id=chat_id, menu_button=button))
    return calls


async def _send(bot: Bot, menu: Menu) -> None:
    for call in _requests(bot, menu):
        await call()


async def set_commands_for(
    bot: Bot, actor: Actor, uow_factory: UnitOfWorkFactory, web_app_url: str | None = None
) -> None:
    """Set one person's menu (and Mini App menu button) now -- their roles or language
    changed -- and remember it."""
    menu = menu_of(bot, actor, web_app_url)
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
    web_app_url: str | None = None,
    *,
    per_second: float = 20.0,
    concurrency: int = 8,
) -> MenuStats:
    """At start: every menu whose digest differs from the one stored (a new employee, a
    changed role, language, command list or Mini App URL, another bot) is set, concurrently
    within `per_second` (a person's commands and menu button count as one menu); menus of
    people no longer on staff are removed. Unchanged menus cost no call at all."""
    async with uow_factory() as uow:
        staff = await employees.staff(uow)
        known = await menus.stored(uow)
    wanted = default_menus(bot) + [menu_of(bot, actor, web_app_url) for actor in staff]
    keys = {m.key for m in wanted}
    stale = [m for m in wanted if known.get(m.key) != m.digest]
    gone = [k for k in known if k.startswith("chat:") and k not in keys]
    stats = MenuStats(unchanged=len(wanted) - len(stale))
    done: dict[str, str] = {}
    cleared: list[str] = []
    pacer = _Pacer(per_second, concurrency)

    async def put(menu: Menu) -> None:
        try:
            for request in _requests(bot, menu):
                await pacer.call(request)
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
