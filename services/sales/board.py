"""The pipeline board (the Mini App): open deals of a pipeline as columns of cards.

One call per screen: `board` gives a pipeline's columns (stage, count, money, the first
cards), `column` one more page of a stage's cards, `deal_view` one deal with its history.
Moves are not here: the Mini App calls the same `deals.move_to` / `deals.lose` as a tap in
the chat (the stage core: permission, version, rules, required fields).

Permissions: REPORTS_OWN (sales roles; measurers are refused). A manager's board is always
their own deals, whatever was asked for; leaders and admins see everyone's, or one
manager's (`manager_id`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from services.common import employee_name, is_id
from services.dto import DealCard, HistoryEntry, PipelineInfo, StageInfo
from services.errors import NotFound, ValidationError
from services.permissions import Action, Actor, require
from services.sales import deals
from services.sales.pipelines import PipelineRules, days_past, rules_by_role, rules_for
from storage.enums import PipelineRole, Role, StageKind
from storage.repositories.board import BoardRow
from storage.uow import UnitOfWork

PER_COLUMN = 20  # cards of a column in one answer; the rest come page by page
MAX_PER_COLUMN = 100
# Pipelines that hold deals (the leads pipeline holds leads: they have their own cards).
BOARD_ROLES = (
    PipelineRole.SALES,
    PipelineRole.DEFERRED,
    PipelineRole.INSTALLMENTS,
    PipelineRole.FULFILMENT,
    PipelineRole.CLAIMS,
    PipelineRole.CUSTOM,
)
# Stages shown as columns: where open deals are. Won and lost are drop targets.
COLUMN_KINDS = (StageKind.ACTIVE, StageKind.FROZEN)
HISTORY_ROWS = 50


@dataclass(frozen=True)
class BoardCard:
    id: int
    version: int
    title: str
    client: str | None
    amount: int | None  # kopecks
    next_contact_at: datetime | None
    days_in_stage: int
    stale: bool  # longer in the stage than its rot_after_days
    manager_id: int | None
    manager_name: str | None


@dataclass(frozen=True)
class BoardColumn:
    stage: StageInfo
    rot_after_days: int | None
    count: int
    amount: int  # kopecks
    cards: tuple[BoardCard, ...]

    @property
    def more(self) -> bool:
        return self.count > len(self.cards)


@dataclass(frozen=True)
class Board:
    pipeline: PipelineInfo
    pipelines: tuple[PipelineInfo, ...]  # to choose from
    manager_id: int | None  # whose deals (None: everyone)
    managers: tuple[tuple[int, str], ...]  # to choose from (leaders and admins)
    sees_all: bool
    columns: tuple[BoardColumn, ...]
    targets: tuple[StageInfo, ...]  # won and lost stages: where a card may be dropped


@dataclass(frozen=True)
class DealView:
    card: DealCard
    history: tuple[HistoryEntry, ...]  # newest first


def scope(actor: Actor, manager_id: int | None) -> int | None:
    """Whose deals: a manager always their own; leaders and admins what they asked for."""
    require(actor, Action.REPORTS_OWN)
    if not actor.sees_all:
        return actor.id
    if manager_id is not None and not is_id(manager_id):
        raise ValidationError("manager", "unknown")
    return manager_id


async def _rules(uow: UnitOfWork, pipeline_id: int | None) -> PipelineRules:
    if pipeline_id is None:
        return await rules_by_role(uow, PipelineRole.SALES)
    if not is_id(pipeline_id):
        raise NotFound("pipeline", pipeline_id)
    rules = await rules_for(uow, pipeline_id)
    if rules.pipeline.archived or rules.pipeline.role not in BOARD_ROLES:
        raise NotFound("pipeline", pipeline_id)
    return rules


async def _cards(
    uow: UnitOfWork, rows: Iterable[BoardRow], rot: dict[int, int | None]
) -> list[BoardCard]:
    now = uow.clock.now()
    cards = []
    for r in rows:
        days = max(0, (now - r.stage_entered_at).days)
        limit = rot.get(r.stage_id)
        cards.append(
            BoardCard(
                id=r.id,
                version=r.version,
                title=r.title,
                client=r.client,
                amount=r.amount,
                next_contact_at=r.next_contact_at,
                days_in_stage=days,
                stale=days_past(limit, r.stage_entered_at, now) is not None,
                manager_id=r.manager_id,
                manager_name=await employee_name(uow, r.manager_id),
            )
        )
    return cards


def _per_column(limit: int) -> int:
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ValidationError("limit", "out_of_range")
    return min(limit, MAX_PER_COLUMN)


async def board(
    uow: UnitOfWork,
    actor: Actor,
    pipeline_id: int | None = None,
    manager_id: int | None = None,
    per_column: int = PER_COLUMN,
) -> Board:
    """A pipeline's board (default: Sales): two statements however many deals it holds."""
    who = scope(actor, manager_id)
    per_column = _per_column(per_column)
    rules = await _rules(uow, pipeline_id)
    columns = [s for s in rules.stages if s.kind in COLUMN_KINDS]
    rot = {s.id: s.rot_after_days for s in columns}
    totals = await uow.repo.board.totals(rules.pipeline.id, who)
    by_stage: dict[int, list[BoardRow]] = {}
    stage_ids = [s.id for s in columns]
    for row in await uow.repo.board.first_cards(rules.pipeline.id, stage_ids, who, per_column):
        by_stage.setdefault(row.stage_id, []).append(row)
    result = []
    for s in columns:
        count, amount = totals.get(s.id, (0, 0))
        cards = await _cards(uow, by_stage.get(s.id, ()), rot)
        result.append(BoardColumn(StageInfo.of(s), s.rot_after_days, count, amount, tuple(cards)))
    pipelines = []
    for p in await uow.repo.pipelines.all():
        if p.role in BOARD_ROLES:
            pipelines.append((await rules_for(uow, p.id)).info)
    managers: tuple[tuple[int, str], ...] = ()
    if actor.sees_all:
        managers = tuple((e.id, e.name) for e in await uow.repo.employees.with_role(Role.MANAGER))
    won = [s for s in rules.stages if s.kind == StageKind.WON]
    lost = [s for s in rules.stages if s.kind == StageKind.LOST]
    return Board(
        pipeline=rules.info,
        pipelines=tuple(pipelines),
        manager_id=who,
        managers=managers,
        sees_all=actor.sees_all,
        columns=tuple(result),
        targets=tuple(StageInfo.of(s) for s in won[:1] + lost[:1]),
    )


