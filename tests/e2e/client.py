"""Playing a Telegram user against the emulator, over its client HTTP API.

The emulator (telegram-test-api, wrapped by emulator.js) takes a user's input on
``/sendMessage``, ``/sendCommand`` and ``/sendCallback`` and shows everything the bot sent
(with edits applied in place) on ``/getUpdatesHistory``. `TgUser` sends, taps buttons and
waits — with a bounded timeout — for the bot's answer; a timeout fails with the last
messages of the chat, so a failure says what the bot did instead.
"""

from __future__ import annotations

import base64
import html
import itertools
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_WAIT = 20.0  # seconds for one answer of the bot (generous: CI machines are slow)
_TAG = re.compile(r"<[^>]+>")


class Emulator:
    """The emulator's HTTP endpoints (client side), plus its log for failure messages."""

    def __init__(self, base_url: str, log_path: Path | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.log_path = log_path

    def post(self, path: str, payload: dict[str, Any]) -> Any:
        request = urllib.request.Request(
            f"{self.base_url}{path}",
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        return self._open(request)

    def get(self, path: str) -> Any:
        return self._open(urllib.request.Request(f"{self.base_url}{path}"))

    def _open(self, request: urllib.request.Request) -> Any:
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            body = exc.read().decode(errors="replace")
            raise AssertionError(
                f"emulator: {request.full_url} answered {exc.code}: {body}{self.log_tail()}"
            ) from exc

    def history(self, token: str) -> list[dict[str, Any]]:
        """Every stored bot message of this bot, as the emulator keeps it."""
        result = self.post("/getUpdatesHistory", {"token": token}).get("result") or []
        return [item for item in result if "chat_id" in (item.get("message") or {})]

    def business(self, token: str, update: dict[str, Any]) -> int:
        """Deliver a Telegram Business update to the bot (the wrapper's patch 12): one of
        business_connection, business_message, edited_business_message,
        deleted_business_messages. Returns its update id."""
        answer = self.post("/e2e/business", {"botToken": token, "update": update})
        return int(answer["result"]["update_id"])

    def forget_file(self, file_id: str) -> bool:
        """Telegram forgets a file (patch 15): sending it by id and getFile are refused from
        now on. True when the file was known."""
        return bool(self.post("/e2e/forgetFile", {"file_id": file_id})["result"])

    def bot_state(self, token: str) -> dict[str, Any]:
        """The wrapper's view of one bot: {"polled": bool, "webhook": url | None,
        "answers": [{"callback_query_id", "text", "show_alert"}, ...]}."""
        state: dict[str, Any] = self.get(f"/e2e/bot/{token}")
        return state

    def log_tail(self, lines: int = 15) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return "\n--- emulator log (tail) ---\n" + "\n".join(tail) if tail else ""


@dataclass(frozen=True)
class Button:
    text: str
    callback_data: str | None
    url: str | None


@dataclass(frozen=True)
class BotMessage:
    """One message of the bot as the user sees it now."""

    message_id: int
    chat_id: int
    html: str  # as sent (parse_mode HTML)
    keyboard: tuple[tuple[Button, ...], ...]
    date: int
    file_name: str | None = None  # a document's name (the wrapper's patches 9-11)

    @property
    def text(self) -> str:
        """What the user reads: tags removed, entities unescaped."""
        return html.unescape(_TAG.sub("", self.html))

    @property
    def buttons(self) -> list[Button]:
        return [b for row in self.keyboard for b in row]

    def find(self, part: str) -> Button | None:
        """The button labelled exactly `part`, else the first whose label contains it
        ("measurer" is not "head of measurers")."""
        exact = next((b for b in self.buttons if b.text == part), None)
        return exact or next((b for b in self.buttons if part in b.text), None)

    def button(self, part: str) -> Button:
        found = self.find(part)
        if found is None:
            labels = [b.text for b in self.buttons]
            raise AssertionError(f"no button with {part!r} on message:\n{self.text}\n{labels}")
        return found

    def snapshot(self) -> tuple[str, tuple[tuple[Button, ...], ...]]:
        return self.html, self.keyboard

    def describe(self) -> str:
        labels = " | ".join(b.text for b in self.buttons)
        return f"#{self.message_id}: {self.text}" + (f"\n      [{labels}]" if labels else "")

    @classmethod
    def of(cls, item: dict[str, Any]) -> BotMessage:
        message = item["message"]
        markup = message.get("reply_markup") or {}
        if isinstance(markup, str):
            markup = json.loads(markup)
        rows = tuple(
            tuple(Button(b.get("text", ""), b.get("callback_data"), b.get("url")) for b in row)
            for row in markup.get("inline_keyboard") or ()
        )
        return cls(
            message_id=int(item["messageId"]),
            chat_id=int(message["chat_id"]),
            html=message.get("text") or message.get("caption") or "",
            keyboard=rows,
            date=int(item.get("time", 0)) // 1000,
            file_name=message.get("file_name"),
        )


Match = str | Callable[[BotMessage], bool]


class TgUser:
    """A person in a private chat with the bot."""

    def __init__(
        self,
        emulator: Emulator,
        token: str,
        user_id: int,
        first_name: str,
        *,
        username: str | None = None,
        language_code: str = "en",
    ) -> None:
        self.emulator = emulator
        self.token = token
        self.id = user_id
        self.first_name = first_name
        self.username = username
        self.language_code = language_code
        self._mark: dict[int, Any] = {}
        self._answers = 0  # callback answers of this bot before this user's last tap
        self.sha256: dict[str, str] = {}  # file id -> SHA-256 of what this user uploaded

    def __repr__(self) -> str:
        return f"TgUser({self.first_name}, id={self.id})"

    # --- what the user sees ------------------------------------------------------------------

    def messages(self) -> list[BotMessage]:
        """The bot's messages in this chat, oldest first, as they look now."""
        found = [
            BotMessage.of(item)
            for item in self.emulator.history(self.token)
            if str(item["message"].get("chat_id")) == str(self.id)
        ]
        return sorted(found, key=lambda m: m.message_id)

    def last(self) -> BotMessage:
        messages = self.messages()
        assert messages, f"{self}: the bot has sent nothing in this chat"
        return messages[-1]

    def _changed(self) -> list[BotMessage]:
        """Messages new or edited since this user's last action."""
        return [m for m in self.messages() if self._mark.get(m.message_id) != m.snapshot()]

    def wait_for(self, match: Match, timeout: float = DEFAULT_WAIT) -> BotMessage:
        """The first message sent or edited since the user's last action that matches
        (`match`: a substring of the text, or a predicate). Fails after `timeout` seconds
        with the chat's last messages."""
        predicate = (lambda m: match in m.text) if isinstance(match, str) else match
        deadline = time.monotonic() + timeout
        while True:
            for message in self._changed():
                if predicate(message):
                    return message
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        seen = "\n".join("  " + m.describe() for m in self.messages()[-6:]) or "  (nothing)"
        changed = [m.message_id for m in self._changed()]
        what = repr(match) if isinstance(match, str) else getattr(match, "__name__", "predicate")
        raise AssertionError(
            f"{self}: no message matching {what} within {timeout:g}s.\n"
            f"Changed since the last action: {changed or 'none'}. Last messages:\n{seen}"
            f"{self.emulator.log_tail()}"
        )

    def wait_for_alert(self, timeout: float = DEFAULT_WAIT) -> str:
        """The text the bot answered this user's last tap with (an alert or a toast; "" when
        it answered silently). One user acts at a time: answers are counted per bot."""
        deadline = time.monotonic() + timeout
        while True:
            answers = self.emulator.bot_state(self.token)["answers"][self._answers :]
            if answers:
                return str(answers[0]["text"])
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self}: the bot did not answer the tap within {timeout:g}s"
                    f"{self.emulator.log_tail()}"
                )
            time.sleep(0.05)

    # --- what the user does ------------------------------------------------------------------

    def _remember(self) -> None:
        self._mark = {m.message_id: m.snapshot() for m in self.messages()}

    def _from(self) -> dict[str, Any]:
        user: dict[str, Any] = {
            "id": self.id,
            "is_bot": False,
            "first_name": self.first_name,
            "language_code": self.language_code,
        }
        if self.username:
            user["username"] = self.username
        return user

    def _chat(self) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": self.id, "type": "private", "first_name": self.first_name}
        if self.username:
            chat["username"] = self.username
        return chat

    def _payload(self, **fields: Any) -> dict[str, Any]:
        """A message from this user in this chat, now, with `fields`."""
        return {
            "botToken": self.token,
            "from": self._from(),
            "chat": self._chat(),
            "date": int(time.time()),
            **fields,
        }

    def send(self, text: str) -> None:
        """Type a message (a leading /command is marked as a bot_command, as Telegram does)."""
        self._remember()
        payload = self._payload(text=text)
        if text.startswith("/"):
            length = len(text.split(maxsplit=1)[0])
            payload["entities"] = [{"offset": 0, "length": length, "type": "bot_command"}]
            self.emulator.post("/sendCommand", payload)
        else:
            self.emulator.post("/sendMessage", payload)

    def upload(
        self,
        kind: str,
        caption: str | None = None,
        file_name: str | None = None,
        content: bytes | None = None,
    ) -> str:
        """Send a photo or a document (the wrapper's patch 10 makes its Telegram file ids;
        `content`: its bytes, else a few the wrapper makes); returns the file id the bot
        will keep (a photo's largest size). `sha256[file id]` is the content's hash."""
        self._remember()
        payload = self._payload(kind=kind)
        if caption is not None:
            payload["caption"] = caption
        if file_name is not None:
            payload["file_name"] = file_name
        if content is not None:
            payload["content"] = base64.b64encode(content).decode()
        result = self.emulator.post("/e2e/sendMedia", payload)["result"]
        ids: list[str] = result["file_ids"]
        self.sha256[ids[-1]] = str(result["sha256"])
        return ids[-1]

    def _files_sent(self, key: str) -> list[tuple[str, str]]:
        """(the message's `key`, caption or "[photo]"/"[document]") of every bot message to
        this user that carries `key`, oldest first."""
        items = [
            item
            for item in self.emulator.history(self.token)
            if str(item["message"].get("chat_id")) == str(self.id) and item["message"].get(key)
        ]
        items.sort(key=lambda item: int(item["messageId"]))
        return [(item["message"][key], item["message"].get("text") or "") for item in items]

    def uploads_received(self) -> list[tuple[str, str]]:
        """(SHA-256, caption) of every file the bot uploaded to this user (sent as bytes,
        not by a file id: patch 16), oldest first."""
        return self._files_sent("upload_sha256")

    def files_received(self) -> list[tuple[str, str]]:
        """(file id, caption) of every file the bot sent this user by its id (patch 11
        keeps the id with the message), oldest first."""
        return self._files_sent("file_id")

    def tap(self, part: str, on: BotMessage | None = None) -> BotMessage:
        """Press the inline button whose label contains `part` — on `on` (as it is now), or
        on the newest message that has such a button. Returns the message tapped."""
        messages = self.messages()
        if on is not None:
            target = next((m for m in messages if m.message_id == on.message_id), None)
            assert target is not None, f"{self}: message #{on.message_id} is gone"
        else:
            target = next((m for m in reversed(messages) if m.find(part)), None)
            if target is None:
                seen = "\n".join("  " + m.describe() for m in messages[-6:])
                raise AssertionError(f"{self}: no button with {part!r}. Last messages:\n{seen}")
        button = target.button(part)
        assert button.callback_data, f"{self}: button {button.text!r} is not a callback button"
        self._remember()
        self._answers = len(self.emulator.bot_state(self.token)["answers"])
        self.emulator.post(
            "/sendCallback",
            {
                "botToken": self.token,
                "from": self._from(),
                "date": int(time.time()),
                "data": button.callback_data,
                "message": {
                    "message_id": target.message_id,
                    "date": target.date,
                    "chat": self._chat(),
                    "from": {"id": _bot_id(self.token), "is_bot": True, "first_name": "Bot"},
                    "text": target.text,
                },
            },
        )
        return target


def _bot_id(token: str) -> int:
    return int(token.split(":", 1)[0])


_tokens = itertools.count(1)


def new_token(mode: str) -> str:
    """A token the emulator (and aiogram's token check) accepts: <bot id>:<secret>."""
    return f"{700_000 + next(_tokens)}:e2e-{mode}-token"
