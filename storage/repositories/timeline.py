"""The timeline of a deal, a lead or a contact: `activities` rows merged with the stage
changes (`stage_history`) and the tasks made (`tasks`) in one statement, newest first,
keyset-paged on (at, source, id) and filterable by kind; the card's counts and last events
in one statement too (it runs inside every stage move: tests/handlers/deals/test_tap_budget.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Integer,
    Select,
    String,
    Text,
    and_,
    bindparam,
    cast,
    func,
    literal,
    null,
    or_,
    select,
    true,
    union_all,
)

from storage.enums import MESSAGE_KINDS, OPEN_TASK_STATUSES, ActivityKind
from storage.models import Activity, StageHistory, Task
from storage.repositories.base import Repo

# The merge's sources, in their tie-break order (equal times: activities, then stages, then
# tasks; newest first means the higher number first).
SOURCE_TASK, SOURCE_STAGE, SOURCE_ACTIVITY = 1, 2, 3


@dataclass(frozen=True)
class Cursor:
    """Where a page ends: the next page starts strictly after this row."""

    at: datetime
    source: int
    id: int


@dataclass(frozen=True)
class TimelineRow:
    source: int
    id: int
    at: datetime
    kind: str
    actor_id: int | None
    text: str | None
    from_stage_id: int | None
    to_stage_id: int | None
    reason_id: int | None
    media_type: str | None
    file_id: str | None
    caption: str | None
    payload: dict[str, Any] | None

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.at, self.source, self.id)


@dataclass(frozen=True)
class CardCounts:
    files: int
    messages: int
    open_tasks: int
    recent: tuple[Activity, ...]


@dataclass(frozen=True)
class Subject:
    """Whose timeline: exactly one of the three ids."""

    deal_id: int | None = None
    lead_id: int | None = None
    contact_id: int | None = None


def _after(at: Any, ident: Any, source: int, cursor: Cursor | None) -> ColumnElement[bool]:
    """Rows of one source strictly older than the cursor in (at, source, id) order."""
    if cursor is None:
        return true()
    if source < cursor.source:
        return at <= cursor.at  # type: ignore[no-any-return]
    if source > cursor.source:
        return at < cursor.at  # type: ignore[no-any-return]
    return or_(at < cursor.at, and_(at == cursor.at, ident < cursor.id))


class TimelineRepo(Repo):
    def _activities(
        self, subject: Subject, kinds: Sequence[str] | None, files: bool, cursor: Cursor | None
    ) -> Select[*tuple[Any, ...]]:
        a = Activity
        if subject.deal_id is not None:
            cond: ColumnElement[bool] = a.deal_id == subject.deal_id
        elif subject.lead_id is not None:
            cond = a.lead_id == subject.lead_id
        else:
            cond = a.contact_id == subject.contact_id
        conds = [cond, _after(a.at, a.id, SOURCE_ACTIVITY, cursor)]
        if files:
            conds.append(a.media_type.is_not(None))
        if kinds is not None:
            conds.append(a.kind.in_(kinds))
        return select(
            literal(SOURCE_ACTIVITY, Integer).label("source"),
            a.id.label("id"),
            a.at.label("at"),
            a.kind.label("kind"),
            a.author_id.label("actor_id"),
            a.text.label("text"),
            cast(null(), Integer).label("from_stage_id"),
            cast(null(), Integer).label("to_stage_id"),
            cast(null(), Integer).label("reason_id"),
            a.media_type.label("media_type"),
            a.file_id.label("file_id"),
            a.caption.label("caption"),
            a.payload.label("payload"),
        ).where(*conds)

    def _stages(self, subject: Subject, cursor: Cursor | None) -> Select[*tuple[Any, ...]]:
        h = StageHistory
        cond = h.deal_id == subject.deal_id if subject.deal_id else h.lead_id == subject.lead_id
        return select(
            literal(SOURCE_STAGE, Integer).label("source"),
            h.id.label("id"),
            h.at.label("at"),
            literal(ActivityKind.STAGE.value, String).label("kind"),
            h.actor_id.label("actor_id"),
            h.comment.label("text"),
            h.from_stage_id.label("from_stage_id"),
            h.to_stage_id.label("to_stage_id"),
            h.reason_id.label("reason_id"),
            cast(null(), String).label("media_type"),
            cast(null(), String).label("file_id"),
            cast(null(), Text).label("caption"),
            cast(null(), JSON).label("payload"),
        ).where(cond, _after(h.at, h.id, SOURCE_STAGE, cursor))

    def _tasks(self, subject: Subject, cursor: Cursor | None) -> Select[*tuple[Any, ...]]:
        t = Task
        cond = t.deal_id == subject.deal_id if subject.deal_id else t.lead_id == subject.lead_id
        return select(
            literal(SOURCE_TASK, Integer).label("source"),
            t.id.label("id"),
            t.created_at.label("at"),
            literal(ActivityKind.TASK.value, String).label("kind"),
            t.created_by_id.label("actor_id"),
            t.title.label("text"),
            cast(null(), Integer).label("from_stage_id"),
            cast(null(), Integer).label("to_stage_id"),
            cast(null(), Integer).label("reason_id"),
            t.kind.label("media_type"),  # the task's kind rides in this column
            cast(null(), String).label("file_id"),
            t.comment.label("caption"),
            t.payload.label("payload"),  # a configured task's title_en
        ).where(cond, _after(t.created_at, t.id, SOURCE_TASK, cursor))

    async def page(
        self,
        subject: Subject,
        kinds: Sequence[str] | None,
        cursor: Cursor | None,
        limit: int,
        *,
        files: bool = False,
    ) -> list[TimelineRow]:
        """Up to `limit` rows older than `cursor`, newest first. `kinds` None: every kind;
        `files`: only rows that carry a file (of `kinds`). One statement."""
        branches: list[Select[*tuple[Any, ...]]] = []
        wanted = set(kinds) if kinds is not None else None
        activity_kinds = (
            None
            if wanted is None
            else [k for k in wanted if k not in (ActivityKind.STAGE, ActivityKind.TASK)]
        )
        if files or activity_kinds is None or activity_kinds:
            branches.append(self._activities(subject, activity_kinds, files, cursor))
        has_stages = subject.contact_id is None and not files
        if has_stages and (wanted is None or ActivityKind.STAGE in wanted):
            branches.append(self._stages(subject, cursor))
        if has_stages and (wanted is None or ActivityKind.TASK in wanted):
            branches.append(self._tasks(subject, cursor))
        # Each branch takes its newest `limit` rows through its (subject, at, id) index; the
        # merge orders at most 3 x limit rows.
        parts = [
            select(
                b.order_by(b.selected_columns.at.desc(), b.selected_columns.id.desc())
                .limit(limit)
                .subquery()
            )
            for b in branches
        ]
        merged = union_all(*parts).subquery()
        stmt = (
            select(merged)
            .order_by(merged.c.at.desc(), merged.c.source.desc(), merged.c.id.desc())
            .limit(limit)
        )
        out = []
        for r in await self.session.execute(stmt):
            out.append(
                TimelineRow(
                    source=int(r.source),
                    id=int(r.id),
                    at=r.at,
                    kind=str(r.kind),
                    actor_id=r.actor_id,
                    text=r.text,
                    from_stage_id=r.from_stage_id,
                    to_stage_id=r.to_stage_id,
                    reason_id=r.reason_id,
                    media_type=r.media_type,
                    file_id=r.file_id,
                    caption=r.caption,
                    payload=r.payload,
                )
            )
        return out

    async def card(self, deal_id: int, recent: int = 3) -> CardCounts:
        """Files, client messages and open tasks of a deal, and its `recent` newest activity
        rows: one statement (the counts row left-joined to the recent rows)."""
        rows = (await self.session.execute(_card_statement(), {"deal": deal_id, "n": recent})).all()
        first = rows[0]
        return CardCounts(
            files=int(first.files or 0),
            messages=int(first.messages or 0),
            open_tasks=int(first.open_tasks or 0),
            recent=tuple(r[3] for r in rows if r[3] is not None),
        )

    async def cursor(self, subject: Subject, source: int, ident: int) -> Cursor | None:
        """The (at, source, id) of a row of this subject's timeline; None if it is not one."""
        model: Any
        if source == SOURCE_ACTIVITY:
            model, at = Activity, Activity.at
        elif source == SOURCE_STAGE and subject.contact_id is None:
            model, at = StageHistory, StageHistory.at
        elif source == SOURCE_TASK and subject.contact_id is None:
            model, at = Task, Task.created_at
        else:
            return None
        conds = [model.id == ident]
        for name in ("deal_id", "lead_id", "contact_id"):
            value = getattr(subject, name)
            if value is not None:
                conds.append(getattr(model, name) == value)
        found = await self.session.scalar(select(at).where(*conds))
        return Cursor(found, source, ident) if found is not None else None

    async def files(
        self, deal_id: int, offset: int, limit: int, *, with_messages: bool = True
    ) -> tuple[list[Activity], int]:
        """The deal's file rows, oldest first (a page of them), and how many there are.
        `with_messages` False: files clients sent in chats are left out."""
        a = Activity
        cond: tuple[ColumnElement[bool], ...] = (a.deal_id == deal_id, a.media_type.is_not(None))
        if not with_messages:
            cond = (*cond, a.kind.not_in([k.value for k in MESSAGE_KINDS]))
        total = await self.session.scalar(select(func.count()).select_from(a).where(*cond))
        rows = await self.session.scalars(
            select(a).where(*cond).order_by(a.at, a.id).offset(offset).limit(limit)
        )
        return list(rows.all()), int(total or 0)

    async def by_message(
        self, connection_id: str, chat_id: int, message_id: int
    ) -> Sequence[Activity]:
        """Timeline rows of one business message (the original and its edits) as one
        connection recorded it. A client's chat id is the same in every manager's Business
        account while message ids are numbered per account: (chat, message) alone can name
        another manager's message."""
        rows = await self.session.scalars(
            select(Activity)
            .where(Activity.chat_id == chat_id, Activity.message_id == message_id)
            .order_by(Activity.id)
        )
        return [r for r in rows.all() if (r.payload or {}).get("connection") == connection_id]


