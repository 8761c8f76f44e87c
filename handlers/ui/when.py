"""A typed date, said back before it is used (issue 20).

What a person types for a date ("friday morning", "next friday") is read by
`services.dates.read_when`. A day without a time asks "what time?" (the day is kept in the
FSM data as ``day``, and the answer is read against it); a moment is said back in words
("Fri, December 11, 10:00 AM") with ✅ / ✏️ buttons, and kept in the FSM data as ``value`` until
the ✅ tap takes it (`confirmed`). Used by the card edits and the stage moves' dates.

A typed date whose step needs nothing more than "the moment, then go on" (the next
contact, a deferral, a manual task's due time) says its step here with `use(step, ...)`:
the areas' ✅ / ✏️ buttons are then one `WhenCb`, and `tapped` (registered once, by
handlers/edit) runs what the step does with the moment (`USES`), or asks again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.state import State
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer

from handlers.ui import fmt, screen
from handlers.ui.callbacks import WhenCb
from handlers.ui.context import Ctx
from handlers.ui.error_text import error_text
from handlers.ui.keyboards import button
from services import dates
from services.errors import ValidationError


def _day(data: dict[str, Any]) -> date | None:
    raw = data.get("day")
    return date.fromisoformat(raw) if isinstance(raw, str) else None


async def typed(
    message: Message,
    ctx: Ctx,
    field_label: str,
    ok: CallbackData,
    change: CallbackData,
    ask: str | None = None,
) -> datetime | None:
    """Read the date in `message`: say it back with `ok` / `change` buttons (the moment
    kept), ask for the time when only a day was given, or say what was wrong (and `ask`
    again, when given). Returns the moment said back (None when something was asked
    instead). Nothing is saved."""
    data = await ctx.state.get_data()
    try:
        at = dates.read_when(message.text or "", ctx.clock, ctx.zone, day=_day(data))
    except dates.TimeMissing as exc:
        await ctx.state.update_data(day=exc.day.isoformat(), value=None)
        year = ctx.clock.now().astimezone(ctx.tz).year
        await message.answer(ctx.t("edit.ask.time", day=fmt.said_day(exc.day, ctx.lang, year)))
        return None
    except ValidationError as exc:
        refused = error_text(exc, ctx.lang)
        await message.answer(screen.again(refused, ask) if ask else refused)
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


async def typed_day(
    message: Message, ctx: Ctx, field_label: str, ok: CallbackData, change: CallbackData
) -> date | None:
    """A calendar day typed for a day field (a deal's expected close): said back in words
    with `ok` / `change` (kept as its local midnight for `confirmed`), or what was wrong."""
    try:
        day = dates.parse_day(message.text or "", ctx.clock, ctx.zone)
    except ValidationError as exc:
        await message.answer(error_text(exc, ctx.lang))
        return None
    at = dates.local_day_bounds(day, ctx.zone)[0]
    await ctx.state.update_data(value=at.isoformat(), day=None)
    year = ctx.clock.now().astimezone(ctx.tz).year
    markup = InlineKeyboardMarkup(
        inline_keyboard=[
            [button(ctx.t("edit.btn.ok"), ok), button(ctx.t("edit.btn.change"), change)]
        ]
    )
    said_day = fmt.said_day(day, ctx.lang, year)
    await message.answer(
        ctx.t("edit.confirm", field=field_label, when=said_day), reply_markup=markup
    )
    return day


async def confirmed(ctx: Ctx) -> datetime:
    """The moment said back and now confirmed; refused when none waits (a stale button)."""
    value = (await ctx.state.get_data()).get("value")
    if not isinstance(value, str):
        raise ValidationError("when", "expired")
    return datetime.fromisoformat(value)


def said(ctx: Ctx, at: datetime) -> str:
    return fmt.said(at, ctx.tz, ctx.lang, ctx.clock.now())


# --- steps that only need the moment ------------------------------------------------------

Then = Callable[[Message, Ctx, dict[str, Any], datetime], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Use:
    """What a step's confirmed date is for: the step's question (a key, asked again on
    ✏️), the field's name (a key, in the saying back) and what is done with the moment
    (given the message to answer under, the FSM data and the moment)."""

    prompt: str
    label: str
    then: Then


USES: dict[str | None, Use] = {}
OK, CHANGE = WhenCb(ok=1), WhenCb(ok=0)


def use(step: State, prompt: str, label: str, then: Then) -> None:
    """Say what `step`'s typed date is for (an area's router module, at import)."""
    USES[step.state] = Use(prompt, label, then)


async def typed_for(message: Message, ctx: Ctx) -> None:
    """A date typed at a step of `USES`: said back with the ✅ / ✏️ `WhenCb` buttons."""
    found = USES[await ctx.state.get_state()]
    await typed(message, ctx, ctx.t(found.label), OK, CHANGE, ctx.t(found.prompt))


async def tapped(
    query: CallbackQuery, callback_data: WhenCb, ctx: Ctx, callback_answer: CallbackAnswer
) -> None:
    """✅: the step goes on with the moment (a toast says it); ✏️: its question again."""
    found = USES.get(await ctx.state.get_state())
    msg = screen.message_of(query)
    if found is None or msg is None:
        raise ValidationError("when", "expired")
    if not callback_data.ok:
        await ctx.state.update_data(value=None, day=None)
        await msg.answer(ctx.t(found.prompt))
        return
    at = await confirmed(ctx)
    data = await ctx.state.get_data()
    await found.then(msg, ctx, data, at)
    done = ctx.t("edit.confirmed", field=ctx.t(found.label), when=said(ctx, at))
    callback_answer.text = done
    await screen.edit(query, done)
