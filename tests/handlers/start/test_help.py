"""/help per role through the real dispatcher, and first admins named from their profile."""

from __future__ import annotations

import logging

import pytest
from aiogram.types import User

from bot.app import prepare
from handlers.ui.commands import COMMANDS, commands_for
from handlers.ui.i18n import LANGUAGES, catalog, t
from storage.enums import Role
from tests.tg import make_settings, tg_user

# What each role's /help must offer (and nothing it may not use).
EXPECTED = {
    Role.ADMIN: {"invite", "team", "deals", "funnel", "lead"},
    Role.LEADER: {"funnel", "export", "deals", "receivables"},
    Role.MANAGER: {"lead", "deals", "search", "task", "receivables"},
    Role.HEAD_MEASURER: {"tasks", "task"},
    Role.MEASURER: {"tasks"},
    Role.HEAD_INSTALLER: {"tasks"},
    Role.INSTALLER: {"tasks"},
}
NEVER = {
    Role.LEADER: {"invite", "team"},
    Role.MANAGER: {"invite", "team"},
    Role.HEAD_MEASURER: {"invite", "team", "deals", "funnel", "lead"},
    Role.MEASURER: {"invite", "team", "deals", "funnel", "lead", "task"},
    Role.HEAD_INSTALLER: {"invite", "team", "deals", "lead", "receivables", "export"},
    # An installer sees no money: no deals, no receivables, no reports.
    Role.INSTALLER: {"invite", "team", "deals", "funnel", "lead", "task", "receivables", "export"},
}


def commands_in(text: str) -> set[str]:
    return {line.split()[0][1:] for line in text.splitlines() if line.startswith("/")}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_role_has_a_help_paragraph(lang):
    assert [r for r in Role if f"help.role.{r}" not in catalog(lang)] == []
    assert ("help", None) in COMMANDS  # in every staff member's command menu


@pytest.mark.parametrize("role", list(Role))
async def test_help_says_what_this_role_can_do(harness, make_actor, role):
    person = await make_actor(roles=(role.value,), name="Вера", telegram_id=7100)
    sent = await harness.send(tg_user(7100, "Вера"), "/help")
    text = sent.last.text
    assert text.splitlines()[0] == t("help.title", "ru", name="Вера", roles=t(f"role.{role}", "ru"))
    assert t(f"help.role.{role}", "ru") in text
    others = [r for r in Role if r != role]
    assert not any(t(f"help.role.{r}", "ru") in text for r in others)
    shown = commands_in(text)
    assert shown == {c.command for c in commands_for(person.roles, "ru")}
    assert EXPECTED[role] <= shown and not NEVER.get(role, set()) & shown
    assert "help" in shown and "menu" in shown


async def test_help_in_english_for_two_roles(harness, make_actor):
    await make_actor(roles=("leader", "admin"), name="Lee", telegram_id=7200, language="en")
    text = (await harness.send(tg_user(7200, "Lee"), "/help")).last.text
    assert text.startswith("ℹ️ <b>Lee</b>, your role: admin, leader.")
    assert t("help.role.admin", "en") in text and t("help.role.leader", "en") in text
    assert "/invite — Invite a colleague" in text and "/export — Export deals to Excel" in text


async def test_help_for_a_stranger_says_how_to_get_in(harness, db_snapshot, caplog):
    caplog.set_level(logging.INFO, logger="handlers.start.router")
    before = await db_snapshot()
    sent = await harness.send(tg_user(7300, "Гость"), "/help")
    assert sent.texts == [t("access.denied", "ru")]
    # the log tells the owner the id to put in ADMIN_IDS (README, "Your Telegram id")
    assert "refused Гость (Telegram id 7300)" in caplog.text and "ADMIN_IDS" in caplog.text
    after = await db_snapshot()
    logged = ("access_attempts", "processed_updates")  # the attempt is recorded, nothing else
    assert {k: v for k, v in after.items() if k not in logged} == {
        k: v for k, v in before.items() if k not in logged
    }


async def test_a_first_admin_is_named_from_their_telegram_profile(
    harness, db_url, clock, uow_factory
):
    engine, _ = await prepare(make_settings(db_url, admin_ids="9001"), clock, migrated=True)
    await engine.dispose()  # the start-up path: ADMIN_IDS become admins "Admin 9001"
    async with uow_factory() as uow:
        assert (await uow.repo.employees.by_telegram_id(9001)).name == "Admin 9001"

    olga = User(
        id=9001,
        is_bot=False,
        first_name="Ольга",
        last_name="Петрова",
        username="olga",
        language_code="ru",
    )
    text = (await harness.send(olga, "/help")).last.text
    assert text.startswith("ℹ️ <b>Ольга Петрова</b>, ваша роль: администратор.")
    async with uow_factory() as uow:
        emp = await uow.repo.employees.by_telegram_id(9001)
    assert (emp.name, emp.username) == ("Ольга Петрова", "olga")
    team = await harness.send(olga, "/team")
    assert "Ольга Петрова" in team.last.text and "Admin 9001" not in team.last.text

    # Later renames are theirs: a new Telegram name does not overwrite the stored one.
    await harness.send(tg_user(9001, "Оля"), "/menu")
    async with uow_factory() as uow:
        assert (await uow.repo.employees.by_telegram_id(9001)).name == "Ольга Петрова"