@cache
def _card_statement() -> Select[Any]:
    """The deal card's statement, built once (it runs on every tap: building and keying it
    costs more than running it)."""
    a = Activity
    deal = bindparam("deal", type_=Integer)
    counts = select(
        select(func.count())
        .select_from(a)
        .where(a.deal_id == deal, a.media_type.is_not(None))
        .scalar_subquery()
        .label("files"),
        select(func.count())
        .select_from(a)
        .where(a.deal_id == deal, a.kind.in_([k.value for k in MESSAGE_KINDS[:2]]))
        .scalar_subquery()
        .label("messages"),
        select(func.count())
        .select_from(Task)
        .where(Task.deal_id == deal, Task.status.in_([s.value for s in OPEN_TASK_STATUSES]))
        .scalar_subquery()
        .label("open_tasks"),
    ).subquery("counts")
    last = (
        select(a.id)
        .where(a.deal_id == deal)
        .order_by(a.at.desc(), a.id.desc())
        .limit(bindparam("n", type_=Integer))
        .subquery("last")
    )
    return (
        select(counts.c.files, counts.c.messages, counts.c.open_tasks, a)
        .select_from(counts)
        .outerjoin(last, true())
        .outerjoin(a, a.id == last.c.id)
        .order_by(a.at.desc(), a.id.desc())
    )
