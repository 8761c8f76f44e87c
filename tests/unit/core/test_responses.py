"""bot/responses.py: aiogram's parsed-response models are built once per process."""

from __future__ import annotations

import gc
import weakref

from aiogram.methods import Response, SendMessage
from aiogram.types import ChatMemberOwner

from tests.tg import RecordingSession, make_bot


def test_pydantic_alone_drops_an_unreferenced_response_model() -> None:
    """Why the middleware exists: nothing but a weak cache holds a parametrized model."""
    model = weakref.ref(Response[list[ChatMemberOwner]])  # a parametrization nobody else uses
    gc.collect()
    assert model() is None


async def test_a_called_methods_response_model_survives_collection() -> None:
    bot = make_bot(RecordingSession())  # installs the middleware, as bot.app.make_bot does
    await bot(SendMessage(chat_id=1, text="hi"))
    # __returning__ is the class aiogram parametrizes with at run time, not a static type.
    model = weakref.ref(Response[SendMessage.__returning__])  # type: ignore[valid-type]
    gc.collect()
    assert model() is not None
    await bot(SendMessage(chat_id=1, text="again"))
    assert Response[SendMessage.__returning__] is model()  # type: ignore[valid-type]
    await bot.session.close()
