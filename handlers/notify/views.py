"""One view per outbox kind: an item's typed payload (services/outbox/payloads.py: what the
services enqueued, parsed back by the sweeper) as the lines and the buttons of a message of
its own, in the recipient's language.

Task reminders are drawn with the task card's own pieces (handlers/ui/task_card.py: detail
lines, the declined line, and its keyboard `task_keyboard` over the card the payload
describes), "Open deal" with the deal card's (handlers/ui/deal_card.py), digests with
handlers/funnel/views.py, money and dates with handlers/ui/fmt.py, bilingual names with
services.dto.label. `VIEWS` maps each kind to its view and the payload class it draws;
handlers/notify/message.py puts one or several items into a message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from html import escape
from typing import Any, Generic, TypeVar

from aiogram.types import InlineKeyboardButton

from handlers.clients import views as client_views
from handlers.funnel.views import digest_lines, plan_done, plan_pace
from handlers.ui import fmt
from handlers.ui.callbacks import (
    ClientAnswer,
    ClientAnswerCb,
    DealAction,
    DealCb,
    InstallmentAction,
    InstallmentCb,
    LeadAction,
    LeadCb,
    MenuAction,
    MenuCb,
    TaskAction,
    TaskCb,
)
from handlers.ui.deal_card import open_button
from handlers.ui.discipline import norm_items
from handlers.ui.i18n import t, tn
from handlers.ui.task_card import declined_line, detail_lines, task_keyboard
from services.dto import label
from services.outbox.payloads import (
    AdminUnreachable,
    BackupFailed,
    ClientOnWay,
    ClientPayment,
    ClientStage,
    DateSlipped,
    DealEssentials,
    DealReassigned,
    DealRotting,
    Digest,
    InstallmentOverdue,
    InstallmentPaid,
    InstallmentUpcoming,
    LeadLate,
    LeadLateMany,
    LeadNew,
    MeasureDone,
    Payload,
    PlanBehind,
    PlanReached,
    SummaryMorning,
    TaskDeclined,
    TaskEscalated,
    TaskLine,
    TaskPayload,
    Unknown,
)
from services.outbox.queue import CLIENT_KINDS, Kind, OutboxItem
from services.tasks import is_overdue, reminder_card
from storage.enums import TaskKind

TITLE_WIDTH = 120
Buttons = list[list[InlineKeyboardButton]]
Drawn = tuple[list[str], Buttons]
View = Callable[[OutboxItem, str, tzinfo, datetime], Drawn]
P = TypeVar("P", bound=Payload)


def btn(text: str, cb: Any = None, url: str | None = None) -> InlineKeyboardButton:
    if url is not None:
        return InlineKeyboardButton(text=text, url=url)
    return InlineKeyboardButton(text=text, callback_data=cb.pack())


def delay_text(delta: timedelta, lang: str) -> str:
    """5 min / 2 h 10 min / 3 d 4 h."""
    minutes = max(int(delta.total_seconds() // 60), 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return t("reminder.delay.d", lang, d=days, h=hours)
    if hours:
        return t("reminder.delay.h", lang, h=hours, m=mins)
    return t("reminder.delay.m", lang, m=mins)


def cut(text: str | None, width: int = TITLE_WIDTH) -> str:
    """A payload's text, escaped and cut to `width` characters."""
    value = text or ""
    return escape(value if len(value) <= width else value[: width - 1] + "…")


def title(p: TaskLine, lang: str) -> str:
    return cut(label(lang, p.title, p.title_en))


def _open_deal(item: OutboxItem, lang: str) -> InlineKeyboardButton:
    assert item.deal_id is not None
    return open_button(item.deal_id, lang)


def _open_deal_row(item: OutboxItem, lang: str) -> Buttons:
    return [[_open_deal(item, lang)]] if item.deal_id else []


def _essentials(p: DealEssentials, lang: str, tz: tzinfo) -> list[str]:
    """The task card's detail lines (handlers.ui.task_card.detail_lines) from the payload."""
    return detail_lines(
        lang,
        when=fmt.when_short(p.measurement_at, tz, lang) if p.measurement_at else None,
        address=escape(p.address) if p.address else None,
        client=p.client_name,
        phone=p.phone,
        need=p.need,
        manager=p.manager_name,
        comment=p.manager_comment,
    )


