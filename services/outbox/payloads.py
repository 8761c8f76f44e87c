"""What an outbox row carries: one typed payload class per kind (`PAYLOADS`).

A reminder row's payload is a snapshot taken when it was enqueued (the notifier has no
database): the services build one of these classes, `queue.enqueue` refuses a payload that
is not its kind's class and stores it as JSON (`dump`), and the sweeper parses every row back
(`parse`) before it is drawn; a row that does not parse is failed with the reason, never
sent half-drawn and never dropped in silence.

Pydantic models, frozen: the fields are validated when a service builds a payload (a
missing title or a text where a number belongs fails right there, in the transaction that
enqueues it) and the same models parse the stored JSON back, with the coercions JSON needs
(ISO text -> datetime / date, lists -> tuples). Hand-written dataclasses would need a parser
of their own per kind for that; the cost is a few microseconds per row.

The JSON is the shape the previous, untyped code wrote (the same keys, ISO moments with
"+00:00", lists for tuples), so rows written before this module still parse and draw, and
rows written now read the same for anyone reading the column. Fields a view needs to draw
the message are required; the rest have defaults, as the old views read them with `.get`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
)

from storage.enums import TaskKind


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("a moment needs its time zone")
    return value.astimezone(UTC)


def _blank(value: Any) -> Any:
    return None if value == "" else value


# An aware moment, kept in UTC and stored as `datetime.isoformat()` ("...+00:00"): what
# the previous code wrote, and what `_moot` compares a task's due time with.
Moment = Annotated[
    datetime,
    AfterValidator(_utc),
    PlainSerializer(lambda v: v.isoformat(), return_type=str, when_used="json"),
]
MaybeMoment = Annotated[Moment | None, BeforeValidator(_blank)]  # "" was written for none


class Payload(BaseModel):
    """The base of every payload: frozen, and no field that its class does not declare."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class PayloadError(ValueError):
    """A stored payload that is not what its kind's class accepts."""


class PayloadMismatch(TypeError):
    """`enqueue` was given a payload that is not its kind's class."""


# --- tasks --------------------------------------------------------------------------------


class MeasurerLoad(NamedTuple):
    """A measurer and their measurements that day (stored as [id, name, load])."""

    id: int
    name: str
    load: int


class DealEssentials(Payload):
    """What a measurer (or the head choosing one) needs to know about the deal."""

    deal_title: str | None = None
    client_name: str | None = None
    phone: str | None = None
    address: str | None = None
    measurement_at: MaybeMoment = None
    need: str | None = None
    manager_name: str | None = None
    manager_comment: str | None = None


class TaskLine(Payload):
    """What every task reminder says: which task, when it is due, on which deal."""

    task_kind: str = TaskKind.CUSTOM.value  # the old views drew a missing kind as custom
    title: str
    title_en: str | None = None
    due_at: MaybeMoment = None
    assignee_role: str | None = None
    deal_title: str | None = None


class TaskPayload(TaskLine, DealEssentials):
    """task.new (the card for its assignee) and task.due (its time came)."""

    comment: str | None = None
    created_by: str | None = None
    measurers: tuple[MeasurerLoad, ...] = ()  # assign_measurer: whom to choose from
    declined_by: str | None = None  # assign_measurer: the last measurer who declined
    decline_reason: str | None = None
    moved: bool = False  # the measurement's date or address changed (sent again)


class TaskEscalated(TaskLine):
    """task.escalated: to leaders, someone's task is overdue."""

    assignee: str | None = None


class TaskDeclined(DealEssentials):
    """task.declined: to heads of measurers, a measurer can't make it."""

    declined_by: str
    reason: str


class LeadLate(Payload):
    """lead.late: to the head of sales, a new lead got no first touch within the limit
    (services/work/response.py); a Reassign button per manager on duty."""

    lead_id: int
    name: str
    source: str
    came_at: Moment
    due_at: Moment
    limit_minutes: int
    manager: str | None = None
    manager_id: int | None = None
    choices: tuple[tuple[int, str], ...] = ()  # managers on duty: (employee id, name)


