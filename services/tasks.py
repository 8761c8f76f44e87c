"""Tasks: created by people and automatically on stage entry (stage `task` config)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from storage.enums import TaskKind, TaskStatus
from storage.models import Deal, Stage, Task
from storage.uow import UnitOfWork


async def create_task(
    uow: UnitOfWork,
    *,
    kind: str,
    title: str,
    due_at: datetime | None,
    created_by_id: int | None,
    deal_id: int | None = None,
    lead_id: int | None = None,
    assignee_id: int | None = None,
    assignee_role: str | None = None,
    comment: str | None = None,
    payload: dict[str, Any] | None = None,
) -> Task:
    """The one place a task row is made (so delivery hooks live in one place too)."""
    task = Task(
        kind=kind,
        title=title,
        deal_id=deal_id,
        lead_id=lead_id,
        assignee_id=assignee_id,
        assignee_role=assignee_role,
        status=TaskStatus.OPEN,
        due_at=due_at,
        comment=comment,
        payload=payload or {},
        created_by_id=created_by_id,
        created_at=uow.clock.now(),
    )
    uow.repo.add(task)
    await uow.flush()
    return task


async def on_stage_entry(
    uow: UnitOfWork, deal: Deal, stage: Stage, actor_id: int | None
) -> Task | None:
    """Create the stage's automatic task, if its configuration has one."""
    spec = stage.on_enter_task
    if not spec:
        return None
    kind = str(spec.get("kind") or TaskKind.CUSTOM)
    if await uow.repo.tasks.open_for_deal(deal.id, kind):
        return None  # re-entering the stage: the earlier task is still open
    to_manager = bool(spec.get("to_manager"))
    return await create_task(
        uow,
        kind=kind,
        title=str(spec["title"]),
        due_at=uow.clock.now() + timedelta(hours=float(spec.get("due_in_hours", 24))),
        created_by_id=actor_id,
        deal_id=deal.id,
        assignee_id=deal.manager_id if to_manager else None,
        assignee_role=None if to_manager else spec.get("to_role"),
        payload={"title_en": spec.get("title_en"), "stage": stage.code, "auto": True},
    )
