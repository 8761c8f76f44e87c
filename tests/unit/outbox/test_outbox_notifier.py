"""bot/notifier.py: rendering (texts and buttons in both languages) and Telegram's errors,
end to end through the sweeper with a recorded Bot API session that answers 429 / 5xx / 403
the way Telegram does (aiogram's own exceptions)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from aiogram.exceptions import TelegramNetworkError
from aiogram.methods import SendMessage

from bot.notifier import BotNotifier, render
from handlers.notify import delay_text
from handlers.ui.callbacks import (
    SNOOZE_CHOICES,
    AssignCb,
    DealCb,
    InstallmentCb,
    TaskAction,
    TaskCb,
)
from services.outbox import payloads
from services.outbox import queue as outbox
from services.outbox.payloads import TaskPayload
from services.outbox.queue import (
    Delivery,
    DeliveryForbidden,
    DeliveryRejected,
    DeliveryRetryAfter,
    DeliveryTransient,
    Kind,
    OutboxItem,
)
from storage.models import Employee
from tests.outbox_fakes import make_sweeper, reminders
from tests.tg import RecordingSession, make_bot

MSK = ZoneInfo("Europe/Moscow")
NOW = datetime(2026, 1, 12, 9, 0, tzinfo=UTC)


def item(kind, payload, *, task_id=7, deal_id=3, late=False, due_at=NOW, id_=1) -> OutboxItem:
    """An item as the sweeper makes it: the stored dict parsed into its kind's class."""
    return OutboxItem(id_, kind, payloads.parse(kind, payload), due_at, late, task_id, deal_id)


def delivery(*items: OutboxItem, lang: str = "ru") -> Delivery:
    return Delivery(recipient_id=1, chat_id=555, language=lang, items=items, now=NOW)


def buttons(markup) -> list[tuple[str, str]]:
    return [(b.text, b.callback_data or b.url) for row in markup.inline_keyboard for b in row]


ESSENTIALS = {
    "deal_title": "Иван Петров: 3 окна",
    "client_name": "Иван Петров",
    "phone": "+79161234567",
    "address": "ул. Мира, 1 <кв. 5>",
    "measurement_at": "2026-01-14T09:00:00+00:00",
    "need": "3 окна ПВХ",
    "manager_name": "Ann",
    "manager_comment": "Домофон 12",
}


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_measure_card_is_made_for_a_phone(lang):
    payload = {**ESSENTIALS, "task_kind": "measure", "title": "x", "due_at": None}
    text, markup = render(delivery(item(Kind.TASK_NEW, payload), lang=lang), MSK)
    # Moscow time, in the reader's locale
    assert ("14.01 12:00" if lang == "ru" else "1/14 12:00\u202fPM") in text
    assert "8 (916) 123-45-67" in text and "Иван Петров" in text and "3 окна ПВХ" in text
    assert "&lt;кв. 5&gt;" in text  # user text is escaped for HTML
    assert "Домофон 12" in text
    assert "tasks." not in text and "reminder." not in text  # no missing translations
    got = buttons(markup)
    actions = [TaskCb.unpack(data).action for _, data in got if data.startswith("tk:")]
    assert actions == [
        TaskAction.ACCEPT,
        TaskAction.DECLINE,
        TaskAction.ON_MY_WAY,
        TaskAction.FINISH,
    ]
    assert all(TaskCb.unpack(d).task_id == 7 for _, d in got if d.startswith("tk:"))
    assert got[-1][1].startswith("https://yandex.ru/maps/?text=")


def test_assign_card_has_one_button_per_measurer_with_load():
    payload = {
        **ESSENTIALS,
        "task_kind": "assign_measurer",
        "title": "Назначить замерщика",
        "measurers": [[11, "Mia", 0], [12, "Max", 2]],
        "declined_by": "Olga",
        "decline_reason": "Заболела",
    }
    text, markup = render(delivery(item(Kind.TASK_NEW, payload)), MSK)
    assert "Olga" in text and "Заболела" in text and "ул. Мира" in text
    got = buttons(markup)
    assert [label for label, _ in got] == ["Mia (0)", "Max (2)"]
    assert [AssignCb.unpack(d) for _, d in got] == [
        AssignCb(task_id=7, measurer_id=11),
        AssignCb(task_id=7, measurer_id=12),
    ]


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_reminder_says_what_which_deal_how_late_with_done_snooze_open(lang):
    payload = {
        "task_kind": "follow_up",
        "title": "Перезвонить",
        "deal_title": "Окна на дачу",
        "due_at": (NOW - timedelta(hours=2, minutes=5)).isoformat(),
    }
    text, markup = render(delivery(item(Kind.TASK_DUE, payload), lang=lang), MSK)
    assert "Перезвонить" in text and "Окна на дачу" in text
    assert delay_text(timedelta(hours=2, minutes=5), lang) in text
    got = buttons(markup)
    tk = [TaskCb.unpack(d) for _, d in got if d.startswith("tk:")]
    assert [(c.action, c.arg) for c in tk] == [
        (TaskAction.DONE, 0),
        *[(TaskAction.SNOOZE, i) for i in range(len(SNOOZE_CHOICES))],
        (TaskAction.DUE, 0),  # ✏️ a due time typed (issue 20)
    ]
    assert DealCb.unpack(got[-1][1]).deal_id == 3
    assert "tasks." not in text and "reminder." not in text


