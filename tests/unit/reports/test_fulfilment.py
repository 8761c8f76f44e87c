"""/funnel's fulfilment figures (issue 24) on a hand-computed fixture: lead time from the
contract to the installation (median, 75th percentile), crew load, claims per crew."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from handlers.funnel.views import screen_text
from services.errors import PermissionDenied
from services.reports.analytics import Period, ReportFilter
from services.reports.fulfilment import fulfilment, percentile
from services.reports.screens import ReportKind, report_screen
from storage.models import Stage, StageHistory, Task
from tests.factories import bare_deal, cast

MARCH = ReportFilter(period=Period.CUSTOM, start=date(2026, 3, 1), end=date(2026, 3, 31))


def at(month: int, day: int, hour: int = 0) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.75) == 7.0
    assert percentile([20, 3.5, 13, 10], 0.5) == 11.5
    assert percentile([20, 3.5, 13, 10], 0.75) == 14.75


async def test_lead_time_crew_load_and_claims_by_hand(uow_factory, make_actor):
    staff = await cast(make_actor, "lee", "igor", "ilya", "ann")
    igor, ilya = staff["igor"].id, staff["ilya"].id
    async with uow_factory() as uow:
        stages: dict[str, Stage] = {}
        for role in ("sales", "fulfilment", "claims"):
            p = await uow.repo.pipelines.by_role(role)
            assert p is not None
            for s in await uow.repo.pipelines.stages(p.id):
                stages[f"{role}.{s.code}"] = s

        def move(deal, code: str, when: datetime) -> None:
            stage = stages[code]
            uow.repo.add(
                StageHistory(
                    deal_id=deal.id,
                    pipeline_id=stage.pipeline_id,
                    to_stage_id=stage.id,
                    at=when,
                )
            )

        async def order(contract: datetime | None, made: datetime, installed: datetime):
            sale = bare_deal(stages["sales.won"], made)
            uow.repo.add(sale)
            await uow.flush()
            if contract is not None:
                move(sale, "sales.contract_signed", contract)
            row = bare_deal(stages["fulfilment.installed"], made, parent_deal_id=sale.id)
            uow.repo.add(row)
            await uow.flush()
            move(row, "fulfilment.installed", installed)
            move(row, "fulfilment.installed", installed.replace(day=installed.day + 1))  # again
            return row

        # Contract -> installed: 10, 13, 3.5 and (no contract: from the order) 20 days;
        # the fifth is installed in April, outside the period.
        o1 = await order(at(3, 1), at(3, 2), at(3, 11))
        o2 = await order(at(2, 20), at(2, 21), at(3, 5))
        o3 = await order(at(3, 2, 12), at(3, 3), at(3, 6))
        await order(None, at(3, 10), at(3, 30))
        o5 = await order(at(3, 1), at(3, 2), at(4, 2))

        def job(deal, who: int, status: str, due: datetime) -> None:
            uow.repo.add(
                Task(
                    kind="install",
                    title="Монтаж",
                    deal_id=deal.id,
                    assignee_id=who,
                    status=status,
                    due_at=due,
                    created_at=at(2, 1),
                    payload={},
                )
            )

        job(o1, igor, "done", at(3, 10))
        job(o2, igor, "done", at(3, 4))
        job(o2, ilya, "done", at(3, 4))
        job(o3, igor, "open", at(3, 25))
        job(o3, igor, "cancelled", at(3, 5))  # not counted
        job(o5, igor, "open", at(4, 1))  # April: not counted
        for parent, made in ((o1, at(3, 20)), (o2, at(3, 21)), (o3, at(4, 3))):
            uow.repo.add(bare_deal(stages["claims.claim_received"], made, parent_deal_id=parent.id))
        await uow.commit()

    async with uow_factory() as uow:
        report = await fulfilment(uow, staff["lee"], MARCH)
    assert report.orders == 4
    assert report.median_days == 11.5 and report.p75_days == 14.75
    crews = {(r.name, r.jobs, r.done, r.claims) for r in report.crews}
    # Igor: three March jobs (two done), claims on o1 and o2; Ilya: one, and o2's claim.
    assert crews == {("Igor", 3, 2, 2), ("Ilya", 1, 1, 1)}
    # On /funnel: under the Order fulfilment pipeline's funnel, for a leader.
    async with uow_factory() as uow:
        pipeline = await uow.repo.pipelines.by_role("fulfilment")
        assert pipeline is not None
        chosen = replace(MARCH, pipeline_id=pipeline.id)
        screen = await report_screen(uow, staff["lee"], ReportKind.PERIOD, chosen)
    assert screen.fulfilment == report
    text = screen_text(screen, "en", UTC)
    assert "Contract → installed: median 11.5 d, 75% within 14.8 d (4 orders)" in text
    assert "🔧 Igor: jobs 3, done 2, claims 2" in text
    assert "🔧 Ilya: jobs 1, done 1, claims 1" in text
    async with uow_factory() as uow:
        with pytest.raises(PermissionDenied):
            await fulfilment(uow, staff["ann"], MARCH)