def late_line(item: OutboxItem, lang: str, tz: tzinfo) -> list[str]:
    """Sent later than it was due (the bot was down): say when it was due."""
    if not item.late:
        return []
    return [t("reminder.sent_late", lang, when=fmt.when_short(item.due_at, tz, lang))]


def overdue_line(p: TaskLine, now: datetime, lang: str, tz: tzinfo) -> list[str]:
    due = p.due_at
    if due is None:
        return []
    if is_overdue(due, now):
        return [
            t(
                "reminder.overdue",
                lang,
                when=fmt.when_short(due, tz, lang),
                delay=delay_text(now - due, lang),
            )
        ]
    return [t("reminder.due_at", lang, when=fmt.when_short(due, tz, lang))]


def _card_buttons(item: OutboxItem, p: TaskPayload, now: datetime, lang: str) -> Buttons:
    """The task card's own keyboard (handlers.ui.task_card.task_keyboard) for the task as
    its payload knows it: measurer's steps, a measurer to choose, deferred demand, or Done /
    Snooze, with "Open deal"."""
    if item.task_id is None:
        return _open_deal_row(item, lang)
    markup = task_keyboard(reminder_card(item.task_id, item.deal_id, p, now), lang)
    return [list(row) for row in markup.inline_keyboard] if markup else []


def _task_buttons(item: OutboxItem, p: TaskPayload, now: datetime, lang: str) -> Buttons:
    """A reminder's buttons: the card's, except for the choice of a measurer, which is made
    on the card itself (Open)."""
    tid = item.task_id
    if tid is not None and p.task_kind == TaskKind.ASSIGN_MEASURER:
        return [[btn(t("tasks.btn.open", lang), TaskCb(action=TaskAction.OPEN, task_id=tid))]]
    return _card_buttons(item, p, now, lang)


def _moved(p: TaskPayload, lang: str) -> list[str]:
    """The card sent again because the measurement's date or address changed."""
    return [t("tasks.moved.header", lang)] if p.moved else []


def _assign_card(item: OutboxItem, p: TaskPayload, lang: str, tz: tzinfo, now: datetime) -> Drawn:
    lines = [*_moved(p, lang), t("tasks.assign.header", lang), f"<b>{cut(p.deal_title)}</b>"]
    lines += _essentials(p, lang, tz)
    if p.declined_by:
        lines.append(declined_line(p.declined_by, p.decline_reason, lang))
    lines.append("")
    lines.append(t("tasks.assign.choose" if p.measurers else "tasks.assign.nobody", lang))
    return lines, _card_buttons(item, p, now, lang)


def _measure_card(item: OutboxItem, p: TaskPayload, lang: str, tz: tzinfo, now: datetime) -> Drawn:
    lines = [*_moved(p, lang), t("tasks.measure.header", lang), f"<b>{cut(p.deal_title)}</b>"]
    lines += _essentials(p, lang, tz)
    if p.comment:
        lines.append(t("tasks.card.head_comment", lang, comment=escape(p.comment)))
    return lines, _card_buttons(item, p, now, lang)


def _task(
    item: OutboxItem, p: TaskPayload, head: str, lang: str, tz: tzinfo, now: datetime
) -> Drawn:
    """A task given to someone, or due: its title, deal, when, comment and buttons."""
    kind = t(f"tasks.kind.{p.task_kind}", lang)
    lines = [t(head, lang, who=escape(p.created_by or ""), kind=kind)]
    lines.append(f"<b>{title(p, lang)}</b>")
    if p.deal_title and p.deal_title != p.title:
        lines.append(t("reminder.deal", lang, deal=cut(p.deal_title)))
    if p.task_kind == TaskKind.MEASURE:
        lines += _essentials(p, lang, tz)
    lines += overdue_line(p, now, lang, tz)
    if p.comment:
        lines.append(t("tasks.card.comment", lang, comment=escape(p.comment)))
    return lines, _task_buttons(item, p, now, lang)


# --- one view per kind ----------------------------------------------------------------------


