"""Driving the real dispatcher without Telegram.

`RecordingSession` is an aiogram BaseSession that records every Bot API call and answers
it the way Telegram would (responses go through aiogram's own `check_response`, so
results are real, bot-bound objects and queued errors raise aiogram's real exceptions:
429 -> TelegramRetryAfter, 403 -> TelegramForbiddenError, 5xx -> TelegramServerError).
`BotHarness` feeds `Update`s with `dp.feed_update` and returns what the bot did.
"""

from __future__ import annotations

import itertools
import json
from collections import deque
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.base import BaseSession
from aiogram.enums import ParseMode
from aiogram.filters.callback_data import CallbackData
from aiogram.methods import (
    AnswerCallbackQuery,
    EditMessageReplyMarkup,
    EditMessageText,
    GetFile,
    GetMe,
    SendAnimation,
    SendAudio,
    SendDocument,
    SendMediaGroup,
    SendMessage,
    SendPhoto,
    SendVideo,
    SendVoice,
    TelegramMethod,
)
from aiogram.types import (
    CallbackQuery,
    Chat,
    Contact,
    InlineKeyboardMarkup,
    Message,
    Update,
    User,
)

from bot.app import build_dispatcher
from bot.responses import keep_response_models
from bot.settings import Settings

BOT_ID = 4242
BOT_TOKEN = f"{BOT_ID}:TEST-token-for-recorded-sessions"


@dataclass
class QueuedError:
    method: type[TelegramMethod[Any]] | None  # None: any method
    status: int
    description: str
    parameters: dict[str, Any] | None = None


class RecordingSession(BaseSession):
    def __init__(self) -> None:
        super().__init__()
        self.requests: list[TelegramMethod[Any]] = []
        self.results: list[Any] = []
        self.errors: deque[QueuedError] = deque()
        self._ids = itertools.count(10_000)
        self.texts: dict[tuple[int, int], str] = {}  # (chat, message_id) -> current text
        self.files: dict[str, bytes] = {}  # file_id -> content served by GetFile + download

    def fail_next(
        self,
        method: type[TelegramMethod[Any]] | None,
        status: int,
        description: str = "error",
        **parameters: Any,
    ) -> None:
        self.errors.append(QueuedError(method, status, description, parameters or None))

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[Any],
        timeout: int | None = None,  # noqa: ASYNC109
    ) -> Any:
        self.requests.append(method)
        self.results.append(None)
        if self.errors and (self.errors[0].method in (None, type(method))):
            err = self.errors.popleft()
            body: dict[str, Any] = {
                "ok": False,
                "error_code": err.status,
                "description": err.description,
            }
            if err.parameters:
                body["parameters"] = err.parameters
            self.check_response(bot, method, err.status, json.dumps(body))
        result = self._result(method)
        response = self.check_response(bot, method, 200, json.dumps({"ok": True, "result": result}))
        self.results[-1] = response.result
        return response.result

    def _message(self, chat_id: Any, text: str | None = None, **extra: Any) -> dict[str, Any]:
        mid = next(self._ids)
        cid = int(chat_id)
        if text is not None:
            self.texts[(cid, mid)] = text
        return {
            "message_id": mid,
            "date": int(datetime.now(UTC).timestamp()),
            "chat": {"id": cid, "type": "private"},
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "Voronka"},
            "text": text,
            **extra,
        }

    def _result(self, method: TelegramMethod[Any]) -> Any:
        if isinstance(method, GetMe):
            return {
                "id": BOT_ID,
                "is_bot": True,
                "first_name": "Voronka",
                "username": "voronka_test_bot",
            }
        if isinstance(method, SendMessage):
            return self._message(method.chat_id, method.text)
        if isinstance(method, GetFile):
            content = self.files.get(method.file_id, b"")
            return {
                "file_id": method.file_id,
                "file_unique_id": method.file_id,
                "file_size": len(content),
                "file_path": f"documents/{method.file_id}",
            }
        if isinstance(method, SendDocument):  # a file the bot sent: Telegram gives it an id
            sent = self._message(method.chat_id, None, caption=method.caption)
            ident = f"sent-doc-{sent['message_id']}"
            return {**sent, "document": {"file_id": ident, "file_unique_id": ident}}
        if isinstance(method, (SendPhoto, SendVideo, SendVoice, SendAudio)):
            return self._message(method.chat_id, None, caption=method.caption)
        if isinstance(method, SendAnimation):
            return self._message(method.chat_id, None, caption=method.caption)
        if isinstance(method, SendMediaGroup):
            return [self._message(method.chat_id, None, caption=m.caption) for m in method.media]
        if isinstance(method, (EditMessageText, EditMessageReplyMarkup)):
            if method.chat_id is None or method.message_id is None:
                return True
            text = getattr(method, "text", None)
            if text is not None:
                self.texts[(int(method.chat_id), method.message_id)] = text
            return {
                "message_id": method.message_id,
                "date": int(datetime.now(UTC).timestamp()),
                "chat": {"id": int(method.chat_id), "type": "private"},
                "text": text,
            }
        return True

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,  # noqa: ASYNC109 (aiogram's interface)
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        yield self.files.get(url.rsplit("/", 1)[-1], b"")

    async def close(self) -> None:
        pass


def tg_user(
    user_id: int, first_name: str = "Anna", lang: str = "ru", username: str | None = None
) -> User:
    return User(
        id=user_id, is_bot=False, first_name=first_name, language_code=lang, username=username
    )


