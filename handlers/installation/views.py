"""The installation job card (DTO services.work.installation.JobCard -> text + keyboard):
the installer's, the head's crew choice and the head's quality check. Phone-sized lines;
everything a person typed is escaped; the only money shown is what the installer collects."""

from __future__ import annotations

from datetime import tzinfo
from html import escape

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, WebAppInfo

from handlers.ui.callbacks import JobAction, JobCb
from handlers.ui.fmt import money, when
from handlers.ui.i18n import t
from handlers.ui.keyboards import button
from handlers.ui.task_card import OPEN, detail_lines
from services.dto import label
from services.work.installation import PHASES, JobCard
from storage.enums import TaskKind, TaskStatus


def job_text(card: JobCard, lang: str, tz: tzinfo, notice: str | None = None) -> str:
    lines: list[str] = []
    if notice:
        lines += [escape(notice), ""]
    lines.append(t(f"job.header.{card.kind}", lang))
    lines.append(f"<b>{escape(card.title)}</b> · #{card.task_id}")
    address = None
    if card.address:
        address = escape(card.address)
        if card.map_url:
            address = f'<a href="{escape(card.map_url)}">{address}</a>'
    lines += detail_lines(
        lang,
        when=when(card.due_at, tz, lang) if card.due_at else None,
        address=address,
        client=card.client_name,
        phone=card.phone,
        when_key="job.when",
    )
    if card.items:
        lines.append(t("job.items", lang))
        lines += [f"• {escape(item)}" for item in card.items]
    if card.kind == TaskKind.INSTALL:
        if card.checklist:
            lines.append(t("job.checklist", lang))
            lines += [
                ("✅ " if c.done else "⬜ ") + escape(label(lang, c.name, c.name_en))
                for c in card.checklist
            ]
        for phase in PHASES:
            if card.photos_needed[phase] or card.photos[phase]:
                lines.append(
                    t(
                        f"job.photos.{phase}",
                        lang,
                        got=card.photos[phase],
                        needed=card.photos_needed[phase],
                    )
                )
        if card.to_collect:
            lines.append(t("job.collect", lang, amount=money(card.to_collect, lang)))
    lines.append(t("tasks.card.status", lang, status=t(f"tasks.status.{card.status}", lang)))
    if card.kind == TaskKind.ASSIGN_CREW and card.status in OPEN:
        lines += ["", t("job.crew.choose" if card.crew else "job.crew.nobody", lang)]
    return "\n".join(lines)


def _cb(card: JobCard, action: JobAction, arg: int = 0) -> JobCb:
    return JobCb(action=action, task_id=card.task_id, arg=arg)


def job_keyboard(card: JobCard, lang: str) -> InlineKeyboardMarkup | None:
    if card.status not in OPEN:
        return None
    rows: list[list[InlineKeyboardButton]] = []
    if card.kind == TaskKind.ASSIGN_CREW:
        rows = [
            [
                button(
                    t("job.crew.pick", lang, name=c.name, load=c.load),
                    _cb(card, JobAction.CREW, c.id),
                )
            ]
            for c in card.crew
        ]
    elif card.kind == TaskKind.QUALITY_CHECK:
        rows = [
            [
                button(t("job.btn.accepted", lang), _cb(card, JobAction.CHECK, 1)),
                button(t("job.btn.claim", lang), _cb(card, JobAction.CHECK, 0)),
            ]
        ]
    else:
        steps = []
        if card.status == TaskStatus.OPEN:
            steps.append(button(t("tasks.btn.accept", lang), _cb(card, JobAction.ACCEPT)))
        if card.status != TaskStatus.IN_PROGRESS:
            steps.append(button(t("tasks.btn.on_my_way", lang), _cb(card, JobAction.ON_MY_WAY)))
        if steps:
            rows.append(steps)
        ticks = [
            button(
                ("✅ " if c.done else "⬜ ") + label(lang, c.name, c.name_en),
                _cb(card, JobAction.TICK, i),
            )
            for i, c in enumerate(card.checklist)
        ]
        rows += [ticks[i : i + 2] for i in range(0, len(ticks), 2)]
        rows.append(
            [
                button(t(f"job.btn.photos_{phase}", lang), _cb(card, JobAction.PHOTOS, i))
                for i, phase in enumerate(PHASES)
            ]
        )
        done = [button(t("job.btn.done", lang), _cb(card, JobAction.DONE))]
        if len(card.items) > 1:
            done.append(button(t("job.btn.partial", lang), _cb(card, JobAction.PARTIAL)))
        rows.append(done)
        if card.map_url:
            rows.append([InlineKeyboardButton(text=t("tasks.btn.map", lang), url=card.map_url)])
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


def partial_keyboard(card: JobCard, left: set[int], lang: str) -> InlineKeyboardMarkup:
    """Which items are left for another day (toggles), then "the rest tomorrow"."""
    rows = [
        [button(("⏭ " if i in left else "✅ ") + item, _cb(card, JobAction.LEAVE, i))]
        for i, item in enumerate(card.items)
    ]
    rows.append([button(t("job.btn.reschedule", lang), _cb(card, JobAction.RESCHEDULE))])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def sign_keyboard(card: JobCard, lang: str, web_app_url: str | None) -> InlineKeyboardMarkup:
    """The client signs: drawn on the screen in the Mini App (when there is one,
    static/sign.html), or a picture of the signed paper sent in the chat."""
    rows = [[button(t("job.btn.sign", lang), _cb(card, JobAction.SIGN))]]
    if web_app_url:
        url = f"{web_app_url.split('?')[0].rstrip('/')}/static/sign.html?task={card.task_id}"
        draw = InlineKeyboardButton(text=t("job.btn.sign_draw", lang), web_app=WebAppInfo(url=url))
        rows.insert(0, [draw])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def back_keyboard(task_id: int, lang: str) -> InlineKeyboardMarkup:
    """Under the photo prompt and each photo: back to the job card."""
    cb = JobCb(action=JobAction.OPEN, task_id=task_id)
    return InlineKeyboardMarkup(inline_keyboard=[[button(t("job.btn.back", lang), cb)]])
