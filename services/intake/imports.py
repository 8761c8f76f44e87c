"""Spreadsheet import of leads: upload → column mapping → dry run → import.

Each step is its own call, possibly on another worker, so the state lives in one
``import_jobs`` row (storage/models/imports.py): the upload parses the file once and keeps
its rows (compressed JSON); the dry run validates every row with the same rules as a lead
typed into the bot (``services.leads.clean``), finds duplicates, and keeps the rows it would
import; the import re-checks those rows against clients added since, then inserts leads and
their first history rows with bulk Core inserts (storage/repositories/imports.py), chunk
by chunk, in ONE transaction: an error anywhere (or a failed commit) leaves the database as
it was.

Which rows are imported: valid rows that are not duplicates. A row is a duplicate when its
phone or email belongs to an existing contact or open lead, or to an earlier row of the
same file. Duplicates and invalid rows are reported and skipped.

Parsing and validating 50,000 rows is CPU work: it runs in a worker thread so the bot's
event loop keeps answering other people meanwhile.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import zlib
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from pathlib import PurePath
from typing import Any, TypeVar

import charset_normalizer

from services.common import commit, load
from services.errors import NotFound, RuleViolation, ValidationError
from services.permissions import Action, Actor, require
from services.sales.leads import CleanLead, LeadInput, clean
from services.sales.pipelines import rules_by_role
from services.team import distribution
from storage.enums import LeadSource, LeadStatus, Role
from storage.models.imports import OPEN_STATUSES, ImportJob, ImportStatus
from storage.uow import UnitOfWork

MAX_BYTES = 20 * 1024 * 1024  # what a bot may download from Telegram
MAX_ROWS = 100_000
MAX_COLUMNS = 40
MAX_CELL = 5000  # longer cells are cut (validation then reports them as too long)
REPORT_SAMPLE = 10  # invalid rows and duplicates listed in a report
IN_CHUNK = 5000  # values per IN (...) list when looking for existing clients
INSERT_CHUNK = 1000  # rows per bulk insert (and per progress report)
EXPIRE_AFTER = timedelta(days=2)  # an upload left unfinished this long loses its rows

ProgressFn = Callable[[int, int], Awaitable[None]]
T = TypeVar("T")


class Target(StrEnum):
    """Where a column goes. The order is the order of the buttons (callback data holds the
    index into TARGETS)."""

    NAME = "name"
    PHONE = "phone"
    EMAIL = "email"
    COMPANY = "company"
    SOURCE = "source"
    AMOUNT = "amount"
    COMMENT = "comment"
    SKIP = "skip"


TARGETS: tuple[Target, ...] = tuple(Target)
REQUIRED = (Target.NAME,)  # plus a phone or an email: ONE_OF
ONE_OF = (Target.PHONE, Target.EMAIL)

# services.leads.clean names its fields after the lead; a report names the column's target.
_FIELD_TARGET = {
    "name": Target.NAME,
    "phone": Target.PHONE,
    "email": Target.EMAIL,
    "company_name": Target.COMPANY,
    "amount": Target.AMOUNT,
    "need": Target.COMMENT,
    "source": Target.SOURCE,
}


def target_of(index: int) -> Target:
    """The target at a button's index (callback data is client input)."""
    if not 0 <= index < len(TARGETS):
        raise ValidationError("target", "unknown")
    return TARGETS[index]


# --- DTOs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    index: int
    header: str
    sample: str
    target: Target


@dataclass(frozen=True)
class RowIssue:
    row: int  # the row number a spreadsheet program shows (the header is row 1)
    field: str  # a Target value
    code: str  # the ValidationError code (invalid, empty, too_long, not_a_number...)


@dataclass(frozen=True)
class DuplicateRow:
    row: int
    of_row: int | None  # an earlier row of the file, or None: already a client