def text_of(method: SendMessage | EditMessageText) -> str:
    """A sent or edited message's text. aiogram types an edit's text optional (a rich
    message may replace it); the bot always edits with text."""
    assert method.text is not None, f"an edit without text: {method}"
    return method.text


@dataclass
class Sent:
    """What the bot did in answer to one update."""

    requests: list[TelegramMethod[Any]] = field(default_factory=list)
    results: list[Any] = field(default_factory=list)

    def of(self, kind: type[TelegramMethod[Any]]) -> list[Any]:
        return [r for r in self.requests if isinstance(r, kind)]

    @property
    def texts(self) -> list[str]:
        out = []
        for r in self.requests:
            if isinstance(r, (SendMessage, EditMessageText)):
                out.append(text_of(r))
        return out

    @property
    def last(self) -> SendMessage | EditMessageText:
        items = [r for r in self.requests if isinstance(r, (SendMessage, EditMessageText))]
        assert items, f"the bot sent no message (it did: {self.requests})"
        return items[-1]

    @property
    def text(self) -> str:
        """The text of the last message sent or edited."""
        return text_of(self.last)

    @property
    def message(self) -> Message:
        """The Message Telegram returned for the last text sent or edited."""
        for req, res in zip(reversed(self.requests), reversed(self.results), strict=True):
            if isinstance(req, (SendMessage, EditMessageText)) and isinstance(res, Message):
                return res
        raise AssertionError(f"no message in {self.requests}")

    @property
    def alert(self) -> str | None:
        answers = self.of(AnswerCallbackQuery)
        return answers[-1].text if answers else None

    def buttons(self) -> list[tuple[str, str]]:
        """(text, callback_data) of the last message's inline keyboard."""
        markup = self.last.reply_markup
        if not isinstance(markup, InlineKeyboardMarkup):
            return []
        return [
            (b.text, b.callback_data or b.url or "") for row in markup.inline_keyboard for b in row
        ]

    def button(self, text_part: str) -> str:
        """The callback data of the (first) button whose text contains `text_part`."""
        for text, data in self.buttons():
            if text_part in text:
                return data
        raise AssertionError(f"no button with {text_part!r} in {self.buttons()}")


class BotHarness:
    def __init__(
        self, dp: Dispatcher, bot: Bot, session: RecordingSession, *, first_update: int = 1
    ) -> None:
        self.dp = dp
        self.bot = bot
        self.session = session
        # Update ids are unique per bot: a harness on a database another one used starts
        # past that one's ids (a seen id is skipped as a redelivery).
        self._updates = itertools.count(first_update)
        self._messages = itertools.count(1)
        self.inputs = 0  # every message or tap fed: "how many inputs did that take"
        self.last_update: Update | None = None

    async def feed(self, update: Update) -> Sent:
        before = len(self.session.requests)
        self.inputs += 1
        self.last_update = update
        await self.dp.feed_update(self.bot, update)
        return Sent(self.session.requests[before:], self.session.results[before:])

    def _message(self, user: User, **fields: Any) -> Message:
        return Message(
            message_id=next(self._messages),
            date=datetime.now(UTC),
            chat=Chat(id=user.id, type="private"),
            from_user=user,
            **fields,
        )

    async def send(self, user: User, text: str) -> Sent:
        msg = self._message(user, text=text)
        return await self.feed(Update(update_id=next(self._updates), message=msg))

    async def share_contact(
        self, user: User, phone: str, first_name: str, last_name: str | None = None
    ) -> Sent:
        contact = Contact(phone_number=phone, first_name=first_name, last_name=last_name)
        msg = self._message(user, contact=contact)
        return await self.feed(Update(update_id=next(self._updates), message=msg))

    async def send_message(self, user: User, **fields: Any) -> Sent:
        msg = self._message(user, **fields)
        return await self.feed(Update(update_id=next(self._updates), message=msg))

    async def tap(
        self, user: User, data: str | CallbackData, on: Sent | Message | None = None
    ) -> Sent:
        """Press a button on the message `on` (what showed the card; edits go there)."""
        packed = data.pack() if isinstance(data, CallbackData) else data
        message = on.message if isinstance(on, Sent) else on
        mid = message.message_id if message is not None else 1
        text = (message.text if message is not None else None) or "card"
        msg = Message(
            message_id=mid,
            date=datetime.now(UTC),
            chat=Chat(id=user.id, type="private"),
            from_user=User(id=BOT_ID, is_bot=True, first_name="Voronka"),
            text=text,
        )
        query = CallbackQuery(
            id=str(next(self._updates)),
            from_user=user,
            chat_instance="ci",
            data=packed,
            message=msg,
        )
        return await self.feed(Update(update_id=next(self._updates), callback_query=query))


def make_settings(db_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "bot_token": BOT_TOKEN,
        "database_url": db_url,
        "throttle_seconds": 0,
        "admin_ids": [],
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def make_bot(session: RecordingSession) -> Bot:
    bot = Bot(BOT_TOKEN, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))
    return keep_response_models(bot)


@pytest.fixture
def harness(db_url: str, uow_factory: Any, clock: Any) -> BotHarness:
    session = RecordingSession()
    bot = make_bot(session)
    dp = build_dispatcher(make_settings(db_url), uow_factory, clock)
    return BotHarness(dp, bot, session)
