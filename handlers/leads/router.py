"""New leads (a wizard) and the lead card (qualification, disqualification, conversion).

The wizard is an FSM: source → person or legal entity → company (legal entities only) →
name (a company's contact person) → phone (or email; a shared contact fills it) → need →
amount → confirm. Person or company is asked before the names, so a company's name is never
typed as the client's. Every step validates with the same validators the service uses and
re-asks on bad input; each has Back (the previous step, its value kept) and Cancel (the
phone step too: inline buttons, like the others). Everything typed lives in
the FSM data (so it survives a restart when the storage does, e.g. Redis); nothing is saved
until Confirm, when create_lead validates it all again. A contact shared outside the
wizard starts it with name and phone filled.

The card: read the callback → one service call → render; errors go to the error router.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import tzinfo
from typing import Any

from aiogram import F, Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, ReplyKeyboardRemove
from aiogram.types import Contact as TgContact
from aiogram.utils.callback_answer import CallbackAnswer

from handlers.leads import views as view
from handlers.ui import cards, deal_card, lead_card, screen
from handlers.ui import keyboards as kb
from handlers.ui.callbacks import LeadAction, LeadCb, MenuAction, MenuCb, WizardAction, WizardCb
from handlers.ui.context import Ctx
from handlers.ui.error_text import error_text
from handlers.ui.filters import staff_router
from services import validation
from services.common import check_version
from services.dto import Duplicate
from services.errors import CommentRequired, DuplicateLead, ValidationError
from services.permissions import Action, Actor, require
from services.sales import deals, leads
from services.sales.leads import LeadInput
from storage.enums import ActivityKind
from storage.uow import UnitOfWork


class LeadWizard(StatesGroup):
    source = State()
    legal = State()
    company = State()
    name = State()
    phone = State()
    need = State()
    amount = State()
    confirm = State()
    duplicate = State()  # an existing lead/deal has this phone or email


class LeadCardInput(StatesGroup):
    loss_comment = State()  # a loss reason that needs a comment ("Other")
    note = State()  # a note typed for the lead
    call = State()  # what was said on a call


# The typed timeline entries of the lead card: the step, its question, the kind logged.
NOTES: dict[LeadAction, tuple[State, str, ActivityKind]] = {
    LeadAction.NOTE: (LeadCardInput.note, "deal.ask.note", ActivityKind.NOTE),
    LeadAction.CALL: (LeadCardInput.call, "deal.ask.call", ActivityKind.CALL),
}
NOTE_AT = {step.state: (prompt, kind) for step, prompt, kind in NOTES.values()}


STEPS = ("source", "legal", "company", "name", "phone", "need", "amount", "confirm")
TEXT_STEPS = ("name", "phone", "company", "need", "amount")
# The step that asks for a field a ValidationError names.
FIELD_STEP = {
    "source": "source",
    "name": "name",
    "phone": "phone",
    "email": "phone",
    "company_name": "company",
    "need": "need",
    "amount": "amount",
}


def _not_command(message: Message) -> bool:
    """Commands (/menu, /tasks…) typed mid-wizard go to their own handlers."""
    return not (message.text or "").startswith("/")


def _next(step: str, data: dict[str, Any]) -> str:
    """The step after `step`: company only for legal entities; steps a shared contact
    filled (`auto`) are passed over."""
    i = STEPS.index(step) + 1
    auto = data.get("auto") or []
    while STEPS[i] in auto or (STEPS[i] == "company" and not data.get("legal")):
        i += 1
    return STEPS[i]


def _prev(step: str, data: dict[str, Any]) -> str | None:
    i = STEPS.index(step) - 1
    while i >= 0 and STEPS[i] == "company" and not data.get("legal"):
        i -= 1
    return STEPS[i] if i >= 0 else None


async def _step(ctx: Ctx) -> str | None:
    raw = await ctx.state.get_state()
    prefix = LeadWizard.__full_group_name__ + ":"
    return raw[len(prefix) :] if raw and raw.startswith(prefix) else None


async def _ask(
    ctx: Ctx,
    data: dict[str, Any],
    step: str,
    target: Message,
    *,
    edit: bool = False,
    error: str | None = None,
) -> None:
    """Ask `step`: edit the tapped prompt in place when possible, else send a new one.

    A reply keyboard left by an earlier version's phone step (kept in a persistent FSM
    storage) is taken away, with a line saying what the step holds."""
    lang, state = ctx.lang, ctx.state
    text, markup = view.prompt(step, data, lang)
    if error:
        text = f"{error}\n\n{text}"
    if data.get("kb") == "reply":
        await target.answer(view.contact_line(data, lang), reply_markup=ReplyKeyboardRemove())
        edit = False
    data["kb"] = "inline"
    await state.set_state(getattr(LeadWizard, step))
    await state.set_data(data)
    if edit and isinstance(markup, InlineKeyboardMarkup):
        await target.edit_text(text, reply_markup=markup)
    else:
        await target.answer(text, reply_markup=markup)


async def _reask(ctx: Ctx, target: Message, error: str) -> None:
    step = await _step(ctx)
    if step is not None:
        await _ask(ctx, await ctx.state.get_data(), step, target, error=error)


def _dups(found: list[Duplicate], lang: str) -> list[list[Any]]:
    """Kept in the FSM data (plain JSON), with the stage named in the reader's language."""
    return [[d.kind, d.id, d.name, d.stage_label(lang)] for d in found]


