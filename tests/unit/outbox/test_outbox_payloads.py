"""Outbox payloads are typed (services/outbox/payloads.py): one class per kind, checked when
enqueued (a wrong payload is an error in the enqueuing transaction) and when drawn (a row
that does not parse is failed with the reason and the sweep goes on); rows written by the
previous, untyped code still parse and draw."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.notifier import render
from handlers.notify.views import VIEWS
from services.outbox import payloads
from services.outbox import queue as outbox
from services.outbox.payloads import (
    PAYLOADS,
    InstallmentPaid,
    PayloadError,
    PayloadMismatch,
    TaskPayload,
)
from services.outbox.queue import Delivery, Kind, OutboxItem
from tests.outbox_fakes import RecordingNotifier, make_sweeper, reminders

MSK = ZoneInfo("Europe/Moscow")
NOW = datetime(2026, 1, 12, 9, 0, tzinfo=UTC)
DUE = "2026-01-12T07:00:00+00:00"
ESSENTIALS = {
    "deal_title": "Иван Петров: 3 окна",
    "client_name": "Иван Петров",
    "phone": "+79161234567",
    "address": "ул. Мира, 1",
    "measurement_at": "2026-01-14T09:00:00+00:00",
    "need": "3 окна ПВХ",
    "manager_name": "Ann",
    "manager_comment": "Домофон 12",
}
# Each kind's payload exactly as the previous (untyped) writers stored it: every key, the
# same value formats (services/tasks.py _payload, work/jobs.py, work/measurement.py,
# work/installments.py, work/rotting.py, sales/deals.py, reports/digests.py asdict,
# intake/api.py, outbox/queue.py's admin notice).
OLD: dict[str, dict[str, object]] = {
    Kind.TASK_NEW: {
        "task_kind": "assign_measurer",
        "title": "Назначить замерщика",
        "title_en": "Assign a measurer",
        "due_at": DUE,
        "comment": None,
        "assignee_role": "head_measurer",
        "created_by": None,
        **ESSENTIALS,
        "measurers": [[11, "Mia", 0], [12, "Max", 2]],
        "declined_by": "Olga",
        "decline_reason": "Заболела",
    },
    Kind.TASK_DUE: {
        "task_kind": "follow_up",
        "title": "Перезвонить",
        "title_en": None,
        "due_at": DUE,
        "comment": "после обеда",
        "assignee_role": None,
        "created_by": "Lee",
    },
    Kind.TASK_ESCALATED: {
        "task_kind": "custom",
        "title": "Отчёт",
        "title_en": None,
        "due_at": DUE,
        "assignee": "Ann",
        "assignee_role": None,
        "deal_title": None,
    },
    Kind.TASK_DECLINED: {**ESSENTIALS, "declined_by": "Mia", "reason": "Заболела"},
    Kind.MEASURE_DONE: {
        "deal_title": "C",
        "measurer": "Mia",
        "photos": 2,
        "files": 3,
        "comment": None,
        "moved": True,
    },
    Kind.INSTALLMENT_UPCOMING: {
        "deal_title": "B",
        "n": 1,
        "count": 2,
        "amount": 1_500_050,
        "due_date": "2026-01-15",
        "due_id": 4,
    },
    Kind.INSTALLMENT_OVERDUE: {
        "deal_title": "B",
        "n": 2,
        "amount": 100,
        "due_date": "2026-01-01",
        "days": 11,
        "manager": None,
    },
    Kind.INSTALLMENT_PAID: {"deal_title": "B", "total": 100},
    Kind.SUMMARY_MORNING: {
        "date": "2026-01-12",
        "tasks_today": 2,
        "overdue": 1,
        "stale_days": 7,
        "stale_total": 1,
        "stale": [[5, "Old deal", 9]],
    },
    Kind.ADMIN_UNREACHABLE: {"employee_id": 3, "name": "Ann", "username": "ann"},
    Kind.DIGEST_DAILY: {  # as the first version wrote it: no comparison, speed, stale fields
        "kind": "daily",
        "since": "2026-01-11T05:30:00+00:00",
        "until": "2026-01-12T05:30:00+00:00",
        "moment": "2026-01-12T05:30:00+00:00",
        "leads": 1,
        "lead_names": [[7, "Petr", "telegram"]],
        "won": 1,
        "won_amount": 100,
        "wins": [
            {
                "id": 1,
                "title": "W",
                "amount": 100,
                "manager": "Ann",
                "reason": None,
                "reason_en": None,
                "frozen": False,
            }
        ],
        "lost": 1,
        "lost_amount": 50,
        "losses": [
            {
                "id": 2,
                "title": "L",
                "amount": 50,
                "manager": None,
                "reason": "Дорого",
                "reason_en": "Too expensive",
                "frozen": True,
            }
        ],
        "reasons": [{"name": "Дорого", "name_en": "Too expensive", "count": 1, "amount": 50}],
        "overdue": 1,
        "overdue_new": 0,
        "overdue_tasks": [{"id": 3, "title": "Call", "assignee": None, "due_at": DUE}],
        "pipeline": "Продажи",
        "pipeline_en": "Sales",
        "active": 2,
        "active_amount": 300,
        "weighted": 100,
        "stuck": 0,
    },
    Kind.DEAL_REASSIGNED: {
        "deal_title": "D",
        "by": "Lee",
        "from": "Ann",
        "to": "Bob",
        "role": "new",
    },
    Kind.DEAL_ROTTING: {
        "title": "R",
        "amount": 500_000,
        "stage": "Сбор данных",
        "stage_en": "Data collection",
        "days": 4,
        "limit": 3,
        "v": 2,
        "next": "КП",
        "next_en": "Proposal",
    },
    Kind.DATE_SLIPPED: {
        "title": "Окна",
        "field": "delivery_at",
        "when": "2026-03-02T07:00:00+00:00",
        "stage": "Доставка запланирована",
        "stage_en": "Delivery scheduled",
    },
    Kind.LEAD_NEW: {
        "title": "Петр · +79160000000",
        "lead_id": 9,
        "source": "Site",
        "name": "Петр",
        "phone": "+79160000000",
        "email": None,
        "need": None,
        "company": None,
        "amount": None,
        "repeat": False,
    },
    Kind.BACKUP_FAILED: {"error": "[Errno 28] No space left on device", "directory": "/srv/b"},
    Kind.LEAD_LATE: {
        "lead_id": 9,
        "name": "Петр",
        "source": "site",
        "came_at": "2026-01-12T15:55:00+00:00",
        "due_at": "2026-01-13T06:10:00+00:00",
        "limit_minutes": 15,
        "manager": "Анна",
        "manager_id": 3,
        "choices": [[4, "Борис"]],
    },
    Kind.LEAD_LATE_MANY: {
        "count": 15,
        "oldest_came_at": "2026-01-12T07:10:00+00:00",
        "limit_minutes": 15,
    },
    # To clients (issue 25): as services/outbox/clients.py writes them.
    Kind.CLIENT_STAGE: {
        "stage": "Замер запланирован",
        "stage_en": "Measurement scheduled",
        "message": "Замер: {measurement_at}, {address}. Замерщик: {measurer}",
        "message_en": "Measurement: {measurement_at}, {address}. Measurer: {measurer}",
        "fields": {"measurement_at": DUE, "address": "ул. Мира, 1", "measurer": None},
        "confirm": True,
        "accept": False,
    },
    Kind.CLIENT_ON_WAY: {"who": "Mia", "job": "measure"},
    Kind.CLIENT_PAY_SOON: {
        "n": 2,
        "count": 3,
        "amount": 1500000,
        "due_date": "2026-02-01",
        "due_id": 5,
        "days": 0,
    },
    Kind.CLIENT_PAY_LATE: {
        "n": 2,
        "count": 0,
        "amount": 1500000,
        "due_date": "2026-02-01",
        "due_id": 5,
        "days": 4,
    },
    Kind.PLAN_REACHED: {
        "month": "2026-12-01",
        "percent": 90,
        "won": 3,
        "won_amount": 90_000_000,
        "plan_count": 4,
        "plan_amount": 100_000_000,
    },
    Kind.PLAN_BEHIND: {
        "month": "2026-12-01",
        "manager": "Cy",
        "manager_id": 3,
        "won": 0,
        "won_amount": 0,
        "plan_count": 5,
        "plan_amount": 0,
        "pace_count": 1,
        "pace_amount": None,
        "days_left": 19,
    },
}
OLD[Kind.DIGEST_WEEKLY] = {**OLD[Kind.DIGEST_DAILY], "kind": "weekly"}


def test_every_kind_has_its_class_its_view_and_an_old_row_here():
    assert set(PAYLOADS) == {k.value for k in Kind} == set(VIEWS) == set(OLD)
    for kind, view in VIEWS.items():
        assert view.payload is PAYLOADS[kind]


@pytest.mark.parametrize("kind", sorted(OLD))
@pytest.mark.parametrize("lang", ["ru", "en"])
def test_a_row_the_previous_code_wrote_parses_draws_and_keeps_its_shape(kind, lang):
    old = OLD[kind]
    typed = payloads.parse(kind, old)
    assert isinstance(typed, PAYLOADS[kind])
    stored = payloads.dump(typed)
    assert {k: stored[k] for k in old} == old  # the same JSON, key for key
    item = OutboxItem(1, kind, typed, NOW, False, 7, 3)
    text, _ = render(Delivery(1, 555, lang, (item,), NOW), MSK)
    assert text.strip()
    for prefix in (
        "tasks.",
        "reminder.",
        "installments.",
        "digest.",
        "rot.",
        "role.",
        "clientmsg.",
        "plan.",
    ):
        assert prefix not in text, text


def test_english_names_come_through_label():
    item = OutboxItem(
        1,
        Kind.DEAL_ROTTING,
        payloads.parse(Kind.DEAL_ROTTING, OLD[Kind.DEAL_ROTTING]),
        NOW,
        False,
        None,
        3,
    )
    en, markup = render(Delivery(1, 555, "en", (item,), NOW), MSK)
    ru, _ = render(Delivery(1, 555, "ru", (item,), NOW), MSK)
    assert "Data collection" in en and "Сбор данных" in ru
    assert markup is not None and markup.inline_keyboard[0][0].text.startswith("Proposal")
    digest = payloads.parse(Kind.DIGEST_DAILY, OLD[Kind.DIGEST_DAILY])
    item = OutboxItem(2, Kind.DIGEST_DAILY, digest, NOW, False, None, None)
    en, _ = render(Delivery(1, 555, "en", (item,), NOW), MSK)
    assert "(Sales)" in en and "Too expensive" in en and "Дорого" not in en


def test_old_values_are_typed_when_parsed():
    task = payloads.parse(Kind.TASK_NEW, OLD[Kind.TASK_NEW])
    assert isinstance(task, TaskPayload)
    assert task.due_at == datetime(2026, 1, 12, 7, 0, tzinfo=UTC)
    assert task.measurers[1].name == "Max" and task.measurers[1].load == 2
    summary = payloads.parse(Kind.SUMMARY_MORNING, OLD[Kind.SUMMARY_MORNING])
    assert summary.date == date(2026, 1, 12)  # type: ignore[attr-defined]
    no_time = {"id": 3, "title": "Call", "assignee": None, "due_at": ""}  # "" was "none"
    old_digest = {**OLD[Kind.DIGEST_DAILY], "overdue_tasks": [no_time]}
    digest = payloads.parse(Kind.DIGEST_DAILY, old_digest)
    assert digest.overdue_tasks[0].due_at is None  # type: ignore[attr-defined]
    # A key a newer build added is ignored; a kind this build does not know draws its title.
    assert payloads.parse(Kind.INSTALLMENT_PAID, {**OLD[Kind.INSTALLMENT_PAID], "new": 1})
    unknown = payloads.parse("lead.lost", {"title": "Ушёл"})
    text, _ = render(
        Delivery(1, 555, "ru", (OutboxItem(1, "lead.lost", unknown, NOW, False, None, None),), NOW),
        MSK,
    )
    assert text == "Ушёл"


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        (Kind.INSTALLMENT_PAID, {"deal_title": "B", "total": "a lot"}),
        (Kind.TASK_DUE, {"task_kind": "custom"}),  # no title
        (Kind.DEAL_REASSIGNED, {**OLD[Kind.DEAL_REASSIGNED], "role": "someone"}),
        (Kind.SUMMARY_MORNING, {"date": "yesterday"}),
        (Kind.TASK_DUE, {**OLD[Kind.TASK_DUE], "due_at": "2026-01-12T07:00:00"}),  # naive
        (Kind.TASK_DUE, ["not", "an", "object"]),
    ],
)
def test_what_does_not_parse_says_why(kind, raw):
    with pytest.raises(PayloadError) as err:
        payloads.parse(kind, raw)
    assert str(err.value).startswith(kind)


def test_a_payload_is_checked_when_built():
    with pytest.raises(ValueError):
        InstallmentPaid(deal_title="B", total="a lot")
    with pytest.raises(ValueError):
        TaskPayload(title="x", titel="typo")  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        TaskPayload(title="x", due_at=datetime(2026, 1, 12))  # no time zone
    paid = InstallmentPaid(deal_title="B", total=100)
    with pytest.raises(ValueError):
        paid.total = 5  # type: ignore[misc]  # frozen


async def test_enqueue_refuses_a_payload_that_is_not_its_kinds(uow_factory, clock, make_actor):
    ann = await make_actor()
    async with uow_factory() as uow:
        with pytest.raises(PayloadMismatch):
            await outbox.enqueue(uow, ann.id, Kind.TASK_DUE, {"title": "t"}, clock.now())  # type: ignore[arg-type]
        with pytest.raises(PayloadMismatch):
            paid = InstallmentPaid(deal_title="B", total=1)
            await outbox.enqueue(uow, ann.id, Kind.TASK_DUE, paid, clock.now())
        with pytest.raises(PayloadMismatch):
            await outbox.enqueue(
                uow, ann.id, "task.unheard_of", TaskPayload(title="t"), clock.now()
            )
        assert await outbox.enqueue(uow, ann.id, Kind.INSTALLMENT_PAID, paid, clock.now())
        await uow.commit()
    [row] = await reminders(uow_factory)
    assert row.kind == Kind.INSTALLMENT_PAID and row.payload == {"deal_title": "B", "total": 1}


async def test_a_row_that_does_not_parse_is_failed_with_the_reason_and_the_rest_go(
    uow_factory, clock, make_actor
):
    ann = await make_actor(name="Ann")
    bob = await make_actor(name="Bob")
    async with uow_factory() as uow:  # as stored (by an older build, or by hand): no check
        repo = uow.repo.outbox
        for recipient, kind, raw in (
            (ann.id, Kind.INSTALLMENT_PAID, {"deal_title": "B", "total": "a lot"}),
            (ann.id, Kind.TASK_DUE, OLD[Kind.TASK_DUE]),
            (bob.id, Kind.SUMMARY_MORNING, {"date": "yesterday"}),
            (bob.id, Kind.DEAL_REASSIGNED, OLD[Kind.DEAL_REASSIGNED]),
            (bob.id, Kind.ADMIN_UNREACHABLE, OLD[Kind.ADMIN_UNREACHABLE]),
        ):
            await repo.enqueue(
                recipient_id=recipient,
                kind=kind,
                payload=raw,
                due_at=clock.now(),
                dedupe_key=None,
                task_id=None,
                deal_id=None,
            )
        await uow.commit()
    notifier = RecordingNotifier()
    sweeper, _ = make_sweeper(uow_factory, notifier, clock)

    stats = await sweeper.sweep_until_idle()

    assert stats.failed == 2 and stats.items_sent == 3
    assert notifier.kinds(ann.id) == [Kind.TASK_DUE]
    assert sorted(notifier.kinds(bob.id)) == [Kind.ADMIN_UNREACHABLE, Kind.DEAL_REASSIGNED]
    failed = {r.kind: r.last_error or "" for r in await reminders(uow_factory, state="failed")}
    assert set(failed) == {Kind.INSTALLMENT_PAID, Kind.SUMMARY_MORNING}
    assert failed[Kind.INSTALLMENT_PAID].startswith("payload: installment.paid: total")
    assert failed[Kind.SUMMARY_MORNING].startswith("payload: summary.morning: date")
    rows = await reminders(uow_factory)
    assert len(rows) == 5  # kept, not dropped
    for delivery in notifier.deliveries:  # and what went out draws
        text, _ = render(delivery, MSK)
        assert text.strip()
    assert (await sweeper.sweep_until_idle()).failed == 0  # failed once, not again
