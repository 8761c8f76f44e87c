"""What a client answers in their own Telegram (issue 25): an appointment confirmed or a
reschedule proposed, the finished work accepted (then rated) or remarks made, /stop and
/start.

Every answer names a deal by the id in a button: client input. The deal is loaded here and
checked with `require_client` (the deal's contact is one of the client's), and the answer
must fit the deal's *current* stage (its `[client]` table asks for a confirmation or an
acceptance): a button of an old message, or a forged one, changes nothing
(`ClientAnswerStale`). Each answer is taken once per stay in the stage (a second tap is
told it was noted), a rating once per deal. Each lands on the deal's timeline
(``client_in`` rows: the facts, drawn in the reader's language).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services import timeline, validation
from services.common import commit, is_id
from services.errors import NotFound, RuleViolation, ValidationError
from services.outbox import clients as client_messages
from services.permissions import SYSTEM, ClientActor, require_client
from services.sales.pipelines import rules_for
from services.tasks import create_task, future
from services.work.installation import open_claim_on
from storage.enums import ActivityKind, Role, TaskKind
from storage.models import Activity, Deal, Stage
from storage.uow import UnitOfWork

CONFIRM = "confirm"
RESCHEDULE = "reschedule"
ACCEPT = "accept"
REMARKS = "remarks"
RATE = "rate"

# What the stage's [client] table must ask for an answer to be taken.
ASKED_BY = {CONFIRM: "confirm", RESCHEDULE: "confirm", ACCEPT: "accept", REMARKS: "accept"}

RESCHEDULE_TITLE = "Клиент просит перенести"
RESCHEDULE_TITLE_EN = "The client asks to reschedule"


class ClientAnswerStale(RuleViolation):
    """The deal is no longer where the message asked this (or never was)."""

    rule = "client_answer_stale"


class AlreadyAnswered(RuleViolation):
    """Taken once: the client answered this already."""

    rule = "client_answered"


async def _deal(uow: UnitOfWork, client: ClientActor, deal_id: int) -> Deal:
    deal = await uow.repo.deals.with_client(deal_id) if is_id(deal_id) else None
    if deal is None:
        raise NotFound("deal", deal_id)
    require_client(client, deal)  # the one scope check: one of the client's contacts
    return deal


async def _asking(
    uow: UnitOfWork, client: ClientActor, deal_id: int, answer: str
) -> tuple[Deal, Stage]:
    """The client's deal, in a stage that asks for `answer`."""
    deal = await _deal(uow, client, deal_id)
    stage = (await rules_for(uow, deal.pipeline_id)).stage(deal.stage_id)
    spec = (stage.extras or {}).get("client")
    if not isinstance(spec, dict) or not spec.get(ASKED_BY[answer]):
        raise ClientAnswerStale()
    return deal, stage


def _answers(rows: list[Activity], since: datetime | None = None) -> set[str]:
    return {
        str((row.payload or {}).get("answer")) for row in rows if since is None or row.at >= since
    }


def _record(uow: UnitOfWork, deal: Deal, answer: str, text: str = "", **facts: Any) -> None:
    timeline.record(
        uow,
        ActivityKind.CLIENT_IN,
        actor_id=None,
        deal_id=deal.id,
        contact_id=deal.contact_id,
        text=text,
        payload={"answer": answer, **facts},
    )


async def _once(uow: UnitOfWork, deal: Deal, answers: tuple[str, ...]) -> None:
    """Refuse an answer given already in this stay of the stage."""
    rows = list(await uow.repo.client_links.answers(deal.id))
    if _answers(rows, deal.stage_entered_at) & set(answers):
        raise AlreadyAnswered()


async def confirm(uow: UnitOfWork, client: ClientActor, deal_id: int) -> None:
    """The appointment suits the client: a timeline row. Commits."""
    deal, stage = await _asking(uow, client, deal_id, CONFIRM)
    await _once(uow, deal, (CONFIRM,))
    _record(uow, deal, CONFIRM, stage=stage.name, stage_en=stage.name_en)
    await commit(uow, "deal")


