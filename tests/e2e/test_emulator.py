"""The emulator wrapper's patches (emulator.js), one test each, without a bot process:
what aiogram gets from the emulator must be what aiogram accepts.

Each test fails against the bare telegram-test-api 4.x: getMe without is_bot, callback
updates without chat_instance, getUpdates answering at once and losing unconfirmed updates,
echoed results aiogram cannot parse, callback answers thrown away, webhook posts without the
secret header and an emulator that dies on a non-2xx answer.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiogram.types import Message, Update, User

from tests.e2e.client import Emulator, TgUser, new_token

pytestmark = pytest.mark.e2e


def bot_call(emulator: Emulator, token: str, method: str, **fields: Any) -> dict[str, Any]:
    """A Bot API call the way aiogram makes it: a urlencoded form, objects as JSON text."""
    form = {k: json.dumps(v) if isinstance(v, (dict, list)) else str(v) for k, v in fields.items()}
    request = urllib.request.Request(
        f"{emulator.base_url}/bot{token}/{method}",
        data=urllib.parse.urlencode(form).encode(),
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer: dict[str, Any] = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        answer = json.loads(exc.read())
        answer["http_status"] = exc.code
    return answer


@pytest.fixture
def token() -> str:
    return new_token("wrapper")


def test_get_me_and_command_menus(emulator: Emulator, token: str) -> None:
    me = User.model_validate(bot_call(emulator, token, "getMe")["result"])
    assert me.is_bot and me.id == int(token.split(":")[0])
    menu = [{"command": "start", "description": "Start"}]
    assert bot_call(emulator, token, "setMyCommands", commands=menu) == {"ok": True, "result": True}


def test_updates_are_aiogram_updates_and_wait_for_confirmation(
    emulator: Emulator, token: str
) -> None:
    user = TgUser(emulator, token, 77, "Tess")
    sent = bot_call(
        emulator,
        token,
        "sendMessage",
        chat_id=77,
        text="<b>Pick</b>",
        parse_mode="HTML",
        link_preview_options={"is_disabled": True},
        reply_markup={"inline_keyboard": [[{"text": "Yes", "callback_data": "y"}]]},
    )
    message = Message.model_validate(sent["result"])
    assert message.message_id and message.reply_markup is not None

    user.send("hello")
    user.tap("Yes")
    first = bot_call(emulator, token, "getUpdates", timeout=0)["result"]
    updates = [Update.model_validate(u) for u in first]
    assert updates[0].message is not None and updates[0].message.text == "hello"
    query = updates[1].callback_query
    assert query is not None and query.data == "y" and query.chat_instance
    # Not confirmed yet (no offset): handed out again, as Telegram does.
    again = bot_call(emulator, token, "getUpdates", timeout=0)["result"]
    assert [u["update_id"] for u in again] == [u.update_id for u in updates]
    confirmed = bot_call(emulator, token, "getUpdates", offset=updates[-1].update_id + 1)
    assert confirmed["result"] == []
    # The bot's answer to the tap is what the user sees as an alert.
    bot_call(emulator, token, "answerCallbackQuery", callback_query_id=query.id, text="Done")
    assert user.wait_for_alert() == "Done"


def test_get_updates_holds_the_request_until_an_update(emulator: Emulator, token: str) -> None:
    result: list[Any] = []
    poll = threading.Thread(
        target=lambda: result.append(bot_call(emulator, token, "getUpdates", timeout=20))
    )
    poll.start()
    time.sleep(0.5)  # let the poll arrive first (the bare emulator would answer [] at once)
    TgUser(emulator, token, 78, "Uma").send("are you there?")
    poll.join(30)
    assert not poll.is_alive()
    assert [u["message"]["text"] for u in result[0]["result"]] == ["are you there?"]


def test_edits(emulator: Emulator, token: str) -> None:
    user = TgUser(emulator, token, 79, "Vera")
    keyboard = {"inline_keyboard": [[{"text": "Go", "callback_data": "g"}]]}
    sent = bot_call(emulator, token, "sendMessage", chat_id=79, text="one", reply_markup=keyboard)
    mid = sent["result"]["message_id"]
    edited = bot_call(emulator, token, "editMessageText", chat_id=79, message_id=mid, text="two")
    assert Message.model_validate(edited["result"]).text == "two"
    assert user.last().text == "two" and user.last().buttons == []  # the keyboard went
    missing = bot_call(emulator, token, "editMessageText", chat_id=79, message_id=99999, text="x")
    assert missing["http_status"] == 400 and not missing["ok"]


class _Recorder(BaseHTTPRequestHandler):
    """A webhook endpoint: answers 500 to the first update, 200 after; records them."""

    seen: list[tuple[str | None, dict[str, Any]]]

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append((self.headers.get("X-Telegram-Bot-Api-Secret-Token"), body))
        self.send_response(500 if len(self.seen) == 1 else 200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook_endpoint() -> Iterator[tuple[str, list[tuple[str | None, dict[str, Any]]]]]:
    seen: list[tuple[str | None, dict[str, Any]]] = []
    handler = type("Recorder", (_Recorder,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_webhook_delivery(
    emulator: Emulator,
    token: str,
    webhook_endpoint: tuple[str, list[tuple[str | None, dict[str, Any]]]],
) -> None:
    url, seen = webhook_endpoint
    bot_call(emulator, token, "setWebhook", url=url, secret_token="s3cret-token")
    try:
        user = TgUser(emulator, token, 80, "Wanda")
        user.send("first")  # answered 500: logged, the emulator lives on
        user.send("second")
        deadline = time.monotonic() + 10
        while len(seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [s[1]["message"]["text"] for s in seen] == ["first", "second"]
        assert {s[0] for s in seen} == {"s3cret-token"}
        assert seen[0][1]["update_id"] != seen[1][1]["update_id"]
        assert bot_call(emulator, token, "getMe")["ok"]  # still serving
        assert "answered 500" in emulator.log_tail()
    finally:
        bot_call(emulator, token, "deleteWebhook")


def multipart_call(
    emulator: Emulator, token: str, method: str, fields: dict[str, Any], file_field: str
) -> dict[str, Any]:
    """A file upload the way aiogram makes it: multipart/form-data."""
    boundary = "voronka-e2e-boundary"
    body = b""
    for key, value in fields.items():
        text = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
        body += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{text}\r\n'
        ).encode()
    body += (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; '
            'filename="chart.png"\r\nContent-Type: image/png\r\n\r\n'
        ).encode()
        + b"\x89PNG not really\r\n"
        + f"--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        f"{emulator.base_url}/bot{token}/{method}",
        data=body,
        method="POST",
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer: dict[str, Any] = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        answer = json.loads(exc.read())
        answer["http_status"] = exc.code
    return answer


def test_file_uploads(emulator: Emulator, token: str) -> None:
    """Patch 9: photos and documents (multipart) arrive as messages; media edits work."""
    keyboard = {"inline_keyboard": [[{"text": "Go", "callback_data": "x"}]]}
    sent = multipart_call(
        emulator, token, "sendPhoto", {"chat_id": 501, "reply_markup": keyboard}, "photo"
    )
    assert sent["ok"], sent
    photo = Message.model_validate(sent["result"])
    assert photo.text == "[photo]" and photo.chat.id == 501
    doc = multipart_call(
        emulator, token, "sendDocument", {"chat_id": 501, "caption": "deals.xlsx"}, "document"
    )
    assert Message.model_validate(doc["result"]).text == "deals.xlsx"
    media = {"type": "photo", "media": "attach://chart"}
    edited = multipart_call(
        emulator,
        token,
        "editMessageMedia",
        {"chat_id": 501, "message_id": photo.message_id, "media": media},
        "chart",
    )
    assert edited["ok"], edited
    missing = multipart_call(
        emulator,
        token,
        "editMessageMedia",
        {"chat_id": 501, "message_id": 999_999, "media": media},
        "chart",
    )
    assert missing["http_status"] == 400


def test_user_uploads_and_files_sent_back_by_id(emulator: Emulator, token: str) -> None:
    """Patches 10 and 11: a user's photo and document arrive as aiogram messages with
    Telegram-shaped file ids; the bot sends them back by id (one, or an album), and an id
    nobody uploaded is Telegram's 400."""
    user = TgUser(emulator, token, 79, "Vera")
    photo_id = user.upload("photo", caption="kitchen")
    doc_id = user.upload("document", file_name="plan.pdf")
    other_id = user.upload("photo")
    updates = [
        Update.model_validate(u)
        for u in bot_call(emulator, token, "getUpdates", timeout=0)["result"]
    ]
    photo, doc, _ = (u.message for u in updates)
    assert photo is not None and photo.photo is not None and photo.caption == "kitchen"
    assert photo.photo[-1].file_id == photo_id and photo.photo[-1].width == 1280
    assert doc is not None and doc.document is not None
    assert (doc.document.file_id, doc.document.file_name) == (doc_id, "plan.pdf")

    album = [
        {"type": "photo", "media": photo_id, "caption": "kitchen"},
        {"type": "photo", "media": other_id},
    ]
    sent = bot_call(emulator, token, "sendMediaGroup", chat_id=79, media=album)
    assert [Message.model_validate(m).text for m in sent["result"]] == ["kitchen", "[photo]"]
    back = bot_call(emulator, token, "sendDocument", chat_id=79, document=doc_id, caption="Plan")
    assert Message.model_validate(back["result"]).text == "Plan"
    assert user.files_received() == [
        (photo_id, "kitchen"),
        (other_id, "[photo]"),
        (doc_id, "Plan"),
    ]
    forged = bot_call(emulator, token, "sendDocument", chat_id=79, document="BQ-nobody")
    assert forged["http_status"] == 400 and "file identifier" in forged["description"]
    bad_album = bot_call(
        emulator, token, "sendMediaGroup", chat_id=79, media=[album[0], {**album[1], "media": "x"}]
    )
    assert bad_album["http_status"] == 400
    single = bot_call(emulator, token, "sendMediaGroup", chat_id=79, media=album[:1])
    assert single["http_status"] == 400  # an album has 2-10 items
    # a file uploaded in the request itself ("attach://<part>", as aiogram names it) is no id
    chart = multipart_call(
        emulator, token, "sendPhoto", {"chat_id": 79, "photo": "attach://chart"}, "chart"
    )
    assert chart["ok"] and Message.model_validate(chart["result"]).text == "[photo]"