@dataclass(frozen=True)
class Report:
    rows: int
    to_import: int
    invalid: int
    duplicates: int
    issues: tuple[RowIssue, ...]  # the first REPORT_SAMPLE
    dupes: tuple[DuplicateRow, ...]  # the first REPORT_SAMPLE


@dataclass(frozen=True)
class Result:
    imported: int
    invalid: int
    duplicates: int  # reported by the dry run plus those that became clients since
    new_duplicates: int  # of which: clients added between the dry run and the import


@dataclass(frozen=True)
class ImportView:
    id: int
    filename: str
    status: ImportStatus
    rows: int
    columns: tuple[Column, ...]
    report: Report | None
    result: Result | None

    @property
    def missing(self) -> tuple[Target, ...]:
        """Targets the mapping still needs before a dry run (a phone OR an email)."""
        mapped = {c.target for c in self.columns}
        missing = [t for t in REQUIRED if t not in mapped]
        if not mapped.intersection(ONE_OF):
            missing.extend(ONE_OF)
        return tuple(missing)


# --- parsing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sheet:
    headers: list[str]
    rows: list[list[Any]]  # [row number, cell, cell, ...] (cells are strings)


def file_kind(filename: str) -> str:
    suffix = PurePath(filename or "").suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return "xlsx"
    if suffix in (".csv", ".txt", ".tsv"):
        return "csv"
    raise ValidationError("file", "format")


def cell_text(value: Any) -> str:
    """A cell as text: integral floats lose their '.0' (Excel stores phones as numbers)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return repr(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="minutes")
    if isinstance(value, (date, time, Decimal, int)):
        return str(value)
    return str(value).strip()[:MAX_CELL]


def decode_text(data: bytes) -> str:
    """A CSV file's text: a BOM says the encoding; valid UTF-8 is UTF-8; anything else
    (cp1251 from Excel, KOI8-R, UTF-16 without a BOM...) is detected by charset-normalizer,
    cp1251 when it cannot tell."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if b"\x00" not in data[:4096]:  # NULs: UTF-16/32 without a BOM, which decodes as "UTF-8"
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            pass
    best = charset_normalizer.from_bytes(data).best()
    if best is not None:
        return str(best)
    return data.decode("cp1251", errors="replace")


_DELIMITERS = ";\t,"


def sniff_delimiter(text: str) -> str:
    """';', ',' or tab, by the stdlib's csv.Sniffer on the first lines (the delimiter that
    occurs equally often in each); when it cannot decide, whichever the first non-empty line
    has most of."""
    sample = "\n".join(text.splitlines()[:50])
    try:
        return csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        first = next((line for line in text.splitlines() if line.strip()), "")
        counts = {d: first.count(d) for d in _DELIMITERS}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] else ","


def _records_csv(data: bytes) -> Iterator[tuple[int, Sequence[Any]]]:
    text = decode_text(data)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sniff_delimiter(text))
    try:
        # The record number is the row a spreadsheet program shows for this CSV.
        yield from enumerate(reader, start=1)
    except csv.Error as exc:
        raise ValidationError("file", "unreadable") from exc


def _records_xlsx(data: bytes) -> Iterator[tuple[int, Sequence[Any]]]:
    import openpyxl  # a heavy import, needed only here

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # zip, xml and openpyxl errors alike: not a readable workbook
        raise ValidationError("file", "unreadable") from exc
    try:
        if not book.worksheets:
            raise ValidationError("file", "empty")
        sheet = book.worksheets[0]
        # Some writers store a wrong sheet size; read-only mode would trust it.
        sheet.reset_dimensions()
        yield from enumerate(sheet.iter_rows(values_only=True), start=1)
    finally:
        book.close()