async def check_reschedule(uow: UnitOfWork, client: ClientActor, deal_id: int) -> None:
    """May the client propose other times for this deal now? (Asked before the date is
    typed; `reschedule` checks again.)"""
    await _asking(uow, client, deal_id, RESCHEDULE)


async def reschedule(
    uow: UnitOfWork, client: ClientActor, deal_id: int, when: datetime, typed: str
) -> int:
    """The client proposes `when` (their typed words in `typed`, said back to them before
    this): a task for the deal's manager (a leader when it has none) with the words and
    the moment, and a timeline row. Commits; returns the task's id."""
    deal, stage = await _asking(uow, client, deal_id, RESCHEDULE)
    moment = future(when, uow.clock.now(), "when")
    words = validation.optional_text(typed, "comment", 500)
    task = await create_task(
        uow,
        kind=TaskKind.CALL_BACK,
        title=RESCHEDULE_TITLE,
        due_at=uow.clock.now(),
        created_by_id=None,
        deal_id=deal.id,
        assignee_id=deal.manager_id,
        assignee_role=None if deal.manager_id is not None else Role.LEADER,
        comment=words,
        payload={"title_en": RESCHEDULE_TITLE_EN, "proposed": moment.isoformat()},
    )
    _record(
        uow,
        deal,
        RESCHEDULE,
        text=words or "",
        when=moment.isoformat(),
        stage=stage.name,
        stage_en=stage.name_en,
    )
    await commit(uow, "deal")
    return task.id


async def accept(uow: UnitOfWork, client: ClientActor, deal_id: int) -> None:
    """All installed, no remarks: a timeline row (the manager sees it on the card); the
    rating is asked next. Commits."""
    deal, stage = await _asking(uow, client, deal_id, ACCEPT)
    await _once(uow, deal, (ACCEPT, REMARKS))
    _record(uow, deal, ACCEPT, stage=stage.name, stage_en=stage.name_en)
    await commit(uow, "deal")


async def check_remarks(uow: UnitOfWork, client: ClientActor, deal_id: int) -> None:
    deal, _ = await _asking(uow, client, deal_id, REMARKS)
    await _once(uow, deal, (ACCEPT, REMARKS))


async def remarks(uow: UnitOfWork, client: ClientActor, deal_id: int, text: str) -> int:
    """The client has remarks: a claim (a linked deal in the Claims pipeline, as the head's
    quality check makes one) with their words, and a timeline row. Commits; returns the
    claim's id."""
    deal, _ = await _asking(uow, client, deal_id, REMARKS)
    await _once(uow, deal, (ACCEPT, REMARKS))
    words = validation.optional_text(text, "comment", 1000)
    if words is None:
        raise ValidationError("comment", "empty")
    claim = await open_claim_on(uow, SYSTEM, deal, words)
    _record(uow, deal, REMARKS, text=words, claim_id=claim.id)
    await commit(uow, "deal")
    return claim.id


async def rate(uow: UnitOfWork, client: ClientActor, deal_id: int, stars: int) -> None:
    """1-5 stars, once, after the client accepted the work. Commits."""
    if not isinstance(stars, int) or not 1 <= stars <= 5:
        raise ClientAnswerStale()
    deal = await _deal(uow, client, deal_id)
    given = _answers(list(await uow.repo.client_links.answers(deal.id)))
    if ACCEPT not in given:
        raise ClientAnswerStale()
    if RATE in given:
        raise AlreadyAnswered()
    _record(uow, deal, RATE, stars=stars)
    await commit(uow, "deal")


async def stop(uow: UnitOfWork, client: ClientActor) -> int:
    """/stop: nothing more is sent to the client until /start; what is queued is
    cancelled. Commits; returns the messages cancelled."""
    links = await uow.repo.client_links.of_telegram(client.telegram_id)
    cancelled = await client_messages.stop(uow, [link.id for link in links])
    await uow.commit()
    return cancelled


async def resume(uow: UnitOfWork, client: ClientActor) -> None:
    """/start after /stop: messages are on again. Commits."""
    links = await uow.repo.client_links.of_telegram(client.telegram_id)
    await client_messages.resume(uow, [link.id for link in links])
    await uow.commit()