class LeadLateMany(Payload):
    """lead.late_many: to the head of sales, more leads got no first touch in time in one
    scan than are told one by one (a big import): how many, and since when."""

    count: int
    oldest_came_at: Moment
    limit_minutes: int


class MeasureDone(Payload):
    """measure.done: to the manager, the measurement is done (files on the card)."""

    deal_title: str
    measurer: str
    photos: int = 0
    files: int = 0
    comment: str | None = None
    moved: bool = False


# --- deals --------------------------------------------------------------------------------


class DealReassigned(Payload):
    """deal.reassigned: to the new manager (`role` "new") and the previous one ("old")."""

    deal_title: str
    by: str | None = None
    previous: str | None = Field(default=None, alias="from")
    to: str | None = None
    role: Literal["new", "old"]


class DealRotting(Payload):
    """deal.rotting: the deal sat in its stage past the stage's limit."""

    title: str
    amount: int | None = None
    stage: str
    stage_en: str | None = None
    days: int
    limit: int
    v: int = 0  # the deal's version: the buttons carry it like the card's
    next: str | None = None  # the next stage's name (a button), none at the flow's end
    next_en: str | None = None


class DateSlipped(Payload):
    """deal.date_slipped: an order's production or delivery date passed while the order
    is still at the stage that date is for (services/work/orders.py)."""

    title: str
    field: str  # production_at | delivery_at
    when: Moment
    stage: str
    stage_en: str | None = None


# --- installments -------------------------------------------------------------------------


class InstallmentUpcoming(Payload):
    deal_title: str
    n: int
    count: int
    amount: int
    due_date: date
    due_id: int | None = None  # the part; without one the row is moot (cancelled)


class InstallmentOverdue(Payload):
    deal_title: str
    n: int
    amount: int
    due_date: date
    days: int
    manager: str | None = None


class InstallmentPaid(Payload):
    deal_title: str
    total: int


# --- summaries and digests ----------------------------------------------------------------


class StaleDeal(NamedTuple):
    """A quiet deal in the morning summary (stored as [deal id, title, days])."""

    deal_id: int
    title: str
    days: int


class SummaryMorning(Payload):
    """summary.morning: a manager's day (services/work/jobs.py)."""

    date: date
    tasks_today: int = 0
    overdue: int = 0
    stale_days: int = 0
    stale_total: int = 0
    stale: tuple[StaleDeal, ...] = ()
    norms: tuple[NormLine, ...] = ()  # the manager's own norms, yesterday (issue 26)


class NormLine(NamedTuple):
    """A daily norm's result (services/team/norms.py; stored as [name, what, done, target])."""

    name: str
    what: str
    done: int
    target: int


class ResponseLine(NamedTuple):
    """A manager's first response (services/team/norms.py `response_times`): median working
    minutes (None: nothing answered), answered within the limit of those counted."""

    name: str
    leads: int
    median_minutes: int | None
    within: int
    counted: int


class DigestDeal(Payload):
    id: int
    title: str
    amount: int | None
    manager: str | None
    reason: str | None = None  # refusals: the reason's name
    reason_en: str | None = None
    frozen: bool = False  # parked in conditional refusal


class DigestReason(Payload):
    name: str | None  # None: refused without a reason
    name_en: str | None
    count: int
    amount: int


class DigestTask(Payload):
    id: int
    title: str
    assignee: str | None
    due_at: MaybeMoment = None


class DigestPlan(Payload):
    """A row of the month's plan (services/sales/plans.py PlanRow): None is the company."""

    name: str | None
    plan_count: int | None = None
    plan_amount: int | None = None
    won: int = 0
    won_amount: int = 0
    forecast: int = 0
    weighted: int = 0
    pace_count: int | None = None
    pace_amount: int | None = None
    behind: bool = False


