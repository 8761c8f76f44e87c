"""Installation crews (Order fulfilment pipeline, issue 24), on the measurement chain's model.

Order enters *Installation scheduled* -> an ``assign_crew`` task to the role head_installer
(its card: each installer's jobs that day) -> `assign_crew` gives the installer an ``install``
task for the day (the job card: time, address with a map link, client and phone, the items,
the stage's checklist) -> `accept` / `on_my_way` (the measurement chain's own steps, which
take either kind of field job) -> `tick`, `add_photo` (before / after) -> `finish`: Done
needs every check ticked and the configured photos (`[...job]` of the stage); items left
over go to a new job on another day (partial completion) and the order stays; all done ->
the order moves on (*Installed*, whose `final_payment_percent` makes the final payment due)
-> `sign_off` (the client's signature, a file on the timeline) -> a ``quality_check`` task
to the heads -> `quality_check`: accepted (the won stage, refused while money is owed
unless the stage allows it) or a claim (a linked deal in the Claims pipeline).

An installer acts on their own jobs only (`Action.INSTALL_ACT`): another crew's job, a
manager or a measurer tapping an installer's buttons is refused. They never open the order
itself and see no money but what they must collect.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services import dates, policy, timeline, validation
from services.common import check_version, commit, employee_name, is_id
from services.errors import RuleViolation, ValidationError
from services.outbox.payloads import MeasurerLoad
from services.permissions import Action, Actor, require
from services.sales import stage as stage_core
from services.sales.pipelines import rules_by_role, rules_for
from services.tasks import (
    TaskCard,
    close_and_cancel,
    create_task,
    future,
    load_task,
    loads_on,
    map_url,
    require_kind,
    require_open,
    task_deal,
)
from services.work import installments, measurement
from storage.enums import ActivityKind, PipelineRole, Role, StageKind, TaskKind, TaskStatus
from storage.models import Contact, Deal, Employee, Task
from storage.uow import UnitOfWork

PHASES = ("before", "after")
MAX_PHOTOS = 30


@dataclass(frozen=True)
class CheckItem:
    code: str
    name: str
    name_en: str | None
    done: bool


@dataclass(frozen=True)
class JobCard:
    """The installer's job card: only what the job needs (no amount but what to collect)."""

    task_id: int
    version: int
    status: str
    title: str
    due_at: datetime | None  # the job's time (the head's card: the day it is planned for)
    kind: str
    client_name: str | None
    phone: str | None
    address: str | None
    map_url: str | None
    items: tuple[str, ...]
    checklist: tuple[CheckItem, ...]
    photos: dict[str, int]
    photos_needed: dict[str, int]
    to_collect: int  # what the client still owes on the order (kopecks)
    installer_id: int | None
    installer_name: str | None = None
    crew: tuple[MeasurerLoad, ...] = ()  # the head's card: installers and their load

    @property
    def ready(self) -> bool:
        return all(c.done for c in self.checklist) and all(
            self.photos.get(p, 0) >= self.photos_needed.get(p, 0) for p in PHASES
        )


def _job(task: Task) -> dict[str, Any]:
    job = (task.payload or {}).get("job")
    return job if isinstance(job, dict) else {}


async def job_card(uow: UnitOfWork, task: Task) -> JobCard:
    deal = await task_deal(uow, task)
    contact = await uow.repo.get(Contact, deal.contact_id) if deal.contact_id else None
    payload = task.payload or {}
    job = _job(task)
    ticked = set(payload.get("ticked") or ())
    checklist = tuple(
        CheckItem(str(c["code"]), str(c["name"]), c.get("name_en"), c["code"] in ticked)
        for c in job.get("checklist") or ()
    )
    photos = {p: int((payload.get("photos") or {}).get(p, 0)) for p in PHASES}
    needed = {p: int(job.get(f"photos_{p}", 0)) for p in PHASES}
    crew: tuple[MeasurerLoad, ...] = ()
    due_at = task.due_at
    if task.kind == TaskKind.ASSIGN_CREW:
        due_at = job_day(uow, deal)
        crew = tuple(await loads_on(uow, due_at, Role.INSTALLER, TaskKind.INSTALL))
    items = payload.get("items")
    return JobCard(
        task_id=task.id,
        version=task.version,
        status=task.status,
        title=deal.title,
        due_at=due_at,
        kind=task.kind,
        client_name=contact.name if contact else None,
        phone=contact.phone if contact else None,
        address=deal.address,
        map_url=_map_url(deal.address),
        items=tuple(items if isinstance(items, list) else deal.items or ()),
        checklist=checklist,
        photos=photos,
        photos_needed=needed,
        to_collect=await stage_core.owed(uow, deal),
        installer_id=task.assignee_id if task.kind == TaskKind.INSTALL else None,
        installer_name=await employee_name(uow, task.assignee_id)
        if task.kind == TaskKind.INSTALL
        else None,
        crew=crew,
    )