async def _after_contact(
    ctx: Ctx,
    data: dict[str, Any],
    target: Message,
    *,
    back_to: str | None,
    then: str,
    edit: bool = False,
) -> None:
    """A new phone/email: offer the client's open leads and deals, else go on to `then`."""
    data["force"] = False
    found = await leads.find_duplicates(ctx.uow, ctx.actor, data.get("phone"), data.get("email"))
    if found:
        data.update(dups=_dups(found, ctx.lang), dup_from=back_to, dup_next=then)
        await _ask(ctx, data, "duplicate", target, edit=edit)
    else:
        await _ask(ctx, data, then, target, edit=edit)


def _contact_phone(contact: TgContact) -> str | None:
    """Telegram gives international digits without '+' (79161234567); an address-book
    card may hold anything. None when it is not a phone number."""
    raw = (contact.phone_number or "").strip()
    for candidate in (raw, "+" + raw.lstrip("+")):
        try:
            return validation.phone(candidate)
        except ValidationError:
            continue
    return None


def _contact_name(contact: TgContact) -> str | None:
    full = " ".join(x for x in (contact.first_name, contact.last_name) if x)
    try:
        return validation.name(full)
    except ValidationError:
        return None


# --- starting ------------------------------------------------------------------------------


async def _start(target: Message, ctx: Ctx) -> None:
    require(ctx.actor, Action.LEAD_CREATE)  # a measurer is told now, not after seven steps
    if (await ctx.state.get_data()).get("kb") == "reply":  # /lead again at the phone step
        await target.answer(ctx.t("lead.wizard.closed"), reply_markup=ReplyKeyboardRemove())
    await ctx.state.clear()
    await _ask(ctx, {}, "source", target)


async def lead_command(message: Message, ctx: Ctx) -> None:
    """/lead starts the wizard; /lead 12 opens lead 12."""
    arg = (message.text or "").split(maxsplit=1)[1:]
    if arg and arg[0].lstrip("#").isdigit():
        card = await leads.get_lead(ctx.uow, ctx.actor, int(arg[0].lstrip("#")))
        await lead_card.send(message, ctx, card)
        return
    await _start(message, ctx)


async def new_lead(query: CallbackQuery, ctx: Ctx) -> None:
    if isinstance(query.message, Message):
        await _start(query.message, ctx)


async def contact_shared(message: Message, ctx: Ctx) -> None:
    """A contact sent to the bot: a new lead with name and phone filled."""
    assert message.contact is not None
    require(ctx.actor, Action.LEAD_CREATE)
    await ctx.state.clear()
    data: dict[str, Any] = {"name": _contact_name(message.contact)}
    data["phone"] = _contact_phone(message.contact)
    data["auto"] = [step for step in ("name", "phone") if data.get(step)]
    if data["phone"] is None:
        await _ask(ctx, data, "source", message)
        return
    await _after_contact(ctx, data, message, back_to=None, then="source")


# --- the steps -----------------------------------------------------------------------------


async def source_chosen(query: CallbackQuery, callback_data: WizardCb, ctx: Ctx) -> None:
    if not 0 <= callback_data.value < len(view.SOURCES):
        raise ValidationError("source", "unknown")
    data = await ctx.state.get_data()
    data["source"] = str(view.SOURCES[callback_data.value])
    if isinstance(query.message, Message):
        await _ask(ctx, data, _next("source", data), query.message, edit=True)