def task_new(item: OutboxItem, p: TaskPayload, lang: str, tz: tzinfo, now: datetime) -> Drawn:
    """A task card for its assignee: the head's choice of a measurer, a measurement, or a
    task someone gave."""
    if p.task_kind == TaskKind.ASSIGN_MEASURER:
        return _assign_card(item, p, lang, tz, now)
    if p.task_kind == TaskKind.MEASURE:
        return _measure_card(item, p, lang, tz, now)
    return _task(item, p, "tasks.new.given", lang, tz, now)


def task_due(item: OutboxItem, p: TaskPayload, lang: str, tz: tzinfo, now: datetime) -> Drawn:
    return _task(item, p, "reminder.due.header", lang, tz, now)


def task_escalated(
    item: OutboxItem, p: TaskEscalated, lang: str, tz: tzinfo, now: datetime
) -> Drawn:
    who = p.assignee or t(f"role.{p.assignee_role}", lang)
    lines = [
        t("tasks.escalated.header", lang),
        f"<b>{title(p, lang)}</b>",
        t("tasks.escalated.who", lang, who=escape(who)),
    ]
    if p.deal_title:
        lines.append(t("reminder.deal", lang, deal=cut(p.deal_title)))
    lines += overdue_line(p, now, lang, tz)
    return lines, _open_deal_row(item, lang)


def task_declined(item: OutboxItem, p: TaskDeclined, lang: str, tz: tzinfo, now: datetime) -> Drawn:
    who, reason = escape(p.declined_by), escape(p.reason)
    lines = [t("tasks.declined", lang, who=who, reason=reason), f"<b>{cut(p.deal_title)}</b>"]
    return lines + _essentials(p, lang, tz), []


def measure_done(item: OutboxItem, p: MeasureDone, lang: str, tz: tzinfo, now: datetime) -> Drawn:
    lines = [
        t("tasks.measure_done", lang, deal=cut(p.deal_title), who=escape(p.measurer)),
        t("tasks.measure_done.files", lang, photos=p.photos, files=p.files),
    ]
    if p.comment:
        lines.append(t("tasks.card.comment", lang, comment=escape(p.comment)))
    return lines, _open_deal_row(item, lang)


def deal_reassigned(
    item: OutboxItem, p: DealReassigned, lang: str, tz: tzinfo, now: datetime
) -> Drawn:
    new = p.role == "new"
    line = t(
        "reminder.reassigned.new" if new else "reminder.reassigned.old",
        lang,
        by=escape(p.by or ""),
        deal=cut(p.deal_title),
        old=escape(p.previous or "—"),
        new=escape(p.to or ""),
    )
    return [line], _open_deal_row(item, lang) if new else []


def _installment_buttons(item: OutboxItem, lang: str, pay: bool = True) -> Buttons:
    if item.deal_id is None:
        return []
    rows: Buttons = []
    if pay:
        cb = InstallmentCb(action=InstallmentAction.PAY, deal_id=item.deal_id)
        rows.append([btn(t("installments.btn.pay", lang), cb)])
    rows.append([_open_deal(item, lang)])
    return rows


def installment_upcoming(
    item: OutboxItem, p: InstallmentUpcoming, lang: str, tz: tzinfo, now: datetime
) -> Drawn:
    line = t(
        "installments.upcoming",
        lang,
        n=p.n,
        count=p.count,
        amount=fmt.money(p.amount, lang),
        date=fmt.day(p.due_date, lang),
        deal=cut(p.deal_title),
    )
    return [line], _installment_buttons(item, lang)


def installment_overdue(
    item: OutboxItem, p: InstallmentOverdue, lang: str, tz: tzinfo, now: datetime
) -> Drawn:
    line = t(
        "installments.overdue",
        lang,
        n=p.n,
        amount=fmt.money(p.amount, lang),
        date=fmt.day(p.due_date, lang),
        days=p.days,
        deal=cut(p.deal_title),
        manager=escape(p.manager or "—"),
    )
    return [line], _installment_buttons(item, lang)


def installment_paid(
    item: OutboxItem, p: InstallmentPaid, lang: str, tz: tzinfo, now: datetime
) -> Drawn:
    amount = fmt.money(p.total, lang)
    line = t("installments.paid", lang, deal=cut(p.deal_title), amount=amount)
    return [line], _installment_buttons(item, lang, pay=False)


