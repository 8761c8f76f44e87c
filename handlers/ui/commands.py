"""The commands menu (setMyCommands): per role, in each person's language."""

from __future__ import annotations

import logging
from html import escape

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import (
    BotCommand,
    BotCommandScopeChat,
    BotCommandScopeDefault,
    MenuButtonCommands,
    MenuButtonWebApp,
    WebAppInfo,
)

from handlers.ui.i18n import LANGUAGES, t
from services.permissions import Actor
from services.team import employees
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


async def set_commands_for(bot: Bot, actor: Actor, web_app_url: str | None = None) -> None:
    """One person's menu, in their language (a chat scope beats the default scope); with a
    Mini App (WEB_APP_URL) also their chat's menu button."""
    try:
        await bot.set_my_commands(
            commands_for(actor.roles, actor.language or "ru"),
            scope=BotCommandScopeChat(chat_id=actor.telegram_id),
        )
    except TelegramAPIError as exc:  # a person who never opened the bot, etc.
        log.info("commands for %s not set: %s", actor.telegram_id, exc)
    if web_app_url:
        await set_menu_button_for(bot, actor, web_app_url)


def has_board(actor: Actor) -> bool:
    """Whose chat menu button opens the Mini App (the board is about deals)."""
    return any(r in actor.roles for r in SALES)


async def set_menu_button_for(bot: Bot, actor: Actor, web_app_url: str) -> None:
    """The chat's menu button: the Mini App for sales roles, the commands for the others."""
    lang = actor.language or "ru"
    button: MenuButtonWebApp | MenuButtonCommands = MenuButtonCommands()
    if has_board(actor):
        app = WebAppInfo(url=web_app_url)
        button = MenuButtonWebApp(text=t("app.menu_button", lang), web_app=app)
    try:
        await bot.set_chat_menu_button(chat_id=actor.telegram_id, menu_button=button)
    except TelegramAPIError as exc:
        log.info("menu button for %s not set: %s", actor.telegram_id, exc)


async def set_commands(
    bot: Bot, uow_factory: UnitOfWorkFactory, web_app_url: str | None = None
) -> None:
    """Strangers see only /start (per language); each employee sees their role's commands
    (and, with a Mini App, sales roles get it as their menu button)."""
    for lang in LANGUAGES:
        await bot.set_my_commands(
            [BotCommand(command="start", description=t("cmd.start", lang))],
            scope=BotCommandScopeDefault(),
            language_code=None if lang == "ru" else lang,
        )
    async with uow_factory() as uow:
        staff = await employees.staff(uow)
    for actor in staff:
        await set_commands_for(bot, actor, web_app_url)
