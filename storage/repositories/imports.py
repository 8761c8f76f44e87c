"""Spreadsheet imports: import jobs, the look-ups an import row needs, and the bulk insert of
the imported leads. ``uow.repo.imports``; the steps are services/intake/imports.py."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, func, insert, literal, select, text, update

from storage.enums import ActivityKind, LeadStatus
from storage.models import Activity, Base, Contact, Lead, StageHistory
from storage.models.imports import OPEN_STATUSES, ImportJob, ImportStatus
from storage.repositories.base import Repo

_LEADS = Base.metadata.tables[Lead.__tablename__]
_HISTORY = Base.metadata.tables[StageHistory.__tablename__]
_ACTIVITIES = Base.metadata.tables[Activity.__tablename__]
_OPEN_LEAD = (LeadStatus.NEW, LeadStatus.QUALIFYING)


class ImportRepo(Repo):
    async def lock(self, job_id: int) -> None:
        """Lock the job's row until the transaction ends: two Import taps on two workers,
        the second waits here for the first to commit. (SQLite transactions are exclusive
        from their start.)"""
        await self.session.execute(
            select(ImportJob.id).where(ImportJob.id == job_id).with_for_update()
        )

    async def payload(self, job_id: int) -> bytes | None:
        """The uploaded rows (compressed), read alone: the job object never loads them."""
        value: bytes | None = await self.session.scalar(
            select(ImportJob.payload).where(ImportJob.id == job_id)
        )
        return value

    async def checked(self, job_id: int) -> bytes | None:
        """The rows the dry run would import (compressed)."""
        value: bytes | None = await self.session.scalar(
            select(ImportJob.checked).where(ImportJob.id == job_id)
        )
        return value

    async def expire_abandoned(self, updated_before: datetime) -> None:
        """Open jobs untouched since `updated_before` expire and free their rows (one cheap
        UPDATE)."""
        await self.session.execute(
            update(ImportJob)
            .where(ImportJob.status.in_(OPEN_STATUSES), ImportJob.updated_at < updated_before)
            .values(status=ImportStatus.EXPIRED, payload=b"", checked=None)
        )

    async def taken_phones(self, phones: Sequence[str]) -> set[str]:
        """Which of these phones belong to a contact or an open lead (two IN-list queries)."""
        found: set[str] = set()
        for stmt in (
            select(Contact.phone).where(Contact.phone.in_(phones)),
            select(Lead.phone).where(Lead.phone.in_(phones), Lead.status.in_(_OPEN_LEAD)),
        ):
            found.update(p for p in await self.session.scalars(stmt) if p)
        return found

    async def taken_emails(self, emails: Sequence[str]) -> set[str]:
        """Which of these lower-case emails belong to a contact or an open lead, ignoring
        case (two IN-list queries)."""
        found: set[str] = set()
        for stmt in (
            select(func.lower(Contact.email)).where(func.lower(Contact.email).in_(emails)),
            select(func.lower(Lead.email)).where(
                func.lower(Lead.email).in_(emails), Lead.status.in_(_OPEN_LEAD)
            ),
        ):
            found.update(e for e in await self.session.scalars(stmt) if e)
        return found

    async def reserve_lead_ids(self, n: int) -> list[int]:
        """Ids for `n` new leads, so a bulk insert needs no RETURNING (SQLite cannot return
        a batch's ids in parameter order: SQLAlchemy would insert row by row).

        PostgreSQL: `n` values of the table's sequence (unique whatever else runs). SQLite:
        the ids after the current maximum, which is safe because every SQLite transaction
        here starts with BEGIN IMMEDIATE (storage/db.py): nobody else inserts until we
        commit.
        """
        if self.dialect == "postgresql":
            rows = await self.session.scalars(
                text(
                    "SELECT nextval(pg_get_serial_sequence(:table, 'id')::regclass) "
                    "FROM generate_series(1, :n)"
                ),
                {"table": _LEADS.name, "n": n},
            )
            return list(rows)
        start = await self.session.scalar(select(func.coalesce(func.max(_LEADS.c.id), 0)))
        return list(range(int(start or 0) + 1, int(start or 0) + n + 1))

    async def insert_leads(
        self, leads: Sequence[dict[str, Any]], intake_payload: Mapping[str, Any]
    ) -> None:
        """Bulk Core inserts of these leads (column values; their ids are reserved here),
        then each lead's first history row and its intake row on the timeline, copied from
        the lead in the database (no second round of per-row parameters); the analytics
        triggers fire on the history inserts."""
        ids = await self.reserve_lead_ids(len(leads))
        for lead_id, values in zip(ids, leads, strict=True):
            values["id"] = lead_id
        await self.session.execute(insert(_LEADS), list(leads))
        leads_c = _LEADS.c
        await self.session.execute(
            insert(_HISTORY).from_select(
                ["lead_id", "pipeline_id", "to_stage_id", "actor_id", "at"],
                select(
                    leads_c.id,
                    leads_c.pipeline_id,
                    leads_c.stage_id,
                    leads_c.created_by_id,
                    leads_c.created_at,
                )
                .where(leads_c.id.in_(ids))
                .order_by(leads_c.id),
            )
        )
        await self.session.execute(
            insert(_ACTIVITIES).from_select(
                ["lead_id", "kind", "text", "author_id", "at", "payload"],
                select(
                    leads_c.id,
                    literal(ActivityKind.INTAKE.value),
                    func.coalesce(leads_c.need, ""),
                    leads_c.created_by_id,
                    leads_c.created_at,
                    literal(dict(intake_payload), JSON),
                )
                .where(leads_c.id.in_(ids))
                .order_by(leads_c.id),
            )
        )
