"""The Mini App: its page and its JSON API (`mount` adds them to an aiohttp app).

Routes (``/app/``):

``GET /app/``                      the page (static/index.html); assets under /app/static/
``GET /app/api/texts``             ``?lang=`` the page's texts (public: said before login)
``GET /app/api/me``                who is calling, their language and the UI texts
``GET /app/api/board``             ``?pipeline=&manager=&per=`` a pipeline's columns
``GET /app/api/column``            ``?pipeline=&stage=&manager=&offset=&limit=`` more cards
``GET /app/api/deals/{id}``        the deal's card and history
``POST /app/api/deals/{id}/move``  ``{"stage_id", "version", "fields": {...}}``
``POST /app/api/deals/{id}/lose``  ``{"reason_id", "version"}``
``POST /app/api/deals/{id}/edit``  ``{"field", "value", "version"}``: a field corrected (the
                                   chat's ✏️, services/sales/edit.py)
``GET /app/api/funnel``            ``?report=snapshot|period|losses|managers&pipeline=&period=
                                   &manager=`` the /funnel reports as numbers

Every API call: ``Authorization: tma <initData>`` (handlers/webapp/auth.py) — 401
``{"error": "unauthorized"}`` and nothing else without a valid, fresh one; 403 for anyone
who is not an active employee. Then one service call — the same services, and so the same
permission checks, as the chat. Domain errors answer with the chat's message in the
person's language: 404 not found (also a deal the person may not see), 403 not allowed,
409 the deal changed, 422 a refused move or bad input (``{"error", "message", "rule"?,
"field"?}``), 400 a request no page sends (a number beyond the database's range, JSON
nested deeper than 16, a NUL character). Dates follow the chat's rules (`dates.check_when`).
Security headers on every answer: handlers/http/headers.py.
A move that went through redraws the deal's card in the person's chat too
(`on_deal_changed`); 409 means: reload. Each API answer carries ``Server-Timing: app;dur=<ms>``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Any

from aiohttp import web

from handlers.ui import fmt
from handlers.ui.discipline import team_lines
from handlers.ui.error_text import error_text
from handlers.ui.i18n import catalog, lang_of, t
from handlers.webapp.auth import Unauthorized, authenticate
from services import dates
from services.dto import DealCard, HistoryEntry, PipelineInfo, StageInfo, label
from services.errors import (
    DomainError,
    FieldRequired,
    NotFound,
    PermissionDenied,
    RuleViolation,
    StaleVersion,
    ValidationError,
)
from services.permissions import Action, Actor, can
from services.reports import screens
from services.reports.analytics import (
    LossReport,
    ManagerReport,
    Period,
    PeriodFunnel,
    ReportFilter,
    SnapshotFunnel,
    VelocityReport,
)
from services.sales import board, deals, edit, plans
from services.sales.pipeline_config import DATE_FIELDS
from services.sales.plans import PlanReport, PlanRow
from services.team import employees
from services.team.norms import TeamFigures
from services.work import installation
from storage.uow import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
PREFIX = "/app"
API = PREFIX + "/api"
MAX_INT = 2**31 - 1  # INTEGER columns (ids, versions): PostgreSQL's 32 bits
MAX_DEPTH = 16  # JSON nesting: the page sends 2 levels
PERIODS = (
    Period.THIS_WEEK,
    Period.LAST_WEEK,
    Period.THIS_MONTH,
    Period.LAST_MONTH,
    Period.THIS_QUARTER,
    Period.LAST_QUARTER,
)

# A move made here redraws the card in the chat: (actor, lang, card) -> None.
DealChanged = Callable[[Actor, str, DealCard], Awaitable[None]]
SendFile = Callable[[int, bytes, str], Awaitable[str]]


@dataclass
class WebAppState:
    uow_factory: UnitOfWorkFactory
    bot_token: str
    tz: tzinfo
    max_age: int  # seconds an initData stays valid
    on_deal_changed: DealChanged | None = None
    # Sends a file to a person's chat and returns its Telegram file id (the client's
    # signature drawn in the Mini App is kept as a file, like every file on a timeline).
    send_file: SendFile | None = None


SIGNATURE_MAX = 512 * 1024  # bytes of a signature picture
PNG = b"\x89PNG\r\n\x1a\n"


async def post_signature(request: web.Request, uow: UnitOfWork, caller: Caller) -> Any:
    """The client's signature drawn on the installer's phone: checked (the job is this
    installer's, a PNG of sane size) before anything is sent; then sent to the installer's
    chat (its Telegram file id) and put on the order's timeline in a transaction of its own,
    so no write lock is held while Telegram answers."""
    state = request.app[WEBAPP]
    task_id = _int(request.match_info.get("task_id"), "task")
    if task_id is None:
        raise NotFound("task")
    data = await _json(request)
    try:
        content = base64.b64decode(str(data.get("png") or ""), validate=True)
    except (ValueError, binascii.Error) as exc:
        raise ValidationError("signature", "invalid") from exc
    if not content.startswith(PNG) or len(content) > SIGNATURE_MAX:
        raise ValidationError("signature", "invalid")
    card = await installation.view(uow, caller.actor, task_id, own=True)
    if state.send_file is None:
        raise RuleViolation("signature_unavailable")
    file_id = await state.send_file(caller.actor.telegram_id, content, f"signature-{task_id}.png")
    async with state.uow_factory() as writing:
        await installation.sign_off(writing, caller.actor, card.task_id, file_id, "document")
    return {"ok": True, "message": t("job.sign.saved", caller.lang)}


WEBAPP = web.AppKey("voronka_webapp", WebAppState)


@dataclass(frozen=True)
class Caller:
    actor: Actor
    lang: str


class _Refused(Exception):
    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


def _error(status: int, error: str, **extra: Any) -> web.Response:
    return web.json_response({"error": error, **extra}, status=status)


async def _caller(request: web.Request, uow: UnitOfWork) -> Caller:
    state = request.app[WEBAPP]
    try:
        user = authenticate(
            state.bot_token,
            request.headers.get("Authorization"),
            state.uow_factory.clock.now(),
            state.max_age,
        )
    except Unauthorized as exc:
        log.info("mini app: %s refused (%s)", request.path, exc.reason)
        raise _Refused(_error(401, "unauthorized")) from exc
    actor = await employees.actor_for(uow, user.telegram_id)
    lang = (actor.language if actor and actor.language else None) or lang_of(user.language_code)
    if actor is None:
        raise _Refused(_error(403, "not_staff", message=t("app.not_staff", lang)))
    return Caller(actor, lang)


Api = Callable[[web.Request, UnitOfWork, Caller], Awaitable[Any]]


def endpoint(fn: Api, *, write: bool = False) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Authenticate, open a unit of work (read-only for reads), call `fn`, answer JSON;
    domain errors become the chat's message with a status (module docstring)."""

    async def handle(request: web.Request) -> web.Response:
        started = time.perf_counter()
        state = request.app[WEBAPP]
        uow = state.uow_factory() if write else state.uow_factory.read_only()
        lang = "ru"
        try:
            async with uow:
                caller = await _caller(request, uow)
                lang = caller.lang
                body = await fn(request, uow, caller)
            response = web.json_response(body)
        except _Refused as exc:
            response = exc.response
        except DomainError as exc:
            response = _domain_error(exc, lang)
        took = (time.perf_counter() - started) * 1000
        response.headers["Server-Timing"] = f"app;dur={took:.1f}"
        response.headers["Cache-Control"] = "no-store"
        return response

    return handle


def _domain_error(exc: DomainError, lang: str) -> web.Response:
    extra: dict[str, Any] = {"message": error_text(exc, lang)}
    if isinstance(exc, BadRequest):
        return _error(400, "bad_request", field=exc.field, **extra)
    if isinstance(exc, PermissionDenied) and exc.action == Action.DEAL_VIEW:
        # a deal the person may not see answers like one that does not exist
        return _error(404, "not_found", message=error_text(NotFound("deal"), lang))
    if isinstance(exc, NotFound):
        return _error(404, "not_found", **extra)
    if isinstance(exc, PermissionDenied):
        return _error(403, "forbidden", **extra)
    if isinstance(exc, StaleVersion):
        return _error(409, "stale", message="⚠️ " + t("error.stale_version", lang))
    if isinstance(exc, RuleViolation):
        extra["rule"] = exc.rule
        if isinstance(exc, FieldRequired):  # the page asks for them: its own error kind
            label = t(f"field.{exc.field}", lang)
            return _error(422, "missing", field=exc.field, fields=exc.fields, label=label, **extra)
        return _error(422, "refused", **extra)
    if isinstance(exc, ValidationError):
        return _error(422, "invalid", field=exc.field, **extra)
    return _error(422, "refused", **extra)


# --- reading the request ------------------------------------------------------------------


class BadRequest(ValidationError):
    """A request no page of ours sends (a number out of the database's range, JSON nested
    too deep, a NUL character): 400, with the chat's "invalid" message for the field."""


def _in_range(value: int, name: str) -> int:
    # ids, versions, offsets and limits are INTEGER columns (PostgreSQL: 32 bits)
    if not 0 <= value <= MAX_INT:
        raise BadRequest(name, "invalid")
    return value


def _int(value: str | None, name: str, *, default: int | None = None) -> int | None:
    if value is None or value == "":
        return default
    if len(value) > 20:
        raise BadRequest(name, "invalid")
    try:
        number = int(value)
    except ValueError as exc:
        raise ValidationError(name, "not_a_number") from exc
    return _in_range(number, name)


def _depth_and_nul(value: object, depth: int = 0) -> None:
    """Refuse JSON nested deeper than MAX_DEPTH, or a NUL in any string (PostgreSQL's text
    cannot hold one; SQLite would keep it: refused on both)."""
    if depth > MAX_DEPTH:
        raise BadRequest("body", "invalid")
    if isinstance(value, str):
        if "\x00" in value:
            raise BadRequest("body", "invalid")
    elif isinstance(value, dict):
        for key, item in value.items():
            _depth_and_nul(key, depth + 1)
            _depth_and_nul(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _depth_and_nul(item, depth + 1)


async def _json(request: web.Request) -> dict[str, Any]:
    raw = await request.read() or b"{}"
    # nesting counted before parsing: json.loads recurses (RecursionError at ~1000 levels)
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and _nesting(raw) > MAX_DEPTH:
        raise BadRequest("body", "invalid")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ValidationError("body", "not_json") from exc
    if not isinstance(data, dict):
        raise ValidationError("body", "not_json")
    _depth_and_nul(data)
    return data


def _nesting(raw: bytes) -> int:
    """The deepest nesting of brackets outside strings, stopping once past MAX_DEPTH."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                break
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def _body_int(data: dict[str, Any], name: str) -> int:
    value = data.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(name, "not_a_number")
    return _in_range(value, name)


def _deal_id(request: web.Request) -> int:
    raw = request.match_info.get("deal_id") or ""
    if not raw.isdigit() or len(raw) > 10 or not 0 < int(raw) <= MAX_INT:
        raise NotFound("deal")  # no such deal can exist
    return int(raw)


def _fields(raw: object, uow: UnitOfWork, tz: tzinfo) -> dict[str, object]:
    """A stage's required fields as typed in the form: dates as the date input gives them
    (``2026-12-05T10:00``, the company's time) or as typed in the chat ("tomorrow 10:00")."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValidationError("fields", "invalid")
    fields: dict[str, object] = {}
    for name, value in raw.items():
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise ValidationError(str(name), "invalid")
        if name in DATE_FIELDS:
            fields[name] = _when(str(value), name, uow, tz)
        else:
            fields[name] = value
    return fields


def _when(text: str, name: str, uow: UnitOfWork, tz: tzinfo) -> datetime:
    """A date as the form's input gives it, or as typed: under the chat's rules either
    way (in the future, at most five years ahead: `dates.check_when`)."""
    try:
        if len(text) > dates.MAX_INPUT:
            raise ValidationError("when", "unparseable")
        try:
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            return dates.parse_when(text, uow.clock, str(tz))
        return dates.check_when(moment if moment.tzinfo else moment.replace(tzinfo=tz), uow.clock)
    except ValidationError as exc:
        raise ValidationError(name, exc.params.get("code", "invalid")) from exc


# --- JSON views ---------------------------------------------------------------------------


def _stage(s: StageInfo, lang: str) -> dict[str, Any]:
    return {
        "id": s.id,
        "name": s.label(lang),
        "kind": s.kind,
        "key": s.is_key,
        "requires": list(s.required_fields),
    }


def _pipeline(p: PipelineInfo, lang: str) -> dict[str, Any]:
    return {"id": p.id, "name": p.label(lang), "strict": p.strict, "role": p.role}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _card(c: board.BoardCard, lang: str, tz: tzinfo) -> dict[str, Any]:
    return {
        "id": c.id,
        "version": c.version,
        "title": c.title,
        "client": c.client,
        "amount": c.amount,
        "amount_text": fmt.money(c.amount, lang) if c.amount is not None else None,
        "next_contact": fmt.when_short(c.next_contact_at, tz, lang) if c.next_contact_at else None,
        "days": c.days_in_stage,
        "days_text": t("app.days", lang, n=c.days_in_stage),
        "stale": c.stale,
        "manager": c.manager_name,
    }


def _deal(card: DealCard, lang: str, tz: tzinfo) -> dict[str, Any]:
    return {
        "id": card.id,
        "version": card.version,
        "title": card.title,
        "client": card.contact_name or card.company_name,
        "phone": card.phone,
        "email": card.email,
        "company": card.company_name,
        "amount_text": fmt.money(card.amount, lang) if card.amount is not None else None,
        "need": card.need,
        "address": card.address,
        "measurement": fmt.when(card.measurement_at, tz, lang) if card.measurement_at else None,
        "next_contact": fmt.when(card.next_contact_at, tz, lang) if card.next_contact_at else None,
        "pipeline": _pipeline(card.pipeline, lang),
        "stages": [_stage(s, lang) for s in card.pipeline.stages],
        "stage": _stage(card.stage, lang),
        "manager": card.manager_name,
        "closed": card.closed,
        "loss_reason": label(lang, card.loss_reason, card.loss_reason_en)
        if card.loss_reason
        else None,
        "may_move": card.may_move,
        "may_edit": card.may_edit,
        "edit": [_editable(card, f, lang, tz) for f in edit.DEAL_FIELDS],
    }


def _editable(card: DealCard, field: str, lang: str, tz: tzinfo) -> dict[str, Any]:
    """A field of the sheet's edit form: its label, input type and current value as the
    input takes it (roubles; a local "YYYY-MM-DDTHH:MM")."""
    value: Any = getattr(card, field, None)
    if field == "amount" and value is not None:
        value = f"{value / 100:.2f}" if value % 100 else str(value // 100)
    elif isinstance(value, datetime):
        value = value.astimezone(tz).replace(tzinfo=None).isoformat(timespec="minutes")
    return {
        "field": field,
        "label": t(f"edit.field.{field}", lang),
        "type": "datetime-local" if field in edit.DATE_FIELDS else "text",
        "value": value,
    }


def _history(entries: tuple[HistoryEntry, ...], lang: str, tz: tzinfo) -> list[dict[str, Any]]:
    return [
        {
            "at": fmt.when(e.at, tz, lang),
            "from": label(lang, e.from_stage, e.from_stage_en) if e.from_stage else None,
            "to": label(lang, e.to_stage, e.to_stage_en),
            "actor": e.actor,
            "reason": label(lang, e.reason, e.reason_en) if e.reason else None,
            "comment": e.comment,
        }
        for e in entries
    ]


# --- endpoints ----------------------------------------------------------------------------


def _texts(lang: str) -> dict[str, str]:
    return {k: v for k, v in catalog(lang).items() if k.startswith("app.")}


async def texts(request: web.Request) -> web.Response:
    """The page's texts before login (what to say to someone the API refuses): public."""
    lang = lang_of(request.query.get("lang"))
    return web.json_response({"lang": lang, "texts": _texts(lang)})


async def me(request: web.Request, uow: UnitOfWork, caller: Caller) -> Any:
    lang = caller.lang
    reasons = await deals.loss_reasons(uow, lang)
    return {
        "id": caller.actor.id,
        "name": caller.actor.name,
        "lang": lang,
        "sees_all": caller.actor.sees_all,
        "texts": _texts(lang),
        "reasons": [{"id": i, "name": n, "conditional": c} for i, n, c in reasons],
        "periods": [{"id": str(p), "name": t(f"app.period.{p}", lang)} for p in PERIODS],
    }


async def get_board(request: web.Request, uow: UnitOfWork, caller: Caller) -> Any:
    q = request.query
    result = await board.board(
        uow,
        caller.actor,
        _int(q.get("pipeline"), "pipeline"),
        _int(q.get("manager"), "manager"),
        _int(q.get("per"), "limit", default=board.PER_COLUMN) or board.PER_COLUMN,
    )
    lang, tz = caller.lang, request.app[WEBAPP].tz
    return {
        "pipeline": _pipeline(result.pipeline, lang),
        "pipelines": [_pipeline(p, lang) for p in result.pipelines],
        "manager_id": result.manager_id,
        "managers": [{"id": i, "name": n} for i, n in result.managers],
        "sees_all": result.sees_all,
        "me": caller.actor.id,
        "columns": [
            {
                "stage": _stage(c.stage, lang),
                "count": c.count,
                "amount": c.amount,
                "amount_text": fmt.money(c.amount, lang, compact=True),
                "rot_after_days": c.rot_after_days,
                "more": c.more,
                "cards": [_card(card, lang, tz) for card in c.cards],
            }
            for c in result.columns
        ],
        "targets": [_stage(s, lang) for s in result.targets],
    }


async def get_column(request: web.Request, uow: UnitOfWork, caller: Caller) -> Any:
    q = request.query
    pipeline_id = _int(q.get("pipeline"), "pipeline")
    stage_id = _int(q.get("stage"), "stage")
    if pipeline_id is None or stage_id is None:
        raise ValidationError("stage", "required")
    cards = await board.column(
        uow,
        caller.actor,
        pipeline_id,
        stage_id,
        _int(q.get("manager"), "manager"),
        _int(q.get("offset"), "offset", default=0) or 0,
        _int(q.get("limit"), "limit", default=board.PER_COLUMN) or board.PER_COLUMN,
    )
    tz = request.app[WEBAPP].tz
    return {"cards": [_card(c, caller.lang, tz) for c in cards]}


async def get_deal(request: web.Request, uow: UnitOfWork, caller: Caller) -> Any:
    view = await board.deal_view(uow, caller.actor, _deal_id(request))
    tz = request.app[WEBAPP].tz
    return {
        "deal": _deal(view.card, caller.lang, tz),
        "history": _history(view.history, caller.lang, tz),
    }


async def _changed(request: web.Request, caller: Caller, card: DealCard) -> dict[str, Any]:
    state = request.app[WEBAPP]
    if state.on_deal_changed is not None:
        try:  # the move is committed: a chat that cannot be redrawn does not undo it
            await state.on_deal_changed(caller.actor, caller.lang, card)
        except Exception:
            log.exception("deal %s: the chat card was not redrawn", card.id)
    return {"deal": _deal(card, caller.lang, state.tz)}


async def _unseen_is_missing(uow: UnitOfWork, caller: Caller, deal_id: int) -> None:
    """After a refused change: a deal the person may not even see is 'not found' (which
    ids exist is not told); one they see but may not change stays 'not allowed'."""
    await uow.rollback()
    await deals.get_card(uow, caller.actor, deal_id)  # PermissionDenied(DEAL_VIEW) -> 404


async def post_move(request: web.Request, uow: UnitOfWork, caller: Caller) -> Any:
    deal_id = _deal_id(request)
    data = await _json(request)
    fields = _fields(data.get("fields"), uow, request.app[WEBAPP].tz)
    try:
        card = await deals.move_to(
            uow,
            caller.actor,
            deal_id,
            _body_int(data, "stage_id"),
            _body_int(data, "version"),
            fields or None,
        )
    except PermissionDenied:
        await _unseen_is_missing(uow, caller, deal_id)
        raise
    return await _changed(request, caller, card)


async def post_edit(request: web.Request, uow: UnitOfWork, caller: Caller) -> Any:
    """One field corrected, by the chat's service (right, version, rules of entry)."""
    data = await _json(request)
    field, value = data.get("field"), data.get("value")
    if not isinstance(field, str) or not isinstance(value, str):
        raise ValidationError("field", "invalid")
    raw: object = value
    if field in edit.DATE_FIELDS:
        raw = _when(value, field, uow, request.app[WEBAPP].tz)
    card = await edit.edit_deal(
        uow, caller.actor, _deal_id(request), field, raw, _body_int(data, "version")
    )
    return await _changed(request, caller, card)


async def post_lose(request: web.Request, uow: UnitOfWork, caller: Caller) -> Any:
    deal_id = _deal_id(request)
    data = await _json(request)
    try:
        card = await deals.lose(
            uow,
            caller.actor,
            deal_id,
            _body_int(data, "reason_id"),
            None,
            _body_int(data, "version"),
        )
    except PermissionDenied:
        await _unseen_is_missing(uow, caller, deal_id)
        raise
    return await _changed(request, caller, card)


def _period_text(report: screens.Report, lang: str) -> str | None:
    if isinstance(report, SnapshotFunnel):
        return None
    if isinstance(report, PlanReport):
        return fmt.month(report.month, lang)
    return fmt.span(report.range.first_day, report.range.last_day, lang)


async def get_funnel(request: web.Request, uow: UnitOfWork, caller: Caller) -> Any:
    q = request.query
    try:
        kind = screens.ReportKind(q.get("report") or "snapshot")
        period = Period(q.get("period") or Period.THIS_MONTH)
    except ValueError as exc:
        raise ValidationError("report", "unknown") from exc
    if period not in PERIODS:
        raise ValidationError("period", "unknown")
    tz = request.app[WEBAPP].tz
    filters = ReportFilter(
        pipeline_id=_int(q.get("pipeline"), "pipeline"),
        period=period,
        manager_id=_int(q.get("manager"), "manager"),
        tz=str(tz),
    )
    screen = await screens.report_screen(uow, caller.actor, kind, filters)
    lang = caller.lang
    return {
        "report": screen.kind.value,
        "title": f"{t(f'app.report.{screen.kind.value}', lang)} · {screen.pipeline.label(lang)}",
        "pipeline": _pipeline(screen.pipeline, lang),
        "pipelines": [_pipeline(p, lang) for p in screen.pipelines],
        "period": str(period),
        "manager_id": screen.filters.manager_id,
        "managers": [{"id": i, "name": n} for i, n in screen.managers],
        "manager_name": screen.manager_name,
        "sees_all": screen.sees_all,
        # the period as applied, in words (the same as /funnel's heading): a quarter picked
        # is seen to be the quarter
        "period_text": _period_text(screen.report, lang),
        "data": _report(screen.report, lang),
        "team": None if screen.team is None else _team(screen.team, lang),
        "plan_form": await _plan_form(uow, caller, str(tz))
        if kind is screens.ReportKind.PLAN
        else None,
    }


def _team(team: TeamFigures, lang: str) -> dict[str, Any]:
    """First response and norms (the managers report): the numbers, and the same lines as
    /funnel and the digests (handlers/ui/discipline.py)."""
    return {
        "limit_minutes": team.limit_minutes,
        "day": team.day.isoformat(),
        "response": [
            {
                "manager_id": r.manager_id,
                "name": r.name,
                "leads": r.leads,
                "median_minutes": r.median_minutes,
                "within": r.within,
                "counted": r.counted,
                "share": r.share,
            }
            for r in team.response
        ],
        "norms": [
            {"employee_id": n.employee_id, "name": n.name, "what": n.what}
            | {"done": n.done, "target": n.target, "met": n.met}
            for n in team.norms
        ],
        "lines": [
            line
            for line in team_lines(team.response, team.norms, team.limit_minutes, team.day, lang)
            if line
        ],
    }


async def _plan_form(uow: UnitOfWork, caller: Caller, tz: str) -> dict[str, Any] | None:
    """What the dashboard's plan form offers (leaders and admins; None for others)."""
    if not can(caller.actor, Action.PLAN_SET):
        return None
    lang = caller.lang
    return {
        "months": [
            {"id": m.isoformat(), "name": fmt.month(m, lang)} for m in plans.months_offered(uow, tz)
        ],
        "people": [{"id": None, "name": t("funnel.plan.company", lang)}]
        + [{"id": i, "name": n} for i, n in await plans.plan_people(uow, caller.actor)],
    }


async def post_plan(request: web.Request, uow: UnitOfWork, caller: Caller) -> Any:
    """A month's plan set from the dashboard's form: the chat's service checks the right
    (leaders and admins), the month, the person and the sums as typed; then the Plan
    view's numbers, as GET /funnel?report=plan gives them."""
    data = await _json(request)
    tz = str(request.app[WEBAPP].tz)
    raw_month, who = data.get("month"), data.get("employee_id")
    try:
        month = date.fromisoformat(raw_month) if isinstance(raw_month, str) else None
    except ValueError:
        month = None
    if who is not None and (not isinstance(who, int) or isinstance(who, bool)):
        raise ValidationError("sales_plan", "employee")
    if who is not None:
        who = _in_range(who, "employee_id")
    plan = await plans.set_plan(
        uow, caller.actor, month, who, data.get("sales"), data.get("amount"), tz=tz
    )
    report = await plans.plan_report(uow, caller.actor, tz=tz)
    return {
        "saved": t("plan.saved.toast", caller.lang),
        "plan": {"month": plan.month.isoformat(), "employee_id": plan.employee_id},
        "data": _report(report, caller.lang),
    }


def _plan_row(r: PlanRow, lang: str) -> dict[str, Any]:
    def money(minor: int | None) -> dict[str, Any] | None:
        return None if minor is None else {"value": minor, "text": fmt.money(minor, lang)}

    return {
        "employee_id": r.employee_id,  # None: the company
        "label": r.name if r.employee_id is not None else t("funnel.plan.company", lang),
        "plan_count": r.plan_count,
        "plan_amount": money(r.plan_amount),
        "won": r.won,
        "won_amount": money(r.won_amount),
        "progress": fmt.percent(r.progress, lang),
        "forecast": r.forecast,
        "weighted": money(r.weighted),
        "pace_count": r.pace_count,
        "pace_amount": money(r.pace_amount),
        "behind": r.behind,
    }


def _report(
    report: SnapshotFunnel
    | PeriodFunnel
    | LossReport
    | ManagerReport
    | VelocityReport
    | PlanReport,
    lang: str,
) -> dict[str, Any]:
    """The numbers a chart is drawn from (money in kopecks, with its text)."""

    def money(minor: int) -> dict[str, Any]:
        return {"value": minor, "text": fmt.money(minor, lang, compact=True)}

    if isinstance(report, PlanReport):  # the same rows as /funnel's Plan view and the digest
        people = [report.company] if report.company is not None else []
        return {
            "month": report.month.isoformat(),
            "days": {
                "total": report.days_total,
                "past": report.days_past,
                "left": report.days_left,
            },
            "rows": [_plan_row(r, lang) for r in [*people, *report.rows]],
        }
    if isinstance(report, SnapshotFunnel):
        return {
            "bars": [
                {"label": s.stage.label(lang), "count": s.count, "amount": money(s.amount)}
                for s in report.stages
            ],
            "total": report.count,
            "amount": money(report.amount),
            "weighted": money(report.weighted),
            "stuck": report.stuck,
        }
    if isinstance(report, PeriodFunnel):
        return {
            "bars": [
                {
                    "label": s.stage.label(lang),
                    "count": s.reached,
                    "amount": money(s.reached_amount),
                    "conversion": fmt.percent(s.conversion, lang),
                }
                for s in report.steps
            ],
            "total": report.cohort,
            "won": report.won,
            "lost": report.lost,
            "conversion": fmt.percent(report.conversion, lang),
            "range": [
                fmt.day(report.range.first_day, lang),
                fmt.day(report.range.last_day, lang),
            ],
        }
    if isinstance(report, VelocityReport):  # days in each stage: median and 75th percentile
        return {
            "bars": [
                {
                    "label": s.stage.label(lang),
                    "count": s.stays,
                    "median": None
                    if s.median_seconds is None
                    else t(
                        "app.sum.median", lang, days=fmt.number(s.median_seconds / 86400, lang, 1)
                    ),
                    "median_days": None if s.median_seconds is None else s.median_seconds / 86400,
                    "p75_days": None if s.p75_seconds is None else s.p75_seconds / 86400,
                }
                for s in report.stages
            ],
            "won": report.cycle.won,
            "cycle": None
            if report.cycle.median_days is None
            else t("app.sum.cycle", lang, days=fmt.number(report.cycle.median_days, lang, 1)),
            "cycle_median_days": report.cycle.median_days,
            "cycle_p75_days": report.cycle.p75_days,
        }
    if isinstance(report, LossReport):
        return {
            "bars": [
                {
                    "label": r.reason.label(lang) if r.reason else t("funnel.no_reason", lang),
                    "count": r.count,
                    "amount": money(r.amount),
                }
                for r in report.rows
            ],
            "total": report.count,
            "amount": money(report.amount),
        }
    return {
        "bars": [  # deals nobody is responsible for are not a rank (as in the chat)
            {
                "label": r.name or "",
                "count": r.deals,
                "won": r.won,
                "amount": money(r.won_amount),
                "conversion": fmt.percent(r.conversion, lang),
            }
            for r in report.rows
            if r.manager_id is not None
        ],
    }


# --- the page -----------------------------------------------------------------------------


async def page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


async def to_page(request: web.Request) -> web.Response:
    query = f"?{request.query_string}" if request.query_string else ""
    raise web.HTTPPermanentRedirect(PREFIX + "/" + query)


def mount(app: web.Application, state: WebAppState) -> None:
    """Add the Mini App's page, assets and API to `app`."""
    app[WEBAPP] = state
    app.router.add_get(PREFIX, to_page)
    app.router.add_get(PREFIX + "/", page)
    app.router.add_static(PREFIX + "/static/", STATIC_DIR, append_version=False)
    app.router.add_get(API + "/texts", texts)
    app.router.add_get(API + "/me", endpoint(me))
    app.router.add_get(API + "/board", endpoint(get_board))
    app.router.add_get(API + "/column", endpoint(get_column))
    app.router.add_get(API + "/funnel", endpoint(get_funnel))
    app.router.add_get(API + "/deals/{deal_id}", endpoint(get_deal))
    app.router.add_post(API + "/deals/{deal_id}/move", endpoint(post_move, write=True))
    app.router.add_post(API + "/deals/{deal_id}/lose", endpoint(post_lose, write=True))
    app.router.add_post(API + "/deals/{deal_id}/edit", endpoint(post_edit, write=True))
    app.router.add_post(API + "/jobs/{task_id}/signature", endpoint(post_signature))
    app.router.add_post(API + "/plans", endpoint(post_plan, write=True))
