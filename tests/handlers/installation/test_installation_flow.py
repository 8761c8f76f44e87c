"""Installation jobs through the real dispatcher (issue 24): the head picks a crew from the
card the outbox delivered, the installer works the job card; every refusal answers with an
alert and leaves the database as it was (another crew's job, a manager or a measurer
tapping an installer's buttons, Done without the checklist or the photos, the head's
acceptance while money is owed)."""

from __future__ import annotations

import base64

import pytest
from aiogram.types import PhotoSize
from aiohttp import ClientSession

from handlers.ui.callbacks import JobAction, JobCb
from services.work import installation
from storage.enums import TaskKind
from tests.factories import (
    cast,
    deliver,
    open_tasks,
    order_at_installation,
    plain,
    stage_code,
    to,
)
from tests.tg import tg_user
from tests.webapp_kit import auth, serve, sign_init_data

DENIED = "⚠️ Нет доступа."
CHECKS = 6


@pytest.fixture
async def crew(make_actor):
    return await cast(make_actor, "ann", "mia", "ivan", "igor", "ilya")


async def job_on_phone(harness, uow_factory, clock, crew):
    """The head assigns Igor from the delivered card; Igor opens his job: (order, job, card)."""
    _, order_id = await order_at_installation(uow_factory, clock, crew["ann"])
    head_card = to(await deliver(harness, uow_factory, clock), crew["ivan"])
    u_ivan = tg_user(crew["ivan"].telegram_id)
    opened = await harness.tap(u_ivan, head_card.button("Открыть монтаж"), head_card)
    assert "Назначить бригаду" in opened.last.text and "Igor · 0" in str(opened.buttons())
    given = await harness.tap(u_ivan, opened.button("Igor"), opened)
    assert "Назначен Igor" in given.last.text
    [job] = await open_tasks(uow_factory, order_id, TaskKind.INSTALL)
    note = to(await deliver(harness, uow_factory, clock), crew["igor"])
    card = await harness.tap(tg_user(crew["igor"].telegram_id), note.button("Открыть"), note)
    return order_id, job.id, card


async def test_the_job_card_shows_what_the_installer_needs(harness, uow_factory, clock, crew):
    _, _, card = await job_on_phone(harness, uow_factory, clock, crew)
    text = card.last.text
    assert "🔧 Монтаж" in text and "Мира 1" in text and "8 (916)" in text
    assert "🕘 Время:" in text and "📐" not in text  # the job's time, not a measurement
    assert "• Окно кухня" in text and "⬜ Демонтаж" in text and "📷 До: 0 из 1" in text
    assert "₽" not in text  # nothing is owed yet: no money on the installer's card
    assert any(data.startswith("https://yandex.ru/maps/") for _, data in card.buttons())
    assert all(len(line) <= 64 for line in plain(text).splitlines()), plain(text)


async def test_refusals_change_nothing(harness, uow_factory, clock, crew, db_snapshot):
    order_id, job_id, card = await job_on_phone(harness, uow_factory, clock, crew)
    before = await db_snapshot()
    # Another crew's job; a manager and a measurer acting as installers.
    for who in ("ilya", "ann", "mia"):
        user = tg_user(crew[who].telegram_id)
        for action in (JobAction.ACCEPT, JobAction.TICK, JobAction.PHOTOS, JobAction.DONE):
            refused = await harness.tap(user, JobCb(action=action, task_id=job_id))
            assert refused.alert == DENIED, (who, action)
    assert await db_snapshot() == before
    u_igor = tg_user(crew["igor"].telegram_id)
    # Done without the checklist.
    refused = await harness.tap(u_igor, card.button("Готово"), card)
    assert refused.alert.startswith("⚠️ Для «Готово» нужен весь чек-лист. Не отмечено: Демонтаж")
    assert await db_snapshot() == before
    for i in range(CHECKS):
        await harness.tap(u_igor, JobCb(action=JobAction.TICK, task_id=job_id, arg=i), card)
    ticked = await db_snapshot()
    # Done without the photos.
    refused = await harness.tap(u_igor, card.button("Готово"), card)
    assert refused.alert == "⚠️ Для «Готово» нужно фото до работ: 1; прислано: 0."
    assert await db_snapshot() == ticked
    assert await stage_code(uow_factory, order_id) == "installation_scheduled"


