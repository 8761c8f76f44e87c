"""Demo data: a year of a window maker's sales, synthetic but shaped like seed 002.

``voronka demo --deals N`` (via :func:`run_demo`) fills an empty database with N deals and
everything around them: staff, about 1.5 leads per deal, contacts, companies, the whole
stage history, tasks (some overdue), measurement notes, installment plans and payments.

The shape (default pipelines), a company worth showing: leads come in all year round, more
of them lately (this month and the last one are full); two in three become deals; about a
quarter of the deals are won, and two in three measured deals are (the key stage). On the
way some deals are deferred and come back or not, some are parked in conditional refusal,
some go back a step when a measurement is rescheduled; losses carry reasons typical of the
stage. Managers differ in volume, skill and response time, so the ranking has something to
rank. Recent deals are still open, in every active stage of Sales (one in eight deals is
held open on purpose, spread over the stages). A won deal paid in installments gets its copy
in the installment pipeline with a payment schedule, payments made, and overdue or defaulted
plans. Names, needs, streets and task titles are in the demo's language (``ru`` or ``en``);
`DemoReport` tells the distribution made (per stage, won share, per manager).

A tool beside the CLI, not a part of the domain: it makes rows and hands them to storage's
bulk loader (storage/bulk.py: staging tables and executemany, one transaction per chunk);
the analytics tables are filled by the database triggers as the history rows go in, exactly
as for live data. The same seed and ``now`` give the same data.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from services.errors import RuleViolation
from services.sales import plans
from services.sales.deals import search_text
from services.sales.pipeline_config import DEFAULT_FILE, load_config
from services.sales.pipelines import PipelineRules, rules_by_role, sync_config
from services.worktime import WorkHours, response_seconds
from storage import migrate
from storage.bulk import BulkLoader, Prepared, max_id, row_count
from storage.db import create_engine, create_session_factory
from storage.enums import ActivityKind, LeadSource, LeadStatus, Role, StageKind, TaskKind
from storage.enums import TaskStatus as TS
from storage.models import (
    Activity,
    Base,
    Company,
    Contact,
    Deal,
    Employee,
    InstallmentDue,
    InstallmentPlan,
    Lead,
    Payment,
    Plan,
    StageHistory,
    Task,
)
from storage.uow import UnitOfWork

WORK = WorkHours()  # the demo company's working hours: the defaults

DEFAULT_PIPELINES_FILE = DEFAULT_FILE  # the shipped default pipelines file

Progress = Callable[[int, int], Awaitable[None] | None]

HOUR = 3600.0

# --- the shape ----------------------------------------------------------------------------

# Leads: one behind every deal, and every other deal brings one that never became a deal.
# Chance to move on from each active stage of the sales flow (data collection, proposal,
# measurement scheduled, measurer assigned, measurement done, contract signed): 82% get a
# proposal, 62% of those book a measurement, 0.72 x 0.93 = 67% of the measured win; about
# 0.3 of the closed deals are won, a quarter of all (some are still open).
STEP = (0.82, 0.62, 0.93, 0.9, 0.72, 0.93)
GENERIC_STEP = 0.6  # a configured flow longer than the default
# Mean hours in each stage before the next step (or the loss).
STAY_HOURS = (30.0, 72.0, 20.0, 60.0, 70.0, 120.0)
GENERIC_STAY = 48.0
RECENT = 0.55  # deal times: t**RECENT of the span, so recent months hold more deals
HELD_OPEN = 8  # one deal in this many is held open in a stage of Sales (all stages get some)
DEFER_CHANCE = 0.06  # instead of a loss at the first two stages
REFUSAL_CHANCE = 0.05  # conditional refusal ("thinking") instead of a loss
RESCHEDULE_CHANCE = 0.06  # measurer assigned -> back to measurement scheduled
INSTALLMENTS_CHANCE = 0.3
FORGOTTEN_CHANCE, FORGOTTEN_FACTOR = 0.04, 15.0  # stuck deals for the snapshot to find
IGNORED_LEAD_CHANCE = 0.03  # a lead nobody answered (the report should show them)
# Loss reasons by how far the deal got (early, proposal, measurement, late).
REASONS = (
    {"no_answer": 40, "not_target": 20, "timing": 15, "expensive": 15, "other": 10},
    {"expensive": 45, "competitor": 25, "no_answer": 15, "timing": 10, "other": 5},
    {"no_answer": 30, "timing": 30, "expensive": 20, "other": 20},
    {"expensive": 45, "competitor": 40, "other": 15},
)

MANAGERS = (  # share of leads, skill, response-time factor (names: NAMES[lang].managers)
    (1.4, 1.25, 0.6),
    (1.2, 1.05, 0.9),
    (1.1, 1.15, 0.8),
    (1.0, 0.95, 1.2),
    (1.0, 1.00, 1.0),
    (0.9, 0.85, 1.6),
    (0.8, 0.90, 1.3),
    (0.6, 0.70, 2.2),
)
STAFF_ROLES = (Role.LEADER, Role.ADMIN, Role.HEAD_MEASURER) + (Role.MEASURER,) * 4
DEMO_TELEGRAM_BASE = -1_000_000  # demo staff get negative ids: no real account has them


@dataclass(frozen=True)
class _Words:
    """What the demo writes, in one language."""

    managers: tuple[str, ...]  # one per MANAGERS row
    staff: tuple[str, ...]  # one per STAFF_ROLES row
    first: tuple[str, ...]
    last: tuple[str, ...]
    needs: tuple[tuple[str, int], ...]  # a need and its typical amount (roubles)
    streets: tuple[str, ...]
    company: str  # "{last}" -> a company name
    measured: str  # "{n}" -> the measurer's note
    tasks: dict[str, str]  # task kind -> title
    feminine_ends: tuple[str, ...] = ()  # a first name ending so is a woman's...
    feminine_suffix: str = ""  # ...whose surname takes this


NAMES = {
    "ru": _Words(
        managers=(
            "Анна Смирнова", "Борис Иванов", "Виктория Кузнецова", "Глеб Попов",
            "Дарья Соколова", "Егор Лебедев", "Жанна Козлова", "Илья Новиков",
        ),
        staff=(
            "Ольга Руководитель", "Павел Админ", "Сергей Главный замерщик",
            "Тимур Замерщик", "Фёдор Замерщик", "Хасан Замерщик", "Юрий Замерщик",
        ),
        first=(
            "Иван", "Мария", "Алексей", "Елена", "Сергей", "Ольга", "Дмитрий", "Наталья",
            "Андрей", "Татьяна", "Михаил", "Ирина", "Николай", "Светлана", "Павел", "Юлия",
        ),
        last=(
            "Петров", "Сидоров", "Орлов", "Волков", "Зайцев", "Морозов", "Фролов", "Белов",
            "Титов", "Гусев", "Киселев", "Макаров", "Андреев", "Ковалев", "Ильин", "Поляков",
        ),
        needs=(
            ("Окна в квартиру", 180_000), ("Остекление балкона", 120_000),
            ("Окна в частный дом", 420_000), ("Входная дверь", 90_000),
            ("Москитные сетки", 12_000), ("Замена стеклопакета", 25_000),
            ("Панорамное остекление", 650_000), ("Ремонт окон", 15_000),
        ),
        streets=("ул. Ленина", "пр. Мира", "ул. Гагарина", "ул. Садовая", "ул. Лесная"),
        company="ООО «{last} и партнёры»",
        measured="Замер выполнен: окон {n}, фото в карточке",
        tasks={
            "assign_measurer": "Назначить замерщика",
            "measure": "Замер",
            "follow_up": "Связаться с клиентом",
            "deferred_contact": "Отложенный спрос: позвонить",
        },
        feminine_ends=("а", "я"),
        feminine_suffix="а",
    ),
    "en": _Words(
        managers=(
            "Anna Smith", "Boris Johnson", "Victoria King", "Glen Porter",
            "Daria Scott", "Edward Lewis", "Jane Cooper", "Ian Newman",
        ),
        staff=(
            "Olivia Leader", "Paul Admin", "Sam Head Measurer",
            "Tim Measurer", "Fred Measurer", "Harry Measurer", "Yuri Measurer",
        ),
        first=(
            "John", "Mary", "Alex", "Helen", "Steven", "Olga", "David", "Natalie",
            "Andrew", "Tanya", "Michael", "Irene", "Nick", "Susan", "Paul", "Julia",
        ),
        last=(
            "Peters", "Sidney", "Orwell", "Wolfe", "Hare", "Frost", "Fuller", "White",
            "Taylor", "Goose", "Kessler", "Mack", "Andrews", "Kovacs", "Elliot", "Pollock",
        ),
        needs=(
            ("Flat windows", 180_000), ("Balcony glazing", 120_000),
            ("House windows", 420_000), ("Front door", 90_000),
            ("Insect screens", 12_000), ("Glass unit replacement", 25_000),
            ("Panoramic glazing", 650_000), ("Window repair", 15_000),
        ),
        streets=("Main St", "Park Ave", "Oak St", "Garden Rd", "Forest Ln"),
        company="{last} & Partners Ltd",
        measured="Measured: {n} windows, photos on the card",
        tasks={
            "assign_measurer": "Assign a measurer",
            "measure": "Measurement",
            "follow_up": "Contact the client",
            "deferred_contact": "Deferred demand: call",
        },
    ),
}  # fmt: skip
LANGUAGES = tuple(NAMES)
SOURCES = (
    (LeadSource.CALL, 40),
    (LeadSource.SITE, 30),
    (LeadSource.MESSENGER, 15),
    (LeadSource.REFERRAL, 10),
    (LeadSource.EMAIL, 5),
)


class DemoError(Exception):
    """The demo cannot run on this database (the message says why)."""


@dataclass
class ManagerShare:
    name: str
    deals: int = 0
    won: int = 0
    won_amount: int = 0  # kopecks

    @property
    def won_share(self) -> float:
        return self.won / self.deals if self.deals else 0.0


@dataclass
class DemoReport:
    deals: int = 0
    leads: int = 0
    history_rows: int = 0
    seconds: float = 0.0
    # The distribution made: deals (not installment copies) per stage code where they are
    # now (a deal deferred or lost there counts in its pipeline's stage), per manager, deals
    # made per month ("2026-01") and deals won per month.
    stages: dict[str, int] = field(default_factory=dict)
    open_stages: dict[str, int] = field(default_factory=dict)  # Sales' active stages
    won: int = 0
    managers: list[ManagerShare] = field(default_factory=list)
    months: dict[str, int] = field(default_factory=dict)
    won_months: dict[str, int] = field(default_factory=dict)

    @property
    def won_share(self) -> float:
        return self.won / self.deals if self.deals else 0.0

    def lines(self) -> list[str]:
        """The distribution, for the CLI to print."""
        out = [f"won: {self.won} of {self.deals} deals ({self.won_share:.0%})"]
        out.append("open in Sales: " + ", ".join(f"{c} {n}" for c, n in self.open_stages.items()))
        out.append("all by stage: " + ", ".join(f"{c} {n}" for c, n in self.stages.items()))
        recent = list(self.months.items())[-2:]
        out.append(
            "recent months (made / won): "
            + ", ".join(f"{m} {n}/{self.won_months.get(m, 0)}" for m, n in recent)
        )
        out.append("per manager (deals, won, won share, won money):")
        for m in self.managers:
            out.append(
                f"  {m.name}: {m.deals}, {m.won}, {m.won_share:.0%}, {m.won_amount // 100:,}"
            )
        return out


# --- entry points -------------------------------------------------------------------------


async def run_demo(
    url: str,
    deals: int,
    seed: int = 1,
    *,
    pipelines_file: Path | None = None,
    force: bool = False,
    lang: str = "ru",
) -> DemoReport:
    """``voronka demo --deals N``: migrate, sync the pipelines if there are none yet, fill.
    A database that already has deals or leads is refused unless ``force``."""
    if deals < 1:
        raise DemoError("--deals must be at least 1")
    if lang not in NAMES:
        raise DemoError(f"the demo speaks {', '.join(LANGUAGES)}, not {lang!r}")
    await migrate.upgrade(url)
    engine = create_engine(url)
    try:
        async with UnitOfWork(create_session_factory(engine)) as uow:
            if not await uow.repo.pipelines.all():
                await sync_config(uow, load_config(pipelines_file or DEFAULT_PIPELINES_FILE))
        return await generate(engine, deals, seed=seed, force=force, lang=lang)
    finally:
        await engine.dispose()


async def generate(
    engine: AsyncEngine,
    deals: int,
    *,
    seed: int = 1,
    now: datetime | None = None,
    days: int = 365,
    chunk: int = 5000,
    progress: Progress | None = None,
    force: bool = False,
    lang: str = "ru",
) -> DemoReport:
    """Fill an (empty of leads and deals) database with ``deals`` deals over ``days``;
    ``force`` adds them to a database that has some. The made-up staff get negative
    Telegram ids, so the reminder engine never sends them anything
    (services.outbox.queue.is_made_up)."""
    started = time.monotonic()
    now = now or datetime.now(UTC)
    async with UnitOfWork(create_session_factory(engine)) as uow:
        world = await _World.load(uow, now, days, force=force, words=NAMES[lang], lang=lang)
    world.rng.seed(seed)
    report = DemoReport()
    async with BulkLoader.open(engine, TABLES) as loader:
        await world.ensure_staff(loader)
        await loader.commit()

        def build(first: int, count: int) -> _Batch:
            # In a worker thread: the database thread (which releases the GIL while SQLite
            # works) writes the previous batch meanwhile.
            batch = _Batch()
            for i in range(first, first + count):
                world.one_deal(batch, i, deals)
            batch.prepare(loader)
            return batch

        done = 0
        pending: asyncio.Task[_Batch] | None = asyncio.create_task(
            asyncio.to_thread(build, 0, min(chunk, deals))
        )
        while pending is not None:
            batch = await pending
            done += batch.deals
            pending = None
            if done < deals:
                count = min(chunk, deals - done)
                pending = asyncio.create_task(asyncio.to_thread(build, done, count))
            assert batch.prepared is not None
            await loader.write(batch.prepared)
            await loader.commit()
            report.deals += batch.deals
            report.leads += batch.counts.get(Lead, 0)
            report.history_rows += batch.counts.get(StageHistory, 0)
            if progress is not None:
                waiting = progress(done, deals)
                if waiting is not None:
                    await waiting
        await loader.reset_sequences((Company, Contact, Lead, Deal, InstallmentPlan))
    world.tally.fill(report, world)
    await plans_and_closes(engine, now)
    report.seconds = time.monotonic() - started
    return report


PLAN_GROWTH = 1.1  # a manager's plan: last month's sales and money, and a tenth more
TYPED_CLOSE = 5  # one open sale in this many has an expected-close date typed


async def plans_and_closes(engine: AsyncEngine, now: datetime, tz: str = "Europe/Moscow") -> int:
    """This month's and next month's plans (each manager's last month plus a tenth, the
    company's their sum) and a typed expected-close date on one open sale in `TYPED_CLOSE`
    (within six weeks of `now`), unless the month has plans already. Returns the plans made."""
    month = plans.month_of(now, tz)
    before = (month - timedelta(days=1)).replace(day=1)
    async with UnitOfWork(create_session_factory(engine)) as uow:
        if await uow.repo.plans.of_month(month):
            return 0
        rules = await rules_by_role(uow, "sales")
        stages = await uow.repo.pipelines.stages(rules.pipeline.id, include_archived=True)
        since, until = (int(m.timestamp()) for m in plans.month_bounds(before, tz))
        managers = {e.id for e in await uow.repo.employees.with_role(Role.MANAGER)}
        won = await uow.repo.plans.won_by_manager(
            rules.pipeline.id, sorted(managers), since, until, None
        )
        rows: list[tuple[int | None, int, int]] = [
            (mid, n, amount) for mid, n, amount in won if mid in managers
        ]
        rows.append((None, sum(n for _, n, _ in rows), sum(a for _, _, a in rows)))
        made = 0
        for first in (month, plans.next_month(month)):
            for mid, n, amount in rows:
                uow.repo.add(
                    Plan(
                        month=first,
                        employee_id=mid,
                        sales_count=max(1, round(n * PLAN_GROWTH)),
                        amount=round(amount * PLAN_GROWTH / 100_000) * 100_000,
                        updated_at=now,
                    )
                )
                made += 1
        active = [s.id for s in stages if s.kind == StageKind.ACTIVE]
        await uow.repo.plans.type_expected_closes(
            rules.pipeline.id, active, TYPED_CLOSE, now, days=42
        )
        await uow.commit()
    return made


# --- the generator ------------------------------------------------------------------------


TABLES: tuple[type[Base], ...] = (  # in an order that satisfies the foreign keys
    Company,
    Contact,
    Lead,
    Deal,
    StageHistory,
    Task,
    Activity,
    InstallmentPlan,
    InstallmentDue,
    Payment,
)


@dataclass
class _Batch:
    """Rows of one chunk, per table."""

    deals: int = 0  # deals made (their installment copies not counted)
    counts: dict[type[Base], int] = field(default_factory=dict)
    prepared: Prepared | None = None  # what the loader sends (set by `prepare`)
    # (lead id, actor, rows) of the lead about to be converted by the next deal made
    pending_conversions: list[tuple[int, int, list[_Row]]] = field(default_factory=list)
    rows: dict[type[Base], list[dict[str, Any]]] = field(
        default_factory=lambda: {model: [] for model in TABLES}
    )

    def add(self, model: type[Base], **values: Any) -> None:
        self.rows[model].append(values)

    def prepare(self, loader: BulkLoader) -> None:
        """Turn the rows into what the loader sends; frees the dicts."""
        self.counts = {model: len(rows) for model, rows in self.rows.items()}
        self.prepared = loader.prepare(self.rows)
        self.rows = {}


@dataclass
class _Flow:
    rules: PipelineRules
    flow: list[int]  # stage ids: active stages then won
    lost: int
    frozen: int | None


def _flow(rules: PipelineRules) -> _Flow:
    frozen = rules.conditional_refusal()
    return _Flow(
        rules,
        [s.id for s in rules.flow],
        rules.first_of(StageKind.LOST).id,
        frozen.id if frozen else None,
    )


class _World:
    """Catalog ids, staff and the running id counters; makes one deal at a time."""

    def __init__(
        self,
        now: datetime,
        days: int,
        flows: dict[str, _Flow],
        reasons: dict[str, int],
        ids: dict[str, int],
        words: _Words,
        lang: str,
    ) -> None:
        self.rng = random.Random()
        self.words, self.lang = words, lang
        self.tally = _Tally()
        self.code_of = {  # Sales' stages by their code, the others' as "pipeline.stage"
            s.id: s.code if role == "sales" else f"{flow.rules.pipeline.code}.{s.code}"
            for role, flow in flows.items()
            for s in flow.rules.stages
        }
        self.now, self.start = now, now - timedelta(days=days)
        self.sales, self.leads = flows["sales"], flows["leads"]
        self.deferred, self.installments = flows["deferred"], flows["installments"]
        self.reasons = reasons
        self.ids = ids
        self.pipeline_of = {
            s.id: s.pipeline_id for flow in flows.values() for s in flow.rules.stages
        }
        self.managers: list[tuple[int, float, float]] = []  # id, skill, response factor
        self.manager_names: dict[int, str] = {}
        self.manager_weights: list[float] = []
        self.measurers: list[int] = []
        self.reason_tables = []
        for table in REASONS:
            codes = [c for c in table if c in reasons] or list(reasons)
            self.reason_tables.append(
                ([reasons[c] for c in codes], list(accumulate(table.get(c, 1) for c in codes)))
            )
        self.sources = [str(s) for s, _ in SOURCES]
        self.source_weights = list(accumulate(w for _, w in SOURCES))

    @classmethod
    async def load(
        cls,
        uow: UnitOfWork,
        now: datetime,
        days: int,
        *,
        force: bool = False,
        words: _Words = NAMES["ru"],
        lang: str = "ru",
    ) -> _World:
        deal_count = await row_count(uow, Deal)
        lead_count = await row_count(uow, Lead)
        if (deal_count or lead_count) and not force:
            raise DemoError(
                f"the database already has {deal_count} deals and {lead_count} leads; "
                "the demo fills an empty one (--force adds made-up data to it anyway)"
            )
        flows = {}
        for role in ("sales", "leads", "deferred", "installments"):
            try:
                flows[role] = _flow(await rules_by_role(uow, role))
            except RuleViolation as exc:  # the role, or its won/lost stage, is missing
                raise DemoError(
                    f"the demo needs a {role!r} pipeline with won and lost stages ({exc})"
                ) from exc
        if len(flows["leads"].flow) < 3 or len(flows["sales"].flow) < 6:
            raise DemoError(
                "the demo needs a leads pipeline with a qualification stage and a sales "
                "pipeline with at least five active stages"
            )
        reasons = {r.code: r.id for r in await uow.repo.catalog.loss_reasons()}
        if not reasons:
            raise DemoError("the demo needs loss reasons in the pipelines config")
        ids = {}
        for model in (Company, Contact, Lead, Deal, InstallmentPlan):
            ids[model.__tablename__] = await max_id(uow, model)
        return cls(now, days, flows, reasons, ids, words, lang)

    async def ensure_staff(self, loader: BulkLoader) -> None:
        words = self.words
        people = [(name, Role.MANAGER) for name in words.managers]
        people += list(zip(words.staff, STAFF_ROLES, strict=True))
        telegram_ids = [DEMO_TELEGRAM_BASE - i for i in range(len(people))]
        existing = await loader.employee_ids(telegram_ids)
        missing = [
            {
                "telegram_id": DEMO_TELEGRAM_BASE - i,
                "name": name,
                "username": None,
                "roles": [str(role)],
                "active": True,
                "language": self.lang,
                "unreachable": False,
                "created_at": self.start - timedelta(days=30),
            }
            for i, (name, role) in enumerate(people)
            if DEMO_TELEGRAM_BASE - i not in existing
        ]
        await loader.insert(Employee, missing)
        ids = await loader.employee_ids(telegram_ids)
        for i, (share, skill, response) in enumerate(MANAGERS):
            self.managers.append((ids[DEMO_TELEGRAM_BASE - i], skill, response))
            self.manager_names[ids[DEMO_TELEGRAM_BASE - i]] = words.managers[i]
            self.manager_weights.append(share)
        self.manager_weights = list(accumulate(self.manager_weights))
        for i, role in enumerate(STAFF_ROLES, start=len(MANAGERS)):
            if role == Role.MEASURER:
                self.measurers.append(ids[DEMO_TELEGRAM_BASE - i])

    def next_id(self, table: str) -> int:
        self.ids[table] += 1
        return self.ids[table]

    # --- helpers

    def hours(self, mean: float) -> timedelta:
        """A stay of ``mean`` hours on average; now and then a forgotten one, 15 times as long."""
        forgotten = FORGOTTEN_FACTOR if self.rng.random() < FORGOTTEN_CHANCE else 1.0
        return timedelta(seconds=self.rng.expovariate(1.0) * mean * forgotten * HOUR + 60)

    def reason(self, depth: int) -> int:
        """A loss reason typical of how far the deal got (never "thinking": that one parks)."""
        ids, cumulative = self.reason_tables[min(depth, len(REASONS) - 1)]
        return self.rng.choices(ids, cum_weights=cumulative)[0]

    def person(self) -> str:
        first, last = self.rng.choice(self.words.first), self.rng.choice(self.words.last)
        if first.endswith(self.words.feminine_ends):  # Russian: Петрова
            last += self.words.feminine_suffix
        return f"{first} {last}"

    def client(self, legal: bool, with_amount: bool = True) -> _Client:
        """A client with a need and an amount typical of it."""
        rng = self.rng
        need, typical = rng.choice(self.words.needs)
        amount = None
        if with_amount:  # roubles around the need's typical sum, in kopecks, whole hundreds
            amount = max(100, int(rng.lognormvariate(math.log(typical), 0.35)) // 100 * 100)
            amount *= 100
        name = self.person()
        company = self.words.company.format(last=name.split()[1]) if legal else None
        return _Client(name, need, company, amount)

    # --- one deal and its lead(s)

    def one_deal(self, batch: _Batch, index: int, total: int) -> None:
        rng = self.rng
        span = (self.now - self.start).total_seconds()
        active = len(self.sales.flow) - 1
        hold = None  # held open in this flow stage
        if index % HELD_OPEN == HELD_OPEN - 1:
            hold = (index // HELD_OPEN) % active
            # made within the last three weeks, early enough to have reached the stage
            back = timedelta(days=rng.uniform(2 + 2 * hold, 21)) if hold else timedelta(0)
            deal_at = self.now - back - timedelta(hours=rng.uniform(1, 30))
        else:
            share = ((index + rng.random()) / total) ** RECENT
            deal_at = self.start + timedelta(seconds=span * share)
        manager, skill, response = rng.choices(self.managers, cum_weights=self.manager_weights)[0]
        # The lead behind the deal: answered after the response time, converted later.
        answer = timedelta(seconds=rng.lognormvariate(math.log(1500 * response), 1.0))
        convert = timedelta(seconds=rng.lognormvariate(math.log(3 * HOUR), 1.0))
        client = self.client(rng.random() < 0.08)
        deal_id = self.next_id("deals")
        lead_id = self.lead(batch, deal_at - convert - answer, manager, client, answer, deal_id)
        self.deal(batch, deal_id, deal_at, manager, skill, lead_id, client, hold)
        # Every other deal brings a lead that never became one.
        if index % 2 == 1:
            at = deal_at - timedelta(hours=rng.uniform(0, 48))
            answer = timedelta(seconds=rng.lognormvariate(math.log(1500 * response), 1.0))
            self.lead(batch, at, manager, self.client(False, False), answer, None)

    def lead(
        self,
        batch: _Batch,
        at: datetime,
        manager: int,
        client: _Client,
        answer: timedelta,
        deal_id: int | None,
    ) -> int:
        """A lead converted into ``deal_id`` when the deal was made, or one that was not."""
        rng = self.rng
        lead_id = self.next_id("leads")
        new, qualification, converted = self.leads.flow[:3]
        first_action = at + answer if at + answer < self.now else None
        if deal_id is None and rng.random() < IGNORED_LEAD_CHANCE:
            first_action = None
        history: list[_Row] = [(at, new, None)]
        if deal_id is not None:
            history.append((at + answer, qualification, None))
            # converted when the deal was made: at + answer + the conversion delay
            status, stage = LeadStatus.CONVERTED, converted
        elif first_action is None:
            status, stage = LeadStatus.NEW, new
        elif rng.random() < 0.2:  # not a target request: said at once
            history.append((first_action, self.leads.lost, self.reason(0)))
            status, stage = LeadStatus.DISQUALIFIED, self.leads.lost
        else:
            history.append((first_action, qualification, None))
            status, stage = LeadStatus.QUALIFYING, qualification
            closed = first_action + self.hours(24)
            if closed < self.now:
                history.append((closed, self.leads.lost, self.reason(0)))
                status, stage = LeadStatus.DISQUALIFIED, self.leads.lost
        source = rng.choices(self.sources, cum_weights=self.source_weights)[0]
        answered = status != LeadStatus.NEW
        batch.add(
            Lead,
            id=lead_id,
            source=source,
            name=client.name,
            phone=_phone(lead_id),
            email=None,
            need=client.need,
            is_legal_entity=client.company is not None,
            company_name=client.company,
            amount=client.amount if client.amount and rng.random() < 0.6 else None,
            status=str(status),
            pipeline_id=self.leads.rules.pipeline.id,
            stage_id=stage,
            qualification={"region": True, "need_clear": True} if answered else {},
            loss_reason_id=history[-1][2],
            loss_comment=None,
            manager_id=manager,
            created_by_id=manager,
            deal_id=deal_id,
            created_at=at,
            first_action_at=first_action,
            # stored as the bot stores it at a first touch (default WORK_HOURS)
            response_s=None if first_action is None else response_seconds(WORK, at, first_action),
            updated_at=history[-1][0],
            version=len(history),
        )
        if deal_id is not None:
            batch.pending_conversions.append((lead_id, manager, history))
        else:
            self.history(batch, history, lead_id=lead_id, actor=manager)
        return lead_id

    def deal(
        self,
        batch: _Batch,
        deal_id: int,
        at: datetime,
        manager: int,
        skill: float,
        lead_id: int,
        client: _Client,
        hold: int | None = None,
    ) -> None:
        rng = self.rng
        contact_id = self.next_id("contacts")
        phone = _phone(lead_id)
        batch.add(Contact, id=contact_id, name=client.name, phone=phone, email=None, created_at=at)
        company_id = None
        company = None
        if client.company is not None:
            company_id = self.next_id("companies")
            company = Company(name=client.company)
            batch.add(Company, id=company_id, name=client.company, created_at=at)
        title = f"{client.company or client.name}: {client.need}"
        # The lead's converted row: the moment the deal was made.
        lead_id_, lead_actor, lead_rows = batch.pending_conversions.pop()
        lead_rows.append((at, self.leads.flow[2], None))
        self.history(batch, lead_rows, lead_id=lead_id_, actor=lead_actor)

        path = self.held_path(at, hold) if hold is not None else self.sales_path(at, skill)
        flow = self.sales.flow
        entered = {stage: when for when, stage, _ in path.rows}
        last_at, stage = path.rows[-1][0], path.rows[-1][1]
        closed = stage in (flow[-1], self.sales.lost, self.deferred.lost)
        installments = stage == flow[-1] and rng.random() < INSTALLMENTS_CHANCE
        measurer = rng.choice(self.measurers) if self.measurers and path.reached >= 3 else None
        scheduled = entered.get(flow[2])
        batch.add(
            Deal,
            id=deal_id,
            title=title,
            contact_id=contact_id,
            company_id=company_id,
            lead_id=lead_id,
            parent_deal_id=None,
            pipeline_id=self.pipeline_of[stage],
            stage_id=stage,
            manager_id=manager,
            measurer_id=measurer,
            amount=client.amount,
            need=client.need,
            address=f"{rng.choice(self.words.streets)}, {rng.randint(1, 120)}"
            if scheduled
            else None,
            measurement_at=scheduled + timedelta(days=2) if scheduled else None,
            next_contact_at=path.next_contact,
            with_installments=installments,
            loss_reason_id=path.rows[-1][2],
            loss_comment=None,
            created_at=at,
            updated_at=last_at,
            stage_entered_at=last_at,
            last_activity_at=last_at,
            closed_at=last_at if closed else None,
            search_text=search_text(title, Contact(name=client.name, phone=phone), company),
            version=len(path.rows),
        )
        self.history(batch, path.rows, deal_id=deal_id, actor=manager)
        batch.deals += 1
        won_at = last_at if stage == flow[-1] else None
        self.tally.add(self, at, manager, stage, client.amount, won_at)
        self.tasks(batch, deal_id, manager, measurer, entered, stage, path.next_contact)
        done_at = entered.get(flow[4])
        if done_at is not None and measurer is not None:
            batch.add(
                Activity,
                deal_id=deal_id,
                lead_id=None,
                kind=str(ActivityKind.MEASUREMENT),
                text=self.words.measured.format(n=rng.randint(1, 6)),
                author_id=measurer,
                at=done_at,
            )
        if installments:
            self.installment_copy(batch, deal_id, last_at, manager, title, contact_id, client)

    def held_path(self, at: datetime, hold: int) -> _Path:
        """A recent deal that went straight to flow stage ``hold`` and waits there."""
        flow = self.sales.flow
        rows: list[_Row] = [(at, flow[0], None)]
        step = (self.now - at) / (hold + 2)
        for k in range(1, hold + 1):
            rows.append((at + step * k, flow[k], None))
        return _Path(rows, reached=hold)

    def sales_path(self, at: datetime, skill: float) -> _Path:
        """Where a deal made at ``at`` went by ``now``: the history rows of a simulation."""
        rng, flow, sales = self.rng, self.sales.flow, self.sales
        rows: list[_Row] = [(at, flow[0], None)]
        path = _Path(rows)
        k, t = 0, at
        deferred = refused = rescheduled = False
        while True:
            t = t + self.hours(STAY_HOURS[k] if k < len(STAY_HOURS) else GENERIC_STAY)
            if t >= self.now:
                return path  # still in stage k
            chance = min(0.99, (STEP[k] if k < len(STEP) else GENERIC_STEP) * skill)
            if rng.random() < chance:
                k += 1
                rows.append((t, flow[k], None))
                path.reached = max(path.reached, k)
                if k == len(flow) - 1:
                    return path  # won
                if k == 3 and not rescheduled and rng.random() < RESCHEDULE_CHANCE:
                    rescheduled, k = True, 2  # the measurement is rescheduled
                    t += self.hours(10)
                    if t >= self.now:
                        return path
                    rows.append((t, flow[k], None))
                continue
            depth = 0 if k == 0 else 1 if k == 1 else 2 if k < 4 else 3
            roll = rng.random()
            if k <= 1 and not deferred and roll < DEFER_CHANCE:
                deferred = True
                rows.append((t, self.deferred.flow[0], None))
                contact_at = t + timedelta(days=rng.uniform(14, 60))
                t = contact_at + self.hours(4)
                if t >= self.now:
                    path.next_contact = contact_at
                    return path  # waiting in deferred demand
                if rng.random() < 0.45:
                    rows.append((t, flow[k], None))  # back to sales where it left
                    continue
                rows.append((t, self.deferred.lost, self.reason(0)))
                return path
            thinking = self.reasons.get("thinking")
            refusal = roll < DEFER_CHANCE + REFUSAL_CHANCE
            if k >= 1 and sales.frozen and thinking and not refused and refusal:
                refused = True
                rows.append((t, sales.frozen, thinking))
                t += timedelta(days=rng.uniform(5, 21))
                if t >= self.now:
                    return path  # still thinking
                if rng.random() < 0.35:
                    rows.append((t, flow[k], None))  # reopened
                    continue
                rows.append((t, sales.lost, self.reason(depth)))
                return path
            rows.append((t, sales.lost, self.reason(depth)))
            return path

    def tasks(
        self,
        batch: _Batch,
        deal_id: int,
        manager: int,
        measurer: int | None,
        entered: dict[int, datetime],
        stage: int,
        next_contact: datetime | None,
    ) -> None:
        flow = self.sales.flow

        def task(kind: str, start: datetime, due: datetime, **kw: Any) -> None:
            """An auto task is done when the deal reached the next stage, open while the deal
            still waits for it, and was cancelled when the deal went elsewhere."""
            done, waiting = kw.pop("done", None), kw.pop("waiting", True)
            status = TS.DONE if done else TS.OPEN if waiting else TS.CANCELLED
            values = {"assignee_id": None, "assignee_role": None, **kw}
            # the English title beside the row's own, as configured tasks carry it
            values["payload"] = {**kw.get("payload", {}), "title_en": NAMES["en"].tasks[kind]}
            title = self.words.tasks[kind]
            batch.add(
                Task,
                kind=kind,
                title=title,
                deal_id=deal_id,
                lead_id=None,
                status=str(status),
                due_at=due,
                comment=None,
                created_by_id=manager,
                created_at=start,
                done_at=done,
                escalated_at=None,
                version=1,
                **values,
            )

        if flow[2] in entered:  # measurement scheduled: the head of measurers assigns one
            start = entered[flow[2]]
            task(
                str(TaskKind.ASSIGN_MEASURER),
                start,
                start + timedelta(hours=2),
                assignee_role=str(Role.HEAD_MEASURER),
                payload={"stage": "measurement_scheduled", "auto": True},
                done=entered.get(flow[3]),
                waiting=stage == flow[2],
            )
        if flow[3] in entered and measurer is not None:
            start = entered[flow[3]]
            task(
                str(TaskKind.MEASURE),
                start,
                start + timedelta(days=2),
                assignee_id=measurer,
                payload={"auto": True},
                done=entered.get(flow[4]),
                waiting=stage == flow[3],
            )
        if stage in flow[:-1]:  # an open deal: the manager's next contact, maybe overdue
            start = max(entered.values())
            due = start + timedelta(days=self.rng.uniform(1, 6))
            task(str(TaskKind.FOLLOW_UP), start, due, assignee_id=manager)
        if next_contact is not None:
            task(
                str(TaskKind.DEFERRED_CONTACT),
                max(entered.values()),
                next_contact,
                assignee_id=manager,
            )

    def installment_copy(
        self,
        batch: _Batch,
        parent: int,
        won_at: datetime,
        manager: int,
        title: str,
        contact_id: int,
        client: _Client,
    ) -> None:
        """The won deal's copy in installment control, with its schedule and payments.

        85% of clients pay a few days early, 10% late, 5% stop paying at some point (after
        60 days without a payment the plan is defaulted). Unpaid for 3 days past a due
        date: the deal goes to the overdue stage, back when paid; all paid: won."""
        rng, pipeline = self.rng, self.installments
        awaiting, paid_stage = pipeline.flow[0], pipeline.flow[-1]
        overdue = pipeline.flow[1] if len(pipeline.flow) > 2 else awaiting
        copy_id = self.next_id("deals")
        plan_id = self.next_id("installment_plans")
        count = rng.choice((3, 6, 6, 12))
        each = (client.amount or 0) * 7 // 10 // count  # 30% paid when signing
        payer, stops_at = rng.random(), rng.randint(1, count)
        rows: list[_Row] = [(won_at, awaiting, None)]
        first_due = won_at.date() + timedelta(days=30)
        for n in range(1, count + 1):
            due = first_due + timedelta(days=30 * (n - 1))
            due_at = datetime.combine(due, datetime.min.time(), UTC)
            if payer < 0.85:
                pay_on: date | None = due - timedelta(days=rng.randint(0, 5))
            elif payer < 0.95:
                pay_on = due + timedelta(days=rng.randint(5, 25))
            else:
                pay_on = None if n >= stops_at else due
            paid_at = None
            if pay_on is not None:
                paid_at = datetime.combine(pay_on, datetime.min.time(), UTC) + timedelta(hours=12)
                if paid_at >= self.now:
                    paid_at = None
            late_at = due_at + timedelta(days=3)
            if late_at < self.now and (paid_at is None or paid_at > late_at):
                if rows[-1][1] != overdue:
                    rows.append((late_at, overdue, None))
            batch.add(
                InstallmentDue,
                plan_id=plan_id,
                n=n,
                due_date=due,
                amount=each,
                paid=each if paid_at else 0,
                overdue_notified_at=late_at if rows[-1][1] == overdue else None,
            )
            if paid_at is None:
                if pay_on is None and due_at + timedelta(days=60) < self.now:
                    rows.append((due_at + timedelta(days=60), pipeline.lost, None))
                for later in range(n + 1, count + 1):
                    batch.add(
                        InstallmentDue,
                        plan_id=plan_id,
                        n=later,
                        due_date=first_due + timedelta(days=30 * (later - 1)),
                        amount=each,
                        paid=0,
                        overdue_notified_at=None,
                    )
                break
            assert pay_on is not None
            batch.add(
                Payment,
                plan_id=plan_id,
                amount=each,
                paid_on=pay_on,
                recorded_by_id=manager,
                at=paid_at,
            )
            if rows[-1][1] == overdue:
                rows.append((paid_at, awaiting, None))
            if n == count:
                rows.append((paid_at + timedelta(minutes=1), paid_stage, None))
        last_at, stage = rows[-1][0], rows[-1][1]
        batch.add(
            Deal,
            id=copy_id,
            title=title,
            contact_id=contact_id,
            company_id=None,
            lead_id=None,
            parent_deal_id=parent,
            pipeline_id=pipeline.rules.pipeline.id,
            stage_id=stage,
            manager_id=manager,
            measurer_id=None,
            amount=each * count,
            need=client.need,
            address=None,
            measurement_at=None,
            next_contact_at=None,
            with_installments=True,
            loss_reason_id=None,
            loss_comment=None,
            created_at=won_at,
            updated_at=last_at,
            stage_entered_at=last_at,
            last_activity_at=last_at,
            closed_at=last_at if stage in (paid_stage, pipeline.lost) else None,
            search_text=title.lower(),
            version=len(rows),
        )
        batch.add(
            InstallmentPlan,
            id=plan_id,
            deal_id=copy_id,
            source_deal_id=parent,
            total=each * count,
            created_at=won_at,
        )
        self.history(batch, rows, deal_id=copy_id, actor=manager)

    def history(
        self,
        batch: _Batch,
        rows: list[_Row],
        *,
        actor: int,
        deal_id: int | None = None,
        lead_id: int | None = None,
    ) -> None:
        previous: int | None = None
        for at, stage, reason in rows:
            batch.add(
                StageHistory,
                deal_id=deal_id,
                lead_id=lead_id,
                pipeline_id=self.pipeline_of[stage],
                from_stage_id=previous,
                to_stage_id=stage,
                actor_id=actor,
                at=at,
                reason_id=reason,
                comment=None,
            )
            previous = stage


_Row = tuple[datetime, int, int | None]  # when, to which stage, with which loss reason


@dataclass
class _Path:
    rows: list[_Row]
    reached: int = 0  # furthest flow index
    next_contact: datetime | None = None  # waiting in deferred demand until then


@dataclass(frozen=True)
class _Client:
    name: str
    need: str
    company: str | None
    amount: int | None


@dataclass
class _Tally:
    """The distribution made so far (deals only, not their installment copies)."""

    stages: Counter[int] = field(default_factory=Counter)
    won: int = 0
    managers: dict[int, ManagerShare] = field(default_factory=dict)
    months: Counter[str] = field(default_factory=Counter)
    won_months: Counter[str] = field(default_factory=Counter)

    def add(
        self,
        world: _World,
        at: datetime,
        manager: int,
        stage: int,
        amount: int | None,
        won_at: datetime | None,
    ) -> None:
        self.stages[stage] += 1
        share = self.managers.setdefault(manager, ManagerShare(world.manager_names[manager]))
        share.deals += 1
        self.months[at.date().isoformat()[:7]] += 1  # "2026-01": a key, not for reading
        if won_at is not None:
            self.won += 1
            share.won += 1
            share.won_amount += amount or 0
            self.won_months[won_at.date().isoformat()[:7]] += 1

    def fill(self, report: DemoReport, world: _World) -> None:
        order = [s.id for f in (world.sales, world.deferred) for s in f.rules.stages]
        report.stages = {world.code_of[i]: self.stages[i] for i in order if self.stages[i]}
        report.open_stages = {world.code_of[i]: self.stages[i] for i in world.sales.flow[:-1]}
        report.won = self.won
        report.managers = sorted(self.managers.values(), key=lambda m: -m.won_share)
        report.months = dict(sorted(self.months.items()))
        report.won_months = dict(sorted(self.won_months.items()))


def _phone(lead_id: int) -> str:
    return f"+79{lead_id % 1_000_000_000:09d}"


__all__ = ["DemoError", "DemoReport", "generate", "run_demo"]