async def column(
    uow: UnitOfWork,
    actor: Actor,
    pipeline_id: int,
    stage_id: int,
    manager_id: int | None = None,
    offset: int = 0,
    limit: int = PER_COLUMN,
) -> tuple[BoardCard, ...]:
    """One more page of a column's cards."""
    who = scope(actor, manager_id)
    limit = _per_column(limit)
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise ValidationError("offset", "out_of_range")
    rules = await _rules(uow, pipeline_id)
    if not is_id(stage_id):
        raise NotFound("stage", stage_id)
    stage = rules.stage(stage_id)
    rows = await uow.repo.board.column(rules.pipeline.id, stage.id, who, offset, limit)
    return tuple(await _cards(uow, rows, {stage.id: stage.rot_after_days}))


async def deal_history(uow: UnitOfWork, actor: Actor, deal_id: int) -> tuple[HistoryEntry, ...]:
    """A deal's history, newest first (today: its stage entries)."""
    page = await deals.history(uow, actor, deal_id, 0, per_page=HISTORY_ROWS)
    return page.items


async def deal_view(uow: UnitOfWork, actor: Actor, deal_id: int) -> DealView:
    """A card opened on the board: the deal and its history (DEAL_VIEW, checked here)."""
    card = await deals.get_card(uow, actor, deal_id)
    return DealView(card, await deal_history(uow, actor, card.id))