def summary_morning(
    item: OutboxItem, p: SummaryMorning, lang: str, tz: tzinfo, now: datetime
) -> Drawn:
    lines = [t("tasks.summary.header", lang, date=fmt.day(p.date, lang))]
    if p.tasks_today:
        lines.append(t("tasks.summary.tasks", lang, count=p.tasks_today, overdue=p.overdue))
    if p.norms:
        lines.append(t("tasks.summary.norms", lang, items=norm_items(p.norms, lang)))
    rows: Buttons = []
    if p.stale:
        lines.append("")
        lines.append(t("tasks.summary.stale", lang, days=p.stale_days, count=p.stale_total))
        for deal in p.stale:
            name = cut(deal.title, 60)
            lines.append(t("tasks.summary.stale_item", lang, title=name, days=deal.days))
        for deal in p.stale[:5]:
            rows.append([open_button(deal.deal_id, lang, f"📂 {deal.title[:40]}")])
    rows.append([btn(t("tasks.summary.btn.tasks", lang), MenuCb(action=MenuAction.TASKS))])
    return lines, rows


def digest(item: OutboxItem, p: Digest, lang: str, tz: tzinfo, now: datetime) -> Drawn:
    """The daily or weekly digest (handlers/funnel/views.py `digest_lines`)."""
    rows = [[btn(t("menu.funnel", lang), MenuCb(action=MenuAction.FUNNEL))]]
    return digest_lines(p, lang, tz), rows


def deal_rotting(item: OutboxItem, p: DealRotting, lang: str, tz: tzinfo, now: datetime) -> Drawn:
    """A stale deal (services/work/rotting.py) with what to do about it right here: the
    card's own callbacks (the services check rights and the version as on the card)."""
    assert item.deal_id is not None
    stage = label(lang, p.stage, p.stage_en)
    lines = [
        t("rot.header", lang, days=p.days, stage=escape(stage), limit=p.limit),
        f"<b>{cut(p.title)}</b> · {fmt.compact_money(p.amount, lang)}",
    ]
    deal_id, v = item.deal_id, p.v
    rows: Buttons = []
    if p.next:
        cb = DealCb(action=DealAction.NEXT, deal_id=deal_id, v=v)
        rows.append([btn(f"{fmt.short(label(lang, p.next, p.next_en), 22)} ▶", cb)])
    rows.append(
        [
            btn(
                t("deal.btn.next_contact", lang),
                DealCb(action=DealAction.NEXT_CONTACT, deal_id=deal_id, v=v),
            ),
            btn(t("deal.btn.lose", lang), DealCb(action=DealAction.LOSE, deal_id=deal_id, v=v)),
        ]
    )
    rows.append([_open_deal(item, lang)])
    return lines, rows


def date_slipped(item: OutboxItem, p: DateSlipped, lang: str, tz: tzinfo, now: datetime) -> Drawn:
    """An order's production or delivery date passed while it is still at that stage."""
    stage = label(lang, p.stage, p.stage_en)
    lines = [
        t(f"order.slipped.{p.field}", lang, when=fmt.when(p.when, tz, lang), stage=escape(stage)),
        f"<b>{cut(p.title)}</b>",
    ]
    return lines, [[_open_deal(item, lang)]]


def admin_unreachable(
    item: OutboxItem, p: AdminUnreachable, lang: str, tz: tzinfo, now: datetime
) -> Drawn:
    who = p.name + (f" (@{p.username})" if p.username else "")
    return [t("tasks.unreachable", lang, name=escape(who))], []


def backup_failed(item: OutboxItem, p: BackupFailed, lang: str, tz: tzinfo, now: datetime) -> Drawn:
    return [t("tasks.backup_failed", lang, dir=escape(p.directory), error=escape(p.error))], []


