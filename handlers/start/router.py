"""Access: /start with an invite token, the main menu, /lang, and refusing strangers."""

from __future__ import annotations

import logging
from html import escape

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyKeyboardRemove,
    TelegramObject,
    User,
)
from aiogram.utils.callback_answer import CallbackAnswer

from handlers.ui import keyboards as kb
from handlers.ui import screen
from handlers.ui.callbacks import LangCb, MenuAction, MenuCb
from handlers.ui.context import Ctx
from handlers.ui.filters import staff_router
from handlers.ui.i18n import lang_of, t
from handlers.ui.keyboards import button
from services.permissions import Action, Actor, require
from services.sales import pipelines
from services.team import staff as team
from storage.uow import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

# Registration must work for people who are not staff yet: this router has no Staff filter.
# Staff-only basics.
# Last: whatever a stranger sends.


def _name(user: User) -> str:
    return " ".join(x for x in (user.first_name, user.last_name) if x) or str(user.id)


async def start_with_token(
    message: Message,
    command: CommandObject,
    uow: UnitOfWork,
    actor: Actor | None,
    lang: str,
    uow_factory: UnitOfWorkFactory,
    web_app_url: str | None = None,
) -> None:
    user = message.from_user
    if user is None:
        return
    token = command.args or ""
    new_actor = await team.accept_invite(
        uow, user.id, _name(user), user.username, token, lang_of(user.language_code)
    )
    lang = new_actor.language or lang
    await message.answer(
        t(
            "start.welcome",
            lang,
            name=new_actor.name,
            roles=", ".join(t(f"role.{r}", lang) for r in sorted(new_actor.roles)),
        )
    )
    await message.answer(t("menu.title", lang), reply_markup=kb.main_menu(new_actor, lang))
    bot = message.bot
    if bot is not None:
        from handlers.ui.commands import set_commands_for

        await set_commands_for(bot, new_actor, uow_factory, web_app_url)


def _menu(ctx: Ctx) -> tuple[str, InlineKeyboardMarkup]:
    return ctx.t("menu.title"), kb.main_menu(ctx.actor, ctx.lang)


async def show_menu(message: Message, ctx: Ctx) -> None:
    if await ctx.state.get_state() is not None:  # leaving a wizard: drop its reply keyboard
        await message.answer(ctx.t("common.cancelled"), reply_markup=ReplyKeyboardRemove())
    await ctx.state.clear()
    text, markup = _menu(ctx)
    await message.answer(text, reply_markup=markup)


async def start(message: Message, ctx: Ctx, web_app_url: str | None = None) -> None:
    """/start: the menu; the first admin, with nobody invited yet, gets the setup guide."""
    if await team.setting_up(ctx.uow, ctx.actor):
        await ctx.state.clear()
        await message.answer(
            ctx.t("start.setup.title"), reply_markup=_setup_keyboard(ctx, web_app_url)
        )
        return
    await show_menu(message, ctx)


def _setup_keyboard(ctx: Ctx, web_app_url: str | None) -> InlineKeyboardMarkup:
    def row(key: str, action: MenuAction) -> list[InlineKeyboardButton]:
        return [button(ctx.t(key), MenuCb(action=action))]

    rows = [
        row("start.setup.invite", MenuAction.INVITE),
        row("start.setup.pipelines", MenuAction.SETUP_PIPELINES),
        row("start.setup.business", MenuAction.SETUP_BUSINESS),
        row("start.setup.board", MenuAction.FUNNEL),
        row("start.setup.menu", MenuAction.HOME),
    ]
    return kb.with_app(InlineKeyboardMarkup(inline_keyboard=rows), web_app_url, ctx.lang)