def _amount(text: str) -> str:
    validation.amount(text)
    return text  # as typed: create_lead parses it again


# A step typed as text (the phone has its own handler): the value kept, from the text.
TYPED_STEPS: dict[str, Callable[[str], Any]] = {
    "name": validation.name,
    "company": lambda text: validation.name(text, "company_name", max_len=300),
    "need": lambda text: validation.optional_text(text, "need"),
    "amount": lambda text: _amount(text.strip()),
}


async def step_typed(message: Message, ctx: Ctx, raw_state: str | None = None) -> None:
    step = (raw_state or "").rpartition(":")[2]
    try:
        value = TYPED_STEPS[step](message.text or "")
    except ValidationError as exc:
        await _reask(ctx, message, error_text(exc, ctx.lang))
        return
    data = await ctx.state.get_data()
    data[step] = value
    await _ask(ctx, data, _next(step, data), message)


async def contact_in_wizard(message: Message, ctx: Ctx) -> None:
    """A contact at the name or phone step: its phone (and its name, at the name step)."""
    assert message.contact is not None
    step = await _step(ctx) or "phone"
    data = await ctx.state.get_data()
    phone = _contact_phone(message.contact)
    if phone is None:
        await _reask(ctx, message, error_text(ValidationError("phone"), ctx.lang))
        return
    data.update(phone=phone, email=None)
    name = _contact_name(message.contact)
    if name and (step == "name" or not data.get("name")):
        data["name"] = name
    if data.get("name"):
        then = _next("phone", data)
    else:  # a contact without a usable name: ask for it, then go past the phone
        data["auto"] = ["phone"]
        then = "name"
    await _after_contact(ctx, data, message, back_to=step, then=then)


async def phone_typed(message: Message, ctx: Ctx) -> None:
    """A phone number or an email. (Back and Cancel typed as text: the reply keyboard of an
    earlier version's phone step, still shown in a chat mid-wizard.)"""
    text = (message.text or "").strip()
    data = await ctx.state.get_data()
    if text == ctx.t("common.cancel"):
        await _cancel(message, ctx, edit=False)
        return
    if text == ctx.t("common.back"):
        await _back(message, ctx, edit=False)
        return
    try:
        if "@" in text:
            data.update(email=validation.email(text), phone=None)
        else:
            data.update(phone=validation.phone(text), email=None)
    except ValidationError as exc:
        await _reask(ctx, message, error_text(exc, ctx.lang))
        return
    await _after_contact(ctx, data, message, back_to="phone", then=_next("phone", data))


async def legal_chosen(query: CallbackQuery, callback_data: WizardCb, ctx: Ctx) -> None:
    data = await ctx.state.get_data()
    data["legal"] = bool(callback_data.value)
    if isinstance(query.message, Message):
        await _ask(ctx, data, _next("legal", data), query.message, edit=True)


async def step_skipped(query: CallbackQuery, ctx: Ctx) -> None:
    step = await _step(ctx)
    data = await ctx.state.get_data()
    if step is None or not isinstance(query.message, Message):
        return
    data[step] = None
    await _ask(ctx, data, _next(step, data), query.message, edit=True)


async def step_kept(query: CallbackQuery, ctx: Ctx) -> None:
    step = await _step(ctx)
    data = await ctx.state.get_data()
    if step is None or not isinstance(query.message, Message):
        return
    kept = view.contact_value(data) if step == "phone" else data.get(step)
    if not kept:  # nothing to keep: ask again
        await _ask(ctx, data, step, query.message, edit=True)
        return
    await _ask(ctx, data, _next(step, data), query.message, edit=True)


# --- back, cancel --------------------------------------------------------------------------


async def _back(target: Message, ctx: Ctx, *, edit: bool) -> None:
    step = await _step(ctx)
    data = await ctx.state.get_data()
    data["auto"] = []  # going back shows every step again, values kept
    prev = data.get("dup_from") if step == "duplicate" else _prev(step or "source", data)
    if prev is None:  # before the first step: the main menu (nothing was saved)
        await _leave(target, ctx, ctx.t("menu.title"), edit=edit)
        return
    await _ask(ctx, data, prev, target, edit=edit)


async def _cancel(target: Message, ctx: Ctx, *, edit: bool) -> None:
    await _leave(target, ctx, ctx.t("lead.wizard.cancelled"), edit=edit)