def job_day(uow: UnitOfWork, deal: Deal) -> datetime:
    """When an order's installation is planned: its delivery time, or tomorrow morning."""
    now = uow.clock.now()
    if deal.delivery_at is not None and deal.delivery_at > now:
        return deal.delivery_at
    return next_morning(uow)


def next_morning(uow: UnitOfWork) -> datetime:
    zone = policy.of(uow).timezone
    return dates.at_local(dates.local_today(uow.clock, zone) + timedelta(days=1), 10, zone)


def _map_url(address: str | None) -> str | None:
    return map_url(address) if address else None


async def crew_loads(uow: UnitOfWork, actor: Actor, when: datetime | None) -> list[MeasurerLoad]:
    """Active installers and how many installation jobs each has on the local day of `when`."""
    require(actor, Action.ASSIGN_CREW)
    return await loads_on(uow, when, Role.INSTALLER, TaskKind.INSTALL)


async def assign_crew(
    uow: UnitOfWork,
    actor: Actor,
    task_id: int,
    installer_id: int,
    when: datetime | None = None,
    expected_version: int | None = None,
) -> JobCard:
    """The head's choice: the installer gets the job for `when` (default: the order's
    planned day, `job_day`); returns the installer's job card."""
    task = await load_task(uow, actor, task_id, Action.TASK_VIEW)
    require(actor, Action.ASSIGN_CREW, task)
    require_kind(task, TaskKind.ASSIGN_CREW)
    require_open(task)
    check_version("task", task.version, expected_version)
    deal = await task_deal(uow, task)
    due = future(when or job_day(uow, deal), uow.clock.now(), "when")
    installer = await uow.repo.get(Employee, installer_id) if is_id(installer_id) else None
    if installer is None or not installer.active or Role.INSTALLER not in installer.roles:
        raise ValidationError("installer", "not_an_installer")
    rules = await rules_for(uow, deal.pipeline_id)
    stage = rules.stage(deal.stage_id)
    job = (stage.extras or {}).get("job") or {}
    await close_and_cancel(uow, task, TaskStatus.DONE)
    task.payload = {**(task.payload or {}), "installer_id": installer.id}
    job_task = await _new_job(uow, actor, deal, installer.id, due, job, list(deal.items or ()))
    await commit(uow, "deal")
    return await job_card(uow, job_task)


async def _new_job(
    uow: UnitOfWork,
    actor: Actor,
    deal: Deal,
    installer_id: int,
    due: datetime,
    job: dict[str, Any],
    items: list[str],
) -> Task:
    """An installation job for the installer on `due`: the stage's checklist and photos
    (`job`), the items to install, nothing ticked or sent yet."""
    return await create_task(
        uow,
        kind=TaskKind.INSTALL,
        title=deal.title,
        due_at=due,
        created_by_id=actor.id,
        deal_id=deal.id,
        assignee_id=installer_id,
        payload={"job": job, "items": items, "ticked": [], "photos": {}},
    )


# Accept / On my way: the measurement chain's own steps (they take either field job).
FieldStep = Callable[[UnitOfWork, Actor, int, int | None], Awaitable[TaskCard]]
STEPS: dict[str, FieldStep] = {"accept": measurement.accept, "on_my_way": measurement.on_my_way}


async def step(
    uow: UnitOfWork, actor: Actor, task_id: int, name: str, expected_version: int | None = None
) -> JobCard:
    """A step of the installer's own job ("accept", "on_my_way")."""
    await _own_job(uow, actor, task_id, None)
    task = (await STEPS[name](uow, actor, task_id, expected_version)).task
    return await job_card(uow, await load_task(uow, actor, task.id, Action.INSTALL_ACT))


async def _own_job(
    uow: UnitOfWork, actor: Actor, task_id: int, expected_version: int | None
) -> Task:
    task = await load_task(uow, actor, task_id, Action.INSTALL_ACT)
    require_kind(task, TaskKind.INSTALL)
    require_open(task)
    check_version("task", task.version, expected_version)
    return task


