"""What every staff handler is given for one update: `ctx: Ctx`.

Nearly every handler needs the same things: the update's unit of work, the acting
employee, their language and the company's time zone, the clock and the FSM context.
`bot/middlewares.py` (`ContextMiddleware`) builds one `Ctx` per update of a known
employee and puts it in the handler data as ``ctx`` (the separate keys ``uow``, ``actor``,
``lang``, ``tz``, ``clock`` and ``state`` stay there too, for filters, the error router and
the handlers of strangers). A handler then reads ``ctx.uow``, ``ctx.actor``… and hands
``ctx`` on to the ui helpers (handlers/ui/deal_card.py, task_card.py, screen.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from aiogram.fsm.context import FSMContext

from handlers.ui.i18n import t
from services.clock import Clock
from services.permissions import Actor
from storage.uow import UnitOfWork


@dataclass(slots=True)
class Ctx:
    """One update of a known employee (only staff handlers take it: the `Staff` filter)."""

    uow: UnitOfWork
    actor: Actor
    lang: str
    tz: tzinfo
    clock: Clock
    state: FSMContext

    def t(self, key: str, **params: Any) -> str:
        """The text `key` in the reader's language."""
        return t(key, self.lang, **params)

    @property
    def zone(self) -> str:
        """The time zone's name, as services take it."""
        return str(self.tz)