def test_get_file_download_a_forgotten_file_and_uploads(emulator: Emulator, token: str) -> None:
    """Patches 13, 15 and 16: getFile and the download serve the bytes a user uploaded;
    once Telegram forgets the file, getFile, the download and sending it by id are refused;
    a file the bot uploads itself is kept as the hash of its bytes."""
    user = TgUser(emulator, token, 81, "Gleb")
    content = b"\xff\xd8 a photo of a window"
    photo_id = user.upload("photo", content=content)
    assert user.sha256[photo_id] == hashlib.sha256(content).hexdigest()
    info = bot_call(emulator, token, "getFile", file_id=photo_id)["result"]
    assert info["file_id"] == photo_id and info["file_size"] == len(content)
    url = f"{emulator.base_url}/file/bot{token}/{info['file_path']}"
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.read() == content

    assert emulator.forget_file(photo_id) and not emulator.forget_file(photo_id)
    assert bot_call(emulator, token, "getFile", file_id=photo_id)["http_status"] == 400
    with pytest.raises(urllib.error.HTTPError, match="404"):
        urllib.request.urlopen(url, timeout=30)
    by_id = bot_call(emulator, token, "sendPhoto", chat_id=81, photo=photo_id)
    assert by_id["http_status"] == 400 and "file identifier" in by_id["description"]

    sent = multipart_call(
        emulator,
        token,
        "sendPhoto",
        {"chat_id": 81, "photo": "attach://pic", "caption": "from disk"},
        "pic",
    )
    assert sent["ok"]
    assert user.uploads_received() == [
        (hashlib.sha256(b"\x89PNG not really").hexdigest(), "from disk")
    ]
    assert user.files_received() == []  # an upload, not a file id


