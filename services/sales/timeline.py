"""Reading timelines: a deal's, a lead's or a contact's history newest first (stage changes,
tasks made and every stored event merged in one statement: storage/repositories/timeline.py),
filtered by kind and keyset-paged, and a deal's files for the Files button.

Client messages (Telegram Business) are readable by whoever may read the deal's or lead's
messages (`Action.MESSAGES_READ`: its manager, leaders and admins); the timeline of a
contact by leaders and admins, and by the manager of one of the contact's deals.
"""

from __future__ import annotations

import math
from pathlib import Path

from services import files
from services.common import employee_name, is_id, load
from services.dto import FileItem, Page, TimelineEntry, TimelinePage
from services.errors import NotFound, PermissionDenied, RuleViolation, ValidationError
from services.permissions import Action, Actor, can
from services.sales import leads as leads_service
from services.sales import stage as stage_core
from services.sales.pipelines import stage_names
from storage.enums import FILTER_KINDS, MESSAGE_KINDS, TimelineFilter
from storage.models import Contact
from storage.repositories.timeline import Cursor, Subject, TimelineRow
from storage.uow import UnitOfWork

PER_PAGE = 8
FILES_PER_PAGE = 10  # a media group holds at most 10


def _filter(value: str | TimelineFilter) -> TimelineFilter:
    try:
        return TimelineFilter(value)
    except ValueError:
        raise ValidationError("filter", "unknown") from None


async def _entry(uow: UnitOfWork, row: TimelineRow) -> TimelineEntry:
    to_name = to_en = reason = reason_en = None
    if row.to_stage_id is not None:
        to_name, to_en = (await stage_names(uow)).get(row.to_stage_id, ("?", None))
    if row.reason_id is not None:
        found = await stage_core.loss_reason_by_id(uow, row.reason_id)
        reason, reason_en = (found.name, found.name_en) if found else (None, None)
    return TimelineEntry(
        kind=row.kind,
        at=row.at,
        actor=await employee_name(uow, row.actor_id),
        text=row.text or "",
        to_stage=to_name,
        to_stage_en=to_en,
        reason=reason,
        reason_en=reason_en,
        media_type=row.media_type,
        caption=row.caption,
        payload=dict(row.payload or {}),
        source=row.source,
        id=row.id,
    )


async def _page(
    uow: UnitOfWork,
    subject: Subject,
    title: str,
    flt: TimelineFilter,
    after: tuple[int, int] | None,
    per_page: int,
    messages: bool,
) -> TimelinePage:
    files = flt == TimelineFilter.FILES
    kinds: list[str] | None = [k.value for k in FILTER_KINDS[flt]]
    if files:  # rows with a file, whatever their kind (a client's photo too)
        kinds = None
    if not messages:  # not this actor's to read: client messages are left out
        every = [k.value for k in FILTER_KINDS[flt if not files else TimelineFilter.ALL]]
        kinds = [k for k in every if k not in MESSAGE_KINDS]
    elif flt == TimelineFilter.ALL:
        kinds = None
    cursor: Cursor | None = None
    if after is not None:
        source, ident = after
        if not is_id(ident):
            raise ValidationError("page", "unknown")
        cursor = await uow.repo.timeline.cursor(subject, source, ident)
        if cursor is None:
            raise ValidationError("page", "unknown")
    rows = await uow.repo.timeline.page(subject, kinds, cursor, per_page + 1, files=files)
    more = len(rows) > per_page
    rows = rows[:per_page]
    items = tuple([await _entry(uow, r) for r in rows])
    nxt = (rows[-1].source, rows[-1].id) if more and rows else None
    return TimelinePage(title, items, flt.value, nxt, after is None)


async def deal_timeline(
    uow: UnitOfWork,
    actor: Actor,
    deal_id: int,
    flt: str | TimelineFilter = TimelineFilter.ALL,
    after: tuple[int, int] | None = None,
    per_page: int = PER_PAGE,
) -> TimelinePage:
    """A page of the deal's timeline, newest first, starting after `after` (a previous
    page's `next`)."""
    chosen = _filter(flt)
    deal, _ = await stage_core.load_for(uow, actor, deal_id, Action.DEAL_VIEW, None)
    readable = can(actor, Action.MESSAGES_READ, deal)
    return await _page(uow, Subject(deal_id=deal.id), deal.title, chosen, after, per_page, readable)


async def lead_timeline(
    uow: UnitOfWork,
    actor: Actor,
    lead_id: int,
    flt: str | TimelineFilter = TimelineFilter.ALL,
    after: tuple[int, int] | None = None,
    per_page: int = PER_PAGE,
) -> TimelinePage:
    chosen = _filter(flt)
    lead = await leads_service.load_for(uow, actor, lead_id, Action.LEAD_VIEW)
    readable = can(actor, Action.MESSAGES_READ, lead)
    return await _page(uow, Subject(lead_id=lead.id), lead.name, chosen, after, per_page, readable)


async def contact_timeline(
    uow: UnitOfWork,
    actor: Actor,
    contact_id: int,
    flt: str | TimelineFilter = TimelineFilter.ALL,
    after: tuple[int, int] | None = None,
    per_page: int = PER_PAGE,
) -> TimelinePage:
    """What was recorded on the person across their deals (client messages, notes...)."""
    chosen = _filter(flt)
    contact = await load(uow, Contact, contact_id, "contact")
    deals = await uow.repo.deals.by_contact_ids([contact.id])
    if not actor.sees_all and not any(can(actor, Action.DEAL_VIEW, d) for d in deals):
        raise PermissionDenied(str(Action.DEAL_VIEW))  # not this actor's client
    readable = actor.sees_all or any(can(actor, Action.MESSAGES_READ, d) for d in deals)
    return await _page(
        uow, Subject(contact_id=contact.id), contact.name, chosen, after, per_page, readable
    )


async def deal_files(
    uow: UnitOfWork, actor: Actor, deal_id: int, page: int = 0, per_page: int = FILES_PER_PAGE
) -> Page[FileItem]:
    """The deal's files, oldest first, a page at a time (Telegram file ids and captions)."""
    deal, _ = await stage_core.load_for(uow, actor, deal_id, Action.DEAL_VIEW, None)
    if not isinstance(page, int) or page < 0:
        raise ValidationError("page", "unknown")
    readable = can(actor, Action.MESSAGES_READ, deal)
    rows, total = await uow.repo.timeline.files(
        deal.id, page * per_page, per_page, with_messages=readable
    )
    if total == 0:
        raise RuleViolation("no_files")
    pages = max(1, math.ceil(total / per_page))
    if page >= pages:
        raise NotFound("page", page)
    items = tuple(
        [
            FileItem(
                media_type=str(r.media_type),
                file_id=str(r.file_id),
                caption=r.caption,
                at=r.at,
                author=await employee_name(uow, r.author_id),
            )
            for r in rows
        ]
    )
    return Page(items, page, pages, total)


async def stored_copy(
    uow: UnitOfWork, actor: Actor, deal_id: int, file_id: str, directory: Path
) -> Path | None:
    """Voronka's copy on disk of a file on the deal's timeline (services/files.py), for
    someone who may see the deal; None when there is none (not stored yet, or not a file
    of this deal)."""
    deal, _ = await stage_core.load_for(uow, actor, deal_id, Action.DEAL_VIEW, None)
    readable = can(actor, Action.MESSAGES_READ, deal)
    sha256 = await uow.repo.files.copy_of(deal.id, file_id, with_messages=readable)
    if sha256 is None:
        return None
    path = files.content_path(directory, sha256)
    return path if path.is_file() else None