def test_deferred_contact_offers_back_to_sales_lost_defer_again():
    payload = {"task_kind": "deferred_contact", "title": "Окна", "due_at": NOW.isoformat()}
    _, markup = render(delivery(item(Kind.TASK_DUE, payload)), MSK)
    actions = [TaskCb.unpack(d).action for _, d in buttons(markup) if d.startswith("tk:")]
    assert actions == [TaskAction.BACK_TO_SALES, TaskAction.LOST, TaskAction.DEFER_AGAIN]


def test_several_items_are_one_message_with_numbered_buttons_and_late_marks():
    items = [
        item(
            Kind.TASK_DUE, {"task_kind": "custom", "title": "A", "due_at": NOW.isoformat()}, id_=1
        ),
        item(
            Kind.INSTALLMENT_UPCOMING,
            {"deal_title": "B", "n": 1, "count": 2, "amount": 1_500_050, "due_date": "2026-01-15"},
            task_id=None,
            id_=2,
        ),
        item(
            Kind.MEASURE_DONE,
            {"deal_title": "C", "measurer": "Mia", "photos": 2, "files": 3},
            late=True,
            task_id=None,
            id_=3,
        ),
    ]
    text, markup = render(delivery(*items), MSK)
    assert text.startswith("🔔") and "(3)" in text
    assert "1. " in text and "2. " in text and "3. " in text
    assert "15\u00a0000,50" in text and "15.01.2026" in text and "⌛" in text
    labels = [label for label, _ in buttons(markup)]
    assert "1. ✅" in labels and "2. 💳" in labels and "3. 📂" in labels
    pay = [d for _, d in buttons(markup) if d.startswith("ti:")]
    assert InstallmentCb.unpack(pay[0]).deal_id == 3


@pytest.mark.parametrize("lang", ["ru", "en"])
@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        (Kind.TASK_ESCALATED, {"title": "A", "assignee": "Ann", "due_at": NOW.isoformat()}),
        (Kind.TASK_DECLINED, {**ESSENTIALS, "declined_by": "Mia", "reason": "Заболела"}),
        (
            Kind.INSTALLMENT_OVERDUE,
            {
                "deal_title": "B",
                "n": 2,
                "amount": 100,
                "due_date": "2026-01-01",
                "days": 11,
                "manager": "Ann",
            },
        ),
        (Kind.INSTALLMENT_PAID, {"deal_title": "B", "total": 100}),
        (
            Kind.SUMMARY_MORNING,
            {
                "date": "2026-01-12",
                "tasks_today": 2,
                "overdue": 1,
                "stale_days": 7,
                "stale_total": 1,
                "stale": [[5, "Old deal", 9]],
            },
        ),
        (Kind.ADMIN_UNREACHABLE, {"name": "Ann", "username": "ann"}),
        (
            Kind.TASK_NEW,
            {
                "task_kind": "custom",
                "title": "Отчёт",
                "created_by": "Lee",
                "due_at": NOW.isoformat(),
            },
        ),
    ],
)
def test_every_kind_renders_without_missing_texts(lang, kind, payload):
    text, _ = render(delivery(item(kind, payload), lang=lang), MSK)
    assert text.strip()
    for prefix in ("tasks.", "reminder.", "installments.", "common.", "role."):
        assert prefix not in text, text


# --- Telegram's errors through aiogram's real exceptions ---------------------------------