def test_business_updates(emulator: Emulator, token: str) -> None:
    """Patch 12: business updates go out as given, with their own update ids, and wake a
    held poll; a message sent through a connection says so in its result."""
    connection = {
        "id": "bc-1",
        "user": {"id": 90, "is_bot": False, "first_name": "Ann"},
        "user_chat_id": 90,
        "date": int(time.time()),
        "is_enabled": True,
        "rights": {"can_reply": True},
    }
    message = {
        "message_id": 5,
        "date": int(time.time()),
        "chat": {"id": 91, "type": "private", "first_name": "Client"},
        "from": {"id": 91, "is_bot": False, "first_name": "Client"},
        "business_connection_id": "bc-1",
        "text": "hello",
    }
    deleted = {"business_connection_id": "bc-1", "chat": message["chat"], "message_ids": [5]}
    result: list[Any] = []
    poll = threading.Thread(
        target=lambda: result.append(bot_call(emulator, token, "getUpdates", timeout=20))
    )
    poll.start()
    time.sleep(0.5)
    first = emulator.business(token, {"business_connection": connection})
    poll.join(30)
    assert [u["update_id"] for u in result[0]["result"]] == [first]
    emulator.business(token, {"business_message": message})
    emulator.business(token, {"edited_business_message": {**message, "text": "hello!"}})
    emulator.business(token, {"deleted_business_messages": deleted})
    raw = bot_call(emulator, token, "getUpdates", timeout=0)["result"]
    updates = [Update.model_validate(u) for u in raw]
    assert updates[0].business_connection is not None
    assert updates[0].business_connection.rights is not None
    assert updates[1].business_message is not None
    assert updates[1].business_message.business_connection_id == "bc-1"
    assert updates[2].edited_business_message is not None
    assert updates[3].deleted_business_messages is not None
    assert len({u.update_id for u in updates}) == 4
    with pytest.raises(AssertionError, match="400"):
        emulator.business(token, {"message": message})  # only business updates
    reply = bot_call(
        emulator, token, "sendMessage", chat_id=91, text="hi", business_connection_id="bc-1"
    )
    assert Message.model_validate(reply["result"]).business_connection_id == "bc-1"
