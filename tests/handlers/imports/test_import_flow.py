"""Spreadsheet import through the real dispatcher: document → mapping → dry run → import
with progress → summary, checking the texts, the keyboards and the database at each step."""

from __future__ import annotations

import re

import pytest
from aiogram.methods import EditMessageReplyMarkup, EditMessageText, GetFile, SendMessage
from aiogram.types import Document
from sqlalchemy import select

import handlers.imports.router as import_handlers
from services.intake import imports
from storage.models import Activity, Lead
from storage.models.imports import ImportJob
from storage.repositories.imports import ImportRepo
from tests.factories import count, xlsx
from tests.tg import tg_user

HEADER = ["ФИО", "Телефон", "Email", "Компания", "Источник", "Сумма", "Комментарий"]
ROWS: list[list[object]] = [
    ["Иван Петров", "+7 916 200-00-01", "ivan@example.com", "", "Авито", "150000", "3 окна"],
    ["Мария Смирнова", 89162000002, "", "ООО Ромашка", "", "", ""],
    ["", "+7 916 200-00-03", "", "", "", "", ""],  # row 4: no name
    ["Пётр", "12345", "", "", "", "", ""],  # row 5: bad phone
    ["Олег", "", "oleg@example.com", "", "Сайт", "сто тысяч", ""],  # row 6: bad amount
    ["Иван again", "8 916 200-00-01", "", "", "", "", ""],  # row 7: repeats row 2
    ["Ольга", "", "olga@example.com", "", "", "", ""],
]


async def send_file(harness, user, data: bytes, name: str = "clients.xlsx"):
    file_id = f"file-{len(harness.session.files)}"
    harness.session.files[file_id] = data
    doc = Document(file_id=file_id, file_unique_id=file_id, file_name=name, file_size=len(data))
    return await harness.send_message(user, document=doc)


def visible_lines(html: str) -> list[str]:
    return re.sub(r"<[^>]+>", "", html).replace("&lt;", "<").replace("&gt;", ">").splitlines()


@pytest.fixture
def fast_progress(monkeypatch):
    """One row per chunk and an edit after every chunk, so a small file shows progress."""
    monkeypatch.setattr(imports, "INSERT_CHUNK", 1)
    monkeypatch.setattr(import_handlers, "PROGRESS_ROWS", 1)
    monkeypatch.setattr(import_handlers, "PROGRESS_MIN_GAP", 0.0)


