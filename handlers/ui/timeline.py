"""Timeline entries as text (the deal card's last events, the history pages of deals and
leads) and the history screen's keyboard: filter buttons, older / newest, back."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, tzinfo
from html import escape
from typing import Any

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from handlers.ui import fmt
from handlers.ui.callbacks import TimelineCb, TimelineFilterCode, TimelineSubject
from handlers.ui.i18n import t
from handlers.ui.keyboards import button
from services.dto import TimelineEntry, TimelinePage, label
from services.sales.edit import DAY_FIELDS
from storage.enums import ActivityKind, TimelineFilter

ICONS = {
    ActivityKind.STAGE: "🧭",
    ActivityKind.TASK: "🗓",
    ActivityKind.TASK_DONE: "✅",
    ActivityKind.TASK_SNOOZED: "⏰",
    ActivityKind.NOTE: "📝",
    ActivityKind.CALL: "📞",
    ActivityKind.MEASUREMENT: "📐",
    ActivityKind.FILE: "📎",
    ActivityKind.PAYMENT: "💳",
    ActivityKind.PLAN: "🧾",
    ActivityKind.REASSIGNED: "👥",
    ActivityKind.EDITED: "✏️",
    ActivityKind.INTAKE: "📥",
    ActivityKind.MESSAGE_IN: "💬",
    ActivityKind.MESSAGE_OUT: "↪️",
    ActivityKind.MESSAGE_EDITED: "✏️",
    ActivityKind.MESSAGE_DELETED: "🗑",
    ActivityKind.SYSTEM: "⚙️",
    ActivityKind.CLIENT_OUT: "📲",
    ActivityKind.CLIENT_IN: "🙋",
}

FILTER_OF = {code: TimelineFilter[code.name] for code in TimelineFilterCode}
CODE_OF = {flt: code for code, flt in FILTER_OF.items()}


def _media(entry: TimelineEntry, lang: str) -> str:
    if not entry.media_type:
        return ""
    return t(f"timeline.media.{entry.media_type}", lang)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _moment(value: object) -> datetime | None:
    """An ISO moment from a row's payload; None if it is not one."""
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _dues(dues: object, lang: str, short: bool = False) -> str | None:
    """An installment plan's dues ({"date", "amount"} each) in the reader's language, dates
    in words; `short` (a card's line): how many, the total and the first and last dates.
    None if the row has no readable dues (then its text is drawn)."""
    if not isinstance(dues, list) or not dues:
        return None
    if not all(isinstance(d, dict) and _is_int(d.get("amount")) for d in dues):
        return None
    if short:
        return t(
            "timeline.plan_short",
            lang,
            parts=len(dues),
            total=fmt.money(sum(d["amount"] for d in dues), lang),
            first=fmt.day_words(dues[0].get("date"), lang),
            last=fmt.day_words(dues[-1].get("date"), lang),
        )
    return "; ".join(
        t(
            "timeline.plan_due",
            lang,
            date=fmt.day_words(d.get("date"), lang),
            amount=fmt.money(d["amount"], lang),
        )
        for d in dues
    )


def field_value(field: str, value: object, lang: str, tz: tzinfo) -> str:
    """A card field's value in the reader's language (HTML): money, a moment, or the text
    as typed (a need is cut; names, phones and addresses never are)."""
    if value is None or value == "":
        return fmt.NONE
    if field == "amount" and _is_int(value):
        return fmt.money(value, lang)
    if field in DAY_FIELDS:  # a calendar day, kept as its local midnight
        moment = _moment(value) if isinstance(value, str) else value
        if isinstance(moment, datetime):
            return fmt.day_words(moment.astimezone(tz).date(), lang)
    if field.endswith("_at"):
        return fmt.when(_moment(value) if isinstance(value, str) else value, tz, lang)  # type: ignore[arg-type]
    text = str(value)
    return escape(fmt.short(text, 80) if field == "need" else text)


