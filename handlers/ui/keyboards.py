"""Shared keyboard pieces: a callback button, the main menu, the language choice.

Each area's own keyboards live in its views module (handlers/<area>/views.py)."""

from __future__ import annotations

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, WebAppInfo
from aiogram.utils.keyboard import InlineKeyboardBuilder

from handlers.ui.callbacks import (
    Lang,
    LangCb,
    MenuAction,
    MenuCb,
)
from handlers.ui.i18n import t
from services.permissions import Actor
from storage.enums import Role


def button(text: str, cb: object) -> InlineKeyboardButton:
    # A copy of a validated prototype with the two strings set: a card has a dozen buttons,
    # drawn on every tap, and this is a fifth of pydantic's cost of building one (both
    # fields are strings by construction).
    data = cb.pack()  # type: ignore[attr-defined]
    return _BUTTON.model_copy(update={"text": text, "callback_data": data})


_BUTTON = InlineKeyboardButton(text="-", callback_data="-")


def deep_link(bot_username: str, payload: str) -> str:
    """The bot's link that opens it with ``/start <payload>`` (a staff or a client invite)."""
    return f"https://t.me/{bot_username}?start={payload}"


def with_app(
    markup: InlineKeyboardMarkup, web_app_url: str | None, lang: str, view: str = "board"
) -> InlineKeyboardMarkup:
    """`markup` plus a last row opening the Mini App (`view`: board or dashboard), when
    there is one (WEB_APP_URL)."""
    if not web_app_url:
        return markup
    sep = "&" if "?" in web_app_url else "?"
    url = f"{web_app_url}{sep}view={view}"
    key = "app.open_dashboard" if view == "dashboard" else "app.open_board"
    row = [InlineKeyboardButton(text=t(key, lang), web_app=WebAppInfo(url=url))]
    return InlineKeyboardMarkup(inline_keyboard=[*markup.inline_keyboard, row])


def main_menu(actor: Actor, lang: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    sales = actor.has(Role.MANAGER, Role.LEADER, Role.ADMIN)
    if sales:
        kb.add(button(t("menu.new_lead", lang), MenuCb(action=MenuAction.NEW_LEAD)))
        kb.add(button(t("menu.my_deals", lang), MenuCb(action=MenuAction.MY_DEALS)))
    kb.add(button(t("menu.tasks", lang), MenuCb(action=MenuAction.TASKS)))
    if sales:
        kb.add(button(t("menu.search", lang), MenuCb(action=MenuAction.SEARCH)))
        kb.add(button(t("menu.funnel", lang), MenuCb(action=MenuAction.FUNNEL)))
    if actor.has(Role.ADMIN):
        kb.add(button(t("menu.team", lang), MenuCb(action=MenuAction.TEAM)))
        kb.add(button(t("menu.invite", lang), MenuCb(action=MenuAction.INVITE)))
    kb.add(button(t("menu.lang", lang), MenuCb(action=MenuAction.LANG)))
    kb.adjust(2)
    return kb.as_markup()


def languages() -> InlineKeyboardMarkup:
    # Each language's name is shown in that language (lang.name.* is the same in every catalog).
    row = [button(t(f"lang.name.{code}", code), LangCb(lang=code)) for code in Lang]
    return InlineKeyboardMarkup(inline_keyboard=[row])