async def _leave(target: Message, ctx: Ctx, text: str, *, edit: bool) -> None:
    data = await ctx.state.get_data()
    await ctx.state.clear()
    menu = kb.main_menu(ctx.actor, ctx.lang)
    if data.get("kb") == "reply":  # the phone step's keyboard goes with a message of its own
        await target.answer(ctx.t("lead.wizard.closed"), reply_markup=ReplyKeyboardRemove())
        edit = False
    if edit:
        await target.edit_text(text, reply_markup=menu)
    else:
        await target.answer(text, reply_markup=menu)


async def back_tapped(query: CallbackQuery, ctx: Ctx) -> None:
    if isinstance(query.message, Message):
        await _back(query.message, ctx, edit=True)


async def cancel_tapped(query: CallbackQuery, ctx: Ctx) -> None:
    if isinstance(query.message, Message):
        await _cancel(query.message, ctx, edit=True)


# --- duplicates, confirm -------------------------------------------------------------------


def _lead_input(data: dict[str, Any]) -> LeadInput:
    legal = bool(data.get("legal"))
    return LeadInput(
        name=data.get("name") or "",
        source=data.get("source") or "manual",
        phone=data.get("phone"),
        email=data.get("email"),
        need=data.get("need"),
        is_legal_entity=legal,
        company_name=data.get("company") if legal else None,
        amount=data.get("amount"),
    )


async def _create(message: Message, data: dict[str, Any], ctx: Ctx) -> None:
    uow, actor, lang = ctx.uow, ctx.actor, ctx.lang
    try:
        card = await leads.create_lead(
            uow, actor, _lead_input(data), allow_duplicate=bool(data.get("force"))
        )
    except DuplicateLead:
        # An open lead with this phone appeared since the phone step: offer it now.
        found = await leads.find_duplicates(uow, actor, data.get("phone"), data.get("email"))
        if not found:
            raise
        data.update(dups=_dups(found, lang), dup_from="confirm", dup_next="create")
        await _ask(ctx, data, "duplicate", message, edit=True)
        return
    except ValidationError as exc:  # each step validated; a stale store may still be off
        step = FIELD_STEP.get(exc.field, "confirm")
        await _ask(ctx, data, step, message, error=error_text(exc, lang))
        return
    await ctx.state.clear()
    await message.edit_text(
        lead_card.card_text(card, lang, ctx.tz, ctx.t("lead.created")),
        reply_markup=lead_card.card_keyboard(card, lang),
    )


async def confirm(query: CallbackQuery, ctx: Ctx) -> None:
    if isinstance(query.message, Message):
        await _create(query.message, await ctx.state.get_data(), ctx)


async def force(query: CallbackQuery, ctx: Ctx) -> None:
    """Not the same client after all: go on (or create, when offered at Confirm)."""
    data = await ctx.state.get_data()
    data["force"] = True
    if not isinstance(query.message, Message):
        return
    then = data.get("dup_next") or "source"
    if then == "create":
        await _create(query.message, data, ctx)
        return
    await _ask(ctx, data, then, query.message, edit=True)


# The existing lead or deal a duplicate warning offers, drawn in place of the wizard.
Drawn = Callable[
    [UnitOfWork, Actor, int, str, tzinfo], Awaitable[tuple[str, InlineKeyboardMarkup | None]]
]
DUPLICATE_CARDS: dict[WizardAction, Drawn] = {
    WizardAction.OPEN_LEAD: lead_card.drawn,
    WizardAction.OPEN_DEAL: deal_card.drawn,
}


async def open_duplicate(query: CallbackQuery, callback_data: WizardCb, ctx: Ctx) -> None:
    """The existing lead or deal instead of a new one (the wizard ends, nothing saved)."""
    text, markup = await DUPLICATE_CARDS[callback_data.action](
        ctx.uow, ctx.actor, callback_data.value, ctx.lang, ctx.tz
    )
    if await _step(ctx) is not None:
        await ctx.state.clear()
    await screen.edit(query, text, markup)


async def unexpected_input(message: Message, ctx: Ctx) -> None:
    """A sticker at a text step, text where buttons are expected…: ask the step again."""
    step = await _step(ctx)
    hint = "lead.wizard.use_text" if step in TEXT_STEPS else "lead.wizard.use_buttons"
    await _reask(ctx, message, ctx.t(hint))


# --- the lead card -------------------------------------------------------------------------


