"""timeline rows keep facts, not formatted text (issue 19)

Revision ID: 0012
Revises: 0009

Payment and installment-plan rows of `activities` used to carry Russian-formatted text the
system wrote (``services.validation.format_amount``: "12 345,50 (2026-01-02)" for a
payment, "2026-01-02 12 345; 2026-02-02 12 345" for a plan), so every reader saw Russian
numbers. Now the numbers live in ``payload`` (kopecks and ISO dates: a payment's
``amount`` and ``paid_on``, a plan's ``dues`` list of ``{"date", "amount"}``) and the
reader draws them in its own language (handlers/ui/timeline.py); ``text`` is left empty.
The upgrade parses the old text into the payload; a row whose text does not parse (or
disagrees with the payload it already has) stays as it was and is drawn as its text. The
downgrade writes the old text back from the payload (and drops the plan's ``dues``).

Rows of a configured task done or snoozed carry the task's Russian title as text; the
upgrade adds its English one (``title_en``, from the task's payload) beside it, which the
downgrade leaves (the old reader ignores it).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from alembic import op

from storage.migrate import announce_drops

revision: str = "0012"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVITIES = sa.table(
    "activities",
    sa.column("id", sa.Integer),
    sa.column("kind", sa.String),
    sa.column("text", sa.Text),
    sa.column("payload", sa.JSON),
    sa.column("task_id", sa.Integer),
)
TASKS = sa.table(
    "tasks",
    sa.column("id", sa.Integer),
    sa.column("title", sa.Text),
    sa.column("payload", sa.JSON),
)
PAYMENT, PLAN = "payment", "plan"
TASK_ROWS = ("task_done", "task_snoozed")
PLAN_TEXT_MAX = 3000  # the old writer cut the plan's text here

# An amount as the old writer put it: roubles grouped by three with spaces (any kind of
# space is accepted), kopecks after a comma when there are any, a rouble sign maybe.
_AMOUNT = r"(\d{1,3}(?:[ \u00a0\u202f]\d{3})*)(?:,(\d{2}))?(?:[ \u00a0\u202f]?₽)?"
_DAY = r"(\d{4}-\d{2}-\d{2})"
PAYMENT_TEXT = re.compile(rf"{_AMOUNT} \({_DAY}\)")
DUE_TEXT = re.compile(rf"{_DAY} {_AMOUNT}")


def _minor(roubles: str, kopecks: str | None) -> int:
    return int(re.sub(r"\D", "", roubles)) * 100 + int(kopecks or 0)


def _day(text: str) -> str | None:
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        return None


def format_amount(minor: int) -> str:
    """What the old writer wrote: 12345600 -> '123 456'; 12345650 -> '123 456,50'."""
    roubles, kop = divmod(minor, 100)
    text = f"{roubles:,}".replace(",", " ")
    return f"{text},{kop:02d}" if kop else text


def payment_facts(text: str, payload: dict[str, Any]) -> dict[str, Any] | None:
    """The payload of an old payment row with its text parsed in; None: leave the row."""
    match = PAYMENT_TEXT.fullmatch(text.strip())
    if match is None:
        return None
    amount, paid_on = _minor(match[1], match[2]), _day(match[3])
    if paid_on is None:
        return None
    known = (payload.get("amount"), payload.get("paid_on"))
    if known != (None, None) and known != (amount, paid_on):
        return None  # the text says something else than the facts: keep both as they are
    return {**payload, "amount": amount, "paid_on": paid_on}


def plan_facts(text: str, payload: dict[str, Any]) -> dict[str, Any] | None:
    """The payload of an old plan row with its dues parsed in; None: leave the row."""
    dues = []
    for part in text.strip().split(";"):
        match = DUE_TEXT.fullmatch(part.strip())
        when = _day(match[1]) if match else None
        if match is None or when is None:
            return None
        dues.append({"date": when, "amount": _minor(match[2], match[3])})
    parts, total = payload.get("parts"), payload.get("total")
    if isinstance(parts, int) and parts != len(dues):
        return None  # cut short (the old text was cut at 3000 characters)
    if isinstance(total, int) and total != sum(d["amount"] for d in dues):
        return None
    return {**payload, "dues": dues}


def payment_text(payload: dict[str, Any]) -> str | None:
    amount, paid_on = payload.get("amount"), payload.get("paid_on")
    if not isinstance(amount, int) or not isinstance(paid_on, str):
        return None
    return f"{format_amount(amount)} ({paid_on})"


def plan_text(payload: dict[str, Any]) -> str | None:
    dues = payload.get("dues")
    if not isinstance(dues, list):
        return None
    return "; ".join(f"{d['date']} {format_amount(int(d['amount']))}" for d in dues)[:PLAN_TEXT_MAX]


def _rows(kinds: tuple[str, ...]) -> list[Any]:
    a = ACTIVITIES.c
    stmt = sa.select(a.id, a.kind, a.text, a.payload).where(a.kind.in_(kinds)).order_by(a.id)
    return list(op.get_bind().execute(stmt))


def _write(updates: list[dict[str, Any]]) -> None:
    if updates:
        stmt = ACTIVITIES.update().where(ACTIVITIES.c.id == sa.bindparam("row_id"))
        op.get_bind().execute(stmt, updates)


def upgrade() -> None:
    updates = []
    for row in _rows((PAYMENT, PLAN)):
        if not row.text:
            continue
        payload = dict(row.payload or {})
        parse = payment_facts if row.kind == PAYMENT else plan_facts
        facts = parse(row.text, payload)
        if facts is not None:
            updates.append({"row_id": row.id, "text": "", "payload": facts})
    _write(updates)
    _write(_task_titles())


def _task_titles() -> list[dict[str, Any]]:
    """A configured task's English title beside its Russian one on the task's rows."""
    a, t = ACTIVITIES.c, TASKS.c
    stmt = (
        sa.select(a.id, a.text, a.payload, t.title, t.payload.label("task_payload"))
        .select_from(ACTIVITIES.join(TASKS, a.task_id == t.id))
        .where(a.kind.in_(TASK_ROWS))
        .order_by(a.id)
    )
    updates = []
    for row in op.get_bind().execute(stmt):
        payload = dict(row.payload or {})
        title_en = (row.task_payload or {}).get("title_en")
        if isinstance(title_en, str) and title_en and row.text == row.title:
            if "title_en" not in payload:
                payload["title_en"] = title_en
                updates.append({"row_id": row.id, "text": row.text, "payload": payload})
    return updates


def downgrade() -> None:
    announce_drops(
        "0012", "activities.payload 'dues' of installment-plan rows (written back as text)"
    )
    updates = []
    for row in _rows((PAYMENT, PLAN)):
        if row.text:
            continue
        payload = dict(row.payload or {})
        if row.kind == PAYMENT:
            text = payment_text(payload)
        else:
            text = plan_text(payload)
            payload.pop("dues", None)
        if text is not None:
            updates.append({"row_id": row.id, "text": text, "payload": payload})
    _write(updates)