class Digest(Payload):
    """digest.daily / digest.weekly: what changed since the previous digest
    (services/reports/digests.py)."""

    kind: str  # "daily" or "weekly"
    since: Moment
    until: Moment
    moment: MaybeMoment = None  # the scheduled moment (a late digest says so)
    leads: int = 0
    lead_names: list[tuple[int, str, str]] = []  # id, name, source
    won: int = 0
    won_amount: int = 0
    wins: list[DigestDeal] = []
    lost: int = 0
    lost_amount: int = 0
    losses: list[DigestDeal] = []
    reasons: list[DigestReason] = []
    overdue: int = 0  # open tasks past due now
    overdue_new: int = 0  # ... of which fell due in the window
    overdue_tasks: list[DigestTask] = []
    pipeline: str = ""
    pipeline_en: str | None = None
    active: int = 0  # the snapshot headline: deals in work, their money, the forecast
    active_amount: int = 0
    weighted: int = 0
    stuck: int = 0
    # The window of the same length just before (issue 14): what the counts were then.
    prev_leads: int = 0
    prev_won: int = 0
    prev_won_amount: int = 0
    prev_lost: int = 0
    prev_lost_amount: int = 0
    # Speed of the last 30 days' cohort (and the 30 days before): services.reports.analytics.
    cycle_median_days: float | None = None
    cycle_won: int = 0
    prev_cycle_median_days: float | None = None
    # Stale deals now per manager (services/work/rotting.py): (name, count), most first.
    stale_by_manager: list[tuple[str | None, int]] = []
    # First response per manager over the window's leads, and the daily norms of the
    # window's last local day (issue 26; services/team/norms.py).
    response: list[ResponseLine] = []
    response_limit: int = 0  # minutes of working time
    norms_day: date | None = None
    norms: list[NormLine] = []
    # This month's plans (issue 26): the company first, then the managers with a plan.
    plan_month: date | None = None
    plan_days_left: int = 0
    plan: list[DigestPlan] = []


# --- plans (issue 26: services/sales/plans.py) ---------------------------------------------


class PlanReached(Payload):
    """plan.reached: to a manager, a won deal took the month's plan to `percent`."""

    month: date  # its first day
    percent: int  # 50, 90 or 100
    won: int
    won_amount: int
    plan_count: int
    plan_amount: int


class PlanBehind(Payload):
    """plan.behind: to leaders, a manager is behind the plan's pace."""

    month: date
    manager: str
    manager_id: int
    won: int
    won_amount: int
    plan_count: int
    plan_amount: int
    pace_count: int | None = None  # needed per remaining working day
    pace_amount: int | None = None
    days_left: int = 0


# --- people -------------------------------------------------------------------------------


class AdminUnreachable(Payload):
    """admin.unreachable: to every admin, someone blocked the bot."""

    employee_id: int | None = None
    name: str
    username: str | None = None


class BackupFailed(Payload):
    """backup.failed: to every admin, the nightly backup could not be made (services/backups.py)."""

    error: str
    directory: str


class LeadNew(Payload):
    """lead.new: a lead came in through the intake API (or came again)."""

    title: str  # a language-neutral line: name · contact — need
    lead_id: int
    source: str
    name: str
    phone: str | None = None
    email: str | None = None
    need: str | None = None
    company: str | None = None
    amount: int | None = None
    repeat: bool = False


# --- clients (issue 25): messages to a client's own Telegram, in client words --------------


class ClientPayload(Payload):
    """A message to a client. `facts` is what the deal's timeline keeps of it once sent
    (handlers/ui/timeline.py draws them in the reader's language)."""

    def facts(self) -> dict[str, Any]:
        return {}


class ClientStage(ClientPayload):
    """client.stage: the deal entered a stage whose `[client]` table has a message. The
    template (ru / en) and the deal's fields as facts (moments ISO, numbers, text): the
    view fills it in the client's language and time zone."""

    stage: str  # the stage's staff name (the timeline's words)
    stage_en: str | None = None
    message: str
    message_en: str | None = None
    fields: dict[str, str | int | None] = {}
    confirm: bool = False  # Confirm / Reschedule buttons
    accept: bool = False  # All fine / Remarks buttons

    def facts(self) -> dict[str, Any]:
        return {"stage": self.stage, "stage_en": self.stage_en}