def parse(kind: str, data: bytes) -> Sheet:
    """The first sheet (or the CSV) as a header row and data rows; empty rows dropped."""
    records = _records_xlsx(data) if kind == "xlsx" else _records_csv(data)
    headers: list[str] | None = None
    rows: list[list[Any]] = []
    for number, values in records:
        cells = [cell_text(v) for v in values[:MAX_COLUMNS]]
        while cells and not cells[-1]:
            cells.pop()
        if not cells:
            continue
        if headers is None:
            headers = cells
            continue
        if len(rows) >= MAX_ROWS:
            raise ValidationError("file", "too_many_rows", max=MAX_ROWS)
        rows.append([number, *cells])
    if headers is None or not rows:
        raise ValidationError("file", "empty")
    width = max(len(headers), max(len(r) for r in rows) - 1)
    headers += [""] * (width - len(headers))
    # Drop columns with neither a header nor a value (a spacer column on the left).
    used = [i for i in range(width) if headers[i] or any(_cell(r, i) for r in rows)]
    if len(used) < width:
        headers = [headers[i] for i in used]
        rows = [[r[0], *(_cell(r, i) for i in used)] for r in rows]
    return Sheet(headers=headers, rows=rows)


def _cell(row: Sequence[Any], index: int) -> str:
    """Cell `index` of a stored row ([number, cells...]); short rows are padded with ''."""
    return str(row[index + 1]) if index + 1 < len(row) else ""


# --- mapping detection --------------------------------------------------------------------

_SYNONYMS: dict[Target, tuple[str, ...]] = {
    Target.PHONE: (
        "телефон", "тел", "моб", "мобильный", "сотовый", "номер телефона",
        "phone", "tel", "telephone", "mobile", "cell", "phone number",
    ),
    Target.EMAIL: (
        "email", "e-mail", "почта", "эл почта", "электронная почта", "емейл", "имейл",
        "mail", "e mail address", "email address",
    ),
    Target.AMOUNT: (
        "сумма", "бюджет", "стоимость", "цена", "сумма сделки",
        "amount", "sum", "budget", "price", "value", "deal value", "total",
    ),
    Target.COMPANY: (
        "компания", "организация", "фирма", "юрлицо", "юр лицо", "название компании",
        "company", "organization", "organisation", "firm", "company name", "account",
    ),
    Target.SOURCE: (
        "источник", "канал", "откуда", "source", "channel", "utm source", "lead source",
    ),
    Target.COMMENT: (
        "комментарий", "коммент", "примечание", "заметка", "описание", "потребность",
        "comment", "comments", "note", "notes", "description", "need", "remarks",
    ),
    Target.NAME: (
        "имя", "фио", "ф и о", "клиент", "контакт", "контактное лицо", "заказчик",
        "name", "full name", "client", "contact", "customer", "contact name",
    ),
}  # fmt: skip
# On a partial match, the more specific target wins ("Телефон клиента" is a phone).
_PRIORITY = (
    Target.PHONE,
    Target.EMAIL,
    Target.AMOUNT,
    Target.COMPANY,
    Target.SOURCE,
    Target.COMMENT,
    Target.NAME,
)
_NON_WORD = re.compile(r"[^\w]+")


def _words(text: str) -> list[str]:
    return _NON_WORD.sub(" ", text.lower().replace("ё", "е").replace("_", " ")).split()


def _word_match(word: str, synonym: str) -> bool:
    """Equal, or an inflected form ("телефона", "компании", "суммы")."""
    if word == synonym:
        return True
    return len(synonym) >= 5 and word.startswith(synonym[:-1])


def _contains(words: list[str], phrase: list[str]) -> bool:
    n = len(phrase)
    return any(
        all(_word_match(w, p) for w, p in zip(words[i : i + n], phrase, strict=True))
        for i in range(len(words) - n + 1)
    )


_SYNONYM_WORDS = {t: [_words(s) for s in syns] for t, syns in _SYNONYMS.items()}


