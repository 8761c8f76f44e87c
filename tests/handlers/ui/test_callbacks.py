"""The callback contract (handlers/ui/callbacks.py).

1. Every CallbackData class packs within Telegram's 64 bytes at its maximum values, holds
   only ints and enums, and its ints are bounded by what the database can store.
2. Forged callback data is refused: a property test over ALL_CALLBACKS x every role x an
   uninvited and a deactivated person. Every forgery gets an alert and changes nothing.
3. Garbage callback data (random text, mangled packs) never crashes: a polite alert.

What counts as forged (the test models each class; `forgeries` below):

- A forger never owns the objects. Deals and leads belong to another manager ("Owner") or
  to a deactivated manager; the forging manager and the measurers may not see them at all.
- Leaders and admins may see every deal and lead, so for them an existing id is no
  forgery. Their forgeries are ids that do not exist, and buttons of a stale card (a
  version newer than the current one can only be made up).
  EXCLUDED for them: DealCb OPEN / HISTORY / NOTE on an existing deal (viewing a card, its
  history, or being asked for a note is what these roles may do on any deal, whatever the
  version), LeadCb OPEN on an existing lead (likewise). Sub-menus (DealCb LOSE, CHOOSE,
  DEFER…, LeadCb DISQUALIFY) check the card's version, so a stale one is forged.
- MenuCb: the buttons of the role's own main menu (keyboards.main_menu, read from the real
  keyboard) plus HOME are that role's to press: EXCLUDED. The others are forgeries.
- ListCb: EXCLUDED for sales roles: a list is always filtered to what the role may see, so
  page/pipeline/stage numbers only choose, never grant (test_lists_never_grant covers it).
  Measurers may not list deals at all: forged.
- WizardCb: nobody here has a wizard open, so wizard steps are stale or forged. EXCLUDED:
  CANCEL (anyone may cancel their own, even empty, wizard). OPEN_LEAD / OPEN_DEAL carry
  ids the forger may not see (as above).
- TeamCb / InviteCb: everything is forged for non-admins. For an admin, managing existing
  colleagues and issuing invites is the job: EXCLUDED. Forged for an admin: ids that do not
  exist, role indexes and flags outside the enum, demoting or deactivating herself.
- LangCb: every value that unpacks is a language anyone may choose for themselves:
  EXCLUDED; the out-of-contract raw strings ("g:xx") are still tested.
- Task callbacks (handlers/ui/callbacks.py, prefixes "t…"): TaskListCb and the RECEIVABLES page of
  InstallmentCb are lists of what the role may see: EXCLUDED for the roles that have them.
  NextContactCb / InstallmentCb carry deal ids: foreign or missing, as for DealCb.
- Any other class (TaskCb, AssignCb, ImportCb, a new one): every id is one that does not
  exist.
- For every class, raw strings with the class's prefix but a field outside the contract
  (negative, above MAX_INT, not a number, unknown enum value, wrong arity).
- The uninvited person and the deactivated one: everything, including the deactivated
  manager's own deal with its current version.

Refused means: exactly one answer to the callback, an alert (show_alert) with a text that
is not the "something went wrong" of an unexpected error (the uninvited and the
deactivated get the access refusal itself); no message sent; only a leader's or admin's
stale card is redrawn (with the "card changed" alert). And a snapshot of every table is
unchanged (the uninvited and deactivated people's first attempts are recorded before the
snapshot; within the hour no new row is written).

Random sampling alone would leave rare cases out of most runs, so a sweep draws every
(forger, class, action) case once per run; the property test samples them more deeply
and shrinks failures.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import pytest
from aiogram.filters.callback_data import CallbackData
from aiogram.methods import AnswerCallbackQuery, EditMessageText
from aiogram.types import InlineKeyboardMarkup, User
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pydantic.fields import FieldInfo

import handlers
from handlers.ui import keyboards as kb
from handlers.ui.callbacks import (
    ALL_CALLBACKS,
    MAX_INT,
    Canonical,
    DealAction,
    DealCb,
    InviteCb,
    LangCb,
    LeadAction,
    LeadCb,
    ListCb,
    MenuAction,
    MenuCb,
    TeamAction,
    TeamCb,
    WizardAction,
    WizardCb,
)
from handlers.ui.i18n import t
from services.permissions import Actor
from services.team import staff as team
from storage.enums import Role
from storage.models import Deal, Lead
from tests.factories import new_deal, new_lead
from tests.tg import tg_user

MAX_BYTES = 64  # Telegram's limit for callback_data
BIG = 2**63 - 1  # the packing test's value for an int without a declared bound
ROLES = tuple(Role)
STAFF_KINDS = ("manager", "leader", "admin", "head_measurer", "measurer")
KINDS = (*STAFF_KINDS, "stranger", "deactivated")
SEES_ALL = ("leader", "admin")


# --- 1. packing ---------------------------------------------------------------------------


def _upper(info: FieldInfo) -> int | None:
    bounds = [m.le for m in info.metadata if getattr(m, "le", None) is not None]
    return min(bounds) if bounds else None


def _lower(info: FieldInfo) -> int | None:
    bounds = [m.ge for m in info.metadata if getattr(m, "ge", None) is not None]
    return max(bounds) if bounds else None


def _enum(info: FieldInfo) -> type[Enum] | None:
    ann = info.annotation
    return ann if isinstance(ann, type) and issubclass(ann, Enum) else None


def _maximal(cls: type[CallbackData]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, info in cls.model_fields.items():
        enum = _enum(info)
        if enum is not None:
            values[name] = max(enum, key=lambda m: len(str(m.value).encode()))
        elif info.annotation is int:
            values[name] = _upper(info) or BIG
        else:
            pytest.fail(f"{cls.__name__}.{name}: {info.annotation} (ints and short enums only)")
    return values


def _callback_classes_in_handlers() -> set[type[CallbackData]]:
    for mod in pkgutil.walk_packages(handlers.__path__, "handlers."):
        importlib.import_module(mod.name)
    found: set[type[CallbackData]] = set()
    stack = list(CallbackData.__subclasses__())
    while stack:
        cls = stack.pop()
        stack += cls.__subclasses__()
        if cls.__module__.startswith("handlers.") and cls is not Canonical:
            found.add(cls)
    return found


def test_all_callbacks_lists_every_class_once_with_unique_prefixes():
    assert _callback_classes_in_handlers() <= set(ALL_CALLBACKS)
    prefixes = [cls.__prefix__ for cls in ALL_CALLBACKS]
    assert len(set(prefixes)) == len(prefixes) == len(set(ALL_CALLBACKS))


@pytest.mark.parametrize("cls", ALL_CALLBACKS, ids=lambda c: c.__name__)
def test_packs_within_64_bytes_at_its_maximum(cls):
    values = _maximal(cls)
    packed = cls(**values).pack()
    assert len(packed.encode()) <= MAX_BYTES, packed
    assert cls.unpack(packed) == cls(**values)


@pytest.mark.parametrize("cls", ALL_CALLBACKS, ids=lambda c: c.__name__)
def test_only_the_canonical_pack_unpacks(cls):
    """pydantic reads "1.0", "01", " 1" as 1 and "x\n" as "x": every such variant of a real
    pack is refused, so one button has exactly one accepted form."""
    assert issubclass(cls, Canonical)
    packed = cls(**_maximal(cls)).pack()
    assert cls.unpack(packed).pack() == packed
    parts = packed.split(":")
    variants = [packed + "\n", packed + " ", " " + packed, packed + "\r\n"]
    for i, part in enumerate(parts[1:], start=1):
        for bad in (part + ".0", "0" + part, "+" + part, " " + part, part + "\n", part.upper()):
            if bad != part:
                variants.append(":".join([*parts[:i], bad, *parts[i + 1 :]]))
    for variant in variants:
        with pytest.raises(ValueError):
            cls.unpack(variant)


@pytest.mark.parametrize("cls", ALL_CALLBACKS, ids=lambda c: c.__name__)
def test_ints_are_bounded_by_what_the_database_holds(cls):
    """A bigger or negative number can only be forged: it must not even unpack (else it
    reaches the database: 'integer out of range' on PostgreSQL, OverflowError on SQLite)."""
    values = _maximal(cls)
    for name, info in cls.model_fields.items():
        if info.annotation is not int:
            continue
        upper = _upper(info)
        assert upper is not None and upper <= MAX_INT, (
            f"{cls.__name__}.{name}: use handlers.callbacks.Int"
        )
        assert _lower(info) == 0
        for bad in (MAX_INT + 1, -1):
            packed = cls(**values).pack().split(":")
            packed[1 + list(cls.model_fields).index(name)] = str(bad)
            with pytest.raises(ValueError):
                cls.unpack(":".join(packed))


# --- the world the forgers live in --------------------------------------------------------


@dataclass
class World:
    forgers: dict[str, Actor]
    users: dict[str, User]
    deals: dict[int, int]  # id -> current version (owned by Owner or the deactivated one)
    leads: dict[int, int]  # id -> current version (owned by Owner)
    employees: list[int]
    menus: dict[str, set[MenuAction]] = field(default_factory=dict)


def _menu_actions(actor: Actor) -> set[MenuAction]:
    markup: InlineKeyboardMarkup = kb.main_menu(actor, "ru")
    packed = [b.callback_data for row in markup.inline_keyboard for b in row if b.callback_data]
    actions = {MenuCb.unpack(p).action for p in packed} | {MenuAction.HOME}
    if actor.has(Role.ADMIN):  # the first start's setup guide (handlers/start/router.py)
        actions |= {MenuAction.SETUP_PIPELINES, MenuAction.SETUP_BUSINESS}
    return actions


@pytest.fixture
async def world(harness, make_actor, uow_factory) -> World:
    owner = await make_actor(roles=("manager",), name="Owner")
    forgers = {kind: await make_actor(roles=(kind,), name=kind) for kind in STAFF_KINDS}
    gone = await make_actor(roles=("manager",), name="Gone")
    deal_a = await new_deal(uow_factory, owner, amount="1000")
    deal_b = await new_deal(uow_factory, gone, amount="2000")
    await new_lead(uow_factory, owner)  # an open lead (deal_a's lead is converted)
    async with uow_factory() as uow:
        await team.set_active(uow, forgers["admin"], gone.id, False)
    async with uow_factory() as uow:
        deals = {d.id: d.version for d in await _all(uow, Deal)}
        leads = {lead.id: lead.version for lead in await _all(uow, Lead)}
    assert {deal_a.id, deal_b.id} == set(deals) and len(leads) == 3
    users = {kind: tg_user(a.telegram_id, kind) for kind, a in forgers.items()}
    users["stranger"] = tg_user(999_000_001, "Mallory")
    users["deactivated"] = tg_user(gone.telegram_id, "Gone")
    # Their first words are recorded (an admin sees them); within the hour no new row is
    # written, so every forged tap below must leave the database exactly as it was.
    for kind in ("stranger", "deactivated"):
        await harness.send(users[kind], "/start")
    return World(
        forgers=forgers,
        users=users,
        deals=deals,
        leads=leads,
        employees=[owner.id, gone.id, *(a.id for a in forgers.values())],
        menus={kind: _menu_actions(a) for kind, a in forgers.items()},
    )


async def _all(uow, model):
    from sqlalchemy import select

    return (await uow.session.scalars(select(model))).all()


# --- strategies ---------------------------------------------------------------------------

ANY_INT = st.one_of(st.integers(0, 5), st.integers(0, MAX_INT), st.just(MAX_INT))
MISSING = st.one_of(st.just(0), st.integers(10**6, MAX_INT))  # ids start at 1; tables are tiny


def _stale(version: int) -> st.SearchStrategy[int]:
    return st.integers(version + 1, MAX_INT)


def _foreign_or_missing(ids: dict[int, int]) -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from(sorted(ids)), MISSING)


def _with_version(ids: dict[int, int], id_: int) -> st.SearchStrategy[tuple[int, int]]:
    """A foreign id with its current version (the most genuine-looking forgery) or any."""
    return st.tuples(st.just(id_), st.one_of(st.just(ids.get(id_, 1)), ANY_INT))


def _stale_card(ids: dict[int, int]) -> st.SearchStrategy[tuple[int, int]]:
    return st.sampled_from(sorted(ids)).flatmap(lambda i: st.tuples(st.just(i), _stale(ids[i])))


def _object_ids(
    ids: dict[int, int], kind: str, stale_ok: bool
) -> st.SearchStrategy[tuple[int, int]]:
    """(id, version) a `kind` of forger may not act on: foreign or missing ids for those who
    see only their own; for leaders and admins missing ids, or (when `stale_ok`) an existing
    object with a version newer than its current one."""
    if kind not in SEES_ALL:
        return _foreign_or_missing(ids).flatmap(lambda i: _with_version(ids, i))
    missing = st.tuples(MISSING, ANY_INT)
    return st.one_of(missing, _stale_card(ids)) if stale_ok else missing


# Leaders and admins may do these on any existing deal/lead whatever the card's version.
DEAL_VIEWS = {DealAction.OPEN, DealAction.HISTORY, DealAction.NOTE}
LEAD_VIEWS = {LeadAction.OPEN}


def _deal(w: World, kind: str, action: DealAction) -> st.SearchStrategy[str]:
    ids = _object_ids(w.deals, kind, stale_ok=action not in DEAL_VIEWS)
    return st.tuples(ids, ANY_INT).map(
        lambda x: DealCb(action=action, deal_id=x[0][0], v=x[0][1], arg=x[1]).pack()
    )


def _lead(w: World, kind: str, action: LeadAction) -> st.SearchStrategy[str]:
    ids = _object_ids(w.leads, kind, stale_ok=action not in LEAD_VIEWS)
    return st.tuples(ids, ANY_INT).map(
        lambda x: LeadCb(action=action, lead_id=x[0][0], v=x[0][1], arg=x[1]).pack()
    )


def _wizard(w: World, kind: str, action: WizardAction) -> st.SearchStrategy[str] | None:
    if action == WizardAction.CANCEL:
        return None
    if action == WizardAction.OPEN_LEAD:
        values = _object_ids(w.leads, kind, stale_ok=False).map(lambda x: x[0])
    elif action == WizardAction.OPEN_DEAL:
        values = _object_ids(w.deals, kind, stale_ok=False).map(lambda x: x[0])
    else:
        values = ANY_INT
    return values.map(lambda v: WizardCb(action=action, value=v).pack())


def _team(w: World, kind: str, action: TeamAction) -> st.SearchStrategy[str] | None:
    def team_cb(employee: st.SearchStrategy[int], value: st.SearchStrategy[int]):
        return st.builds(TeamCb, action=st.just(action), employee_id=employee, value=value)

    if kind != "admin":
        return team_cb(st.one_of(st.sampled_from(w.employees), MISSING), ANY_INT).map(TeamCb.pack)
    me = w.forgers["admin"].id
    existing = st.sampled_from(w.employees)
    if action == TeamAction.OPEN:
        forged = team_cb(MISSING, ANY_INT)
    elif action == TeamAction.ROLE:
        forged = st.one_of(
            team_cb(MISSING, ANY_INT),
            team_cb(existing, st.integers(len(ROLES), MAX_INT)),  # no such role
            team_cb(st.just(me), st.just(ROLES.index(Role.ADMIN))),  # demote herself
        )
    elif action == TeamAction.ACTIVE:
        forged = st.one_of(
            team_cb(MISSING, ANY_INT),
            team_cb(existing, st.integers(2, MAX_INT)),  # neither on nor off
            team_cb(st.just(me), st.just(0)),  # deactivate herself
        )
    else:  # LIST, ATTEMPTS: the admin's own screens
        return None
    return forged.map(TeamCb.pack)


def _default(cls: type[CallbackData], action: Any, ints: st.SearchStrategy[int]):
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for name, info in cls.model_fields.items():
        enum = _enum(info)
        if name == "action" and action is not None:
            fields[name] = st.just(action)
        else:
            fields[name] = st.sampled_from(list(enum)) if enum else ints
    return st.fixed_dictionaries(fields).map(lambda kw: cls(**kw).pack())


def forgeries(
    cls: type[CallbackData], w: World, kind: str, action: Any
) -> st.SearchStrategy[str] | None:
    """Forged packs of `cls` (with this `action`, if it has one) for a `kind` of forger;
    None when the case is excluded (see the module docstring)."""
    if kind in ("stranger", "deactivated"):  # anything, real ids and versions included
        known = sorted({*w.deals, *w.deals.values(), *w.leads, *w.employees})
        return _default(cls, action, st.one_of(st.sampled_from(known), ANY_INT))
    if cls is DealCb:
        return _deal(w, kind, action)
    if cls is LeadCb:
        return _lead(w, kind, action)
    if cls is WizardCb:
        return _wizard(w, kind, action)
    if cls is TeamCb:
        return _team(w, kind, action)
    if cls is MenuCb:
        return None if action in w.menus[kind] else st.just(MenuCb(action=action).pack())
    if cls is ListCb:
        return _default(cls, None, ANY_INT) if kind in ("head_measurer", "measurer") else None
    if cls is InviteCb:
        roles = st.integers(len(ROLES), MAX_INT) if kind == "admin" else ANY_INT
        return roles.map(lambda r: InviteCb(role=r).pack())
    if cls is LangCb:
        return None
    # /funnel pickers and its Excel button (handlers/funnel/router.py): a report is always scoped
    # to what the role may see (a manager: their own deals), so for sales roles the ints
    # only choose, never grant (tests/handlers/funnel/test_funnel.py covers that). Others: forged.
    if cls.__name__ in ("FunnelCb", "ExportCb"):
        return None if kind in ("manager", "leader", "admin") else _default(cls, None, ANY_INT)
    # the task callbacks (matched by name: another feature's)
    if cls.__name__ == "TaskListCb":  # one's own task lists
        return None
    if cls.__name__ in ("NextContactCb", "InstallmentCb"):
        if getattr(action, "name", "") == "RECEIVABLES":  # a page of the receivables list
            return (
                None if kind in ("manager", "leader", "admin") else _default(cls, action, ANY_INT)
            )
        deal_ids = _object_ids(w.deals, kind, stale_ok=False)
        fields = {"deal_id": deal_ids.map(lambda x: x[0]), "v": ANY_INT, "arg": ANY_INT}
        if action is not None:
            fields["action"] = st.just(action)
        fields = {k: v for k, v in fields.items() if k in cls.model_fields}
        return st.fixed_dictionaries(fields).map(lambda kw: cls(**kw).pack())
    return _default(cls, action, MISSING)  # TaskCb, AssignCb, ImportCb, any new class


def _actions(cls: type[CallbackData]) -> list[Any]:
    info = cls.model_fields.get("action")
    enum = _enum(info) if info is not None else None
    return list(enum) if enum is not None else [None]


CASES = [(kind, cls, a) for kind in KINDS for cls in ALL_CALLBACKS for a in _actions(cls)]


@st.composite
def out_of_contract(draw: st.DrawFn, cls: type[CallbackData]) -> str:
    """The class's prefix with one field outside the contract (or the wrong arity).

    (An empty field is inside it: aiogram unpacks "" as the field's default.)"""
    parts: list[str] = []
    for info in cls.model_fields.values():
        enum = _enum(info)
        parts.append(str(draw(st.sampled_from(list(enum))).value) if enum else str(draw(ANY_INT)))
    bad = st.one_of(
        st.integers(MAX_INT + 1, 2**64).map(str),
        st.integers(-(2**63), -1).map(str),
        st.sampled_from(["x", "1.5", "0x10", "∞", "NaN", "zz", "1e9", " "]),
    )
    # len(), not the list's truth: mypy would infer the draw's type from the list.
    if len(parts) == 0 or draw(st.booleans()):
        if len(parts) > 0 and draw(st.booleans()):
            parts.pop()
        else:
            parts.append(draw(bad))
    else:
        parts[draw(st.integers(0, len(parts) - 1))] = draw(bad)
    return ":".join([cls.__prefix__, *parts])


def unpacks(data: str) -> bool:
    for cls in ALL_CALLBACKS:
        try:
            cls.unpack(data)
        except (TypeError, ValueError):
            continue
        return True
    return False


# --- checks -------------------------------------------------------------------------------


# "The card changed" alerts of the error router (deal card, lead card).
STALE_ALERTS = {"⚠️ " + t(key, "ru") for key in ("error.stale_version", "lead.changed")}


def assert_refused(sent, kind: str, data: str) -> str:
    answers = sent.of(AnswerCallbackQuery)
    assert len(answers) == 1, (kind, data, sent.requests)
    alert = answers[0]
    assert alert.show_alert and alert.text, (kind, data, alert)
    assert alert.text != t("error.unexpected", "ru"), (kind, data, "crashed")
    if kind in ("stranger", "deactivated"):
        assert alert.text == t("access.denied", "ru"), (kind, data, alert.text)
    others = [r for r in sent.requests if not isinstance(r, AnswerCallbackQuery)]
    if others:  # only a stale card is redrawn (for someone who may see it)
        assert alert.text in STALE_ALERTS, (kind, data, others)
        assert kind in SEES_ALL and all(isinstance(r, EditMessageText) for r in others)
    return alert.text


PROPERTY = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


async def tap_forged(harness, world, db_snapshot, kind: str, packed: str) -> None:
    before = await db_snapshot()
    sent = await harness.tap(world.users[kind], packed)
    assert_refused(sent, kind, packed)
    assert await db_snapshot() == before, (kind, packed)


def _raw(cls: type[CallbackData]) -> st.SearchStrategy[str]:
    return out_of_contract(cls).filter(lambda s: len(s.encode()) <= MAX_BYTES and not unpacks(s))


# --- 2. forged callbacks ------------------------------------------------------------------


@PROPERTY
@given(data=st.data())
async def test_forged_callbacks_are_refused_and_change_nothing(harness, world, db_snapshot, data):
    kind, cls, action = data.draw(st.sampled_from(CASES), label="case")
    modelled = forgeries(cls, world, kind, action)
    raw = _raw(cls)
    packed = data.draw(st.one_of(modelled, raw) if modelled is not None else raw, label="data")
    await tap_forged(harness, world, db_snapshot, kind, packed)


@settings(
    max_examples=1,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # a failure names its case; no shrinking
    # One forger's sweep draws every (class, action) case at once: large by design.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.large_base_example,
    ],
)
@pytest.mark.parametrize("kind", KINDS)  # one forger a run: the draws fit Hypothesis' buffer
@given(data=st.data())
async def test_every_forgery_case_is_refused(harness, world, db_snapshot, kind, data):
    """The sweep: every (forger, class, action) case once per run (random ids), and an
    out-of-contract string of every class for every forger. Random sampling alone would
    leave rare cases (a measurer's forged Search button) out of most runs; the test above
    samples the same cases more deeply. One forger per example: all of them in one would
    exceed Hypothesis' entropy budget as classes are added."""
    before = await db_snapshot()
    for cls in ALL_CALLBACKS:
        block = [data.draw(_raw(cls), label=f"{kind} raw {cls.__name__}")]
        for action in _actions(cls):
            modelled = forgeries(cls, world, kind, action)
            if modelled is not None:
                block.append(data.draw(modelled, label=f"{kind} {cls.__name__} {action}"))
        for packed in block:
            assert_refused(await harness.tap(world.users[kind], packed), kind, packed)
        # (compared per block: a snapshot costs more than a tap)
        assert await db_snapshot() == before, (kind, block)


