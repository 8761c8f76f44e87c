"""Messages to a client's own Telegram (issue 25): outbox rows addressed to a `ClientLink`.

Every message the company sends a client goes through the outbox like the staff's
(services/outbox/queue.py: claim, rate limits, leases, restarts), with three client rules
kept by the sweeper at claim time: /stop (the link's `stopped_at`: rows cancelled),
a blocked bot (`blocked_at`, set on a 403: rows failed, not retried until the client
writes again, `client_wrote`) and the quiet hours in the company's time zone
(`CompanyPolicy.client_quiet_hours`: a row due then waits until the window ends; it is
put off here already when it is enqueued). A sent message is written on the deal's
timeline when it goes out (queue.Sweeper.mark_sent).

The generators, each in its caller's transaction (the caller commits), each a no-op for a
deal whose contact has no linked client, or one who said /stop or blocked the bot:

- `stage_entered`: the stage core (services/sales/stage.py) calls it as a deal enters a
  stage; a stage whose `[client]` table has a `message` sends it, with the deal's fields
  (moments as ISO facts: the view says them in words in the client's language);
- `on_the_way`: the measurer or the installer tapped "On my way";
- `payment_due` / `payment_missed`: the installment engine's reminders, in client words.

Here, under sales and work, so the stage core may call it (services/clients, the client's
side of the bot, stands on top of both).
"""

from __future__ import annotations

import string
from datetime import datetime
from typing import Any

from services import policy
from services.common import employee_name
from services.outbox import queue
from services.outbox.payloads import ClientOnWay, ClientPayload, ClientPayment, ClientStage
from services.outbox.queue import Kind
from storage.enums import ReminderState, TaskKind
from storage.models import ClientLink, Deal, InstallmentDue, Stage
from storage.uow import UnitOfWork

# The deal's fields a client's text (a stage's `[client]` name or message in the pipelines
# file) may name: "{measurement_at}", "{production_at:day}". Moments are said in words in
# the client's language and the company's time zone (":day": the day alone), the rest as it
# is; staff by first name. `installation_at`: the installation job's time (or the
# delivery's, until a crew has the job).
CLIENT_MOMENTS = ("measurement_at", "production_at", "delivery_at", "installation_at")
CLIENT_FIELDS = (*CLIENT_MOMENTS, "address", "title", "manager", "measurer")
CLIENT_FORMATS = ("", "day")


def client_fields(text: str) -> list[tuple[str, str]]:
    """The (field, format) pairs a client's text names, in order; ValueError on a field the
    client may not see, an unknown format, or a malformed template."""
    found = []
    for _, field, spec, conversion in string.Formatter().parse(text):
        if field is None:
            continue
        if field not in CLIENT_FIELDS or conversion or (spec or "") not in CLIENT_FORMATS:
            raise ValueError(
                f"{{{field}}}: a client's text may name only "
                + ", ".join(f"{{{f}}}" for f in CLIENT_FIELDS)
                + " (a moment may end with :day)"
            )
        found.append((field, spec or ""))
    return found


def first_name(name: str | None) -> str | None:
    """What a client is told of a staff member: the first name only."""
    return name.split()[0] if name and name.split() else None


async def link_of(uow: UnitOfWork, deal: Deal) -> ClientLink | None:
    """The deal's contact's linked client who may be written to now (None: no link, or
    they said /stop, or they blocked the bot)."""
    if deal.contact_id is None:
        return None
    link = await uow.repo.client_links.of_contact(deal.contact_id)
    if link is None or link.stopped_at is not None or link.blocked_at is not None:
        return None
    return link


async def send(
    uow: UnitOfWork,
    deal: Deal,
    kind: Kind,
    payload: ClientPayload,
    *,
    due_at: datetime | None = None,
    dedupe_key: str | None = None,
) -> bool:
    """Queue `payload` for the deal's linked client (no commit). Due in the quiet hours:
    due at their end. False when there is nobody to write to (or the key was used)."""
    link = await link_of(uow, deal)
    if link is None:
        return False
    due = due_at or uow.clock.now()
    due = policy.of(uow).quiet_until(due) or due
    return await queue.enqueue(
        uow,
        None,
        kind,
        payload,
        due,
        dedupe_key=dedupe_key,
        deal_id=deal.id,
        client_link_id=link.id,
    )