def _score(header: str) -> tuple[int, Target] | None:
    """(2, target) for an exact synonym, (1, target) for one inside the header."""
    words = _words(header)
    if not words:
        return None
    for target in _PRIORITY:
        if words in _SYNONYM_WORDS[target]:
            return 2, target
    for target in _PRIORITY:
        if any(_contains(words, phrase) for phrase in _SYNONYM_WORDS[target]):
            return 1, target
    return None


def detect(headers: Sequence[str]) -> list[Target]:
    """A target per column from the header names (Russian and English); each target goes
    to one column: exact names first, then left to right."""
    mapping = [Target.SKIP] * len(headers)
    scored = [(s[0], i, s[1]) for i, h in enumerate(headers) if (s := _score(h)) is not None]
    taken: set[Target] = set()
    for _score_value, index, target in sorted(scored, key=lambda x: (-x[0], x[1])):
        if target not in taken:
            mapping[index] = target
            taken.add(target)
    return mapping


# --- validation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Checked:
    """A valid row, as it would be inserted."""

    row: int
    lead: CleanLead


def _columns(mapping: Sequence[str]) -> dict[Target, int]:
    return {Target(t): i for i, t in enumerate(mapping) if t != Target.SKIP}


def row_input(row: Sequence[Any], columns: dict[Target, int], source_label: str) -> LeadInput:
    def get(target: Target) -> str:
        index = columns.get(target)
        return _cell(row, index) if index is not None else ""

    company = get(Target.COMPANY)
    need = [get(Target.COMMENT)]
    if source := get(Target.SOURCE):
        # Leads made here have source "import"; the file's own source is kept with the
        # comment, under the column's header as the file named it.
        need.append(f"{source_label}: {source}")
    return LeadInput(
        name=get(Target.NAME),
        source=LeadSource.IMPORT,
        phone=get(Target.PHONE) or None,
        email=get(Target.EMAIL) or None,
        need="\n".join(n for n in need if n) or None,
        is_legal_entity=bool(company),
        company_name=company or None,
        amount=get(Target.AMOUNT) or None,
    )


def validate(
    rows: Sequence[Sequence[Any]], mapping: Sequence[str], headers: Sequence[str]
) -> tuple[list[Checked], list[RowIssue]]:
    """Every row through services.leads.clean (the bot's own rules for a lead)."""
    columns = _columns(mapping)
    source_index = columns.get(Target.SOURCE)
    source_label = (headers[source_index] if source_index is not None else "") or "source"
    valid: list[Checked] = []
    issues: list[RowIssue] = []
    for row in rows:
        try:
            lead = clean(row_input(row, columns, source_label))
        except ValidationError as exc:
            field = _FIELD_TARGET.get(exc.field, exc.field)
            issues.append(RowIssue(int(row[0]), str(field), exc.code))
            continue
        valid.append(Checked(int(row[0]), lead))
    return valid, issues


def _email_key(email: str) -> str:
    return email.lower()


async def existing_clients(
    uow: UnitOfWork, phones: Iterable[str], emails: Iterable[str]
) -> tuple[set[str], set[str]]:
    """Which of these phones and (lower-cased) emails already belong to a contact or an open
    lead: a few IN-list queries per IN_CHUNK values, never one query per row."""
    found_phones: set[str] = set()
    for chunk in _chunks(sorted(set(phones)), IN_CHUNK):
        found_phones |= await uow.repo.imports.taken_phones(chunk)
    found_emails: set[str] = set()
    for chunk in _chunks(sorted({_email_key(e) for e in emails}), IN_CHUNK):
        found_emails |= await uow.repo.imports.taken_emails(chunk)
    return found_phones, found_emails