class ClientOnWay(ClientPayload):
    """client.on_way: the measurer or the installer set off (their first name only)."""

    who: str
    job: Literal["measure", "install"] = "measure"

    def facts(self) -> dict[str, Any]:
        return {"who": self.who, "job": self.job}


class ClientPayment(ClientPayload):
    """client.pay_soon / client.pay_late: a part of the client's payment plan is due soon,
    or was missed (`days` late). Only the part's number, amount and date."""

    n: int
    count: int
    amount: int
    due_date: date
    due_id: int | None = None  # the part; paid by send time -> moot (cancelled)
    days: int = 0

    def facts(self) -> dict[str, Any]:
        return {"n": self.n, "amount": self.amount, "due_date": self.due_date.isoformat()}


class Unknown(Payload):
    """A kind this build does not know (a newer worker enqueued it): drawn by its title."""

    title: str | None = None


# Kind (its str value) -> the class its payload must be. Kept beside queue.Kind (a test
# checks that every kind has its class and its view).
PAYLOADS: dict[str, type[Payload]] = {
    "task.new": TaskPayload,
    "task.due": TaskPayload,
    "task.escalated": TaskEscalated,
    "task.declined": TaskDeclined,
    "measure.done": MeasureDone,
    "installment.upcoming": InstallmentUpcoming,
    "installment.overdue": InstallmentOverdue,
    "installment.paid": InstallmentPaid,
    "summary.morning": SummaryMorning,
    "admin.unreachable": AdminUnreachable,
    "backup.failed": BackupFailed,
    "digest.daily": Digest,
    "digest.weekly": Digest,
    "deal.reassigned": DealReassigned,
    "deal.rotting": DealRotting,
    "deal.date_slipped": DateSlipped,
    "lead.new": LeadNew,
    "lead.late": LeadLate,
    "lead.late_many": LeadLateMany,
    "client.stage": ClientStage,
    "client.on_way": ClientOnWay,
    "client.pay_soon": ClientPayment,
    "client.pay_late": ClientPayment,
    "plan.reached": PlanReached,
    "plan.behind": PlanBehind,
}


def check(kind: str, payload: Payload) -> None:
    """Raise PayloadMismatch unless `payload` is the class of `kind`."""
    expected = PAYLOADS.get(kind)
    if expected is None:
        raise PayloadMismatch(f"unknown outbox kind {kind!r}")
    if not isinstance(payload, expected):
        got = type(payload).__name__
        raise PayloadMismatch(f"{kind} takes {expected.__name__}, not {got}")


def dump(payload: Payload) -> dict[str, Any]:
    """The JSON a row stores (the keys the previous code wrote: aliases such as "from")."""
    return payload.model_dump(mode="json", by_alias=True)


def _accepted(cls: type[Payload]) -> frozenset[str]:
    names = set(cls.model_fields)
    names.update(f.alias for f in cls.model_fields.values() if f.alias)
    return frozenset(names)


_CLASSES: list[type[Payload]] = [*PAYLOADS.values(), Unknown]
_ACCEPTED = {cls: _accepted(cls) for cls in _CLASSES}


def _reason(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    parts = [f"{'.'.join(str(x) for x in e['loc']) or '-'}: {e['msg']}" for e in errors[:3]]
    if len(errors) > 3:
        parts.append(f"+{len(errors) - 3} more")
    return "; ".join(parts)


def parse(kind: str, raw: object) -> Payload:
    """A stored payload as its kind's class; PayloadError says why it is not one.

    Keys its class does not know are ignored (a newer build may add some); a kind this
    build does not know is `Unknown` (its title, if any)."""
    cls = PAYLOADS.get(kind, Unknown)
    if not isinstance(raw, Mapping):
        raise PayloadError(f"{kind}: the payload is {type(raw).__name__}, not an object")
    if cls is Unknown:
        title = raw.get("title")
        return Unknown(title=str(title) if title else None)
    known = _ACCEPTED[cls]
    try:
        return cls.model_validate({k: v for k, v in raw.items() if k in known})
    except ValidationError as exc:
        raise PayloadError(f"{kind}: {_reason(exc)}") from exc
