"""What several test modules share, in one place (issue 19): builders that make real rows
through the real services, readers of what the rows became, and the few files and commands
tests of different areas need. A test module imports from here, never from another test
module.

- people: `cast` (the named staff of the tests: ann, bob, lee...);
- leads and deals: `new_lead`, `qualify`, `new_deal`, `contract_signed`, `won_in_three_parts`,
  `loose_sales`, `bare_deal` (a row by hand);
- reading: `card_of`, `deal_row`, `stage_code`, `open_tasks`, `count`, `count_in`;
- the chat: `deliver` (run the outbox into the harness), `to` (one person's message),
  `measurer_assigned`, `plain` (HTML to text);
- files and processes: `xlsx`, `voronka`, `voronka_command`, `clean_env`, `ui_sources`,
  `env_example_entries`.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from aiogram.methods import SendMessage
from sqlalchemy import ColumnElement, func, select

from bot.notifier import BotNotifier
from bot.settings import Settings
from services.clock import Clock
from services.dto import DealCard, LeadCard
from services.permissions import Actor
from services.sales import deals, leads
from services.sales.leads import LeadInput
from services.sales.pipeline_config import parse_config
from services.sales.pipelines import sync_config
from services.work import installments
from services.work.installments import EqualSplit, InstallmentSummary
from storage.enums import TaskKind
from storage.models import ClientLink, Deal, Employee, Stage, Task
from storage.uow import UnitOfWork, UnitOfWorkFactory
from tests.outbox_fakes import make_sweeper
from tests.tg import BotHarness, Sent, tg_user

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PIPELINES = PROJECT_ROOT / "config" / "pipelines" / "default.toml"
_phone_seq = iter(range(1000, 10_000_000))

MakeActor = Callable[..., Awaitable[Actor]]

# --- people -------------------------------------------------------------------------------

# The staff the tests speak of, by key: (display name, roles).
STAFF: dict[str, tuple[str, tuple[str, ...]]] = {
    "ann": ("Ann", ("manager",)),
    "bob": ("Bob", ("manager",)),
    "lee": ("Lee", ("leader",)),
    "lea": ("Lea", ("leader",)),
    "liz": ("Liz", ("leader", "admin")),
    "hank": ("Hank", ("head_measurer",)),
    "mia": ("Mia", ("measurer",)),
    "max": ("Max", ("measurer",)),
    "ivan": ("Ivan", ("head_installer",)),
    "igor": ("Igor", ("installer",)),
    "ilya": ("Ilya", ("installer",)),
}


async def cast(make_actor: MakeActor, *keys: str) -> dict[str, Actor]:
    """Active employees made in the order given, by their STAFF key:
    ``await cast(make_actor, "ann", "bob", "lee")`` -> {"ann": Actor, ...}."""
    made: dict[str, Actor] = {}
    for key in keys:
        name, roles = STAFF[key]
        made[key] = await make_actor(roles=roles, name=name)
    return made


def next_phone() -> str:
    """A fresh valid Moscow mobile number for each call."""
    return f"+7916{next(_phone_seq):07d}"


async def new_staff(
    uow_factory: UnitOfWorkFactory, count: int, first: int = 730_000_001
) -> list[int]:
    """`count` active managers (telegram ids `first`, `first` + 1, ...), in one commit."""
    async with uow_factory() as uow:
        for i in range(count):
            uow.repo.add(
                Employee(
                    telegram_id=first + i,
                    name=f"M{i}",
                    roles=["manager"],
                    active=True,
                    created_at=uow.clock.now(),
                )
            )
        await uow.commit()
    return [first + i for i in range(count)]


async def new_lead(uow_factory: UnitOfWorkFactory, actor: Actor, **fields: Any) -> LeadCard:
    fields.setdefault("name", "Иван Петров")
    fields.setdefault("phone", next_phone())
    async with uow_factory() as uow:
        return await leads.create_lead(uow, actor, LeadInput(**fields))


async def qualify(uow_factory: UnitOfWorkFactory, actor: Actor, lead_id: int) -> None:
    async with uow_factory() as uow:
        questions = [q.code for q in await uow.repo.catalog.questions() if q.required]
    for code in questions:
        async with uow_factory() as uow:
            await leads.answer_question(uow, actor, lead_id, code, True)


async def new_deal(uow_factory: UnitOfWorkFactory, actor: Actor, **fields: Any) -> DealCard:
    """A converted lead: a deal at the entry stage of Sales."""
    lead = await new_lead(uow_factory, actor, **fields)
    await qualify(uow_factory, actor, lead.id)
    async with uow_factory() as uow:
        deal_id = await leads.convert(uow, actor, lead.id)
    async with uow_factory() as uow:
        return await deals.get_card(uow, actor, deal_id)


async def loose_sales(uow_factory: UnitOfWorkFactory) -> dict[str, int]:
    """Make Sales non-strict (stages may be skipped); returns its stage ids by code."""
    text = DEFAULT_PIPELINES.read_text(encoding="utf-8")
    text = re.sub(
        r'(code = "sales"\nrole = "sales"\n(?:.*\n)*?)strict = true', r"\1strict = false", text
    )
    async with uow_factory() as uow:
        await sync_config(uow, parse_config(text))
    async with uow_factory() as uow:
        sales = await uow.repo.pipelines.by_code("sales")
        assert sales is not None and not sales.strict
        return {s.code: s.id for s in await uow.repo.pipelines.stages(sales.id)}


def bare_deal(stage: Stage, at: datetime, title: str = "Окна", **fields: Any) -> Deal:
    """A Deal row at `stage`, every timestamp `at`, written by hand (no history row, no
    task: for tests that build the past themselves or need a deal the services never
    made)."""
    return Deal(
        title=title,
        pipeline_id=stage.pipeline_id,
        stage_id=stage.id,
        created_at=at,
        updated_at=at,
        stage_entered_at=at,
        last_activity_at=at,
        **fields,
    )


async def contract_signed(
    uow_factory: UnitOfWorkFactory, manager: Actor, clock: Clock, amount: str = "300000"
) -> DealCard:
    """A deal of `manager` moved through Sales to Contract signed (the stage before won)."""
    card = await new_deal(uow_factory, manager, amount=amount)
    fields = {"measurement_at": clock.now() + timedelta(days=1), "address": "Мира 1"}
    for extra in (None, fields, None, None, None):
        if card.stage.code == "measurement_scheduled":
            card = await with_measurer(uow_factory, manager, card.id)
        async with uow_factory() as uow:
            card = await deals.advance(uow, manager, card.id, card.version, fields=extra)
    assert card.stage.code == "contract_signed"
    return card


async def with_measurer(
    uow_factory: UnitOfWorkFactory, actor: Actor, deal_id: int, measurer_id: int | None = None
) -> DealCard:
    """The deal with a measurer set, as the head of measurers' assignment leaves it (its
    task and notices are not this helper's business): Measurer assigned needs one. The
    measurer is `measurer_id`, else any employee (a test that moves on by hand)."""
    async with uow_factory() as uow:
        deal = await uow.repo.get(Deal, deal_id)
        assert deal is not None
        if measurer_id is None:
            measurer_id = next(e.id for e in await uow.repo.employees.all())
        deal.measurer_id = measurer_id
        await uow.commit()
    return await card_of(uow_factory, actor, deal_id)


async def won_in_three_parts(
    uow_factory: UnitOfWorkFactory, manager: Actor, deal_id: int, version: int
) -> InstallmentSummary:
    """Won with an installment plan of three parts from 2026-02-01: the plan's summary."""
    async with uow_factory() as uow:
        await installments.win_with_installments(
            uow, manager, deal_id, EqualSplit(3, date(2026, 2, 1)), version
        )
    async with uow_factory() as uow:
        return await installments.plan_summary(uow, manager, deal_id)