async def setup_pipelines(query: CallbackQuery, ctx: Ctx) -> None:
    """The guide's "Check the pipelines": each pipeline and its stages, in the reader's
    language, and where they are configured."""
    require(ctx.actor, Action.TEAM_MANAGE)  # the guide is the admins'
    lines = [ctx.t("start.setup.pipelines.title")]
    for p in await pipelines.list_pipelines(ctx.uow):
        stages = " → ".join(escape(s.label(ctx.lang)) for s in p.stages)
        lines += ["", f"<b>{escape(p.label(ctx.lang))}</b>", stages]
    lines += ["", ctx.t("start.setup.pipelines.how")]
    back = [[button(ctx.t("common.back"), MenuCb(action=MenuAction.HOME))]]
    await screen.edit(query, "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=back))


async def setup_business(query: CallbackQuery, ctx: Ctx) -> None:
    require(ctx.actor, Action.TEAM_MANAGE)  # the guide is the admins'
    back = [[button(ctx.t("common.back"), MenuCb(action=MenuAction.HOME))]]
    await screen.edit(
        query, ctx.t("start.setup.business.how"), InlineKeyboardMarkup(inline_keyboard=back)
    )


async def cancel(message: Message, ctx: Ctx) -> None:
    await ctx.state.clear()
    # Also takes away a reply keyboard a wizard step may have shown (share contact).
    await message.answer(ctx.t("common.cancelled"), reply_markup=ReplyKeyboardRemove())
    text, markup = _menu(ctx)
    await message.answer(text, reply_markup=markup)


async def menu_home(query: CallbackQuery, ctx: Ctx) -> None:
    await ctx.state.clear()
    if isinstance(query.message, Message):
        text, markup = _menu(ctx)
        await query.message.edit_text(text, reply_markup=markup)


async def help_command(message: Message, ctx: Ctx) -> None:
    from handlers.ui.commands import help_text

    await message.answer(help_text(ctx.actor, ctx.lang))


async def lang_command(message: Message, ctx: Ctx) -> None:
    await message.answer(ctx.t("lang.pick"), reply_markup=kb.languages())


async def lang_menu(query: CallbackQuery, ctx: Ctx) -> None:
    if isinstance(query.message, Message):
        await query.message.answer(ctx.t("lang.pick"), reply_markup=kb.languages())


async def set_lang(
    query: CallbackQuery,
    callback_data: LangCb,
    ctx: Ctx,
    uow_factory: UnitOfWorkFactory,
    web_app_url: str | None = None,
) -> None:
    updated = await team.set_language(ctx.uow, ctx.actor, callback_data.lang)
    lang = updated.language or "ru"
    if isinstance(query.message, Message):
        await query.message.edit_text(t("lang.set", lang))
        await query.message.answer(t("menu.title", lang), reply_markup=kb.main_menu(updated, lang))
    if query.bot is not None:
        from handlers.ui.commands import set_commands_for

        await set_commands_for(query.bot, updated, uow_factory, web_app_url)


async def _refuse(
    event: TelegramObject, user: User | None, uow: UnitOfWork, text: str | None, lang: str
) -> None:
    if user is not None:
        # The owner's way to learn their own Telegram id (README, "Your Telegram id").
        log.info(
            "refused %s (Telegram id %s): not on the staff; an admin invites them, or put the "
            "id in ADMIN_IDS to make them an admin",
            _name(user),
            user.id,
        )
        await team.record_attempt(uow, user.id, _name(user), user.username, text)


async def stranger_message(
    message: Message, uow: UnitOfWork, actor: Actor | None, lang: str, state: FSMContext
) -> None:
    if actor is not None:  # staff typed something no handler expects
        await message.answer(t("common.unknown_input", lang))
        return
    await _refuse(message, message.from_user, uow, message.text, lang)
    await message.answer(t("access.denied", lang))


async def stranger_callback(
    query: CallbackQuery,
    uow: UnitOfWork,
    actor: Actor | None,
    lang: str,
    callback_answer: CallbackAnswer,
) -> None:
    callback_answer.show_alert = True
    if actor is not None:
        callback_answer.text = t("common.stale_button", lang)
        return
    await _refuse(query, query.from_user, uow, query.data, lang)
    callback_answer.text = t("access.denied", lang)


def setup() -> tuple[Router, Router, Router]:
    """Fresh routers for one Dispatcher: access, menu, strangers."""
    access = Router(name="access")
    menu = staff_router("menu")
    strangers = Router(name="strangers")
    access.message.register(start_with_token, CommandStart(deep_link=True))
    menu.message.register(start, CommandStart())
    menu.message.register(show_menu, Command("menu"))
    menu.message.register(cancel, Command("cancel"))
    menu.callback_query.register(menu_home, MenuCb.filter(F.action == MenuAction.HOME))
    menu.callback_query.register(
        setup_pipelines, MenuCb.filter(F.action == MenuAction.SETUP_PIPELINES)
    )
    menu.callback_query.register(
        setup_business, MenuCb.filter(F.action == MenuAction.SETUP_BUSINESS)
    )
    menu.message.register(help_command, Command("help"))
    menu.message.register(lang_command, Command("lang"))
    menu.callback_query.register(lang_menu, MenuCb.filter(F.action == MenuAction.LANG))
    menu.callback_query.register(set_lang, LangCb.filter())
    strangers.message.register(stranger_message)
    strangers.callback_query.register(stranger_callback)
    return (access, menu, strangers)