async def view(uow: UnitOfWork, actor: Actor, task_id: int, *, own: bool = False) -> JobCard:
    """A job's card as its installer (or a head, a leader) sees it; `own`: only the job's
    installer (a step is about to be asked for). A forged id is refused."""
    task = await load_task(uow, actor, task_id, Action.INSTALL_ACT if own else Action.TASK_VIEW)
    require_kind(task, TaskKind.ASSIGN_CREW, TaskKind.INSTALL, TaskKind.QUALITY_CHECK)
    return await job_card(uow, task)


async def tick(
    uow: UnitOfWork,
    actor: Actor,
    task_id: int,
    item: int | str,
    expected_version: int | None = None,
) -> JobCard:
    """A checklist item (its code, or its place in the list) ticked, or unticked by a
    second tap."""
    task = await _own_job(uow, actor, task_id, expected_version)
    codes = [str(c["code"]) for c in _job(task).get("checklist") or ()]
    code = item if isinstance(item, str) else codes[item] if 0 <= item < len(codes) else ""
    if code not in codes:
        raise ValidationError("check", "unknown")
    ticked = list((task.payload or {}).get("ticked") or ())
    ticked = [c for c in ticked if c != code] if code in ticked else [*ticked, code]
    task.payload = {**(task.payload or {}), "ticked": ticked}
    await commit(uow, "task")
    return await job_card(uow, task)


async def add_photo(
    uow: UnitOfWork,
    actor: Actor,
    task_id: int,
    phase: str,
    file_id: str,
    file_unique_id: str | None = None,
) -> JobCard:
    """A before / after photo of the job: on the order's timeline, counted on the job."""
    task = await _own_job(uow, actor, task_id, None)
    if phase not in PHASES:
        raise ValidationError("phase", "unknown")
    measurement.check_file_id(file_id)
    photos = dict((task.payload or {}).get("photos") or {})
    if sum(photos.values()) >= MAX_PHOTOS:
        raise ValidationError("attachments", "too_many", max=MAX_PHOTOS)
    photos[phase] = int(photos.get(phase, 0)) + 1
    task.payload = {**(task.payload or {}), "photos": photos}
    timeline.record(
        uow,
        ActivityKind.FILE,
        actor_id=actor.id,
        deal_id=task.deal_id,
        task_id=task.id,
        media_type="photo",
        file_id=file_id,
        file_unique_id=file_unique_id,
        payload={"job": phase},
    )
    await commit(uow, "task")
    return await job_card(uow, task)


async def finish(
    uow: UnitOfWork,
    actor: Actor,
    task_id: int,
    left: list[str] | None = None,
    again_at: datetime | None = None,
    expected_version: int | None = None,
) -> JobCard:
    """Done. Refused unless every check is ticked and the photos are there. `left`: items
    not installed today; they go to a new job for the same installer at `again_at` and the
    order stays. Otherwise the order moves to the next stage (Installed)."""
    task = await _own_job(uow, actor, task_id, expected_version)
    card = await job_card(uow, task)
    missing = [c.name for c in card.checklist if not c.done]
    if missing:
        raise RuleViolation("checklist_incomplete", missing=", ".join(missing))
    for phase in PHASES:
        if card.photos[phase] < card.photos_needed[phase]:
            raise RuleViolation(
                f"photos_{phase}_missing",
                needed=card.photos_needed[phase],
                got=card.photos[phase],
            )
    deal = await task_deal(uow, task)
    rest = [item for item in (left or []) if item in card.items]
    if len(rest) != len(left or []):
        raise ValidationError("items", "unknown")
    now = uow.clock.now()
    await close_and_cancel(uow, task, TaskStatus.DONE)
    done = [item for item in card.items if item not in rest]
    timeline.record(
        uow,
        ActivityKind.SYSTEM,
        actor_id=actor.id,
        deal_id=deal.id,
        task_id=task.id,
        payload={"installed": done, "left": rest},
    )
    if rest:
        again = future(again_at or next_morning(uow), now, "when")
        assert task.assignee_id is not None  # an installation job is always someone's
        await _new_job(uow, actor, deal, task.assignee_id, again, _job(task), rest)
    else:
        await _move_on(uow, actor, deal)
    await commit(uow, "deal")
    return card


