"""Pipelines as configuration: a TOML file validated by pydantic.

The stage `code` is its identity: renaming a stage (its `name`) keeps its deals;
removing a stage that still holds deals is refused at sync time.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from services.outbox.clients import client_fields
from storage.enums import Role, StageKind, TaskKind

# The shipped pipeline files: services/sales/defaults links to config/pipelines in the
# checkout, and the wheel carries the files themselves (package data), so an installed
# `voronka` finds its default without the repository.
DEFAULTS_DIR = (Path(__file__).parent / "defaults").resolve()
DEFAULT_FILE = DEFAULTS_DIR / "default.toml"

CODE_PATTERN = r"^[a-z][a-z0-9_]{0,40}$"

# Deal fields a stage may require before a deal enters it: the typed ones (asked when the
# move needs them) and "measurer" (assigned by the head of measurers, never typed: the move
# waits for it).
TYPED_FIELDS = frozenset(
    {
        "amount",
        "measurement_at",
        "address",
        "next_contact_at",
        "need",
        "production_at",
        "delivery_at",
    }
)
MEASURER = "measurer"
REQUIRABLE_FIELDS = TYPED_FIELDS | {MEASURER}

# Of those, the ones that take a date and time (typed "tomorrow 10:00", a date input).
DATE_FIELDS = ("measurement_at", "next_contact_at", "production_at", "delivery_at")

PipelineRole = Literal[
    "leads", "sales", "deferred", "installments", "fulfilment", "claims", "refusal", "custom"
]
SINGLETON_ROLES = ("leads", "sales", "deferred", "installments", "fulfilment", "claims", "refusal")

# What a linked deal may carry over from the deal that made it (services/sales/links.py).
CARRIABLE = frozenset({"client", "manager", "amount", "need", "address", "items", "files"})
# When a link fires: always, or only for a deal won with an installment plan.
LinkWhen = Literal["always", "with_installments", "without_installments"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaskSpec(_Strict):
    """A task created automatically when a deal enters the stage."""

    kind: TaskKind = TaskKind.CUSTOM
    title: str = Field(min_length=1, max_length=300)
    title_en: str | None = None
    to_role: Role | None = None
    to_manager: bool = False
    due_in_hours: float = Field(default=24, ge=0, le=24 * 90)

    @model_validator(mode="after")
    def _one_target(self) -> TaskSpec:
        if (self.to_role is None) == (not self.to_manager):
            raise ValueError('a task goes either to_role = "..." or to_manager = true')
        return self


SHORT_NAME = 12  # characters of a stage's short name


class ChecklistItem(_Strict):
    code: str = Field(pattern=CODE_PATTERN)
    name: str = Field(min_length=1, max_length=100)
    name_en: str | None = Field(default=None, max_length=100)


class JobSpec(_Strict):
    """A field job made from this stage's task (an installation): what Done needs."""

    checklist: tuple[ChecklistItem, ...] = ()
    photos_before: int = Field(default=0, ge=0, le=20)
    photos_after: int = Field(default=0, ge=0, le=20)


class LinkSpec(_Strict):
    """Entering the stage creates a deal in pipeline `to` (once per deal and pipeline),
    carrying `carry` over; both cards link to each other."""

    to: str = Field(pattern=CODE_PATTERN)
    when: LinkWhen = "always"
    carry: tuple[str, ...] = ("client", "manager", "amount", "need", "address")

    @model_validator(mode="after")
    def _check(self) -> LinkSpec:
        unknown = sorted(set(self.carry) - CARRIABLE)
        if unknown:
            allowed = ", ".join(sorted(CARRIABLE))
            raise ValueError(f"carry: unknown field(s) {unknown}; allowed: {allowed}")
        return self


