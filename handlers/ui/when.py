"""A typed date, said back before it is used (issue 20).

What a person types for a date ("friday morning", "next friday") is read by
`services.dates.read_when`. A day without a time asks "what time?" (the day is kept in the
FSM data as ``day``, and the answer is read against it); a moment is said back in words
("Fri, December 11, 10:00 AM") with ✅ / ✏️ buttons, and kept in the FSM data as ``value`` until
the ✅ tap takes it (`confirmed`). Used by the card edits and the stage moves' dates.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup, Message

from handlers.ui import fmt
from handlers.ui.context import Ctx
from handlers.ui.error_text import error_text
from handlers.ui.keyboards import button
from services import dates
from services.errors import ValidationError


def _day(data: dict[str, Any]) -> date | None:
    raw = data.get("day")
    return date.fromisoformat(raw) if isinstance(raw, str) else None


async def typed(
    message: Message, ctx: Ctx, field_label: str, ok: CallbackData, change: CallbackData
) -> datetime | None:
    """Read the date in `message`: say it back with `ok` / `change` buttons (the moment
    kept), ask for the time when only a day was given, or say what was wrong. Returns the
    moment said back (None when something was asked instead). Nothing is saved."""
    data = await ctx.state.get_data()
    try:
        at = dates.read_when(message.text or "", ctx.clock, ctx.zone, day=_day(data))
    except dates.TimeMissing as exc:
        await ctx.state.update_data(day=exc.day.isoformat(), value=None)
        year = ctx.clock.now().astimezone(ctx.tz).year
        await message.answer(ctx.t("edit.ask.time", day=fmt.said_day(exc.day, ctx.lang, year)))
        return None
    except ValidationError as exc:
        await message.answer(error_text(exc, ctx.lang))
        return None
    await ctx.state.update_data(value=at.isoformat(), day=None)
    said = fmt.said(at, ctx.tz, ctx.lang, ctx.clock.now())
    markup = InlineKeyboardMarkup(
        inline_keyboard=[
            [button(ctx.t("edit.btn.ok"), ok), button(ctx.t("edit.btn.change"), change)]
        ]
    )
    await message.answer(ctx.t("edit.confirm", field=field_label, when=said), reply_markup=markup)
    return at


async def confirmed(ctx: Ctx) -> datetime:
    """The moment said back and now confirmed; refused when none waits (a stale button)."""
    value = (await ctx.state.get_data()).get("value")
    if not isinstance(value, str):
        raise ValidationError("when", "expired")
    return datetime.fromisoformat(value)


def said(ctx: Ctx, at: datetime) -> str:
    return fmt.said(at, ctx.tz, ctx.lang, ctx.clock.now())