def split_duplicates(
    rows: Sequence[Checked], phones: set[str], emails: set[str]
) -> tuple[list[Checked], list[DuplicateRow]]:
    """(rows to import, duplicates): a row whose phone or email is a client's, or an earlier
    row's, is a duplicate."""
    keep: list[Checked] = []
    dupes: list[DuplicateRow] = []
    seen: dict[str, int] = {}
    for item in rows:
        keys = []
        if item.lead.phone:
            keys.append("p" + item.lead.phone)
        if item.lead.email:
            keys.append("e" + _email_key(item.lead.email))
        if (item.lead.phone and item.lead.phone in phones) or (
            item.lead.email and _email_key(item.lead.email) in emails
        ):
            dupes.append(DuplicateRow(item.row, None))
        elif earlier := next((seen[k] for k in keys if k in seen), None):
            dupes.append(DuplicateRow(item.row, earlier))
        else:
            keep.append(item)
        for key in keys:
            seen.setdefault(key, item.row)
    return keep, dupes


# --- storage helpers ----------------------------------------------------------------------


def _pack(value: Any) -> bytes:
    return zlib.compress(json.dumps(value, ensure_ascii=False).encode(), 6)


def _unpack(blob: bytes | None) -> Any:
    if not blob:
        return []
    return json.loads(zlib.decompress(blob))


_LEAD_FIELDS = ("name", "phone", "email", "need", "company_name", "amount")


def _pack_checked(rows: Sequence[Checked]) -> bytes:
    return _pack([[r.row, *(getattr(r.lead, f) for f in _LEAD_FIELDS)] for r in rows])


def _unpack_checked(blob: bytes | None) -> list[Checked]:
    result = []
    for row, name, phone, email, need, company, amount in _unpack(blob):
        lead = CleanLead(
            name=name,
            source=LeadSource.IMPORT,
            phone=phone,
            email=email,
            need=need,
            is_legal_entity=company is not None,
            company_name=company,
            amount=amount,
        )
        result.append(Checked(row, lead))
    return result


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def _job(uow: UnitOfWork, actor: Actor, job_id: int, *, lock: bool = False) -> ImportJob:
    """The actor's own job; someone else's id is "not found" (ids come from callback data)."""
    require(actor, Action.IMPORT)
    if lock and isinstance(job_id, int):
        # Two Import taps on two workers: the second waits here for the first to commit,
        # then reads "done" below.
        await uow.repo.imports.lock(job_id)
    job = await load(uow, ImportJob, job_id, "import")
    if job.actor_id != actor.id:
        raise NotFound("import", job_id)
    return job


def _require_open(job: ImportJob) -> None:
    if job.status == ImportStatus.DONE:
        raise RuleViolation("import_done")
    if job.status not in OPEN_STATUSES:
        raise RuleViolation("import_closed", status=job.status)


def _report(stats: dict[str, Any]) -> Report | None:
    if "to_import" not in stats:
        return None
    return Report(
        rows=stats["rows"],
        to_import=stats["to_import"],
        invalid=stats["invalid"],
        duplicates=stats["duplicates"],
        issues=tuple(RowIssue(*i) for i in stats.get("issues", [])),
        dupes=tuple(DuplicateRow(r, o or None) for r, o in stats.get("dupes", [])),
    )


def _view(job: ImportJob) -> ImportView:
    stats = job.stats or {}
    result = None
    if "imported" in stats:
        result = Result(
            imported=stats["imported"],
            invalid=stats["invalid"],
            duplicates=stats["duplicates"] + stats.get("new_duplicates", 0),
            new_duplicates=stats.get("new_duplicates", 0),
        )
    samples = list(job.samples) + [""] * (len(job.headers) - len(job.samples))
    return ImportView(
        id=job.id,
        filename=job.filename,
        status=ImportStatus(job.status),
        rows=job.row_count,
        columns=tuple(
            Column(i, h, s, Target(t))
            for i, (h, s, t) in enumerate(zip(job.headers, samples, job.mapping, strict=True))
        ),
        report=_report(stats),
        result=result,
    )


# --- the steps ----------------------------------------------------------------------------


