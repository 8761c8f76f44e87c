"""Texts and keyboards of the team screens (staff list, employee card, invites, attempts)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta, tzinfo
from html import escape

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from handlers.ui import fmt
from handlers.ui.callbacks import InviteCb, MenuAction, MenuCb, TeamAction, TeamCb
from handlers.ui.fmt import when
from handlers.ui.i18n import t
from handlers.ui.keyboards import button, deep_link
from services.team.distribution import DayOffBoard
from services.team.staff import AttemptInfo, EmployeeInfo, InviteInfo
from storage.enums import Role

# InviteCb.role and TeamCb.value (for ROLE) are indexes into this tuple.
ROLES: tuple[Role, ...] = tuple(Role)


def roles_text(roles: Sequence[str], lang: str) -> str:
    return ", ".join(t(f"role.{r}", lang) for r in roles) or "—"


def who(name: str, username: str | None) -> str:
    return escape(name) + (f" @{escape(username)}" if username else "")


def _mark(person: EmployeeInfo) -> str:
    if not person.active:
        return "⛔"
    return "⚠️" if person.unreachable else "🟢"


def team_list(staff: Sequence[EmployeeInfo], lang: str) -> str:
    lines = [t("team.list.title", lang, n=len(staff))]
    for person in staff:
        lines.append(
            t(
                "team.list.row",
                lang,
                mark=_mark(person),
                who=who(person.name, person.username),
                roles=roles_text(person.roles, lang),
            )
        )
    lines += ["", t("team.list.hint", lang)]
    return "\n".join(lines)


def team_keyboard(staff: Sequence[EmployeeInfo], lang: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for person in staff:
        kb.add(
            button(
                f"{_mark(person)} {person.name}"[:60],
                TeamCb(action=TeamAction.OPEN, employee_id=person.id),
            )
        )
    kb.adjust(2)
    kb.row(
        button(t("team.btn.attempts", lang), TeamCb(action=TeamAction.ATTEMPTS)),
        button(t("menu.invite", lang), MenuCb(action=MenuAction.INVITE)),
    )
    return kb.as_markup()


def _status(person: EmployeeInfo, lang: str) -> str:
    if not person.active:
        return t("team.status.inactive", lang)
    if person.unreachable:
        return t("team.status.unreachable", lang)
    return t("team.status.active", lang)


def employee_card(person: EmployeeInfo, lang: str) -> str:
    return t(
        "team.card",
        lang,
        who=who(person.name, person.username),
        telegram_id=person.telegram_id,
        roles=roles_text(person.roles, lang),
        status=_status(person, lang),
    )


def employee_keyboard(person: EmployeeInfo, lang: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for index, role in enumerate(ROLES):
        mark = "✅" if role.value in person.roles else "▫️"
        kb.add(
            button(
                f"{mark} {t(f'role.{role.value}', lang)}",
                TeamCb(action=TeamAction.ROLE, employee_id=person.id, value=index),
            )
        )
    kb.adjust(2)
    if person.active:
        toggle = button(
            t("team.btn.deactivate", lang),
            TeamCb(action=TeamAction.ACTIVE, employee_id=person.id, value=0),
        )
    else:
        toggle = button(
            t("team.btn.activate", lang),
            TeamCb(action=TeamAction.ACTIVE, employee_id=person.id, value=1),
        )
    kb.row(toggle)
    kb.row(_back(lang))
    return kb.as_markup()


def _back(lang: str) -> InlineKeyboardButton:
    return button(t("common.back", lang), TeamCb(action=TeamAction.LIST))


def attempts(items: Sequence[AttemptInfo], lang: str, tz: tzinfo) -> str:
    if not items:
        return t("team.attempts.none", lang)
    lines = [t("team.attempts.title", lang)]
    for item in items:
        lines.append(
            t(
                "team.attempts.row",
                lang,
                at=when(item.at, tz, lang),
                who=who(item.name, item.username),
                telegram_id=item.telegram_id,
            )
        )
    return "\n".join(lines)


def back_to_team(lang: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[_back(lang)]])


def invite_roles(roles: Sequence[str], lang: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for role in roles:
        index = ROLES.index(Role(role))
        kb.add(button(t(f"role.{role}", lang), InviteCb(role=index)))
    kb.adjust(2)
    return kb.as_markup()


def invite_link(username: str, token: str) -> str:
    return deep_link(username, token)


def invite_text(invite: InviteInfo, link: str, lang: str, tz: tzinfo) -> str:
    return t(
        "team.invite.link",
        lang,
        role=t(f"role.{invite.role}", lang),
        link=escape(link),
        expires=when(invite.expires_at, tz, lang),
    )


# --- days off (issue 26) --------------------------------------------------------------------


def day_off_text(board: DayOffBoard, lang: str) -> str:
    lines = [t("team.dayoff.head", lang)]
    if board.days_off:
        lines += [f"• {fmt.day(d, lang)}: {escape(name)}" for d, _, name in board.days_off]
    else:
        lines.append(t("team.dayoff.none", lang))
    return "\n".join(lines)


def day_off_keyboard(board: DayOffBoard, lang: str) -> InlineKeyboardMarkup:
    """Per manager: today and tomorrow, each a toggle (🏖 when off)."""
    days = (board.today, board.today + timedelta(days=1))
    rows: list[list[InlineKeyboardButton]] = []
    for employee_id, name in board.managers:
        rows.append(
            [
                button(
                    ("🏖 " if board.is_off(employee_id, day) else "")
                    + t(f"team.dayoff.{which}", lang, name=name),
                    TeamCb(
                        action=TeamAction.DAY_OFF, employee_id=employee_id, value=day.toordinal()
                    ),
                )
                for which, day in zip(("today", "tomorrow"), days, strict=True)
            ]
        )
    return InlineKeyboardMarkup(inline_keyboard=rows)