# --- 3. garbage ---------------------------------------------------------------------------


@st.composite
def mangled(draw: st.DrawFn) -> str:
    cls = draw(st.sampled_from(ALL_CALLBACKS))
    parts = [cls.__prefix__]
    for info in cls.model_fields.values():
        enum = _enum(info)
        parts.append(str(draw(st.sampled_from(list(enum))).value) if enum else str(draw(ANY_INT)))
    text = ":".join(parts)
    cut = draw(st.integers(0, len(text)))
    return text[:cut] + draw(st.text(max_size=8)) + text[cut + draw(st.integers(0, 3)) :]


GARBAGE = st.one_of(st.text(max_size=64), mangled(), st.binary(max_size=64).map(repr))


@PROPERTY
@given(data=st.data())
async def test_garbage_callback_data_gets_a_polite_alert(harness, world, db_snapshot, data):
    kind = data.draw(st.sampled_from(KINDS), label="who")
    junk = data.draw(GARBAGE.filter(lambda s: len(s.encode()) <= MAX_BYTES), label="data")
    if unpacks(junk):  # a mangling that happens to be a well-formed pack: not garbage
        return
    before = await db_snapshot()
    sent = await harness.tap(world.users[kind], junk)
    text = assert_refused(sent, kind, junk)
    if kind in STAFF_KINDS:
        assert text == t("common.stale_button", "ru"), (kind, junk)
    assert await db_snapshot() == before


# --- the exclusions are not blind spots ---------------------------------------------------


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_lists_never_grant(harness, world, db_snapshot, data):
    """ListCb for sales roles is excluded above: any page/filter shows only what the role may
    see (here: nobody but Owner and the deactivated manager has deals), changes nothing."""
    kind = data.draw(st.sampled_from(["manager", "leader", "admin"]))
    cb = data.draw(st.builds(ListCb, page=ANY_INT, pipeline_id=ANY_INT, stage_id=ANY_INT))
    before = await db_snapshot()
    sent = await harness.tap(world.users[kind], cb)
    assert sent.alert != t("error.unexpected", "ru"), cb
    if kind == "manager" and sent.of(EditMessageText):  # he owns nothing: no deal may show
        for _, packed in sent.buttons():
            if packed.startswith(DealCb.__prefix__ + ":"):
                assert DealCb.unpack(packed).deal_id not in world.deals, cb
    assert await db_snapshot() == before