async def photo(harness, user, n: str):
    size = PhotoSize(file_id=f"ph-{n}", file_unique_id=f"u-{n}", width=800, height=600)
    return await harness.send_message(user, photo=[size])


async def test_done_signed_then_acceptance_refused_while_money_is_owed(
    harness, uow_factory, clock, crew, db_snapshot
):
    order_id, job_id, card = await job_on_phone(harness, uow_factory, clock, crew)
    u_igor = tg_user(crew["igor"].telegram_id)
    card = await harness.tap(u_igor, card.button("Принять"), card)
    for i in range(CHECKS):
        card = await harness.tap(u_igor, JobCb(action=JobAction.TICK, task_id=job_id, arg=i), card)
    for phase, n in (("До", "b"), ("После", "a")):
        await harness.tap(u_igor, card.button(phase), card)
        got = await photo(harness, u_igor, n)
        assert "из 1" in got.last.text
    card = await harness.tap(u_igor, JobCb(action=JobAction.OPEN, task_id=job_id))
    done = await harness.tap(u_igor, card.button("Готово"), card)
    assert "Подпись клиента" in str(done.buttons())
    assert await stage_code(uow_factory, order_id) == "installed"
    await harness.tap(u_igor, done.button("Подпись"), done)
    saved = await harness.send_message(
        u_igor, photo=[PhotoSize(file_id="sig", file_unique_id="s", width=400, height=200)]
    )
    assert "Подпись сохранена" in saved.last.text
    [check] = await open_tasks(uow_factory, order_id, TaskKind.QUALITY_CHECK)
    before = await db_snapshot()
    u_ivan = tg_user(crew["ivan"].telegram_id)
    refused = await harness.tap(u_ivan, JobCb(action=JobAction.CHECK, task_id=check.id, arg=1))
    assert refused.alert == "⚠️ Заказ нельзя перевести в «Принято клиентом», пока по нему есть долг."
    assert await db_snapshot() == before
    # The installer cannot do the head's check either.
    refused = await harness.tap(u_igor, JobCb(action=JobAction.CHECK, task_id=check.id, arg=1))
    assert refused.alert == DENIED
    async with uow_factory() as uow:
        assert (await installation.view(uow, crew["igor"], job_id)).to_collect == 3_000_000


PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def test_the_signature_drawn_in_the_mini_app(
    harness, db_url, uow_factory, clock, crew, db_snapshot
):
    """POST /app/api/jobs/<task>/signature: another installer, a manager, junk and a job not
    yet done are refused with nothing saved; the installer's own finished job takes it."""
    order_id, job_id, card = await job_on_phone(harness, uow_factory, clock, crew)
    server = await serve(harness, db_url, uow_factory)
    url = f"/app/api/jobs/{job_id}/signature"
    good = {"png": base64.b64encode(PNG_BYTES).decode()}

    def head(who: str):
        return auth(sign_init_data(crew[who].telegram_id, clock.now()))

    try:
        async with ClientSession(base_url=str(server.make_url(""))) as app:
            before = await db_snapshot()
            for who, body, status in (
                ("ilya", good, 403),
                ("ann", good, 403),
                ("igor", {"png": "not base64!"}, 422),
                ("igor", {"png": base64.b64encode(b"GIF89a").decode()}, 422),
                ("igor", good, 422),  # the job is not done yet
            ):
                r = await app.post(url, json=body, headers=head(who))
                assert r.status == status, (who, await r.text())
            assert await db_snapshot() == before
            async with uow_factory() as uow:
                await installation.step(uow, crew["igor"], job_id, "accept")
                for i in range(CHECKS):
                    await installation.tick(uow, crew["igor"], job_id, i)
                for phase in ("before", "after"):
                    await installation.add_photo(uow, crew["igor"], job_id, phase, f"f-{phase}")
                await installation.finish(uow, crew["igor"], job_id)
            r = await app.post(url, json=good, headers=head("igor"))
            assert r.status == 200, await r.text()
            assert (await r.json())["message"].startswith("✍️")
    finally:
        await server.close()
    [check] = await open_tasks(uow_factory, order_id, TaskKind.QUALITY_CHECK)
    async with uow_factory() as uow:
        files = await uow.repo.timeline.files(order_id, 0, 50)
    signature = [a for a in files[0] if (a.payload or {}).get("job") == "signature"]
    assert len(signature) == 1 and signature[0].file_id.startswith("sent-doc-")
    assert check.assignee_role == "head_installer"