async def order_at_installation(
    uow_factory: UnitOfWorkFactory, clock: Clock, ann: Actor
) -> tuple[int, int]:
    """A won sale of `ann` (two items, 100 000) and its order (issue 24), moved through
    production and delivery dates to Installation scheduled: (sale id, order id)."""
    card = await contract_signed(uow_factory, ann, clock, amount="100000")
    async with uow_factory() as uow:
        deal = await uow.repo.get(Deal, card.id)
        assert deal is not None
        deal.items = ["Окно кухня", "Окно спальня"]
        await uow.commit()
    async with uow_factory() as uow:
        won = await deals.win(uow, ann, card.id, None)
    [link] = won.links
    order_id = link.deal_id
    assert link.pipeline == "Исполнение заказа"
    steps: dict[str, Any] = {
        "in_production": {"production_at": clock.now() + timedelta(days=5)},
        "ready": None,
        "delivery_scheduled": {"delivery_at": clock.now() + timedelta(days=10)},
        "installation_scheduled": None,
    }
    for code, fields in steps.items():
        async with uow_factory() as uow:
            order = await deals.get_card(uow, ann, order_id)
            stage = next(s for s in order.pipeline.stages if s.code == code)
            await deals.move_to(uow, ann, order_id, stage.id, order.version, fields=fields)
    return card.id, order_id


