"""An order's dates (issue 24): a production or delivery date that passed while the order
is still at the stage that date is for alerts its manager once per date (a new date set,
a new alert). Run by the scheduler's scan (bot/scheduler.py); the reminders on the day
itself are tasks (services.tasks.date_reminder, made when the stage is entered)."""

from __future__ import annotations

from services.errors import RuleViolation
from services.outbox import queue as outbox
from services.outbox.payloads import DateSlipped
from services.outbox.queue import Kind
from services.sales.pipelines import rules_by_role
from services.tasks import DATE_REMINDERS
from storage.enums import PipelineRole
from storage.uow import UnitOfWork


async def slipped_scan(uow: UnitOfWork) -> int:
    """Alert the managers of orders whose date slipped. Commits; returns alerts added."""
    try:
        rules = await rules_by_role(uow, PipelineRole.FULFILMENT)
    except RuleViolation:
        return 0
    now = uow.clock.now()
    added = 0
    for stage in rules.stages:
        for field in DATE_REMINDERS:
            if field not in stage.required_fields:
                continue
            for deal in await uow.repo.fulfilment.past_date_in_stage(stage.id, field, now):
                when = getattr(deal, field)
                if deal.manager_id is None:
                    continue
                added += bool(
                    await outbox.enqueue(
                        uow,
                        deal.manager_id,
                        Kind.DATE_SLIPPED,
                        DateSlipped(
                            title=deal.title,
                            field=field,
                            when=when,
                            stage=stage.name,
                            stage_en=stage.name_en,
                        ),
                        now,
                        dedupe_key=f"slip:{deal.id}:{field}:{int(when.timestamp())}",
                        deal_id=deal.id,
                    )
                )
    await uow.commit()
    return added
