"""The Mini App board: open deals of one pipeline per stage (totals and pages of cards).

Cards are read as plain rows (no ORM objects): a board column is a read, never a write.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import func, select, union_all

from storage.models import Company, Contact, Deal
from storage.repositories.base import Repo


class BoardRow(NamedTuple):
    id: int
    stage_id: int
    title: str
    client: str | None  # the contact's name, else the company's
    amount: int | None
    next_contact_at: datetime | None
    stage_entered_at: datetime
    manager_id: int | None
    version: int


def _open(pipeline_id: int, manager_id: int | None) -> list[Any]:
    conds: list[Any] = [Deal.pipeline_id == pipeline_id, Deal.closed_at.is_(None)]
    if manager_id is not None:
        conds.append(Deal.manager_id == manager_id)
    return conds


def _cards() -> Any:
    return (
        select(
            Deal.id,
            Deal.stage_id,
            Deal.title,
            func.coalesce(Contact.name, Company.name).label("client"),
            Deal.amount,
            Deal.next_contact_at,
            Deal.stage_entered_at,
            Deal.manager_id,
            Deal.version,
        )
        .outerjoin(Contact, Contact.id == Deal.contact_id)
        .outerjoin(Company, Company.id == Deal.company_id)
    )


# A column lists the deals longest in the stage first (the stale ones on top). The index
# ix_deals_board (pipeline, closed_at, stage, stage_entered_at, amount, manager) serves a
# column's page in order and the per-stage totals without reading the table.
ORDER = (Deal.stage_entered_at, Deal.id)


class BoardRepo(Repo):
    async def totals(self, pipeline_id: int, manager_id: int | None) -> dict[int, tuple[int, int]]:
        """{stage id: (open deals, their amount)} of one pipeline (one statement)."""
        rows = await self.session.execute(
            select(Deal.stage_id, func.count(), func.coalesce(func.sum(Deal.amount), 0))
            .where(*_open(pipeline_id, manager_id))
            .group_by(Deal.stage_id)
        )
        return {int(s): (int(n), int(a or 0)) for s, n, a in rows}

    async def first_cards(
        self, pipeline_id: int, stage_ids: Sequence[int], manager_id: int | None, per_stage: int
    ) -> Sequence[BoardRow]:
        """The first `per_stage` cards of each stage, in one statement: a LIMIT per stage
        (each walks ix_deals_board from its start), joined by UNION ALL, so the cost is the
        cards shown, not the deals in the pipeline (a window over all of them is not)."""
        if not stage_ids:
            return []
        parts = [
            _cards()
            .where(*_open(pipeline_id, manager_id), Deal.stage_id == stage_id)
            .order_by(*ORDER)
            .limit(per_stage)
            .subquery()
            for stage_id in stage_ids
        ]
        stmt = union_all(*(select(part) for part in parts))
        return [BoardRow(*row) for row in await self.session.execute(stmt)]

    async def column(
        self, pipeline_id: int, stage_id: int, manager_id: int | None, offset: int, limit: int
    ) -> Sequence[BoardRow]:
        """One page of one stage's cards."""
        stmt = (
            _cards()
            .where(*_open(pipeline_id, manager_id), Deal.stage_id == stage_id)
            .order_by(*ORDER)
            .offset(offset)
            .limit(limit)
        )
        return [BoardRow(*row) for row in await self.session.execute(stmt)]
