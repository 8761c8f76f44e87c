"""Team: /invite (one-time deep links by role), /team (staff, roles, deactivation) and the
access attempts of people nobody invited (admins only), /dayoff (managers' days off:
leaders and admins). Every service call checks the right."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import date, timedelta
from typing import Protocol

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer

from handlers.team import views as view
from handlers.ui import screen
from handlers.ui.callbacks import InviteCb, MenuAction, MenuCb, TeamAction, TeamCb
from handlers.ui.commands import clear_commands_for, set_commands_for, set_menu_button_for
from handlers.ui.context import Ctx
from handlers.ui.filters import staff_router
from services.errors import ValidationError
from services.permissions import Actor
from services.team import distribution
from services.team import staff as team
from services.team.staff import EmployeeInfo
from storage.enums import Role
from storage.uow import UnitOfWorkFactory


class InviteSettings(Protocol):
    """What /invite reads of the settings (bot.settings.Settings; handlers don't import bot)."""

    invite_ttl_hours: int


log = logging.getLogger(__name__)


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


def _invite_menu(ctx: Ctx) -> tuple[str, InlineKeyboardMarkup]:
    roles = team.invite_roles(ctx.actor)
    return ctx.t("team.invite.pick"), view.invite_roles(roles, ctx.lang)


async def invite_command(message: Message, ctx: Ctx) -> None:
    text, markup = _invite_menu(ctx)
    await message.answer(text, reply_markup=markup)


async def invite_menu(query: CallbackQuery, ctx: Ctx) -> None:
    text, markup = _invite_menu(ctx)
    if isinstance(query.message, Message):
        await query.message.answer(text, reply_markup=markup)


async def create_invite(
    query: CallbackQuery, callback_data: InviteCb, bot: Bot, ctx: Ctx, settings: InviteSettings
) -> None:
    role = _role_at(callback_data.role)
    ttl = timedelta(hours=settings.invite_ttl_hours)
    invite = await team.create_invite(ctx.uow, ctx.actor, role, ttl)
    me = await bot.me()  # cached by aiogram (polling fetched it at start)
    link = view.invite_link(me.username or "", invite.token)
    text = view.invite_text(invite, link, ctx.lang, ctx.tz)
    await screen.edit(query, text, view.back_to_team(ctx.lang))


# --- staff --------------------------------------------------------------------------------


async def _team(ctx: Ctx) -> tuple[str, InlineKeyboardMarkup]:
    staff = await team.team(ctx.uow, ctx.actor)
    return view.team_list(staff, ctx.lang), view.team_keyboard(staff, ctx.lang)


async def team_command(message: Message, ctx: Ctx) -> None:
    text, markup = await _team(ctx)
    await message.answer(text, reply_markup=markup)


async def team_menu(query: CallbackQuery, ctx: Ctx) -> None:
    text, markup = await _team(ctx)
    if isinstance(query.message, Message):
        await query.message.answer(text, reply_markup=markup)


async def team_list(query: CallbackQuery, ctx: Ctx) -> None:
    await screen.edit(query, *await _team(ctx))


async def _show_employee(query: CallbackQuery, ctx: Ctx, person: EmployeeInfo) -> None:
    card = view.employee_card(person, ctx.lang)
    await screen.edit(query, card, view.employee_keyboard(person, ctx.lang))


async def open_employee(query: CallbackQuery, callback_data: TeamCb, ctx: Ctx) -> None:
    person = await team.employee(ctx.uow, ctx.actor, callback_data.employee_id)
    await _show_employee(query, ctx, person)


async def _toggle_role(ctx: Ctx, cb: TeamCb) -> EmployeeInfo:
    return await team.toggle_role(ctx.uow, ctx.actor, cb.employee_id, _role_at(cb.value))


async def _set_active(ctx: Ctx, cb: TeamCb) -> EmployeeInfo:
    if cb.value not in (0, 1):
        raise ValidationError("action", "unknown")
    return await team.set_active(ctx.uow, ctx.actor, cb.employee_id, bool(cb.value))


# A change to a person: a role toggled (TeamCb.value: its index), or deactivated / active
# again (0 / 1). Their commands menu follows.
CHANGES: dict[TeamAction, Callable[[Ctx, TeamCb], Awaitable[EmployeeInfo]]] = {
    TeamAction.ROLE: _toggle_role,
    TeamAction.ACTIVE: _set_active,
}


async def change(
    query: CallbackQuery,
    callback_data: TeamCb,
    ctx: Ctx,
    uow_factory: UnitOfWorkFactory,
    web_app_url: str | None = None,
) -> None:
    person = await CHANGES[callback_data.action](ctx, callback_data)
    await _show_employee(query, ctx, person)
    await _refresh_commands(query.bot, person, uow_factory, web_app_url)


async def access_attempts(query: CallbackQuery, ctx: Ctx) -> None:
    items = await team.attempts(ctx.uow, ctx.actor, limit=20)
    await screen.edit(query, view.attempts(items, ctx.lang, ctx.tz), view.back_to_team(ctx.lang))


async def _day_off(ctx: Ctx) -> tuple[str, InlineKeyboardMarkup]:
    board = await distribution.day_off_board(ctx.uow, ctx.actor)
    return view.day_off_text(board, ctx.lang), view.day_off_keyboard(board, ctx.lang)


async def day_off_command(message: Message, ctx: Ctx) -> None:
    """/dayoff (leaders, admins): a manager's day off today or tomorrow — new leads pass
    them over that day (services/team/distribution.py)."""
    text, markup = await _day_off(ctx)
    await message.answer(text, reply_markup=markup)


async def toggle_day_off(
    query: CallbackQuery, callback_data: TeamCb, ctx: Ctx, callback_answer: CallbackAnswer
) -> None:
    try:
        day = date.fromordinal(callback_data.value)
    except (ValueError, OverflowError) as exc:
        raise ValidationError("day", "invalid") from exc
    off = await distribution.toggle_day_off(ctx.uow, ctx.actor, callback_data.employee_id, day)
    callback_answer.text = ctx.t("team.dayoff.set" if off else "team.dayoff.cleared")
    await screen.edit(query, *await _day_off(ctx))


def setup() -> Router:
    """A fresh router for one Dispatcher (its handlers in dispatch order)."""
    router = staff_router("team")
    router.message.register(invite_command, Command("invite"))
    router.callback_query.register(invite_menu, MenuCb.filter(F.action == MenuAction.INVITE))
    router.callback_query.register(create_invite, InviteCb.filter())
    router.message.register(team_command, Command("team"))
    router.callback_query.register(team_menu, MenuCb.filter(F.action == MenuAction.TEAM))
    router.callback_query.register(team_list, TeamCb.filter(F.action == TeamAction.LIST))
    router.callback_query.register(open_employee, TeamCb.filter(F.action == TeamAction.OPEN))
    router.callback_query.register(change, TeamCb.filter(F.action.in_(set(CHANGES))))
    router.callback_query.register(access_attempts, TeamCb.filter(F.action == TeamAction.ATTEMPTS))
    router.message.register(day_off_command, Command("dayoff"))
    router.callback_query.register(toggle_day_off, TeamCb.filter(F.action == TeamAction.DAY_OFF))
    return router