async def open_lead(query: CallbackQuery, callback_data: LeadCb, ctx: Ctx) -> None:
    card = await leads.get_lead(ctx.uow, ctx.actor, callback_data.lead_id)
    if callback_data.v:  # "back" from a sub-menu of this card: edit in place
        await lead_card.show(query, ctx, card)
    elif isinstance(query.message, Message):
        await lead_card.send(query.message, ctx, card)


async def card_action(query: CallbackQuery, callback_data: LeadCb, ctx: Ctx) -> None:
    # a stale card: the error router shows the current one
    cb, uow, actor = callback_data, ctx.uow, ctx.actor
    if cb.action == LeadAction.TOGGLE:
        card = await leads.toggle_question(uow, actor, cb.lead_id, cb.arg, cb.v)
    elif cb.action == LeadAction.REASON:
        try:
            card = await leads.disqualify(uow, actor, cb.lead_id, cb.arg, None, cb.v)
        except CommentRequired:  # ask for it; the lead is disqualified when it is typed
            prompt = ctx.t("deal.lose.ask_comment")
            await screen.ask(query, ctx, LeadCardInput.loss_comment, prompt, data={"cb": cb.pack()})
            return
    else:  # DISQUALIFY: the reasons for leads, on the card
        card = await leads.get_lead(uow, actor, cb.lead_id)
        check_version("lead", card.version, cb.v or None)
        items = await deals.loss_reasons(uow, ctx.lang, "leads")
        pick = ctx.t("lead.disqualify.pick")
        await lead_card.show(query, ctx, card, (pick, view.reasons(card, items, ctx.lang)))
        return
    await lead_card.show(query, ctx, card)


async def loss_comment(message: Message, ctx: Ctx) -> None:
    """The comment a loss reason asked for: the lead is disqualified with it (an empty or bad
    one is asked again, nothing saved)."""
    data = await ctx.state.get_data()
    cb = LeadCb.unpack(data["cb"])
    try:
        card = await leads.disqualify(
            ctx.uow, ctx.actor, cb.lead_id, cb.arg, message.text or "", cb.v
        )
    except (ValidationError, CommentRequired) as exc:
        await screen.refused(message, ctx, exc, "deal.lose.ask_comment")
        return
    await ctx.state.clear()
    text = lead_card.card_text(card, ctx.lang, ctx.tz, ctx.t("deal.saved"))
    await screen.edit_or_send(
        message, data.get("card_msg"), text, lead_card.card_keyboard(card, ctx.lang)
    )


async def note_ask(query: CallbackQuery, callback_data: LeadCb, ctx: Ctx) -> None:
    """📞 / 📝 on the card: ask for the text (someone else's lead is refused at the tap)."""
    await leads.get_lead(ctx.uow, ctx.actor, callback_data.lead_id)
    step, prompt, _ = NOTES[callback_data.action]
    await screen.ask(query, ctx, step, ctx.t(prompt), data={"cb": callback_data.pack()})


async def note_typed(message: Message, ctx: Ctx, raw_state: str | None = None) -> None:
    """The note or the call's text: on the lead's timeline (a first touch); an empty or
    too long one is asked again, nothing saved."""
    prompt, kind = NOTE_AT[raw_state]
    data = await ctx.state.get_data()
    cb = LeadCb.unpack(data["cb"])
    try:
        card = await leads.add_note(ctx.uow, ctx.actor, cb.lead_id, message.text or "", kind)
    except ValidationError as exc:
        await screen.refused(message, ctx, exc, prompt)
        return
    await ctx.state.clear()
    text = lead_card.card_text(card, ctx.lang, ctx.tz, ctx.t("deal.saved"))
    await screen.edit_or_send(
        message, data.get("card_msg"), text, lead_card.card_keyboard(card, ctx.lang)
    )


async def convert(query: CallbackQuery, callback_data: LeadCb, ctx: Ctx) -> None:
    """Contact + deal in Sales; the card becomes the new deal's card (remembered as the
    deal's card in this chat: the Mini App redraws it). Unanswered required questions: the
    error router's alert (RuleViolation qualification_incomplete)."""
    deal_id = await leads.convert(ctx.uow, ctx.actor, callback_data.lead_id, callback_data.v)
    card = await deals.get_card(ctx.uow, ctx.actor, deal_id)
    if isinstance(query.message, Message):
        notice = ctx.t("lead.converted", id=callback_data.lead_id)
        await query.message.edit_text(
            deal_card.card_text(card, ctx.lang, ctx.tz, notice),
            reply_markup=deal_card.card_keyboard(card, ctx.lang),
        )
        if query.bot is not None:
            where = query.message
            await cards.remember(
                ctx.state.storage, query.bot.id, where.chat.id, card.id, where.message_id
            )


