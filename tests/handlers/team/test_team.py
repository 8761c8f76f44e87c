"""Access and the team screens through the real dispatcher: invites (one-time, expiring,
bound to a role), /team (staff, role toggles, deactivation), access attempts, and the
per-role, per-language commands menus."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiogram.methods import (
    AnswerCallbackQuery,
    DeleteMyCommands,
    EditMessageText,
    GetMe,
    SendMessage,
    SetMyCommands,
)
from aiogram.types import BotCommandScopeChat, BotCommandScopeDefault
from sqlalchemy import select

from bot.app import prepare
from handlers.ui.callbacks import (
    DealAction,
    DealCb,
    InviteCb,
    LangCb,
    MenuAction,
    MenuCb,
    TeamAction,
    TeamCb,
)
from handlers.ui.commands import commands_for, set_commands
from handlers.ui.i18n import t
from services.errors import RuleViolation
from services.sales import deals
from services.team import staff as team
from storage.enums import Role
from storage.models import AccessAttempt
from tests.factories import new_deal
from tests.tg import make_settings, tg_user

LINK = re.compile(r"https://t\.me/voronka_test_bot\?start=([A-Za-z0-9_-]{16,64})")
ROLE_LABELS = [
    "администратор",
    "руководитель",
    "менеджер",
    "руководитель замерщиков",
    "замерщик",
    "руководитель монтажа",
    "монтажник",
]

DENIED = "⚠️ Нет доступа."
NOT_FOUND = "⚠️ Приглашение не найдено. Попросите администратора новую ссылку."
USED = "⚠️ Это приглашение уже использовано. Попросите новое."
EXPIRED = "⚠️ Срок приглашения истёк. Попросите новое."
STRANGER = t("access.denied", "ru")


def ttl_hours(harness) -> int:
    return harness.dp["settings"].invite_ttl_hours


def exact(sent, label: str) -> str:
    """The callback data of the button labelled exactly `label`."""
    (data,) = [d for text, d in sent.buttons() if text == label]
    return data


async def make_invite(harness, admin_user, role_label: str) -> str:
    picker = await harness.send(admin_user, "/invite")
    made = await harness.tap(admin_user, exact(picker, role_label), picker)
    found = LINK.search(made.last.text)
    assert found, made.last.text
    return found.group(1)


def commands_sent(sent, chat_id: int) -> list[SetMyCommands]:
    return [
        r
        for r in sent.of(SetMyCommands)
        if isinstance(r.scope, BotCommandScopeChat) and r.scope.chat_id == chat_id
    ]


def without(snapshot: dict[str, Any], *tables: str) -> dict[str, Any]:
    return {k: v for k, v in snapshot.items() if k not in tables}


# --- invites ------------------------------------------------------------------------------


async def test_first_admin_from_admin_ids_invites_a_manager(harness, db_url, uow_factory, clock):
    engine, _ = await prepare(make_settings(db_url, admin_ids="9001"), clock, migrated=True)
    await engine.dispose()  # the start-up path: ADMIN_IDS become active admins
    admin = tg_user(9001, "Ольга")

    picker = await harness.send(admin, "/invite")
    assert picker.last.text == "Кого приглашаем? Выберите роль:"
    assert picker.buttons() == [
        (label, InviteCb(role=i).pack()) for i, label in enumerate(ROLE_LABELS)
    ]
    made = await harness.tap(admin, exact(picker, "менеджер"), picker)
    edit = made.last
    assert isinstance(edit, EditMessageText) and edit.message_id == picker.message.message_id
    assert made.of(GetMe)  # the link names the bot as Telegram knows it
    assert edit.text is not None
    link = LINK.search(edit.text)
    assert link is not None, edit.text
    token = link.group(1)
    assert "<b>менеджер</b>" in edit.text
    assert "15.01.2026 12:00" in edit.text  # 09:00 UTC + 72 h, shown in Moscow time
    async with uow_factory() as uow:
        invite = await uow.repo.team.invite_by_token(token)
    assert invite.role == "manager" and invite.used_at is None

    clock.advance(hours=ttl_hours(harness) - 1)  # still valid an hour before it expires
    newcomer = tg_user(5555, "Пётр", username="petr")
    joined = await harness.send(newcomer, f"/start {token}")
    assert joined.texts[0] == "Добро пожаловать, Пётр! Ваша роль: менеджер."
    assert joined.texts[1] == "Главное меню"
    (menu,) = commands_sent(joined, 5555)  # the manager's commands menu, in Russian
    assert menu.commands == commands_for(frozenset({Role.MANAGER}), "ru")
    assert "deals" in {c.command for c in menu.commands}
    assert not {"invite", "team"} & {c.command for c in menu.commands}
    async with uow_factory() as uow:
        emp = await uow.repo.employees.by_telegram_id(5555)
        invite = await uow.repo.team.invite_by_token(token)
    assert emp.roles == ["manager"] and emp.active and emp.username == "petr"
    assert invite.used_by_id == emp.id and invite.used_at == clock.now()
    again = await harness.send(newcomer, "/menu")
    assert again.last.text == "Главное меню"


async def test_an_invite_works_once(harness, make_actor, db_snapshot):
    admin = await make_actor(roles=("admin",))
    token = await make_invite(harness, tg_user(admin.telegram_id), "замерщик")
    first = await harness.send(tg_user(6001, "Иван"), f"/start {token}")
    assert "Ваша роль: замерщик" in first.texts[0]

    before = await db_snapshot()
    for user in (tg_user(6002, "Мэллори"), tg_user(6001, "Иван")):  # a stranger, the holder
        reused = await harness.send(user, f"/start {token}")
        assert reused.texts == [USED]
    assert await db_snapshot() == before
    assert (await harness.send(tg_user(6002), "/menu")).texts == [STRANGER]


async def test_an_expired_invite_is_refused(harness, make_actor, clock, uow_factory, db_snapshot):
    admin = await make_actor(roles=("admin",))
    token = await make_invite(harness, tg_user(admin.telegram_id), "менеджер")
    clock.advance(hours=ttl_hours(harness), minutes=1)
    before = await db_snapshot()
    late = await harness.send(tg_user(6003, "Поздний"), f"/start {token}")
    assert late.texts == [EXPIRED]
    assert await db_snapshot() == before
    async with uow_factory() as uow:
        assert await uow.repo.employees.by_telegram_id(6003) is None


@pytest.mark.parametrize(
    "token",
    [
        "AAAAAAAAAAAAAAAAAAAAAAAA",  # the right shape, not issued
        "x",
        "../../etc/passwd",
        "A" * 65,
    ],
)
async def test_a_wrong_token_is_refused(harness, make_actor, token, db_snapshot):
    admin = await make_actor(roles=("admin",))
    real = await make_invite(harness, tg_user(admin.telegram_id), "менеджер")
    assert token != real
    before = await db_snapshot()
    refused = await harness.send(tg_user(6004, "Гость"), f"/start {token}")
    assert refused.texts == [NOT_FOUND]
    assert await db_snapshot() == before


# --- deactivation -------------------------------------------------------------------------


async def test_a_deactivated_employee_loses_access_at_once(
    harness, make_actor, uow_factory, db_snapshot
):
    admin = await make_actor(roles=("admin",), name="Ольга")
    ann = await make_actor(roles=("manager",), name="Анна")
    deal = await new_deal(uow_factory, ann, amount="1000")
    boss, user = tg_user(admin.telegram_id), tg_user(ann.telegram_id)
    card = await harness.send(user, f"/deal {deal.id}")  # Ann has her card open

    listing = await harness.send(boss, "/team")
    shown = await harness.tap(boss, listing.button("Анна"), listing)
    assert "Статус: 🟢 активен" in shown.last.text
    off = await harness.tap(boss, shown.button("Отключить доступ"), listing)
    assert "Статус: ⛔ доступ отключён" in off.last.text
    assert (
        "✅ Вернуть доступ",
        TeamCb(action=TeamAction.ACTIVE, employee_id=ann.id, value=1).pack(),
    ) in off.buttons()
    (removed,) = off.of(DeleteMyCommands)
    assert removed.scope == BotCommandScopeChat(chat_id=ann.telegram_id)

    before = await db_snapshot()
    typed = await harness.send(user, "/menu")
    assert typed.texts == [STRANGER]
    tapped = await harness.tap(user, card.button("▶"), card)  # her own deal, current version
    assert tapped.alert == STRANGER and not tapped.of(EditMessageText)
    again = await harness.send(user, "/deal 1")
    assert again.texts == [STRANGER]
    after = await db_snapshot()
    # Nothing changed but the access attempt an admin can see (one per person per hour),
    # committed with its update id.
    ignored = ("access_attempts", "processed_updates")
    assert without(after, *ignored) == without(before, *ignored)
    async with uow_factory() as uow:
        attempts = (await uow.session.scalars(select(AccessAttempt))).all()
        assert [a.telegram_id for a in attempts] == [ann.telegram_id]
        assert (await deals.get_card(uow, admin, deal.id)).stage.code == "data_collection"

    token = await make_invite(harness, boss, "руководитель")  # a new invite does not help
    assert (await harness.send(user, f"/start {token}")).texts == [
        "⚠️ Ваш доступ отключён. Обратитесь к администратору."
    ]

    back = await harness.tap(boss, off.button("Вернуть доступ"), listing)
    assert "Статус: 🟢 активен" in back.last.text
    assert commands_sent(back, ann.telegram_id)
    assert (await harness.send(user, "/menu")).last.text == "Главное меню"


# --- the team screens ---------------------------------------------------------------------


async def test_team_lists_staff_and_toggles_roles(harness, make_actor, uow_factory, db_snapshot):
    admin = await make_actor(roles=("admin",), name="Ольга")
    ann = await make_actor(roles=("manager",), name="Анна", username="ann")
    bob = await make_actor(roles=("measurer",), name="Борис <b>")
    boss = tg_user(admin.telegram_id)

    listing = await harness.send(boss, "/team")
    text = listing.last.text
    assert "👥 <b>Команда</b> (3):" in text
    assert "🟢 Ольга — администратор" in text
    assert "🟢 Анна @ann — менеджер" in text
    assert "🟢 Борис &lt;b&gt; — замерщик" in text  # names are escaped (HTML parse mode)
    assert listing.button("Анна") == TeamCb(action=TeamAction.OPEN, employee_id=ann.id).pack()
    assert "Попытки входа" in [b for b, _ in listing.buttons()][-2]

    card = await harness.tap(boss, listing.button("Анна"), listing)
    assert "Роли: менеджер" in card.last.text
    assert [b for b, _ in card.buttons()][:5] == [
        "▫️ администратор", "▫️ руководитель", "✅ менеджер",
        "▫️ руководитель замерщиков", "▫️ замерщик",
    ]  # fmt: skip
    promoted = await harness.tap(boss, card.button("▫️ администратор"), listing)
    assert "Роли: администратор, менеджер" in promoted.last.text
    (menu,) = commands_sent(promoted, ann.telegram_id)  # her commands menu follows her roles
    assert {"invite", "team"} <= {c.command for c in menu.commands}
    demoted = await harness.tap(boss, promoted.button("✅ администратор"), listing)
    assert "Роли: менеджер" in demoted.last.text
    (menu,) = commands_sent(demoted, ann.telegram_id)
    assert not {"invite", "team"} & {c.command for c in menu.commands}
    async with uow_factory() as uow:
        assert (await uow.repo.employees.by_telegram_id(ann.telegram_id)).roles == ["manager"]

    before = await db_snapshot()
    own = TeamCb(action=TeamAction.ROLE, employee_id=admin.id, value=0)  # admin off herself
    refused = await harness.tap(boss, own, listing)
    assert refused.alert == "⚠️ Нельзя снять роль администратора с себя."
    only = TeamCb(action=TeamAction.ROLE, employee_id=bob.id, value=4)  # Boris's only role
    assert (await harness.tap(boss, only, listing)).alert == (
        "⚠️ У сотрудника должна остаться хотя бы одна роль."
    )
    self_off = TeamCb(action=TeamAction.ACTIVE, employee_id=admin.id, value=0)
    assert (await harness.tap(boss, self_off, listing)).alert == "⚠️ Нельзя отключить самого себя."
    assert await db_snapshot() == before

    back = await harness.tap(boss, card.button("Назад"), listing)
    assert "👥 <b>Команда</b> (3):" in back.last.text


@pytest.mark.parametrize("role", ["manager", "leader", "head_measurer", "measurer"])
async def test_only_admins_manage_the_team(harness, make_actor, role, db_snapshot):
    await make_actor(roles=("admin",))
    other = await make_actor(roles=("manager",))
    me = await make_actor(roles=(role,))
    user = tg_user(me.telegram_id)
    before = await db_snapshot()
    for command in ("/team", "/invite"):
        assert (await harness.send(user, command)).texts == [DENIED]
    for data in (
        MenuCb(action=MenuAction.TEAM),
        MenuCb(action=MenuAction.INVITE),
        TeamCb(action=TeamAction.LIST),
        TeamCb(action=TeamAction.ATTEMPTS),
        TeamCb(action=TeamAction.OPEN, employee_id=other.id),
        TeamCb(action=TeamAction.ROLE, employee_id=me.id, value=0),  # make myself admin
        TeamCb(action=TeamAction.ACTIVE, employee_id=other.id, value=0),
        InviteCb(role=0),
    ):
        tapped = await harness.tap(user, data)
        assert tapped.alert == DENIED, data
        assert tapped.of(AnswerCallbackQuery)[0].show_alert
        assert not tapped.of(SendMessage) and not tapped.of(EditMessageText)
    assert await db_snapshot() == before


async def test_admin_sees_access_attempts(harness, make_actor, uow_factory, clock):
    admin = await make_actor(roles=("admin",))
    boss = tg_user(admin.telegram_id)
    listing = await harness.send(boss, "/team")
    empty = await harness.tap(boss, listing.button("Попытки входа"), listing)
    assert empty.last.text == "🚪 Без приглашения никто не писал."

    mallory = tg_user(777, "Mallory", lang="en", username="mal")
    assert (await harness.send(mallory, "hello")).texts == [t("access.denied", "en")]
    await harness.tap(mallory, DealCb(action=DealAction.NEXT, deal_id=1, v=1))
    clock.advance(minutes=5)
    await harness.send(tg_user(778, "Eve"), "/start")

    seen = await harness.tap(boss, listing.button("Попытки входа"), listing)
    lines = seen.last.text.splitlines()
    assert lines[0] == "🚪 <b>Писали без приглашения</b> (последние):"
    assert lines[1:] == [  # newest first; Mallory's two tries are one row (per hour)
        "12.01.2026 12:05 — Eve · ID 778",
        "12.01.2026 12:00 — Mallory @mal · ID 777",
    ]
    async with uow_factory() as uow:
        texts = (await uow.session.scalars(select(AccessAttempt.text))).all()
    assert sorted(texts) == ["/start", "hello"]


# --- commands menus -----------------------------------------------------------------------


async def test_commands_menu_per_role_and_language(harness, make_actor):
    manager = await make_actor(roles=("manager",))
    admin = await make_actor(roles=("admin",), language="en")
    measurer = await make_actor(roles=("measurer",))
    await set_commands(harness.bot, harness.dp["uow_factory"])
    sent = harness.session.requests
    defaults = [
        r
        for r in sent
        if isinstance(r, SetMyCommands) and isinstance(r.scope, BotCommandScopeDefault)
    ]
    assert {(r.language_code, r.commands[0].description) for r in defaults} == {
        (None, "Начать"),
        ("en", "Start"),
    }

    def menu_of(actor) -> list[tuple[str, str]]:
        (req,) = [
            r
            for r in sent
            if isinstance(r, SetMyCommands)
            and r.scope == BotCommandScopeChat(chat_id=actor.telegram_id)
        ]
        return [(c.command, c.description) for c in req.commands]

    mine, theirs = menu_of(manager), menu_of(admin)
    assert [c for c, _ in mine] != [c for c, _ in theirs]
    assert {"invite", "team"} <= {c for c, _ in theirs} and not {"invite", "team"} & {
        c for c, _ in mine
    }
    assert not {"deals", "invite", "team"} & {c for c, _ in menu_of(measurer)}
    assert dict(mine)["deals"] == "Мои сделки"
    assert dict(theirs)["deals"] == t("cmd.deals", "en") != t("cmd.deals", "ru")
    assert all(desc == t(f"cmd.{cmd}", "en") for cmd, desc in theirs)


async def test_switching_to_english_resends_the_commands_menu(harness, make_actor):
    ann = await make_actor(roles=("manager",))
    switched = await harness.tap(tg_user(ann.telegram_id), LangCb(lang="en"))
    (menu,) = commands_sent(switched, ann.telegram_id)
    assert [(c.command, c.description) for c in menu.commands][:3] == [
        ("menu", t("cmd.menu", "en")),
        ("lead", t("cmd.lead", "en")),
        ("deals", t("cmd.deals", "en")),
    ]


async def test_an_invite_opened_twice_at_once_registers_one_person(
    backend, make_actor, uow_factory
):
    """Two people open the same link at the same moment: both read it unused, one wins.
    (Service level: the race is between the read and the commit.)"""
    if backend == "sqlite":
        pytest.skip("SQLite takes the write lock at BEGIN IMMEDIATE: the two cannot overlap")
    admin = await make_actor(roles=("admin",))
    async with uow_factory() as uow:
        token = (await team.create_invite(uow, admin, "manager")).token

    async with uow_factory() as first:
        read = first.repo.team.invite_by_token

        async def read_then_lose_the_race(value: str):
            invite = await read(value)  # unused, as far as `first` can tell
            async with uow_factory() as second:
                await team.accept_invite(second, 7002, "Второй", None, value)
            return invite

        first.repo.team.invite_by_token = read_then_lose_the_race
        with pytest.raises(RuleViolation):
            await team.accept_invite(first, 7001, "Первый", None, token)
    async with uow_factory() as uow:
        assert await uow.repo.employees.by_telegram_id(7001) is None
        assert (await uow.repo.employees.by_telegram_id(7002)).roles == ["manager"]
