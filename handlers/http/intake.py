"""The site form: ``POST /api/leads`` (services/intake/api.py does the work).

``Authorization: Bearer <token>`` of a source from ``INTAKE_TOKENS``; JSON object or form
(urlencoded or multipart) with ``name``, ``phone`` and/or ``email``, optional ``need`` (or
``message``/``comment``), ``company``, ``amount``; optional ``Idempotency-Key`` header.
Answers:

- 201 ``{"lead_id": 12, "status": "created"}`` — a new lead in the Leads pipeline, its
  manager notified;
- 200 ``{"lead_id": 7, "status": "duplicate"}`` — the phone/email already has an open lead
  (no second lead; its manager is told the client wrote again);
- a replay of an Idempotency-Key with the same fields: the original status and body,
  plus the header ``Idempotency-Replayed: true``;
- 400 ``{"error": "bad_json" | "bad_form" | "bad_idempotency_key", "detail": ...}``;
- 401 ``{"error": "unauthorized"}`` (with ``WWW-Authenticate: Bearer``);
- 404 ``{"error": "intake_disabled"}`` when ``INTAKE_TOKENS`` is not set;
- 415 ``{"error": "unsupported_media_type"}``;
- 422 ``{"error": "validation_failed", "errors": {"phone": "invalid", ...}}`` or
  ``{"error": "idempotency_key_reused", "errors": {"idempotency_key": "reused"}}``;
- 429 ``{"error": "rate_limited", "retry_after": 17}`` with ``Retry-After: 17``;
- 500 ``{"error": "internal_error"}`` (nothing saved; retry with the same key);
- 503 ``{"error": "shutting_down"}``.

If Redis cannot be reached the rate limit is skipped (logged): a lead is worth more.
The request runs in a task of the server's own (`Gate.track`), so a client that hangs up
does not cancel it halfway, and a shutdown waits for it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from aiohttp import web

from services.intake import api as intake
from storage.uow import UnitOfWorkFactory

log = logging.getLogger(__name__)

INTAKE_PATH = "/api/leads"
IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotency-Replayed"

T = TypeVar("T")


class Gate(Protocol):
    """The server's shutdown gate (bot/webhook.py WebhookState): closing, and the requests
    in flight it waits for."""

    @property
    def closing(self) -> bool: ...

    def track(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]: ...


@dataclass
class IntakeState:
    uow_factory: UnitOfWorkFactory
    tokens: intake.TokenRegistry
    limiter: intake.RateLimiter
    gate: Gate
    manager_telegram_ids: Sequence[int] = ()
    kick: Callable[[], None] | None = None  # a notification was queued: sweep soon


INTAKE = web.AppKey("voronka_intake", IntakeState)


def _error(
    status: int, error: str, headers: dict[str, str] | None = None, **extra: Any
) -> web.Response:
    return web.json_response({"error": error, **extra}, status=status, headers=headers)


class _BadBody(Exception):
    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail


def _bearer(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


async def _read_fields(request: web.Request) -> dict[str, object]:
    kind = request.content_type
    if kind == "application/json" or kind.endswith("+json"):
        raw = await request.read()
        try:
            data = json.loads(raw.decode(request.charset or "utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise _BadBody(400, "bad_json", f"not valid JSON: {exc}"[:200]) from exc
        if not isinstance(data, dict):
            raise _BadBody(400, "bad_json", "expected a JSON object")
        return data
    if kind in ("application/x-www-form-urlencoded", "multipart/form-data"):
        try:
            form = await request.post()
        except (ValueError, UnicodeDecodeError) as exc:
            raise _BadBody(400, "bad_form", f"unreadable form: {exc}"[:200]) from exc
        fields: dict[str, object] = {}
        for key, value in form.items():
            if isinstance(value, str) and key not in fields:  # files are ignored
                fields[key] = value
        return fields
    raise _BadBody(
        415,
        "unsupported_media_type",
        "send application/json, application/x-www-form-urlencoded or multipart/form-data",
    )


async def post_lead(request: web.Request) -> web.Response:
    state = request.app[INTAKE]
    if not state.tokens:
        return _error(404, "intake_disabled")
    source = state.tokens.authenticate(_bearer(request))
    if source is None:
        return _error(401, "unauthorized", {"WWW-Authenticate": 'Bearer realm="voronka"'})
    if state.gate.closing:
        return _error(503, "shutting_down", {"Retry-After": "5"})
    try:
        decision = await state.limiter.hit(source.name)
    except Exception as exc:  # Redis away: take the lead rather than lose it
        log.warning("intake rate limit unavailable (%s); request let through", exc)
        decision = intake.RateDecision(allowed=True, count=0, retry_after=0)
    if not decision.allowed:
        return _error(
            429,
            "rate_limited",
            {"Retry-After": str(decision.retry_after)},
            retry_after=decision.retry_after,
        )
    try:
        fields = await _read_fields(request)
    except _BadBody as exc:
        return _error(exc.status, exc.error, detail=exc.detail)
    try:
        key = intake.check_idempotency_key(request.headers.get(IDEMPOTENCY_HEADER))
    except ValueError as exc:
        return _error(400, "bad_idempotency_key", detail=str(exc))
    task = state.gate.track(
        intake.receive(
            state.uow_factory,
            source,
            fields,
            idempotency_key=key,
            manager_telegram_ids=state.manager_telegram_ids,
        )
    )
    try:
        result = await asyncio.shield(task)
    except intake.InvalidSubmission as exc:
        return _error(422, "validation_failed", errors=exc.errors)
    except intake.IdempotencyConflict:
        return _error(422, "idempotency_key_reused", errors={"idempotency_key": "reused"})
    except Exception:
        log.exception("intake %s failed; nothing was saved", source.name)
        return _error(500, "internal_error")
    if result.notified and state.kick is not None:
        state.kick()
    log.info(
        "intake %s: lead %s %s%s",
        source.name,
        result.lead_id,
        result.outcome,
        " (replayed)" if result.replayed else "",
    )
    headers = {REPLAYED_HEADER: "true"} if result.replayed else None
    status = 201 if result.outcome == intake.CREATED else 200
    return web.json_response(result.body(), status=status, headers=headers)


def mount(app: web.Application, state: IntakeState) -> None:
    """``POST /api/leads`` on `app`."""
    app[INTAKE] = state
    app.router.add_post(INTAKE_PATH, post_lead)
