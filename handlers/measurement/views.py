"""Keyboards of the measurement chain beyond the task card (handlers/ui/task_card.py)."""

from __future__ import annotations

from aiogram.types import InlineKeyboardMarkup

from handlers.ui.callbacks import TaskAction, TaskCb
from handlers.ui.i18n import t
from handlers.ui.keyboards import button


def finish_button(task_id: int, lang: str) -> InlineKeyboardMarkup:
    """Under the upload prompt and each file received: "Finish" (the upload ends)."""
    cb = TaskCb(action=TaskAction.UPLOAD_END, task_id=task_id)
    return InlineKeyboardMarkup(inline_keyboard=[[button(t("tasks.btn.upload_end", lang), cb)]])