async def test_document_to_summary(harness, make_actor, uow_factory, db_snapshot, fast_progress):
    boss = await make_actor(roles=("leader",), name="Босс")
    user = tg_user(boss.telegram_id)

    # 1. The file: columns detected, a mapping proposed with buttons.
    shown = await send_file(harness, user, xlsx([HEADER, *ROWS]))
    assert shown.of(GetFile), "the bot downloads the document"
    mapping = shown.last
    assert isinstance(mapping, SendMessage)
    assert "clients.xlsx" in mapping.text and "Строк с данными: 7" in mapping.text
    assert "1. ФИО → Имя" in mapping.text and "«Иван Петров»" in mapping.text
    assert "2. Телефон → Телефон" in mapping.text and "«+7 916 200-00-01»" in mapping.text
    labels = [text for text, _ in shown.buttons()]
    assert labels[:7] == [
        "1. ФИО → Имя",
        "2. Телефон → Телефон",
        "3. Email → Email",
        "4. Компания → Компания",
        "5. Источник → Источник",
        "6. Сумма → Сумма",
        "7. Комментарий → Комментарий",
    ]
    assert labels[7:] == ["🔎 Проверить", "✖ Отмена"]

    # 2. Change a column's target with buttons (and back).
    picker = await harness.tap(user, shown.button("7. Комментарий"), shown)
    assert "Столбец 7 «Комментарий» — куда?" in picker.last.text
    assert "• 📝 Комментарий" in [text for text, _ in picker.buttons()]
    skipped = await harness.tap(user, picker.button("Не загружать"), shown)
    assert isinstance(skipped.last, EditMessageText)
    assert "7. Комментарий → —" in skipped.text
    picker = await harness.tap(user, skipped.button("7. Комментарий"), shown)
    back = await harness.tap(user, picker.button("📝 Комментарий"), shown)
    assert "7. Комментарий → Комментарий" in back.last.text

    # 3. Dry run: broken rows reported with row number and reason; nothing imported.
    before = await db_snapshot()
    report = await harness.tap(user, back.button("Проверить"), shown)
    text = report.last.text
    assert "✅ К импорту: 3" in text and "❌ С ошибками: 3" in text and "👥 Дубликаты: 1" in text
    assert "стр. 4: нет имени" in text
    assert "стр. 5: неверный телефон" in text
    assert "стр. 6: сумма — не число" in text
    assert "стр. 7: повтор стр. 2" in text
    assert "будут пропущены" in text
    assert all(len(line) <= 40 for line in visible_lines(text)), visible_lines(text)
    assert [t for t, _ in report.buttons()] == ["⬆️ Импортировать 3", "✏️ Столбцы", "✖ Отмена"]
    after = await db_snapshot()
    after.pop("import_jobs"), before.pop("import_jobs")  # the job itself
    assert after == before
    assert await count(uow_factory, Lead) == 0

    # 4. Import: a progress message edited as it goes, then the summary.
    done = await harness.tap(user, report.button("Импортировать"), shown)
    progress = done.of(SendMessage)
    assert [m.text for m in progress] == ["⏳ Импорт: 0 из 3…"]
    progress_id = done.results[done.requests.index(progress[0])].message_id
    edits = [e.text for e in done.of(EditMessageText) if e.message_id == progress_id]
    # Edits run beside the import (it never waits on Telegram); each shows a later count.
    assert edits[0] == "⏳ Импорт: 1 из 3…"
    assert edits[1:-1] in ([], ["⏳ Импорт: 2 из 3…"])
    summary = edits[-1]
    assert "✅ Импорт завершён" in summary and "Добавлено лидов: 3" in summary
    assert "Пропущено с ошибками: 3" in summary and "Пропущено дубликатов: 1" in summary
    assert "Время:" in summary
    (cleared,) = done.of(EditMessageReplyMarkup)  # the report's buttons are gone
    assert cleared.message_id == shown.message.message_id and cleared.reply_markup is None
    assert done.alert is None
    async with uow_factory() as uow:
        leads = (await uow.session.scalars(select(Lead).order_by(Lead.id))).all()
    assert [(x.name, x.phone, x.email) for x in leads] == [
        ("Иван Петров", "+79162000001", "ivan@example.com"),
        ("Мария Смирнова", "+79162000002", None),
        ("Ольга", None, "olga@example.com"),
    ]
    assert {x.source for x in leads} == {"import"} and {x.manager_id for x in leads} == {None}
    # each lead's timeline says where it came from (issue 12)
    async with uow_factory() as uow:
        intake = (
            await uow.session.scalars(
                select(Activity).where(Activity.kind == "intake").order_by(Activity.lead_id)
            )
        ).all()
    assert [(a.lead_id, a.payload["source"]) for a in intake] == [(x.id, "import") for x in leads]
    assert {a.payload["file"] for a in intake} == {"clients.xlsx"}

    # 5. The same Import button again: refused, nothing added.
    again = await harness.tap(user, report.button("Импортировать"), shown)
    assert "уже импортирован" in again.alert
    assert not again.of(SendMessage)
    assert await count(uow_factory, Lead) == 3


async def test_a_failed_progress_edit_does_not_stop_the_import(
    harness, make_actor, uow_factory, fast_progress
):
    boss = await make_actor(roles=("admin",))
    user = tg_user(boss.telegram_id)
    shown = await send_file(harness, user, xlsx([HEADER, *ROWS]))
    report = await harness.tap(user, shown.button("Проверить"), shown)
    harness.session.fail_next(
        EditMessageText, 429, "Too Many Requests: retry after 5", retry_after=5
    )
    done = await harness.tap(user, report.button("Импортировать"), shown)
    failed_edit = done.of(EditMessageText)[0]
    assert failed_edit.text == "⏳ Импорт: 1 из 3…"  # answered 429, skipped
    assert isinstance(done.last, EditMessageText) and "Добавлено лидов: 3" in done.text
    assert await count(uow_factory, Lead) == 3