async def installation_at(uow: UnitOfWork, deal: Deal) -> datetime | None:
    """When the crew comes: the open installation job's time, else the delivery's."""
    jobs = await uow.repo.tasks.open_for_deal(deal.id, TaskKind.INSTALL)
    times = [j.due_at for j in jobs if j.due_at is not None]
    return min(times) if times else deal.delivery_at


async def deal_fields(uow: UnitOfWork, deal: Deal) -> dict[str, str | int | None]:
    """The facts a client's text may show (CLIENT_FIELDS): moments as ISO strings (the
    views say them in words), staff by first name."""
    moments: dict[str, Any] = {
        name: getattr(deal, name) for name in ("measurement_at", "production_at", "delivery_at")
    }
    moments["installation_at"] = await installation_at(uow, deal)
    return {
        "title": deal.title,
        "address": deal.address,
        **{k: v.isoformat() if v is not None else None for k, v in moments.items()},
        "manager": first_name(await employee_name(uow, deal.manager_id)),
        "measurer": first_name(await employee_name(uow, deal.measurer_id)),
    }


async def stage_entered(uow: UnitOfWork, deal: Deal, stage: Stage) -> bool:
    """The deal entered `stage`: its `[client]` message (pipelines file), if it has one,
    for the deal's linked client. Costs nothing for a stage without one."""
    spec = (stage.extras or {}).get("client")
    if not isinstance(spec, dict) or not spec.get("message"):
        return False
    link = await link_of(uow, deal)
    if link is None:
        return False
    now = uow.clock.now()
    payload = ClientStage(
        stage=stage.name,
        stage_en=stage.name_en,
        message=str(spec["message"]),
        message_en=spec.get("message_en"),
        fields=await deal_fields(uow, deal),
        confirm=bool(spec.get("confirm")),
        accept=bool(spec.get("accept")),
    )
    key = f"cstage:{deal.id}:{stage.id}:{int(now.timestamp())}"
    return await send(uow, deal, Kind.CLIENT_STAGE, payload, dedupe_key=key)


async def on_the_way(uow: UnitOfWork, deal: Deal, who_id: int | None, job: str) -> bool:
    """The measurer or the installer (`who_id`) set off to the deal's client."""
    who = first_name(await employee_name(uow, who_id))
    if who is None:
        return False
    payload = ClientOnWay(who=who, job="install" if job == "install" else "measure")
    return await send(uow, deal, Kind.CLIENT_ON_WAY, payload)


async def payment_due(
    uow: UnitOfWork, deal: Deal, due: InstallmentDue, count: int, remind_at: datetime
) -> bool:
    """A part of the client's plan is due soon: reminded at `remind_at` (once per part)."""
    payload = ClientPayment(
        n=due.n, count=count, amount=due.amount, due_date=due.due_date, due_id=due.id
    )
    key = f"cinst:{due.id}:pre"
    return await send(uow, deal, Kind.CLIENT_PAY_SOON, payload, due_at=remind_at, dedupe_key=key)


async def payment_missed(uow: UnitOfWork, deal: Deal, due: InstallmentDue, days: int) -> bool:
    """A part of the client's plan was missed (past its grace days): once per part."""
    payload = ClientPayment(
        n=due.n,
        count=0,
        amount=due.amount - due.paid,
        due_date=due.due_date,
        due_id=due.id,
        days=days,
    )
    key = f"cinst:{due.id}:late"
    return await send(uow, deal, Kind.CLIENT_PAY_LATE, payload, dedupe_key=key)


async def stop(uow: UnitOfWork, link_ids: list[int]) -> int:
    """/stop: these links get nothing until /start; what is queued is cancelled (no
    commit). Returns the rows cancelled."""
    now = uow.clock.now()
    for link_id in link_ids:
        link = await uow.repo.get(ClientLink, link_id)
        if link is not None and link.stopped_at is None:
            link.stopped_at = now
    await uow.flush()
    return await uow.repo.outbox.settle_client(link_ids, ReminderState.CANCELLED.value, "stopped")


async def resume(uow: UnitOfWork, link_ids: list[int]) -> None:
    """/start again: messages are on (what was cancelled by /stop stays cancelled)."""
    for link_id in link_ids:
        link = await uow.repo.get(ClientLink, link_id)
        if link is not None:
            link.stopped_at = None


async def client_wrote(uow: UnitOfWork, telegram_id: int) -> None:
    """A client who had blocked the bot wrote to it again: their links are reachable
    (what failed meanwhile is not sent late: appointments and reminders go stale). Commits."""
    for link in await uow.repo.client_links.of_telegram(telegram_id):
        link.blocked_at = None
    await uow.commit()
