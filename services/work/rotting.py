"""Stale ("rotting") deals: a deal that sat in a stage longer than the stage allows.

The limit is per stage, ``rot_after_days`` in the pipelines TOML (services/sales/
pipeline_config.py), kept on the stage row (``Stage.rot_after_days``) and so in the cached
stage rules. A deal is stale when it entered its current stage (``stage_entered_at``) more
than that many days ago; any stage move (forward, back, lost, deferred) starts a new stay.

`rot_scan` (every scan of bot/scheduler.py) gives each deal that became stale one alert to
its manager through the outbox (kind ``deal.rotting``), drawn with buttons: the next stage,
the next contact, lost (the reason picker) — the card's own callbacks, so every tap goes
through the same services and permission checks as on the card. "One" holds across
restarts and several workers: the dedupe key is ``rot:<deal>:<stay start>`` (a later stay
past the limit is a new alert), and the scan's ``job_runs`` row is its watermark, committed
with the alerts: each scan reads only the deals whose limit passed since the previous one
(one index range per stage); the first scan ever looks back FIRST_LOOKBACK. A deal
without a manager gets no alert (it still shows stale).
Lowering a stage's limit does not alert the deals that crossed the new limit before the
scan that saw it; they show stale and are counted in the leaders' digest.
"""

from __future__ import annotations

from datetime import timedelta

from services.outbox import queue as outbox
from services.outbox.payloads import DealRotting
from services.outbox.queue import Kind
from services.sales.pipelines import rules_for, stale_days
from storage.models import Deal
from storage.uow import UnitOfWork

ROT_JOB = "rot.scan"
# The very first scan (no job-run row yet: a new install, or an existing database on the
# first start of this version) looks back this far only: deals that went stale long ago
# show stale and are counted in the digest, but do not flood their managers at once.
FIRST_LOOKBACK = timedelta(days=7)


def alert_key(deal: Deal) -> str:
    return f"rot:{deal.id}:{int(deal.stage_entered_at.timestamp())}"


async def rot_scan(uow: UnitOfWork) -> int:
    """Alert the managers of deals that became stale since the previous scan. Commits;
    returns the number of alerts added."""
    now = uow.clock.now()
    previous = await uow.repo.system.last_run(ROT_JOB) or now - FIRST_LOOKBACK
    added = 0
    for stage in await uow.repo.pipelines.rotting_stages():
        assert stage.rot_after_days is not None
        limit = timedelta(days=stage.rot_after_days)
        rules = await rules_for(uow, stage.pipeline_id)
        _, nxt = rules.neighbours(rules.stage(stage.id))
        after = previous - limit
        for deal in await uow.repo.deals.entered_stage_between(stage.id, after, now - limit):
            if deal.manager_id is None:
                continue
            payload = DealRotting(
                title=deal.title,
                amount=deal.amount,
                stage=stage.name,
                stage_en=stage.name_en,
                days=stale_days(stage, deal.stage_entered_at, now),
                limit=stage.rot_after_days,
                v=deal.version,
                next=nxt.name if nxt else None,
                next_en=nxt.name_en if nxt else None,
            )
            if await outbox.enqueue(
                uow,
                deal.manager_id,
                Kind.DEAL_ROTTING,
                payload,
                now,
                dedupe_key=alert_key(deal),
                deal_id=deal.id,
            ):
                added += 1
    await uow.repo.system.record_run(ROT_JOB, now)
    await uow.commit()
    return added


async def stale_per_manager(uow: UnitOfWork, manager_id: int | None) -> dict[int | None, int]:
    """Stale deals now per manager (None: deals nobody is responsible for)."""
    now = uow.clock.now()
    cutoffs = [
        (s.id, now - timedelta(days=s.rot_after_days))
        for s in await uow.repo.pipelines.rotting_stages()
        if s.rot_after_days is not None
    ]
    return await uow.repo.deals.stale_counts(cutoffs, manager_id)
