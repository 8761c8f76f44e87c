"""Deals and what happens to them: lists and search, stage history, activities."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, bindparam, func, or_, select

from storage.models import Company, Contact, Deal, StageHistory
from storage.repositories.base import Repo

# The tap's statements, built once (building and keying a statement per call costs more
# than running it).
_WITH_CLIENT = (
    select(Deal, Contact, Company)
    .outerjoin(Contact, Contact.id == Deal.contact_id)
    .outerjoin(Company, Company.id == Deal.company_id)
    .where(Deal.id == bindparam("deal_id"))
)


class DealRepo(Repo):
    async def titles(self, deal_ids: Sequence[int]) -> dict[int, str]:
        """{deal id: title} of the given deals (one statement; none for no ids)."""
        if not deal_ids:
            return {}
        rows = await self.session.execute(
            select(Deal.id, Deal.title).where(Deal.id.in_(set(deal_ids)))
        )
        return {int(i): str(t) for i, t in rows}

    async def with_client(self, deal_id: int) -> Deal | None:
        """The deal with its contact and company in one statement (they land in the
        session's identity map, so the card reads them without another query)."""
        row = (await self.session.execute(_WITH_CLIENT, {"deal_id": deal_id})).first()
        if row is None:
            return None
        # The identity map holds objects weakly: keep the client's rows alive for this
        # session, or they are gone (and read again) by the time the card asks for them.
        self.session.info.setdefault("kept", []).extend(x for x in row[1:] if x is not None)
        deal: Deal = row[0]
        return deal

    async def page(
        self,
        *,
        manager_id: int | None,
        pipeline_id: int | None,
        stage_id: int | None,
        open_only: bool,
        offset: int,
        limit: int,
    ) -> tuple[Sequence[Deal], int]:
        conds: list[Any] = []
        if manager_id is not None:
            conds.append(Deal.manager_id == manager_id)
        if pipeline_id is not None:
            conds.append(Deal.pipeline_id == pipeline_id)
        if stage_id is not None:
            conds.append(Deal.stage_id == stage_id)
        if open_only:
            conds.append(Deal.closed_at.is_(None))
        total = await self.session.scalar(select(func.count()).select_from(Deal).where(*conds))
        rows = await self.session.scalars(
            select(Deal)
            .where(*conds)
            .order_by(Deal.updated_at.desc(), Deal.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return rows.all(), int(total or 0)

    async def entered_stage_between(
        self, stage_id: int, after: datetime | None, before: datetime
    ) -> Sequence[Deal]:
        """Deals now in the stage that entered it in [after, before): one range of
        ix_deals_stage_entered."""
        stmt = select(Deal).where(Deal.stage_id == stage_id, Deal.stage_entered_at < before)
        if after is not None:
            stmt = stmt.where(Deal.stage_entered_at >= after)
        return list(await self.session.scalars(stmt.order_by(Deal.stage_entered_at, Deal.id)))

    async def stale_counts(
        self, cutoffs: Sequence[tuple[int, datetime]], manager_id: int | None
    ) -> dict[int | None, int]:
        """Deals per manager now in one of the stages that entered it before the stage's
        cutoff (stale deals): one index range per stage."""
        counts: dict[int | None, int] = {}
        for stage_id, cutoff in cutoffs:
            rows = await self.session.execute(
                select(Deal.manager_id, func.count())
                .where(
                    Deal.stage_id == stage_id,
                    Deal.stage_entered_at < cutoff,
                    *([] if manager_id is None else [Deal.manager_id == manager_id]),
                )
                .group_by(Deal.manager_id)
            )
            for mid, n in rows:
                counts[mid] = counts.get(mid, 0) + int(n)
        return counts

    async def search(
        self,
        needle: str,
        manager_id: int | None,
        limit: int,
        *,
        offset: int = 0,
        deal_id: int | None = None,
    ) -> tuple[Sequence[Deal], int]:
        """A page of the deals whose search text holds `needle` (or whose number is
        `deal_id`), open ones first, and how many there are in all."""
        escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        match: ColumnElement[bool] = Deal.search_text.like(f"%{escaped}%", escape="\\")
        if deal_id is not None:
            match = or_(match, Deal.id == deal_id)
        where: list[ColumnElement[bool]] = [match]
        if manager_id is not None:
            where.append(Deal.manager_id == manager_id)
        total = await self.session.scalar(select(func.count()).select_from(Deal).where(*where))
        rows = await self.session.scalars(
            select(Deal)
            .where(*where)
            .order_by(Deal.closed_at.is_not(None), Deal.updated_at.desc(), Deal.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return rows.all(), int(total or 0)

    async def by_contact_ids(self, contact_ids: Sequence[int]) -> Sequence[Deal]:
        if not contact_ids:
            return []
        rows = await self.session.scalars(
            select(Deal).where(Deal.contact_id.in_(contact_ids)).order_by(Deal.id)
        )
        return rows.all()

    async def linked(self, deal_id: int, parent_id: int | None) -> Sequence[Deal]:
        """The deals linked to this one: the deal it came from and those made from it
        (linked deals, issue 24), oldest first."""
        cond = Deal.parent_deal_id == deal_id
        if parent_id is not None:
            cond = cond | (Deal.id == parent_id)
        rows = await self.session.scalars(select(Deal).where(cond).order_by(Deal.id))
        return rows.all()


class HistoryRepo(Repo):
    async def for_deal(self, deal_id: int) -> Sequence[StageHistory]:
        rows = await self.session.scalars(
            select(StageHistory)
            .where(StageHistory.deal_id == deal_id)
            .order_by(StageHistory.at, StageHistory.id)
        )
        return rows.all()

    async def for_lead(self, lead_id: int) -> Sequence[StageHistory]:
        rows = await self.session.scalars(
            select(StageHistory)
            .where(StageHistory.lead_id == lead_id)
            .order_by(StageHistory.at, StageHistory.id)
        )
        return rows.all()
