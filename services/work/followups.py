"""Follow-ups: the next contact with a client, and Deferred demand's task buttons.

`set_next_contact` makes a ``follow_up`` task for the deal's manager (in Deferred demand the
``deferred_contact`` task) and replaces the earlier one. The deferred-contact task offers
`deferred_back_to_sales`, `deferred_lost` and `defer_again`. Deals move through
services.sales.stage and services.sales.deals.
"""

from __future__ import annotations

from datetime import datetime

from services import dates, policy, validation
from services.dto import DealCard
from services.errors import RuleViolation
from services.permissions import Action, Actor
from services.sales import deals
from services.sales import stage as stage_core
from services.tasks import (
    close_and_cancel,
    contact_task,
    future,
    load_task,
    require_kind,
    require_open,
)
from storage.enums import PipelineRole, TaskKind, TaskStatus
from storage.models import Task
from storage.uow import UnitOfWork


async def set_next_contact(
    uow: UnitOfWork,
    actor: Actor,
    deal_id: int,
    when: datetime,
    expected_version: int | None = None,
    comment: str | None = None,
) -> DealCard:
    """ "Next contact" on any open deal: a follow-up task for its manager, reminded at `when`.

    Replaces the deal's earlier open follow-up; in Deferred demand it reschedules the
    deferred-contact task instead.
    """
    deal, rules = await stage_core.load_for(uow, actor, deal_id, Action.DEAL_EDIT, expected_version)
    stage_core.ensure_open(rules, deal)
    now = uow.clock.now()
    when = future(when, now)
    note = validation.optional_text(comment, "comment")
    kind = (
        TaskKind.DEFERRED_CONTACT
        if rules.pipeline.role == PipelineRole.DEFERRED
        else TaskKind.FOLLOW_UP
    )
    for old in await uow.repo.tasks.open_for_deal(deal.id, kind):
        await close_and_cancel(uow, old, TaskStatus.CANCELLED)
    deal.next_contact_at = when
    deal.updated_at = now
    deal.last_activity_at = now
    await contact_task(uow, actor, deal, kind, when, note)
    card: DealCard = await stage_core.finish(uow, actor, deal)
    return card


async def set_next_contact_quick(
    uow: UnitOfWork,
    actor: Actor,
    deal_id: int,
    choice: dates.QuickChoice | str,
    tz: str | None = None,
    expected_version: int | None = None,
) -> DealCard:
    when = dates.quick(choice, uow.clock, tz or policy.of(uow).timezone)
    return await set_next_contact(uow, actor, deal_id, when, expected_version)


# --- deferred demand ----------------------------------------------------------------------


async def _deferred_task(uow: UnitOfWork, actor: Actor, task_id: int) -> Task:
    task = await load_task(uow, actor, task_id)
    require_kind(task, TaskKind.DEFERRED_CONTACT)
    require_open(task)
    return task


async def deferred_back_to_sales(uow: UnitOfWork, actor: Actor, task_id: int) -> DealCard:
    """Deferred demand task button "Back to Sales"."""
    task = await _deferred_task(uow, actor, task_id)
    await close_and_cancel(uow, task, TaskStatus.DONE)
    assert task.deal_id is not None
    card: DealCard = await deals.return_to_sales(uow, actor, task.deal_id, None)
    return card


async def deferred_lost(
    uow: UnitOfWork, actor: Actor, task_id: int, reason_code: str, comment: str | None = None
) -> DealCard:
    """Deferred demand task button "Lost" (a reason from the fixed list)."""
    task = await _deferred_task(uow, actor, task_id)
    await close_and_cancel(uow, task, TaskStatus.DONE)
    assert task.deal_id is not None
    card: DealCard = await deals.lose(uow, actor, task.deal_id, reason_code, comment)
    return card


async def defer_again(
    uow: UnitOfWork, actor: Actor, task_id: int, when: datetime, comment: str | None = None
) -> DealCard:
    """Deferred demand task button "Defer again": a new date, the deal waits again."""
    task = await _deferred_task(uow, actor, task_id)
    assert task.deal_id is not None
    deal, rules = await stage_core.load_for(uow, actor, task.deal_id, Action.DEAL_MOVE, None)
    if rules.pipeline.role != PipelineRole.DEFERRED:
        raise RuleViolation("not_deferred")
    current = stage_core.ensure_open(rules, deal)
    now = uow.clock.now()
    when = future(when, now)
    note = validation.optional_text(comment, "comment")
    await close_and_cancel(uow, task, TaskStatus.DONE)
    deal.next_contact_at = when
    if current.id != rules.entry.id:
        rules.check_move(current, rules.entry)
        await stage_core.enter(uow, actor, deal, rules.entry, comment=note)
    else:
        deal.updated_at = now
        deal.last_activity_at = now
    await contact_task(uow, actor, deal, TaskKind.DEFERRED_CONTACT, when, note)
    card: DealCard = await stage_core.finish(uow, actor, deal)
    return card