async def reassign(
    query: CallbackQuery, callback_data: LeadCb, ctx: Ctx, callback_answer: CallbackAnswer
) -> None:
    """A leader gives a late lead to a manager on duty (the escalation's buttons): the
    service checks the right; a toast says who has it now, the buttons go."""
    card, changed = await leads.reassign(
        ctx.uow, ctx.actor, callback_data.lead_id, callback_data.arg
    )
    key = "lead.reassigned" if changed else "lead.reassigned.same"
    callback_answer.text = ctx.t(key, name=card.manager_name or "")
    if isinstance(query.message, Message):
        opener = kb.button(
            ctx.t("lead.dup.open_lead", id=card.id), LeadCb(action=LeadAction.OPEN, lead_id=card.id)
        )
        await query.message.edit_reply_markup(
            reply_markup=InlineKeyboardMarkup(inline_keyboard=[[opener]])
        )


def setup() -> Router:
    """A fresh router for one Dispatcher (its handlers in dispatch order)."""
    router = staff_router("leads")
    router.message.register(lead_command, Command("lead"))
    router.callback_query.register(new_lead, MenuCb.filter(F.action == MenuAction.NEW_LEAD))
    router.message.register(contact_shared, StateFilter(None), F.contact)
    router.callback_query.register(
        source_chosen, LeadWizard.source, WizardCb.filter(F.action == WizardAction.SOURCE)
    )
    typed_steps = StateFilter(*(getattr(LeadWizard, step) for step in TYPED_STEPS))
    router.message.register(step_typed, typed_steps, F.text, _not_command)
    router.message.register(
        contact_in_wizard, StateFilter(LeadWizard.name, LeadWizard.phone), F.contact
    )
    router.message.register(phone_typed, LeadWizard.phone, F.text, _not_command)
    router.callback_query.register(
        legal_chosen, LeadWizard.legal, WizardCb.filter(F.action == WizardAction.LEGAL)
    )
    router.callback_query.register(
        step_skipped,
        StateFilter(LeadWizard.need, LeadWizard.amount),
        WizardCb.filter(F.action == WizardAction.SKIP),
    )
    router.callback_query.register(
        step_kept,
        StateFilter(
            LeadWizard.name,
            LeadWizard.phone,
            LeadWizard.company,
            LeadWizard.need,
            LeadWizard.amount,
        ),
        WizardCb.filter(F.action == WizardAction.KEEP),
    )
    router.callback_query.register(
        back_tapped, StateFilter(LeadWizard), WizardCb.filter(F.action == WizardAction.BACK)
    )
    router.callback_query.register(
        cancel_tapped, StateFilter(LeadWizard), WizardCb.filter(F.action == WizardAction.CANCEL)
    )
    router.callback_query.register(
        confirm, LeadWizard.confirm, WizardCb.filter(F.action == WizardAction.CONFIRM)
    )
    router.callback_query.register(
        force, LeadWizard.duplicate, WizardCb.filter(F.action == WizardAction.FORCE)
    )
    router.callback_query.register(
        open_duplicate, WizardCb.filter(F.action.in_(set(DUPLICATE_CARDS)))
    )
    router.message.register(unexpected_input, StateFilter(LeadWizard), _not_command)
    router.callback_query.register(open_lead, LeadCb.filter(F.action == LeadAction.OPEN))
    router.callback_query.register(
        card_action,
        LeadCb.filter(F.action.in_({LeadAction.TOGGLE, LeadAction.REASON, LeadAction.DISQUALIFY})),
    )
    router.callback_query.register(convert, LeadCb.filter(F.action == LeadAction.CONVERT))
    router.callback_query.register(reassign, LeadCb.filter(F.action == LeadAction.REASSIGN))
    router.message.register(loss_comment, LeadCardInput.loss_comment, F.text, _not_command)
    router.callback_query.register(note_ask, LeadCb.filter(F.action.in_(set(NOTES))))
    router.message.register(
        note_typed, StateFilter(LeadCardInput.note, LeadCardInput.call), F.text, _not_command
    )
    return router
