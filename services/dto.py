"""Read models returned by services. Plain frozen dataclasses: no ORM objects escape."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from storage.models import Stage

T = TypeVar("T")


def label(lang: str | None, text: str, text_en: str | None, *, strict: bool = False) -> str:
    """The one pick of a bilingual name (a stage, a pipeline, a loss reason, a task title...):
    the English one for an English reader when the config has it, else the Russian one.
    Every `*_en` field is read through here. `strict`: an English reader gets "" rather
    than the Russian one (a client reads no Russian the system wrote; issue 25)."""
    if lang == "en" and (text_en or strict):
        return text_en or ""
    return text


@dataclass(frozen=True)
class StageInfo:
    id: int
    code: str
    name: str
    name_en: str | None
    position: int
    kind: str
    is_key: bool
    probability: int
    required_fields: tuple[str, ...]
    rot_after_days: int | None = None
    short: str | None = None  # a report table's name (config `short`)
    short_en: str | None = None

    @classmethod
    def of(cls, stage: Stage) -> StageInfo:
        return cls(
            id=stage.id,
            code=stage.code,
            name=stage.name,
            name_en=stage.name_en,
            position=stage.position,
            kind=stage.kind,
            is_key=stage.is_key,
            probability=stage.probability,
            required_fields=tuple(stage.required_fields),
            rot_after_days=stage.rot_after_days,
            short=stage.short,
            short_en=stage.short_en,
        )

    def label(self, lang: str | None) -> str:
        return label(lang, self.name, self.name_en)

    def short_label(self, lang: str | None) -> str:
        """The name for a narrow table column: the configured short name in the reader's
        language, else the full one (which the table abbreviates by rule if it must)."""
        return label(lang, self.short or self.name, self.short_en or self.name_en)


@dataclass(frozen=True)
class PipelineInfo:
    id: int
    code: str
    name: str
    name_en: str | None
    role: str
    strict: bool
    stages: tuple[StageInfo, ...]

    def label(self, lang: str | None) -> str:
        return label(lang, self.name, self.name_en)


@dataclass(frozen=True)
class TimelineEntry:
    """One thing that happened to a deal, a lead or a contact (services/sales/timeline.py).
    `kind`: storage.enums.ActivityKind; `source`/`id`: where it is stored (a page's cursor)."""

    kind: str
    at: datetime
    actor: str | None
    text: str = ""
    to_stage: str | None = None
    to_stage_en: str | None = None
    reason: str | None = None
    reason_en: str | None = None
    media_type: str | None = None
    caption: str | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)
    source: int = 0
    id: int = 0

    def stage_label(self, lang: str | None) -> str:
        return label(lang, self.to_stage or "?", self.to_stage_en)

    def reason_label(self, lang: str | None) -> str | None:
        return label(lang, self.reason, self.reason_en) if self.reason else None


@dataclass(frozen=True)
class TimelinePage:
    """A page of a timeline, newest first; `next`: (source, id) where the next page starts
    (None on the last page); `first`: this is the newest page."""

    title: str
    items: tuple[TimelineEntry, ...]
    filter: str
    next: tuple[int, int] | None
    first: bool


@dataclass(frozen=True)
class FileItem:
    media_type: str  # photo | video | document | voice | audio | animation
    file_id: str
    caption: str | None
    at: datetime
    author: str | None


@dataclass(frozen=True)
class DealCard:
    id: int
    version: int
    title: str
    contact_name: str | None
    phone: str | None
    email: str | None
    company_name: str | None
    amount: int | None
    need: str | None
    address: str | None
    measurement_at: datetime | None
    next_contact_at: datetime | None
    pipeline: PipelineInfo
    stage: StageInfo
    manager_id: int | None
    manager_name: str | None
    created_at: datetime
    closed: bool
    loss_reason: str | None
    notes: tuple[TimelineEntry, ...] = ()  # the last few timeline events
    # What the card's buttons may offer (computed by the rules, not by the front-end).
    next_stage: StageInfo | None = None
    prev_stage: StageInfo | None = None
    can_choose_stage: bool = False
    can_reopen: bool = False
    can_return_to_sales: bool = False
    # What this actor may do (permissions decided by the service, shown by the UI).
    may_move: bool = False
    may_edit: bool = False
    may_reassign: bool = False
    loss_reason_en: str | None = None
    files: int = 0  # files on the deal (measurement photos, documents, clients' media)
    messages: int = 0  # client chat messages (Telegram Business), both ways
    open_tasks: int = 0
    may_reply: bool = False  # may answer the client's Telegram chat (the deal's manager)
    stale_days: int | None = None  # days in the stage, when past its rot_after_days
    loss_comment: str | None = None  # what the manager wrote with the loss reason
    measurer_id: int | None = None  # the measurer assigned (a stage may require one)
    # Linked deals (issue 24): the sale of an order, the order of a sale, a claim...
    links: tuple[DealLink, ...] = ()
    items: tuple[str, ...] = ()  # an order's items to install
    production_at: datetime | None = None
    delivery_at: datetime | None = None
    owed: int = 0  # an order's unpaid final payment (kopecks)
    # When an open sale is expected to close (issue 26): typed, else the stage's rule.
    expected_close_at: datetime | None = None
    expected_close_typed: bool = False


@dataclass(frozen=True)
class DealLink:
    """A deal linked to the one on the card: its id, title and pipeline's names."""

    deal_id: int
    title: str
    pipeline: str
    pipeline_en: str | None


@dataclass(frozen=True)
class LeadCard:
    id: int
    version: int
    source: str
    name: str
    phone: str | None
    email: str | None
    need: str | None
    is_legal_entity: bool
    company_name: str | None
    amount: int | None
    status: str
    stage: StageInfo
    manager_id: int | None
    manager_name: str | None
    created_at: datetime
    qualification: tuple[tuple[str, str, str | None, bool, bool], ...] = ()
    """(code, text, text_en, required, answered-yes) per active question."""
    deal_id: int | None = None
    loss_reason: str | None = None
    loss_reason_en: str | None = None
    loss_comment: str | None = None


@dataclass(frozen=True)
class Duplicate:
    kind: str  # "lead" | "deal"
    id: int
    name: str
    stage: str
    stage_en: str | None = None

    def stage_label(self, lang: str | None) -> str:
        return label(lang, self.stage, self.stage_en)


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    from_stage: str | None
    to_stage: str
    to_stage_en: str | None
    actor: str | None
    reason: str | None
    comment: str | None
    from_stage_en: str | None = None
    reason_en: str | None = None


@dataclass(frozen=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    page: int
    pages: int
    total: int


@dataclass(frozen=True)
class DealListItem:
    id: int
    title: str
    stage: str
    stage_en: str | None
    amount: int | None
    next_contact_at: datetime | None
    stale_days: int | None = None  # days in the stage, when past its rot_after_days


@dataclass
class SyncReport:
    pipelines_added: list[str] = field(default_factory=list)
    stages_added: list[str] = field(default_factory=list)
    stages_renamed: list[str] = field(default_factory=list)
    stages_archived: list[str] = field(default_factory=list)
    stages_changed: list[str] = field(default_factory=list)  # kind, order, rules, task…
    pipelines_changed: list[str] = field(default_factory=list)
    reasons_changed: int = 0
    questions_changed: int = 0

    @property
    def changed(self) -> bool:
        return bool(
            self.pipelines_added
            or self.stages_added
            or self.stages_renamed
            or self.stages_archived
            or self.stages_changed
            or self.pipelines_changed
            or self.reasons_changed
            or self.questions_changed
        )