async def _move_on(uow: UnitOfWork, actor: Actor, deal: Deal) -> None:
    """The order's next stage after the installation, and what that stage makes due."""
    rules = await rules_for(uow, deal.pipeline_id)
    current = rules.stage(deal.stage_id)
    _, target = rules.neighbours(current)
    if target is None or target.kind != StageKind.ACTIVE:
        return
    await stage_core.enter(uow, actor, deal, target)
    percent = (target.extras or {}).get("final_payment_percent")
    if percent:
        await installments.open_final_payment(uow, actor, deal, int(percent))


async def sign_off(
    uow: UnitOfWork, actor: Actor, task_id: int, file_id: str, media_type: str = "document"
) -> int:
    """The client's signature (drawn in the Mini App on the installer's phone, or a picture
    of it) on the order's timeline, once the installer's job (`task_id`, their own) and every
    other job of the order are done; the heads get the quality check. Returns its task id."""
    task = await load_task(uow, actor, task_id, Action.INSTALL_ACT)
    require_kind(task, TaskKind.INSTALL)
    deal = await task_deal(uow, task)
    jobs = await uow.repo.tasks.of_deal(deal.id, TaskKind.INSTALL)
    if any(j.status != TaskStatus.DONE for j in jobs):
        raise RuleViolation("job_not_done")
    if media_type not in ("photo", "document"):
        raise ValidationError("attachments", "invalid")
    measurement.check_file_id(file_id)
    timeline.record(
        uow,
        ActivityKind.FILE,
        actor_id=actor.id,
        deal_id=deal.id,
        task_id=task.id,
        media_type=media_type,
        file_id=file_id,
        payload={"job": "signature"},
    )
    pending = await uow.repo.tasks.open_for_deal(deal.id, TaskKind.QUALITY_CHECK)
    if pending:  # signed again: the check already waits
        await commit(uow, "deal")
        return pending[0].id
    check = await create_task(
        uow,
        kind=TaskKind.QUALITY_CHECK,
        title=deal.title,
        due_at=None,
        created_by_id=actor.id,
        deal_id=deal.id,
        assignee_role=Role.HEAD_INSTALLER,
    )
    await commit(uow, "deal")
    return check.id


async def quality_check(
    uow: UnitOfWork,
    actor: Actor,
    task_id: int,
    accepted: bool,
    note: str | None = None,
    expected_version: int | None = None,
) -> int:
    """The head's check: accepted -> the order's won stage (refused while money is owed
    where the stage says so); not -> a claim, a linked deal in the Claims pipeline.
    Returns the order's id, or the claim's."""
    task = await load_task(uow, actor, task_id, Action.TASK_VIEW)
    require(actor, Action.QUALITY_CHECK, task)
    require_kind(task, TaskKind.QUALITY_CHECK)
    require_open(task)
    check_version("task", task.version, expected_version)
    text = validation.optional_text(note, "comment", 1000)
    deal = await task_deal(uow, task)
    result = deal.id
    if accepted:
        rules = await rules_for(uow, deal.pipeline_id)
        await stage_core.enter(uow, actor, deal, rules.first_of(StageKind.WON))
    else:
        result = (await open_claim_on(uow, actor, deal, text)).id
    await close_and_cancel(uow, task, TaskStatus.DONE)
    await commit(uow, "deal")
    return result


async def open_claim_on(uow: UnitOfWork, actor: Actor, order: Deal, text: str | None) -> Deal:
    """A claim on an order: a linked deal in the Claims pipeline (no commit)."""
    claims = await rules_by_role(uow, PipelineRole.CLAIMS)
    claim = Deal(
        title=order.title,
        contact_id=order.contact_id,
        company_id=order.company_id,
        parent_deal_id=order.id,
        manager_id=order.manager_id,
        address=order.address,
        need=text or order.need,
        items=list(order.items or ()),
        search_text=order.search_text,
    )
    await stage_core.birth(uow, actor, claim, claims)
    return claim


async def open_claim(uow: UnitOfWork, actor: Actor, deal_id: int, text: str | None = None) -> int:
    """A claim on an order from its card (its manager, a leader, the head of installation)."""
    order, _ = await stage_core.load_for(uow, actor, deal_id, Action.DEAL_EDIT, None)
    claim = await open_claim_on(uow, actor, order, validation.optional_text(text, "comment"))
    await commit(uow, "deal")
    return claim.id