class ClientSpec(_Strict):
    """What the client sees of a deal in this stage, in their own Telegram (issue 25).

    `name`/`name_en`: the stage in the client's words, a template over the deal's fields
    (e.g. "Замер назначен: {measurement_at}"); a stage without it is not shown by name
    (the client sees the last stage that had one). `message`/`message_en`: sent to a linked
    client when a deal enters the stage (same fields). `confirm = true`: the message asks
    the client to Confirm or Reschedule (an appointment: measurement, delivery,
    installation). `accept = true`: the message asks the client to accept the work (all
    done / there are remarks -> a claim), then for a rating."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    name_en: str | None = Field(default=None, min_length=1, max_length=200)
    message: str | None = Field(default=None, min_length=1, max_length=1000)
    message_en: str | None = Field(default=None, min_length=1, max_length=1000)
    confirm: bool = False
    accept: bool = False

    @model_validator(mode="after")
    def _known_fields(self) -> ClientSpec:
        for text in (self.name, self.name_en, self.message, self.message_en):
            if text is not None:
                client_fields(text)
        return self


class StageSpec(_Strict):
    code: str = Field(pattern=CODE_PATTERN)
    name: str = Field(min_length=1, max_length=100)
    name_en: str | None = Field(default=None, max_length=100)
    # The stage's name in a report table's narrow column (a phone shows ~32 characters a
    # line): without it a long name is abbreviated by rule (handlers/ui/fmt.abbreviate).
    short: str | None = Field(default=None, min_length=1, max_length=SHORT_NAME)
    short_en: str | None = Field(default=None, min_length=1, max_length=SHORT_NAME)
    kind: StageKind = StageKind.ACTIVE
    key: bool = False
    strict: bool | None = None
    probability: int = Field(default=0, ge=0, le=100)
    requires: tuple[str, ...] = ()
    task: TaskSpec | None = None
    # Days a deal may sit in this stage before it is stale ("rotting"): its manager gets
    # one alert with buttons, cards and lists mark it (services/work/rotting.py).
    rot_after_days: int | None = Field(default=None, ge=1)
    # Deals made in other pipelines when a deal enters this stage (issue 24).
    links: tuple[LinkSpec, ...] = ()
    # A field job: the task of this stage is a crew assignment, the job's checklist and photos.
    job: JobSpec | None = None
    # Entering this stage makes this share of the deal's amount due now (the final payment).
    final_payment_percent: int | None = Field(default=None, ge=1, le=100)
    # A deal with money owed may not enter this stage.
    debt_blocks: bool = False
    # What the client sees and gets in their own Telegram (issue 25).
    client: ClientSpec | None = None
    # Plans (issue 26): an open deal in this stage with no expected-close date typed is
    # expected to close this many days after it entered the stage (services/sales/plans.py).
    close_days: int | None = Field(default=None, ge=0, le=3650)

    def extras(self) -> dict[str, Any] | None:
        """What `stages.extras` stores (None when the stage has none of it)."""
        data: dict[str, Any] = {}
        if self.links:
            data["links"] = [link.model_dump(mode="json") for link in self.links]
        if self.job is not None:
            data["job"] = self.job.model_dump(mode="json")
        if self.final_payment_percent is not None:
            data["final_payment_percent"] = self.final_payment_percent
        if self.debt_blocks:
            data["debt_blocks"] = True
        if self.client is not None:
            data["client"] = self.client.model_dump(mode="json", exclude_defaults=True)
        if self.close_days is not None:
            data["close_days"] = self.close_days
        return data or None

    @model_validator(mode="after")
    def _check(self) -> StageSpec:
        unknown = sorted(set(self.requires) - REQUIRABLE_FIELDS)
        if unknown:
            allowed = ", ".join(sorted(REQUIRABLE_FIELDS))
            raise ValueError(f"requires: unknown field(s) {unknown}; allowed: {allowed}")
        return self


class PipelineSpec(_Strict):
    code: str = Field(pattern=CODE_PATTERN)
    name: str = Field(min_length=1, max_length=100)
    name_en: str | None = Field(default=None, max_length=100)
    role: PipelineRole = "custom"
    strict: bool = True
    stages: tuple[StageSpec, ...] = Field(min_length=2)

    @model_validator(mode="after")
    def _check(self) -> PipelineSpec:
        codes = [s.code for s in self.stages]
        dupes = sorted({c for c in codes if codes.count(c) > 1})
        if dupes:
            raise ValueError(f"stage codes repeat: {dupes}")
        kinds = {s.kind for s in self.stages}
        if StageKind.ACTIVE not in kinds:
            raise ValueError("needs at least one active stage")
        if StageKind.LOST not in kinds:
            raise ValueError('needs a lost stage (kind = "lost")')
        if self.role in ("leads", "sales", "installments") and StageKind.WON not in kinds:
            raise ValueError(f'a {self.role} pipeline needs a won stage (kind = "won")')
        if sum(s.key for s in self.stages) > 1:
            raise ValueError("at most one key stage per pipeline")
        if sum(s.kind == StageKind.FROZEN for s in self.stages) > 1:
            raise ValueError(
                "at most one frozen stage per pipeline (it is the conditional refusal stage)"
            )
        return self


class LossReasonSpec(_Strict):
    code: str = Field(pattern=CODE_PATTERN)
    name: str = Field(min_length=1, max_length=100)
    name_en: str | None = Field(default=None, max_length=100)
    conditional: bool = False
    comment_required: bool = False  # losing with it asks for a comment ("Other")
    applies_to: Literal["any", "leads", "deals"] = "any"  # where it is offered

    @model_validator(mode="after")
    def _check(self) -> LossReasonSpec:
        if self.conditional and self.applies_to == "leads":
            raise ValueError(
                "a conditional reason parks a deal in conditional refusal: not for leads"
            )
        return self


class QuestionSpec(_Strict):
    code: str = Field(pattern=CODE_PATTERN)
    text: str = Field(min_length=1, max_length=200)
    text_en: str | None = Field(default=None, max_length=200)
    required: bool = False


class CompanySpec(_Strict):
    name: str = Field(min_length=1, max_length=200)


class CompanyConfig(_Strict):
    company: CompanySpec
    pipelines: tuple[PipelineSpec, ...] = Field(min_length=1)
    loss_reasons: tuple[LossReasonSpec, ...] = Field(min_length=1)
    qualification: tuple[QuestionSpec, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> CompanyConfig:
        _unique("pipelines", (p.code for p in self.pipelines))
        _unique("loss_reasons", (r.code for r in self.loss_reasons))
        _unique("qualification", (q.code for q in self.qualification))
        roles: list[str] = [p.role for p in self.pipelines]
        for role in SINGLETON_ROLES:
            if roles.count(role) > 1:
                raise ValueError(f'only one pipeline may have role = "{role}"')
        for role in ("leads", "sales"):
            if role not in roles:
                raise ValueError(f'a pipeline with role = "{role}" is required')
        _check_links(self.pipelines)
        return self

    def pipeline(self, code: str) -> PipelineSpec:
        for p in self.pipelines:
            if p.code == code:
                return p
        raise KeyError(code)


def _check_links(pipelines: tuple[PipelineSpec, ...]) -> None:
    """Each link names another pipeline of this file, once per stage; said with where it is."""
    codes = [p.code for p in pipelines]
    for i, p in enumerate(pipelines):
        for j, stage in enumerate(p.stages):
            seen: set[str] = set()
            for k, link in enumerate(stage.links):
                where = f'pipelines[{i}] "{p.code}" > stages[{j}] "{stage.code}" > links[{k}]'
                if link.to == p.code:
                    raise ValueError(f"{where} > to: a deal cannot link into its own pipeline")
                if link.to not in codes:
                    known = ", ".join(c for c in codes if c != p.code)
                    raise ValueError(
                        f'{where} > to: there is no pipeline "{link.to}" in this file '
                        f"(pipelines: {known})"
                    )
                if link.to in seen:
                    raise ValueError(f'{where} > to: "{link.to}" is linked twice from this stage')
                seen.add(link.to)
                if stage.kind in (StageKind.LOST, StageKind.FROZEN):
                    raise ValueError(f"{where}: a {stage.kind} stage cannot start a linked deal")


def _unique(what: str, codes: Iterable[str]) -> None:
    seen: set[str] = set()
    for code in codes:
        if code in seen:
            raise ValueError(f'{what}: code "{code}" appears twice')
        seen.add(code)


class ConfigError(Exception):
    """A pipelines file is unreadable or invalid; `problems` are human-readable lines."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