async def test_cancel_leaves_nothing(harness, make_actor, uow_factory):
    boss = await make_actor(roles=("leader",))
    user = tg_user(boss.telegram_id)
    shown = await send_file(harness, user, xlsx([HEADER, *ROWS]), "a.xlsx")
    report = await harness.tap(user, shown.button("Проверить"), shown)
    cancelled = await harness.tap(user, report.button("Отмена"), shown)
    assert "Импорт «a.xlsx» отменён" in cancelled.last.text and cancelled.buttons() == []
    late = await harness.tap(user, report.button("Импортировать"), shown)
    assert "закрыт" in late.alert
    assert await count(uow_factory, Lead) == 0


@pytest.mark.parametrize("roles", [("manager",), ("measurer",)])
async def test_managers_and_measurers_are_refused(
    harness, make_actor, uow_factory, db_snapshot, roles
):
    someone = await make_actor(roles=roles)
    before = await db_snapshot()
    sent = await send_file(harness, tg_user(someone.telegram_id), xlsx([HEADER, *ROWS]))
    assert sent.last.text == "⚠️ Нет доступа."
    assert not sent.of(GetFile)  # refused before downloading anything
    after = await db_snapshot()
    after.pop("processed_updates", None), before.pop("processed_updates", None)
    assert after == before


async def test_someone_elses_import_buttons_are_refused(harness, make_actor, uow_factory):
    boss = await make_actor(roles=("leader",))
    other = await make_actor(roles=("admin",), name="Other")
    shown = await send_file(harness, tg_user(boss.telegram_id), xlsx([HEADER, *ROWS]))
    forged = await harness.tap(tg_user(other.telegram_id), shown.button("Проверить"), shown)
    assert "Импорт не найден" in forged.alert
    async with uow_factory() as uow:
        job = (await uow.session.scalars(select(ImportJob))).one()
    assert job.status == "mapping" and job.stats == {}


async def test_a_file_that_is_not_a_spreadsheet(harness, make_actor):
    boss = await make_actor(roles=("leader",))
    user = tg_user(boss.telegram_id)
    sent = await send_file(harness, user, b"%PDF-1.4", "offer.pdf")
    assert "xlsx" in sent.last.text and not sent.of(GetFile)
    broken = await send_file(harness, user, b"PK\x03\x04 broken", "clients.xlsx")
    assert "Не удалось прочитать файл" in broken.last.text


async def test_a_mapping_without_a_contact_column_cannot_be_checked(harness, make_actor):
    boss = await make_actor(roles=("leader",))
    user = tg_user(boss.telegram_id)
    shown = await send_file(harness, user, xlsx([["Имя", "Город"], ["Иван", "Москва"]]))
    assert "Нужны: имя и телефон или email." in shown.last.text
    assert [t for t, _ in shown.buttons()] == ["1. Имя → Имя", "2. Город → —", "✖ Отмена"]


async def test_an_import_that_fails_midway_adds_nothing_and_says_so(
    harness, make_actor, uow_factory, db_snapshot, fast_progress, monkeypatch
):
    boss = await make_actor(roles=("leader",))
    user = tg_user(boss.telegram_id)
    shown = await send_file(harness, user, xlsx([HEADER, *ROWS]))
    report = await harness.tap(user, shown.button("Проверить"), shown)
    real_reserve = ImportRepo.reserve_lead_ids
    calls = []

    async def failing_reserve(repo, n):
        calls.append(n)
        if len(calls) == 2:  # the first chunk is already in the database
            raise RuntimeError("disk full")
        return await real_reserve(repo, n)

    monkeypatch.setattr(ImportRepo, "reserve_lead_ids", failing_reserve)
    before = await db_snapshot()
    failed = await harness.tap(user, report.button("Импортировать"), shown)
    assert calls == [1, 1]
    assert "Импорт прерван — ничего\nне добавлено" in failed.of(EditMessageText)[-1].text
    assert failed.alert  # the error router's apology
    assert await db_snapshot() == before  # not even the update id: it may be retried
    assert await count(uow_factory, Lead) == 0