def lead_late(item: OutboxItem, p: LeadLate, lang: str, tz: tzinfo, now: datetime) -> Drawn:
    """A new lead got no first touch in time (services/work/response.py): to the head of
    sales, with a button per manager on duty (services.sales.leads.reassign at the tap)."""
    who = p.manager or t("tasks.late_lead.nobody", lang)
    lines = [
        t("tasks.late_lead.header", lang, limit=p.limit_minutes),
        f"<b>{escape(p.name)}</b> · {t(f'source.{p.source}', lang)}",
        t("tasks.late_lead.came", lang, when=fmt.when(p.came_at, tz, lang)),
        t("tasks.late_lead.manager", lang, who=escape(who)),
    ]
    rows: Buttons = [
        [
            btn(
                t("tasks.late_lead.give", lang, name=name),
                LeadCb(action=LeadAction.REASSIGN, lead_id=p.lead_id, arg=emp_id),
            )
        ]
        for emp_id, name in p.choices
    ]
    rows.append(
        [
            btn(
                t("lead.dup.open_lead", lang, id=p.lead_id),
                LeadCb(action=LeadAction.OPEN, lead_id=p.lead_id),
            )
        ]
    )
    return lines, rows


def lead_late_many(
    item: OutboxItem, p: LeadLateMany, lang: str, tz: tzinfo, now: datetime
) -> Drawn:
    """More late leads in one scan than are told one by one (a big import)."""
    text = tn(
        "tasks.late_lead.many",
        p.count,
        lang,
        count=fmt.number(p.count, lang),
        limit=p.limit_minutes,
        when=fmt.when(p.oldest_came_at, tz, lang),
    )
    return [text], []


def lead_new(item: OutboxItem, p: LeadNew, lang: str, tz: tzinfo, now: datetime) -> Drawn:
    """A lead from the site form: its language-neutral line, as it came."""
    return [escape(p.title)], []


# --- to clients (issue 25): client words only, in the client's language ---------------------


def client_stage(item: OutboxItem, p: ClientStage, lang: str, tz: tzinfo, now: datetime) -> Drawn:
    """The deal entered a stage the client hears of; with Confirm / Reschedule for an
    appointment, or All fine / Remarks for the finished work."""
    text = client_views.fill(label(lang, p.message, p.message_en), p.fields, lang, tz, now)
    rows: Buttons = []
    deal_id = item.deal_id or 0
    if p.confirm:
        rows.append(
            [
                btn(
                    t("clientmsg.btn.confirm", lang),
                    ClientAnswerCb(action=ClientAnswer.CONFIRM, deal_id=deal_id),
                ),
                btn(
                    t("clientmsg.btn.reschedule", lang),
                    ClientAnswerCb(action=ClientAnswer.RESCHEDULE, deal_id=deal_id),
                ),
            ]
        )
    if p.accept:
        rows.append(
            [
                btn(
                    t("clientmsg.btn.accept", lang),
                    ClientAnswerCb(action=ClientAnswer.ACCEPT, deal_id=deal_id),
                )
            ]
        )
        rows.append(
            [
                btn(
                    t("clientmsg.btn.remarks", lang),
                    ClientAnswerCb(action=ClientAnswer.REMARKS, deal_id=deal_id),
                )
            ]
        )
    return [text], rows


def client_on_way(item: OutboxItem, p: ClientOnWay, lang: str, tz: tzinfo, now: datetime) -> Drawn:
    return [t(f"clientmsg.on_way.{p.job}", lang, who=escape(p.who))], []


def client_payment(
    item: OutboxItem, p: ClientPayment, lang: str, tz: tzinfo, now: datetime
) -> Drawn:
    """A part of the client's plan due soon (client.pay_soon) or missed (client.pay_late):
    its number, amount and date in words, nothing else."""
    due = fmt.said_day(p.due_date, lang, now.astimezone(tz).year)
    key = "clientmsg.pay_late" if item.kind == Kind.CLIENT_PAY_LATE else "clientmsg.pay_soon"
    return [t(key, lang, n=p.n, count=p.count, amount=fmt.money(p.amount, lang), date=due)], []


def plan_reached(item: OutboxItem, p: PlanReached, lang: str, tz: tzinfo, now: datetime) -> Drawn:
    """A manager's month plan reached 50, 90 or 100% (services/sales/plans.py)."""
    done = plan_done(p.won, p.won_amount, p.plan_count, p.plan_amount, lang)
    return [
        t("plan.reached", lang, month=fmt.month(p.month, lang), percent=p.percent, done=done)
    ], []