def _describe_loc(data: Any, loc: tuple[int | str, ...]) -> str:
    """pipelines.1.stages.3.kind -> pipelines[1] "sales" > stages[3] "measured" > kind"""
    parts: list[str] = []
    node: Any = data
    for item in loc:
        if isinstance(item, int):
            label = f"[{item}]"
            try:
                node = node[item]
            except (IndexError, KeyError, TypeError):
                node = None
            code = node.get("code") if isinstance(node, dict) else None
            if code:
                label += f' "{code}"'
            if parts:
                parts[-1] += label
            else:
                parts.append(label)
        else:
            parts.append(str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return " > ".join(parts) or "(top level)"


def parse_config(text: str, path: Path = Path("<string>")) -> CompanyConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message ends with "(at line N, column M)".
        raise ConfigError(path, [f"TOML syntax: {exc}"]) from exc
    try:
        return CompanyConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = _describe_loc(data, tuple(err["loc"]))
            msg = err["msg"].removeprefix("Value error, ")
            # A check across pipelines (a link) says its own place in the file.
            problems.append(msg if msg.startswith("pipelines[") else f"{where}: {msg}")
        raise ConfigError(path, problems) from exc


def load_config(path: Path) -> CompanyConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, [f"cannot read the file: {exc.strerror or exc}"]) from exc
    return parse_config(text, path)