async def link_client(
    uow_factory: UnitOfWorkFactory,
    deal_id: int,
    telegram_id: int,
    first_name: str = "Иван",
    language: str | None = None,
) -> int:
    """The deal's contact linked to a client's Telegram account, as an accepted invite link
    leaves it (issue 25; written by hand until the invite flow is the way in): the link id."""
    async with uow_factory() as uow:
        deal = await uow.repo.get(Deal, deal_id)
        assert deal is not None and deal.contact_id is not None
        link = ClientLink(
            contact_id=deal.contact_id,
            telegram_id=telegram_id,
            first_name=first_name,
            language=language,
            linked_at=uow.clock.now(),
        )
        uow.repo.add(link)
        await uow.commit()
        return link.id


# --- reading what the rows became ---------------------------------------------------------


async def card_of(uow_factory: UnitOfWorkFactory, actor: Actor, deal_id: int) -> DealCard:
    async with uow_factory() as uow:
        return await deals.get_card(uow, actor, deal_id)


async def deal_row(uow_factory: UnitOfWorkFactory, deal_id: int) -> Deal:
    async with uow_factory() as uow:
        deal = await uow.repo.get(Deal, deal_id)
    assert deal is not None
    return deal


async def stage_code(uow_factory: UnitOfWorkFactory, deal_id: int) -> str:
    """The code of the stage the deal is at now."""
    async with uow_factory() as uow:
        deal = await uow.repo.get(Deal, deal_id)
        assert deal is not None
        stage = await uow.repo.get(Stage, deal.stage_id)
    assert stage is not None
    return stage.code


async def open_tasks(uow_factory: UnitOfWorkFactory, deal_id: int, kind: str) -> list[Task]:
    async with uow_factory() as uow:
        return list(await uow.repo.tasks.open_for_deal(deal_id, kind))


async def count_in(uow: UnitOfWork, model: type, *where: ColumnElement[bool]) -> int:
    """Rows of `model` (matching `where`), read in an open unit of work."""
    found = await uow.session.scalar(select(func.count()).select_from(model).where(*where))
    assert found is not None  # COUNT(*) always returns a row
    return int(found)


async def count(uow_factory: UnitOfWorkFactory, model: type, *where: ColumnElement[bool]) -> int:
    """Rows of `model` (matching `where`), in a unit of work of its own."""
    async with uow_factory() as uow:
        return await count_in(uow, model, *where)


# --- the chat -----------------------------------------------------------------------------


def plain(html: str) -> str:
    """A message's text without its HTML tags."""
    return re.sub(r"<[^>]+>", "", html)


async def deliver(harness: BotHarness, uow_factory: UnitOfWorkFactory, clock: Any) -> list[Sent]:
    """Run the outbox once through the real Sweeper and BotNotifier into the harness's
    recording session: every message the bot sent, one Sent each."""
    sweeper, _ = make_sweeper(uow_factory, BotNotifier(harness.bot, "Europe/Moscow"), clock)
    before = len(harness.session.requests)
    await sweeper.sweep_until_idle()
    reqs = harness.session.requests[before:]
    results = harness.session.results[before:]
    return [Sent([r], [res]) for r, res in zip(reqs, results, strict=True)]


def to(sent: list[Sent], actor: Actor) -> Sent:
    """The one message of `sent` that went to `actor`'s chat."""
    mine = [
        s for s in sent if isinstance(s.last, SendMessage) and s.last.chat_id == actor.telegram_id
    ]
    assert len(mine) == 1, [getattr(s.last, "chat_id", None) for s in sent]
    return mine[0]


