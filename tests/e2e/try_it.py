"""Try Voronka without a Telegram account (`scripts/try`; README, "Trying it").

Starts the Bot API emulator the end-to-end tests use (tests/e2e/emulator.js, the npm package
telegram-test-api), the real bot (`voronka run`) against it with its own SQLite file under
data/try/ (optionally filled by `voronka demo` first), and a prompt where you are the first
admin: type what you would send the bot, `tap LABEL` to press a button of the last message
that has one, `wait [SECONDS]` to let reminders and notices arrive, `app` for a link that
opens the Mini App in your browser, `quit` to stop. Everything the bot sends or edits is
printed -- files with their names, the answers to taps (a popup, or a toast), and messages
that came later (a reminder, the head of measurers' task) at the next prompt.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tests.e2e.client import BotMessage, Emulator, TgUser
from tests.webapp_kit import sign_init_data

ROOT = Path(__file__).resolve().parents[2]
E2E = ROOT / "tests" / "e2e"
TOKEN = "700999:try-it-token"
ADMIN_ID = 4_000_001


def start_emulator(log: Path) -> tuple[subprocess.Popen[str], Emulator]:
    if not (E2E / "node_modules" / "telegram-test-api").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=E2E, check=True)
    proc = subprocess.Popen(
        ["node", str(E2E / "emulator.js")],
        cwd=E2E,
        stdin=subprocess.PIPE,  # closing it stops the emulator
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
    )
    assert proc.stdout is not None
    port = int(json.loads(proc.stdout.readline())["port"])
    return proc, Emulator(f"http://127.0.0.1:{port}", log)


def voronka(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("voronka")
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "bot", *args]


class Screen:
    """What the person has been shown: each message as it was last printed, and how many
    callback answers the bot had given."""

    def __init__(self, user: TgUser, emulator: Emulator) -> None:
        self.user, self.emulator = user, emulator
        self.seen: dict[int, Any] = {}
        self.answers = 0

    def show(self, messages: list[BotMessage], mark: str = "bot") -> None:
        for message in messages:
            edited = message.message_id in self.seen
            self.seen[message.message_id] = message.snapshot()
            label = f"{mark}, edited" if edited else mark
            text = message.text
            if message.file_name:  # a file: its name (the text is its caption or [document])
                text = f"📎 {message.file_name}" + ("" if text.startswith("[") else f"\n{text}")
            print(f"\n[{label}] {text}")
            for row in message.keyboard:
                print("      " + "  ".join(f"[{b.text}]" for b in row))

    def unseen(self) -> list[BotMessage]:
        return [m for m in self.user.messages() if self.seen.get(m.message_id) != m.snapshot()]

    def popups(self) -> None:
        """The bot's answers to taps since the last look: a popup (alert) or a toast."""
        answers = self.emulator.bot_state(TOKEN)["answers"]
        for answer in answers[self.answers :]:
            if answer.get("text"):
                kind = "popup" if answer.get("show_alert") else "toast"
                print(f"\n[{kind}] {answer['text']}")
        self.answers = len(answers)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def app_link(base: str, lang: str) -> str:
    """The Mini App as the first admin, in a browser: Telegram's own script (loaded by the
    page) reads the signed login from the address's #tgWebAppData."""
    init_data = sign_init_data(
        ADMIN_ID, datetime.now(UTC), lang=lang, token=TOKEN, first_name="Alla"
    )
    return f"{base}?view=board#tgWebAppData={quote(init_data)}&tgWebAppVersion=7.0"


def changes(user: TgUser, wait: float) -> list[BotMessage]:
    """What the bot sent or edited after the user's action: waits for the first change,
    then for the bot to go quiet."""
    deadline, quiet = time.monotonic() + wait, 0.0
    seen: list[BotMessage] = []
    while time.monotonic() < deadline:
        now = user._changed()
        if now and [m.snapshot() for m in now] == [m.snapshot() for m in seen]:
            quiet += 0.1
            if quiet >= 0.6:
                break
        else:
            quiet = 0.0
        seen = now
        time.sleep(0.1)
    return seen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/try", description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=int, metavar="N", help="first fill the data with N deals")
    parser.add_argument("--lang", default="ru", choices=("ru", "en"))
    parser.add_argument("--fresh", action="store_true", help="start from an empty database")
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "try", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    work: Path = args.data
    work.mkdir(parents=True, exist_ok=True)
    if args.fresh:
        (work / "voronka.db").unlink(missing_ok=True)
    port = free_port()
    app_url = f"http://127.0.0.1:{port}/app/"
    env = {
        "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
        "BOT_TOKEN": TOKEN,
        "DATABASE_URL": f"sqlite+aiosqlite:///{work / 'voronka.db'}",
        "ADMIN_IDS": str(ADMIN_ID),
        "THROTTLE_SECONDS": "0",
        "PYTHONPATH": str(ROOT),
        # the Mini App on this machine (`app` prints a link that logs you in)
        "WEB_APP_URL": app_url,
        "WEBHOOK_HOST": "127.0.0.1",
        "WEBHOOK_PORT": str(port),
    }
    emulator_proc, emulator = start_emulator(work / "emulator.log")
    env["TELEGRAM_API_URL"] = emulator.base_url
    if args.demo:
        print(f"filling {work / 'voronka.db'} with {args.demo} made-up deals…")
        subprocess.run(
            voronka("demo", "--deals", str(args.demo), "--force", "--lang", args.lang),
            cwd=work,
            env=env,
        )
    bot = subprocess.Popen(
        voronka("run"),
        cwd=work,
        env=env,
        stdout=(work / "bot.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while not emulator.bot_state(TOKEN).get("polled"):
            if bot.poll() is not None or time.monotonic() > deadline:
                print(f"the bot did not start; see {work / 'bot.log'}", file=sys.stderr)
                return 1
            time.sleep(0.2)
        user = TgUser(emulator, TOKEN, ADMIN_ID, "Alla", language_code=args.lang)
        screen = Screen(user, emulator)
        print(
            "You are Alla, the first admin. Type a message (try /start), `tap LABEL`, "
            "`wait [SECONDS]` (reminders come every 10 s), `app` (the Mini App in your "
            "browser), `quit`."
        )
        while True:
            late = screen.unseen()  # arrived while you were reading: a notice, a reminder
            if late:
                screen.show(late, "later")
            try:
                line = input("\n> ").strip()
            except EOFError:
                break
            if line in ("quit", "exit"):
                break
            if not line:
                continue
            if line == "app":
                print("\nOpen in a browser (on this machine; the link works for a day):")
                print(app_link(app_url, args.lang))
                continue
            if line.split()[0] == "wait":
                seconds = float(line.split()[1]) if len(line.split()) > 1 else 12.0
                time.sleep(seconds)
                screen.show(screen.unseen(), "later")
                continue
            try:
                if line.startswith("tap "):
                    user.tap(line[4:].strip())
                else:
                    user.send(line)
            except AssertionError as exc:
                print(exc)
                continue
            screen.show(changes(user, wait=10))
            screen.popups()
        return 0
    finally:
        bot.terminate()
        bot.wait(15)
        assert emulator_proc.stdin is not None
        emulator_proc.stdin.close()
        emulator_proc.terminate()
        emulator_proc.wait(15)


if __name__ == "__main__":
    sys.exit(main())
