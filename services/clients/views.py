"""What a client sees of their orders (issue 25): every deal of their linked contacts, in
every pipeline, in the client's words, and nothing internal.

A deal is shown as its stage in the client's words (`[pipelines.stages.client]` name /
name_en: a template over the deal's fields, services/sales/pipeline_config.CLIENT_FIELDS),
the address, the amount, the manager's first name and the payment schedule. Never: notes,
the timeline, other contacts, loss reasons, staff beyond that first name, money beyond the
amount and the schedule.

Which deals: those of the client's contacts, but not lost ones; a deal in a pipeline that
names no stage for clients (the Installment control copy of a sale) is folded into the deal
it came from (its schedule shows there). A stage without a client name shows the last stage
of the flow before it that has one, else a plain "in progress" / "done".

Every read checks `require_client` on the loaded deal. Part of the client's side that
other services reuse: `my_deals` / `my_deal`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.common import employee_name, is_id
from services.errors import PermissionDenied
from services.outbox import clients as clients_out
from services.outbox.clients import client_fields
from services.permissions import ClientActor, require_client
from services.sales.pipelines import PipelineRules, rules_for
from services.work import installments
from services.work.installments import DueInfo
from storage.enums import StageKind
from storage.models import Deal, Stage
from storage.uow import UnitOfWork

# A deal's state when no stage names it for the client.
IN_PROGRESS = "in_progress"
DONE = "done"
CLOSED = "closed"  # lost: shown only when asked for by number


@dataclass(frozen=True)
class ClientSchedule:
    total: int
    paid: int
    remaining: int
    overdue: int
    dues: tuple[DueInfo, ...]  # n, date, amount, paid, overdue: nothing internal

    @property
    def next_due(self) -> DueInfo | None:
        return next((d for d in self.dues if d.remaining > 0), None)


@dataclass(frozen=True)
class ClientStatus:
    """The deal's stage in the client's words: `name` / `name_en` are templates over
    `values` (the fields they name), or None: then `state` says it plainly."""

    name: str | None
    name_en: str | None
    values: dict[str, datetime | str | None] = field(default_factory=dict)
    state: str = IN_PROGRESS


@dataclass(frozen=True)
class ClientDeal:
    deal_id: int
    status: ClientStatus
    address: str | None
    amount: int | None
    manager: str | None  # the manager's first name only
    schedules: tuple[ClientSchedule, ...]


def _client_spec(stage: Stage) -> dict[str, Any]:
    spec = (stage.extras or {}).get("client")
    return spec if isinstance(spec, dict) else {}


def _named(stage: Stage) -> bool:
    return bool(_client_spec(stage).get("name"))


def _shown_stage(rules: PipelineRules, stage: Stage) -> Stage | None:
    """The stage whose client name stands for `stage`: itself, or the last one of the flow
    before it that has one."""
    if _named(stage):
        return stage
    flow = rules.flow
    if stage not in flow:
        return None
    before = flow[: flow.index(stage)]
    return next((s for s in reversed(before) if _named(s)), None)


async def _values(uow: UnitOfWork, deal: Deal, names: set[str]) -> dict[str, Any]:
    if not names:
        return {}
    fields = await clients_out.deal_fields(uow, deal)
    return {name: fields.get(name) for name in names}


async def _status(uow: UnitOfWork, deal: Deal, rules: PipelineRules) -> ClientStatus:
    stage = rules.stage(deal.stage_id)
    if stage.kind == StageKind.LOST:
        return ClientStatus(None, None, state=CLOSED)
    plain = DONE if stage.kind == StageKind.WON else IN_PROGRESS
    shown = _shown_stage(rules, stage)
    if shown is None:
        return ClientStatus(None, None, state=plain)
    spec = _client_spec(shown)
    name, name_en = spec.get("name"), spec.get("name_en")
    names = {f for text in (name, name_en) if text for f, _ in client_fields(text)}
    return ClientStatus(name, name_en, await _values(uow, deal, names), plain)


def _schedule(summary: installments.InstallmentSummary) -> ClientSchedule:
    return ClientSchedule(
        total=summary.total,
        paid=summary.paid,
        remaining=summary.remaining,
        overdue=summary.overdue_amount,
        dues=summary.dues,
    )


async def _first_name(uow: UnitOfWork, employee_id: int | None) -> str | None:
    return clients_out.first_name(await employee_name(uow, employee_id))


async def _view(
    uow: UnitOfWork, deal: Deal, rules: PipelineRules, extra: Sequence[Deal]
) -> ClientDeal:
    schedules = []
    for source in (deal, *extra):
        summary = await installments.schedule_of(uow, source)
        if summary is not None:
            schedules.append(_schedule(summary))
    return ClientDeal(
        deal_id=deal.id,
        status=await _status(uow, deal, rules),
        address=deal.address,
        amount=deal.amount,
        manager=await _first_name(uow, deal.manager_id),
        schedules=tuple(schedules),
    )


def _client_visible(rules: PipelineRules) -> bool:
    """Does the pipeline name any stage for clients?"""
    return any(_named(s) for s in rules.stages)


async def my_deals(uow: UnitOfWork, client: ClientActor | None) -> list[ClientDeal]:
    """The client's orders, newest first (see the module's docstring for which)."""
    if client is None:
        raise PermissionDenied("client")
    found = await uow.repo.deals.by_contact_ids(sorted(client.contact_ids))
    rules: dict[int, PipelineRules] = {}
    for deal in found:
        require_client(client, deal)
        if deal.pipeline_id not in rules:
            rules[deal.pipeline_id] = await rules_for(uow, deal.pipeline_id)
    ids = {d.id for d in found}
    shown: list[Deal] = []
    folded: dict[int, list[Deal]] = {}
    for deal in found:
        r = rules[deal.pipeline_id]
        if r.stage(deal.stage_id).kind == StageKind.LOST:
            continue
        parent = deal.parent_deal_id
        if parent is not None and parent in ids and not _client_visible(r):
            folded.setdefault(parent, []).append(deal)
            continue
        shown.append(deal)
    shown.sort(key=lambda d: d.id, reverse=True)
    return [await _view(uow, d, rules[d.pipeline_id], folded.get(d.id, ())) for d in shown]


async def my_deal(uow: UnitOfWork, client: ClientActor | None, deal_id: int) -> ClientDeal:
    """One of the client's deals by its number. Another client's deal, or no such deal,
    is refused alike (PermissionDenied: a number tells nothing)."""
    deal = await uow.repo.get(Deal, deal_id) if is_id(deal_id) else None
    if deal is None:
        raise PermissionDenied("client")
    require_client(client, deal)
    rules = await rules_for(uow, deal.pipeline_id)
    children = [
        d
        for d in await uow.repo.deals.linked(deal.id, None)
        if d.contact_id == deal.contact_id
        and not _client_visible(await rules_for(uow, d.pipeline_id))
    ]
    return await _view(uow, deal, rules, children)