async def measurer_assigned(
    harness: BotHarness, uow_factory: UnitOfWorkFactory, clock: Any, team: dict[str, Actor]
) -> tuple[int, int, Sent]:
    """A deal scheduled for measuring through Ann's card, assigned to Mia by Hank's button
    (team: ann, hank, mia, max). Returns (deal id, measure task id, Mia's task message)."""
    ann, hank = team["ann"], team["hank"]
    deal = await new_deal(uow_factory, ann, amount="150000", need="3 окна ПВХ")
    async with uow_factory() as uow:
        await deals.advance(uow, ann, deal.id, deal.version)  # Proposal sent
    u_ann = tg_user(ann.telegram_id)
    card = await harness.send(u_ann, f"/deal {deal.id}")
    await harness.tap(u_ann, card.button("Замер запланирован ▶"), card)
    said = await harness.send(u_ann, "завтра 12:00")
    await harness.tap(u_ann, said.button("Верно"), said)  # the date said back: right
    await harness.send(u_ann, "ул. Мира, 1")
    assert await stage_code(uow_factory, deal.id) == "measurement_scheduled"

    head = to(await deliver(harness, uow_factory, clock), hank)
    assert "ул. Мира, 1" in head.text and "3 окна ПВХ" in head.text
    labels = [text for text, _ in head.buttons()]
    assert "Mia (0)" in labels and "Max (0)" in labels
    assigned = await harness.tap(tg_user(hank.telegram_id), head.button("Mia"), head)
    assert "Замерщик назначен: Mia" in assigned.text
    assert assigned.last.reply_markup is None
    assert await stage_code(uow_factory, deal.id) == "measurer_assigned"
    [measure] = await open_tasks(uow_factory, deal.id, TaskKind.MEASURE)
    card_msg = to(await deliver(harness, uow_factory, clock), team["mia"])
    return deal.id, measure.id, card_msg


# --- files and processes ------------------------------------------------------------------


def xlsx(rows: Sequence[Sequence[object]]) -> bytes:
    """An .xlsx workbook with one sheet of `rows`."""
    import openpyxl  # heavy: only the tests that build a workbook load it

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def voronka_command() -> list[str]:
    """The installed console script, or ``python -m bot`` where there is none."""
    script = Path(sys.executable).parent / "voronka"
    return [str(script)] if script.exists() else [sys.executable, "-m", "bot"]


def clean_env(**extra: str) -> dict[str, str]:
    """The current environment without any Voronka setting, plus ``extra``."""
    names = {name.upper() for name in Settings.model_fields}
    env = {k: v for k, v in os.environ.items() if k.upper() not in names}
    env.update(extra)
    return env


def voronka(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``voronka <args>`` as a real process."""
    return subprocess.run(
        [*voronka_command(), *args],
        cwd=cwd,
        env=env if env is not None else clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# The front-end's sources, where no user-facing text may be written (the catalogs hold them).
UI_SCANNED = ("handlers", "bot")
# The demo generator's made-up clients, streets and notes are data, not texts of the UI.
NOT_UI = {Path("bot/demo.py")}


def ui_sources() -> list[Path]:
    """Every .py file of the front-end (handlers/, bot/) but the data-only ones."""
    return sorted(
        p
        for d in UI_SCANNED
        for p in (PROJECT_ROOT / d).rglob("*.py")
        if p.relative_to(PROJECT_ROOT) not in NOT_UI
    )


ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
_ASSIGNMENT = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")


def env_example_entries() -> dict[str, tuple[bool, str, str]]:
    """`.env.example`: KEY -> (commented out?, example value, the comment block above it)."""
    found: dict[str, tuple[bool, str, str]] = {}
    comment: list[str] = []
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = _ASSIGNMENT.match(line.strip())
        if match:
            commented, key, value = match.groups()
            assert key not in found, f"{key} appears twice in .env.example"
            found[key] = (commented is not None, value, " ".join(comment))
            comment = []
        elif line.startswith("#"):
            comment.append(line.lstrip("# ").strip())
        else:
            comment = []
    return found