def body(entry: TimelineEntry, lang: str, tz: tzinfo, width: int = 200) -> str:
    """What happened, without time and author (HTML)."""
    kind = entry.kind
    text = escape(fmt.short(entry.text, width)) if entry.text else ""
    p = entry.payload
    if kind == ActivityKind.STAGE:
        out = f"→ <b>{escape(entry.stage_label(lang))}</b>"
        reason = entry.reason_label(lang)
        if reason:
            out += f" · {escape(reason)}"
        return out + (f" · <i>{text}</i>" if text else "")
    if kind in (ActivityKind.TASK, ActivityKind.TASK_DONE, ActivityKind.TASK_SNOOZED):
        # A configured task's title in the reader's language when the row has it
        # ("title_en"); a typed one as it was typed.
        title = p.get(f"title_{lang}")
        text = escape(fmt.short(title, width)) if isinstance(title, str) and title else text
    if kind == ActivityKind.TASK:
        what = t(f"tasks.kind.{entry.media_type or 'custom'}", lang)
        return t("timeline.task", lang, kind=what, title=text)
    if kind == ActivityKind.TASK_DONE:
        return t("timeline.task_done", lang, title=text)
    if kind == ActivityKind.TASK_SNOOZED:
        when = fmt.when(_moment(p.get("until")), tz, lang)
        return t("timeline.task_snoozed", lang, title=text, when=when)
    if kind == ActivityKind.MEASUREMENT:
        files = int(p.get("files") or 0)
        head = t("timeline.measurement", lang, files=files)
        return f"{head}: {text}" if text else head
    if kind == ActivityKind.FILE:
        caption = escape(fmt.short(entry.caption, width)) if entry.caption else ""
        if p.get("job"):  # an installation's photo before / after, the client's signature
            caption = t(f"timeline.job.{p['job']}", lang)
        return _media(entry, lang) + (f": {caption}" if caption else "")
    if kind == ActivityKind.REASSIGNED:
        return t(
            "timeline.reassigned",
            lang,
            old=escape(str(p.get("from") or "—")),
            new=escape(str(p.get("to") or text)),
        )
    if kind == ActivityKind.EDITED:
        field = str(p.get("field") or "")
        return t(
            "timeline.edited",
            lang,
            field=t(f"edit.field.{field}", lang),
            old=field_value(field, p.get("old"), lang, tz),
            new=field_value(field, p.get("new"), lang, tz),
        )
    if kind == ActivityKind.INTAKE:
        source = t(f"source.{p.get('source') or 'manual'}", lang)
        head = t("timeline.intake", lang, source=source)
        if p.get("file"):
            head += f" ({escape(str(p['file']))})"
        return f"{head}: {text}" if text else head
    if kind == ActivityKind.PAYMENT:
        amount = p.get("amount")
        if _is_int(amount):  # the facts (rows that kept text from before: the text)
            paid_on = fmt.day_words(p.get("paid_on"), lang)
            return t("timeline.payment_of", lang, amount=fmt.money(amount, lang), date=paid_on)
        return t("timeline.payment", lang, text=text)
    if kind == ActivityKind.PLAN:
        dues = _dues(p.get("dues"), lang, short=width < 200)  # a card's line is short
        plan = escape(fmt.short(dues, width)) if dues is not None else text
        return t("timeline.plan", lang, text=plan)
    installed, left = p.get("installed"), p.get("left")
    if kind == ActivityKind.SYSTEM and isinstance(installed, list):
        left_n = len(left) if isinstance(left, list) else 0
        return t("timeline.installed", lang, done=len(installed), left=left_n)
    event = p.get("client")
    if kind == ActivityKind.SYSTEM and isinstance(event, str):  # the client's side (issue 25)
        return t(f"timeline.client.{event}", lang, name=escape(str(p.get("name") or "")))
    if kind == ActivityKind.MESSAGE_DELETED:
        return t("timeline.msg_deleted", lang)
    if kind in (ActivityKind.CLIENT_OUT, ActivityKind.CLIENT_IN):
        return _client(kind, p, text, lang, tz)
    if kind in (ActivityKind.MESSAGE_IN, ActivityKind.MESSAGE_OUT, ActivityKind.MESSAGE_EDITED):
        media = _media(entry, lang)
        caption = escape(fmt.short(entry.caption, width)) if entry.caption else ""
        phone = p.get("phone")  # a contact the client shared: its number, not just [contact]
        shared = f"📞 {escape(fmt.phone(phone))}" if isinstance(phone, str) and phone else ""
        parts = [x for x in (f"[{media}]" if media else "", text or caption, shared) if x]
        head = t(f"timeline.{kind}", lang)
        return f"{head}: {' '.join(parts)}" if parts else head
    return text