def plan_behind(item: OutboxItem, p: PlanBehind, lang: str, tz: tzinfo, now: datetime) -> Drawn:
    """To a leader: a manager is behind the plan's pace."""
    done = plan_done(p.won, p.won_amount, p.plan_count, p.plan_amount, lang)
    text = t(
        "plan.behind",
        lang,
        name=escape(p.manager),
        month=fmt.month(p.month, lang),
        done=done,
        pace=plan_pace(p, lang),
        left=p.days_left,
    )
    return [text], []


def unknown(item: OutboxItem, lang: str, tz: tzinfo, now: datetime) -> Drawn:
    """A kind this build does not know (a newer worker enqueued it): its title, as is."""
    p = item.payload
    text = p.title if isinstance(p, Unknown) and p.title else item.kind
    return [escape(text)], []


@dataclass(frozen=True)
class _View(Generic[P]):
    """A kind's view: `draw` for items whose payload is a `payload` (the class the sweeper
    parsed the row into: services.outbox.payloads.PAYLOADS)."""

    payload: type[P]
    draw: Callable[[OutboxItem, P, str, tzinfo, datetime], Drawn]

    def __call__(self, item: OutboxItem, lang: str, tz: tzinfo, now: datetime) -> Drawn:
        p = item.payload
        if not isinstance(p, self.payload):
            name = self.payload.__name__
            raise TypeError(f"{item.kind} draws {name}, not {type(p).__name__}")
        return self.draw(item, p, lang, tz, now)


VIEWS: dict[str, _View[Any]] = {  # Kind -> its view (a Kind is its str value)
    Kind.TASK_NEW: _View(TaskPayload, task_new),
    Kind.TASK_DUE: _View(TaskPayload, task_due),
    Kind.TASK_ESCALATED: _View(TaskEscalated, task_escalated),
    Kind.TASK_DECLINED: _View(TaskDeclined, task_declined),
    Kind.MEASURE_DONE: _View(MeasureDone, measure_done),
    Kind.INSTALLMENT_UPCOMING: _View(InstallmentUpcoming, installment_upcoming),
    Kind.INSTALLMENT_OVERDUE: _View(InstallmentOverdue, installment_overdue),
    Kind.INSTALLMENT_PAID: _View(InstallmentPaid, installment_paid),
    Kind.SUMMARY_MORNING: _View(SummaryMorning, summary_morning),
    Kind.ADMIN_UNREACHABLE: _View(AdminUnreachable, admin_unreachable),
    Kind.BACKUP_FAILED: _View(BackupFailed, backup_failed),
    Kind.DIGEST_DAILY: _View(Digest, digest),
    Kind.DIGEST_WEEKLY: _View(Digest, digest),
    Kind.DEAL_REASSIGNED: _View(DealReassigned, deal_reassigned),
    Kind.DEAL_ROTTING: _View(DealRotting, deal_rotting),
    Kind.DATE_SLIPPED: _View(DateSlipped, date_slipped),
    Kind.LEAD_NEW: _View(LeadNew, lead_new),
    Kind.LEAD_LATE: _View(LeadLate, lead_late),
    Kind.LEAD_LATE_MANY: _View(LeadLateMany, lead_late_many),
    Kind.CLIENT_STAGE: _View(ClientStage, client_stage),
    Kind.CLIENT_ON_WAY: _View(ClientOnWay, client_on_way),
    Kind.CLIENT_PAY_SOON: _View(ClientPayment, client_payment),
    Kind.CLIENT_PAY_LATE: _View(ClientPayment, client_payment),
    Kind.PLAN_REACHED: _View(PlanReached, plan_reached),
    Kind.PLAN_BEHIND: _View(PlanBehind, plan_behind),
}


def single(item: OutboxItem, lang: str, tz: tzinfo, now: datetime) -> Drawn:
    """One item as a message of its own: its view, and a line when it was sent late."""
    lines, rows = VIEWS.get(item.kind, unknown)(item, lang, tz, now)
    if item.kind in CLIENT_KINDS:  # a client reads no bookkeeping of ours
        return lines, rows
    return lines + late_line(item, lang, tz), rows
