"""Team: /invite (one-time deep links by role), /team (staff, roles, deactivation) and the
access attempts of people nobody invited. Admins only: every service call checks it."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta, tzinfo
from typing import Protocol

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from handlers.team import views as view
from handlers.ui.callbacks import InviteCb, MenuAction, MenuCb, TeamAction, TeamCb
from handlers.ui.commands import clear_commands_for, set_commands_for, set_menu_button_for
from handlers.ui.filters import Staff
from handlers.ui.i18n import t
from services.errors import ValidationError
from services.permissions import Actor
from services.team import staff as team
from services.team.staff import EmployeeInfo
from storage.enums import Role
from storage.uow import UnitOfWork, UnitOfWorkFactory


class InviteSettings(Protocol):
    """What /invite reads of the settings (bot.settings.Settings; handlers don't import bot)."""

    invite_ttl_hours: int


log = logging.getLogger(__name__)


async def _edit(query: CallbackQuery, text: str, markup: InlineKeyboardMarkup) -> None:
    if isinstance(query.message, Message):
        await query.message.edit_text(text, reply_markup=markup)


def _role_at(index: int) -> str:
    """InviteCb.role / TeamCb.value -> a role; anything else was not one of our buttons."""
    if not 0 <= index < len(view.ROLES):
        raise ValidationError("role", "unknown")
    return view.ROLES[index].value


async def _refresh_commands(
    bot: Bot | None,
    person: EmployeeInfo,
    uow_factory: UnitOfWorkFactory,
    web_app_url: str | None = None,
) -> None:
    """The person's commands menu (and Mini App menu button) follows their roles; a
    deactivated person keeps only the default (/start) menu."""
    if bot is None:
        return
    roles = frozenset(Role(r) for r in person.roles if r in Role._value2member_map_)
    actor = Actor(person.id, person.telegram_id, person.name, roles, person.language)
    if person.active:
        await set_commands_for(bot, actor, uow_factory, web_app_url)
        return
    if web_app_url:
        await set_menu_button_for(bot, replace(actor, roles=frozenset()), web_app_url)
    await clear_commands_for(bot, person.telegram_id, uow_factory)


# --- invites ------------------------------------------------------------------------------


async def invite_command(message: Message, actor: Actor, lang: str) -> None:
    roles = team.invite_roles(actor)
    await message.answer(t("team.invite.pick", lang), reply_markup=view.invite_roles(roles, lang))


async def invite_menu(query: CallbackQuery, actor: Actor, lang: str) -> None:
    roles = team.invite_roles(actor)
    if isinstance(query.message, Message):
        await query.message.answer(
            t("team.invite.pick", lang), reply_markup=view.invite_roles(roles, lang)
        )


async def create_invite(
    query: CallbackQuery,
    callback_data: InviteCb,
    bot: Bot,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    tz: tzinfo,
    settings: InviteSettings,
) -> None:
    role = _role_at(callback_data.role)
    invite = await team.create_invite(uow, actor, role, timedelta(hours=settings.invite_ttl_hours))
    me = await bot.me()  # cached by aiogram (polling fetched it at start)
    link = view.invite_link(me.username or "", invite.token)
    await _edit(query, view.invite_text(invite, link, lang, tz), view.back_to_team(lang))


# --- staff --------------------------------------------------------------------------------


async def team_command(message: Message, uow: UnitOfWork, actor: Actor, lang: str) -> None:
    staff = await team.team(uow, actor)
    await message.answer(view.team_list(staff, lang), reply_markup=view.team_keyboard(staff, lang))


async def team_menu(query: CallbackQuery, uow: UnitOfWork, actor: Actor, lang: str) -> None:
    staff = await team.team(uow, actor)
    if isinstance(query.message, Message):
        await query.message.answer(
            view.team_list(staff, lang), reply_markup=view.team_keyboard(staff, lang)
        )


async def team_list(query: CallbackQuery, uow: UnitOfWork, actor: Actor, lang: str) -> None:
    staff = await team.team(uow, actor)
    await _edit(query, view.team_list(staff, lang), view.team_keyboard(staff, lang))


async def open_employee(
    query: CallbackQuery, callback_data: TeamCb, uow: UnitOfWork, actor: Actor, lang: str
) -> None:
    person = await team.employee(uow, actor, callback_data.employee_id)
    await _edit(query, view.employee_card(person, lang), view.employee_keyboard(person, lang))


async def toggle_role(
    query: CallbackQuery,
    callback_data: TeamCb,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    uow_factory: UnitOfWorkFactory,
    web_app_url: str | None = None,
) -> None:
    role = _role_at(callback_data.value)
    person = await team.toggle_role(uow, actor, callback_data.employee_id, role)
    await _edit(query, view.employee_card(person, lang), view.employee_keyboard(person, lang))
    await _refresh_commands(query.bot, person, uow_factory, web_app_url)


async def set_active(
    query: CallbackQuery,
    callback_data: TeamCb,
    uow: UnitOfWork,
    actor: Actor,
    lang: str,
    uow_factory: UnitOfWorkFactory,
    web_app_url: str | None = None,
) -> None:
    if callback_data.value not in (0, 1):
        raise ValidationError("action", "unknown")
    person = await team.set_active(uow, actor, callback_data.employee_id, bool(callback_data.value))
    await _edit(query, view.employee_card(person, lang), view.employee_keyboard(person, lang))
    await _refresh_commands(query.bot, person, uow_factory, web_app_url)


async def access_attempts(
    query: CallbackQuery, uow: UnitOfWork, actor: Actor, lang: str, tz: tzinfo
) -> None:
    items = await team.attempts(uow, actor, limit=20)
    await _edit(query, view.attempts(items, lang, tz), view.back_to_team(lang))


def setup() -> Router:
    """A fresh router for one Dispatcher (its handlers in dispatch order)."""
    router = Router(name="team")
    router.message.filter(Staff())
    router.callback_query.filter(Staff())
    router.message.register(invite_command, Command("invite"))
    router.callback_query.register(invite_menu, MenuCb.filter(F.action == MenuAction.INVITE))
    router.callback_query.register(create_invite, InviteCb.filter())
    router.message.register(team_command, Command("team"))
    router.callback_query.register(team_menu, MenuCb.filter(F.action == MenuAction.TEAM))
    router.callback_query.register(team_list, TeamCb.filter(F.action == TeamAction.LIST))
    router.callback_query.register(open_employee, TeamCb.filter(F.action == TeamAction.OPEN))
    router.callback_query.register(toggle_role, TeamCb.filter(F.action == TeamAction.ROLE))
    router.callback_query.register(set_active, TeamCb.filter(F.action == TeamAction.ACTIVE))
    router.callback_query.register(access_attempts, TeamCb.filter(F.action == TeamAction.ATTEMPTS))
    return router