def _client(kind: str, p: Mapping[str, Any], text: str, lang: str, tz: tzinfo) -> str:
    """What the bot sent to the client's own Telegram, or what the client answered there
    (issue 25): the facts of the row in the reader's language, the client's words as typed."""
    what = str(p.get("kind") if kind == ActivityKind.CLIENT_OUT else p.get("answer") or "")
    stage = p.get("stage")
    stage_en = p.get("stage_en")
    amount = p.get("amount")
    stars = p.get("stars")
    stars_n = stars if isinstance(stars, int) and not isinstance(stars, bool) else 0
    head = t(
        f"timeline.{kind}.{what}",
        lang,
        stage=escape(
            label(lang, str(stage or ""), stage_en if isinstance(stage_en, str) else None)
        ),
        who=escape(str(p.get("who") or "")),
        n=p.get("n") or "",
        amount=fmt.money(amount, lang) if _is_int(amount) else fmt.NONE,
        date=fmt.day_words(p.get("due_date") if isinstance(p.get("due_date"), str) else None, lang),
        when=fmt.when(_moment(p.get("when")), tz, lang),
        stars="⭐" * max(0, min(stars_n, 5)),
    )
    return f"{head}: {text}" if text else head


def line(entry: TimelineEntry, lang: str, tz: tzinfo, width: int = 200) -> str:
    """One event: time, icon, author and what happened."""
    known = entry.kind in ActivityKind._value2member_map_
    icon = ICONS.get(ActivityKind(entry.kind), "•") if known else "•"
    who = f"{escape(entry.actor)}: " if entry.actor else ""
    if entry.kind in (ActivityKind.MESSAGE_IN, ActivityKind.MESSAGE_EDITED):
        who = ""  # the client wrote it; the text says so
    return f"<i>{fmt.when(entry.at, tz, lang)}</i> {icon} {who}{body(entry, lang, tz, width)}"


def page_text(page: TimelinePage, lang: str, tz: tzinfo) -> str:
    flt = TimelineFilter(page.filter)
    head = t("timeline.title", lang, title=escape(page.title), filter=t(f"timeline.f.{flt}", lang))
    if not page.items:
        return head + "\n\n" + t("timeline.empty", lang)
    return "\n".join([head, ""] + [line(e, lang, tz) for e in page.items])


def page_keyboard(
    page: TimelinePage,
    subject: TimelineSubject,
    subject_id: int,
    lang: str,
    back: list[InlineKeyboardButton],
    filters: tuple[TimelineFilter, ...] = tuple(TimelineFilter),
) -> InlineKeyboardMarkup:
    current = CODE_OF[TimelineFilter(page.filter)]
    kb = InlineKeyboardBuilder()
    for flt in filters:
        code = CODE_OF[flt]
        mark = "• " if code == current else ""
        kb.add(
            button(
                mark + t(f"timeline.f.{flt}", lang),
                TimelineCb(subject=subject, subject_id=subject_id, f=code),
            )
        )
    kb.adjust(4)
    nav = []
    if not page.first:
        nav.append(
            button(
                t("timeline.newest", lang),
                TimelineCb(subject=subject, subject_id=subject_id, f=current),
            )
        )
    if page.next is not None:
        src, rid = page.next
        nav.append(
            button(
                t("timeline.older", lang),
                TimelineCb(subject=subject, subject_id=subject_id, f=current, src=src, rid=rid),
            )
        )
    if nav:
        kb.row(*nav)
    kb.row(*back)
    return kb.as_markup()