async def test_aiogram_errors_map_to_outbox_errors():
    session = RecordingSession()
    notifier = BotNotifier(make_bot(session), "Europe/Moscow")
    d = delivery(item(Kind.TASK_DUE, {"title": "x"}))
    cases = [
        ((429, "Too Many Requests: retry after 5"), {"retry_after": 5}, DeliveryRetryAfter),
        ((403, "Forbidden: bot was blocked by the user"), {}, DeliveryForbidden),
        ((500, "Internal Server Error"), {}, DeliveryTransient),
        ((502, "Bad Gateway"), {}, DeliveryTransient),
        ((400, "Bad Request: chat not found"), {}, DeliveryForbidden),
        ((400, "Bad Request: message is too long"), {}, DeliveryRejected),
    ]
    for (status, description), params, expected in cases:
        session.fail_next(SendMessage, status, description, **params)
        with pytest.raises(expected) as err:
            await notifier.deliver(d)
        if expected is DeliveryRetryAfter:
            assert isinstance(err.value, DeliveryRetryAfter) and err.value.seconds == 5
    await notifier.deliver(d)  # and then it goes through
    sent = [r for r in session.requests if isinstance(r, SendMessage)]
    assert len(sent) == len(cases) + 1 and sent[-1].chat_id == 555


async def test_network_error_is_transient():
    class Offline(RecordingSession):
        async def make_request(self, bot, method, timeout=None):  # noqa: ASYNC109
            raise TelegramNetworkError(method=method, message="Cannot connect")

    with pytest.raises(DeliveryTransient):
        await BotNotifier(make_bot(Offline())).deliver(
            delivery(item(Kind.TASK_DUE, {"title": "x"}))
        )


class PerChatSession(RecordingSession):
    """A recorded session whose errors are scripted per chat: (status, description, params)."""

    def __init__(self, plan, timer=None):
        super().__init__()
        self.plan = {chat: list(steps) for chat, steps in plan.items()}
        self.timer = timer
        self.sent_at: dict[int, list[float]] = {}

    async def make_request(self, bot, method, timeout=None):  # noqa: ASYNC109
        chat = getattr(method, "chat_id", None)
        if self.timer is not None and chat is not None:
            self.sent_at.setdefault(int(chat), []).append(self.timer.monotonic())
        steps = self.plan.get(chat)
        if steps:
            status, description, params = steps.pop(0)
            self.fail_next(type(method), status, description, **params)
        return await super().make_request(bot, method, timeout)


async def test_sweeper_with_a_recorded_session_handles_429_5xx_and_403(
    uow_factory, clock, make_actor
):
    ann = await make_actor(name="Ann", telegram_id=1001)
    bob = await make_actor(name="Bob", telegram_id=1002)
    cid = await make_actor(name="Cid", telegram_id=1003)
    root = await make_actor(roles=("admin",), name="Root", telegram_id=1004)
    async with uow_factory() as uow:
        for person in (ann, bob, cid):
            await outbox.enqueue(
                uow, person.id, Kind.TASK_DUE, TaskPayload(title=f"for {person.name}"), clock.now()
            )
        await uow.commit()
    session = PerChatSession(
        {
            1001: [(429, "Too Many Requests: retry after 3", {"retry_after": 3})],
            1002: [(502, "Bad Gateway", {}), (500, "Internal Server Error", {})],
            1003: [(403, "Forbidden: bot was blocked by the user", {})],
        }
    )
    notifier = BotNotifier(make_bot(session), "Europe/Moscow")
    sweeper, timer = make_sweeper(uow_factory, notifier, clock, max_in_flight=1)
    session.timer = timer

    stats = await sweeper.sweep_once()

    # ann: 429, her chat waits retry_after, sent; bob: 502 and 500, backs off on his own
    # (1 s, 2 s), sent; cid: 403 -- none of them held up by another's fault.
    assert stats.rate_limited == 1 and stats.transient_errors == 2 and stats.forbidden == 1
    assert stats.messages_sent == 2
    sent = [r.chat_id for r in session.requests if isinstance(r, SendMessage)]
    assert sent[:3] == [1001, 1002, 1003]
    assert Counter(sent) == {1001: 2, 1002: 3, 1003: 1}
    first_ann, retry_ann = session.sent_at[1001]
    assert retry_ann - first_ann >= 3  # retry_after was honoured
    tries = session.sent_at[1002]
    assert tries[1] - tries[0] >= 1 and tries[2] - tries[1] >= 2  # exponential backoff
    rows = {r.recipient_id: r for r in await reminders(uow_factory)}
    assert rows[ann.id].state == "sent" and rows[bob.id].state == "sent"
    assert rows[cid.id].state == "failed" and rows[cid.id].last_error == "forbidden"
    async with uow_factory() as uow:
        assert (await uow.repo.get(Employee, cid.id)).unreachable
        assert not (await uow.repo.get(Employee, ann.id)).unreachable
    await sweeper.sweep_once()
    last = [r for r in session.requests if isinstance(r, SendMessage)][-1]
    assert last.chat_id == 1004 and "Cid" in last.text  # the admin is told
    assert root.id in {r.recipient_id for r in await reminders(uow_factory, state="sent")}