async def upload(
    uow: UnitOfWork,
    actor: Actor,
    filename: str,
    size: int | None,
    read: Callable[[], Awaitable[bytes]],
) -> ImportView:
    """Check the right and the file type BEFORE downloading (`read`), parse the file, keep
    its rows and propose a mapping."""
    require(actor, Action.IMPORT)
    kind = file_kind(filename)
    if size is not None and size > MAX_BYTES:
        raise ValidationError("file", "too_large", max=MAX_BYTES // (1024 * 1024))
    data = await read()
    if len(data) > MAX_BYTES:
        raise ValidationError("file", "too_large", max=MAX_BYTES // (1024 * 1024))
    sheet = await asyncio.to_thread(parse, kind, data)
    samples = [
        next((c for r in sheet.rows if (c := _cell(r, i))), "")[:100]
        for i in range(len(sheet.headers))
    ]
    now = uow.clock.now()
    await _expire_abandoned(uow, now)
    job = ImportJob(
        actor_id=actor.id,
        filename=PurePath(filename).name[:255],
        status=ImportStatus.MAPPING,
        row_count=len(sheet.rows),
        headers=[h[:100] for h in sheet.headers],
        samples=samples,
        mapping=[str(t) for t in detect(sheet.headers)],
        stats={},
        payload=_pack(sheet.rows),
        checked=None,
        created_at=now,
        updated_at=now,
    )
    uow.repo.add(job)
    await commit(uow, "import")
    return _view(job)


async def _expire_abandoned(uow: UnitOfWork, now: datetime) -> None:
    """Uploads nobody finished free their rows after EXPIRE_AFTER (one cheap UPDATE)."""
    await uow.repo.imports.expire_abandoned(now - EXPIRE_AFTER)


async def get(uow: UnitOfWork, actor: Actor, job_id: int) -> ImportView:
    return _view(await _job(uow, actor, job_id))


async def set_target(
    uow: UnitOfWork, actor: Actor, job_id: int, column: int, target: Target
) -> ImportView:
    """Send a column to a target; a column that had this target before is skipped. The
    dry run (if any) no longer holds: it has to be run again."""
    job = await _job(uow, actor, job_id)
    _require_open(job)
    if not 0 <= column < len(job.mapping):
        raise ValidationError("column", "unknown")
    mapping = [
        Target.SKIP.value if (t == target and target != Target.SKIP) else t for t in job.mapping
    ]
    mapping[column] = target.value
    if mapping != job.mapping or job.status != ImportStatus.MAPPING:
        job.mapping = mapping
        job.status = ImportStatus.MAPPING
        job.stats = {}
        job.checked = None
        job.updated_at = uow.clock.now()
        await commit(uow, "import")
    return _view(job)


async def dry_run(uow: UnitOfWork, actor: Actor, job_id: int) -> ImportView:
    """Validate every row and find duplicates; change nothing but the job (its report and
    the rows the import would insert)."""
    job = await _job(uow, actor, job_id)
    _require_open(job)
    view = _view(job)
    if view.missing:
        raise RuleViolation("import_mapping", missing=[str(t) for t in view.missing])
    mapping, headers = list(job.mapping), list(job.headers)
    blob = await uow.repo.imports.payload(job.id)
    # Nothing is written yet: end this read before the CPU work (seconds for 50,000 rows).
    # On SQLite every transaction holds the write lock from its BEGIN (storage/db.py), and
    # other people's taps should not wait for our validation.
    await uow.rollback()
    rows = await asyncio.to_thread(_unpack, blob)
    valid, issues = await asyncio.to_thread(validate, rows, mapping, headers)
    job = await _job(uow, actor, job_id)
    _require_open(job)
    if job.mapping != mapping:  # changed by another tap meanwhile
        raise RuleViolation("import_changed")
    phones, emails = await existing_clients(
        uow,
        (r.lead.phone for r in valid if r.lead.phone),
        (r.lead.email for r in valid if r.lead.email),
    )
    keep, dupes = split_duplicates(valid, phones, emails)
    job.stats = {
        "rows": len(rows),
        "to_import": len(keep),
        "invalid": len(issues),
        "duplicates": len(dupes),
        "issues": [[i.row, i.field, i.code] for i in issues[:REPORT_SAMPLE]],
        "dupes": [[d.row, d.of_row or 0] for d in dupes[:REPORT_SAMPLE]],
    }
    job.checked = await asyncio.to_thread(_pack_checked, keep)
    job.status = ImportStatus.CHECKED
    job.updated_at = uow.clock.now()
    await commit(uow, "import")
    return _view(job)


async def run(
    uow: UnitOfWork,
    actor: Actor,
    job_id: int,
    on_progress: ProgressFn | None = None,
    chunk_size: int | None = None,
) -> ImportView:
    """Insert the rows the dry run accepted (less any that became clients since): leads at
    the entry stage of the Leads pipeline, source "import", the importer as manager if they
    are a manager (else given out by the distribution rule; unassigned with nobody on
    duty), each with its first history row. One transaction:
    all rows or none. `on_progress(done, total)` is awaited after each chunk."""
    job = await _job(uow, actor, job_id, lock=True)
    _require_open(job)
    if job.status != ImportStatus.CHECKED:
        raise RuleViolation("import_not_checked")
    rows = await asyncio.to_thread(_unpack_checked, await uow.repo.imports.checked(job.id))
    phones, emails = await existing_clients(
        uow,
        (r.lead.phone for r in rows if r.lead.phone),
        (r.lead.email for r in rows if r.lead.email),
    )
    keep, late = split_duplicates(rows, phones, emails)
    rules = await rules_by_role(uow, "leads")
    pipeline_id, stage_id = rules.pipeline.id, rules.entry.id
    # A manager's import is theirs; anyone else's is given out like every automatic
    # channel's leads (services/team/distribution.py), row by row.
    mine = actor.has(Role.MANAGER)
    managers = [] if mine else await distribution.assign_many(uow, len(keep))
    turns = iter([e.id for e in managers])
    now = uow.clock.now()
    intake_payload = {"source": LeadSource.IMPORT.value, "file": job.filename}
    total = len(keep)
    if on_progress is not None:
        await on_progress(0, total)
    done = 0
    for chunk in _chunks(keep, max(1, chunk_size or INSERT_CHUNK)):
        lead_rows: list[dict[str, Any]] = [
            {
                "source": LeadSource.IMPORT.value,
                "name": r.lead.name,
                "phone": r.lead.phone,
                "email": r.lead.email,
                "need": r.lead.need,
                "is_legal_entity": r.lead.is_legal_entity,
                "company_name": r.lead.company_name,
                "amount": r.lead.amount,
                "status": LeadStatus.NEW.value,
                "pipeline_id": pipeline_id,
                "stage_id": stage_id,
                "qualification": {},
                "manager_id": actor.id if mine else next(turns, None),
                "created_by_id": actor.id,
                "created_at": now,
                "updated_at": now,
                "version": 1,
            }
            for r in chunk
        ]
        # Each lead with its first history row and its intake row on the timeline (the
        # file it came from).
        await uow.repo.imports.insert_leads(lead_rows, intake_payload)
        done += len(chunk)
        if on_progress is not None:
            await on_progress(done, total)
    job.stats = {
        **job.stats,
        "imported": total,
        "new_duplicates": len(late),
    }
    job.status = ImportStatus.DONE
    job.payload = b""
    job.checked = None
    job.updated_at = job.finished_at = now
    await commit(uow, "import")
    return _view(job)


async def cancel(uow: UnitOfWork, actor: Actor, job_id: int) -> ImportView:
    job = await _job(uow, actor, job_id)
    _require_open(job)
    job.status = ImportStatus.CANCELLED
    job.payload = b""
    job.checked = None
    job.updated_at = job.finished_at = uow.clock.now()
    await commit(uow, "import")
    return _view(job)
