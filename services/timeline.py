"""Writing the timeline: the one way a service records what it did to a deal, a lead or a
contact (`activities` rows; storage/models/deals.py). Stage changes and new tasks are
recorded by their own rows (stage_history, tasks) and merged when the timeline is read."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.common import employee_name
from services.dto import TimelineEntry
from storage.enums import ActivityKind
from storage.models import Activity, Employee
from storage.repositories.timeline import SOURCE_ACTIVITY
from storage.uow import UnitOfWork


def record(
    uow: UnitOfWork,
    kind: ActivityKind,
    *,
    actor_id: int | None,
    text: str = "",
    deal_id: int | None = None,
    lead_id: int | None = None,
    contact_id: int | None = None,
    task_id: int | None = None,
    at: datetime | None = None,
    media_type: str | None = None,
    file_id: str | None = None,
    file_unique_id: str | None = None,
    caption: str | None = None,
    chat_id: int | None = None,
    message_id: int | None = None,
    payload: dict[str, Any] | None = None,
) -> Activity:
    """Add one timeline row (no flush, no commit: the caller's unit of work owns it).
    `media_type` is set exactly when `file_id` is (a row with a file). Numbers, money and
    dates go in `payload` as facts (kopecks, ISO text) for the reader to draw in its own
    language (handlers/ui/timeline.py); `text` holds what a person typed, never them."""
    if (media_type is None) != (file_id is None):
        raise ValueError("media_type and file_id go together")
    row = Activity(
        deal_id=deal_id,
        lead_id=lead_id,
        contact_id=contact_id,
        task_id=task_id,
        kind=kind.value,
        text=text,
        author_id=actor_id,
        at=at or uow.clock.now(),
        media_type=media_type,
        file_id=file_id,
        file_unique_id=file_unique_id,
        caption=caption,
        chat_id=chat_id,
        message_id=message_id,
        payload=payload,
    )
    uow.repo.add(row)
    return row


async def record_reassignment(
    uow: UnitOfWork,
    actor_id: int | None,
    previous_id: int | None,
    to: Employee,
    *,
    deal_id: int | None = None,
    lead_id: int | None = None,
) -> str | None:
    """The 'reassigned' row of a deal's or a lead's timeline (who had it, who has it now);
    returns the previous manager's name."""
    previous_name = await employee_name(uow, previous_id)
    record(
        uow,
        ActivityKind.REASSIGNED,
        actor_id=actor_id,
        text=to.name,
        deal_id=deal_id,
        lead_id=lead_id,
        payload={"from_id": previous_id, "from": previous_name, "to_id": to.id, "to": to.name},
    )
    return previous_name


async def entry_of(uow: UnitOfWork, row: Activity) -> TimelineEntry:
    """A stored timeline row as the DTO the views draw."""
    return TimelineEntry(
        kind=row.kind,
        at=row.at,
        actor=await employee_name(uow, row.author_id),
        text=row.text or "",
        media_type=row.media_type,
        caption=row.caption,
        payload=dict(row.payload or {}),
        source=SOURCE_ACTIVITY,
        id=row.id,
    )
