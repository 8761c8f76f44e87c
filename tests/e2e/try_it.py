"""Try Voronka without a Telegram account (`scripts/try`; README, "Trying it").

Starts the Bot API emulator the end-to-end tests use (tests/e2e/emulator.js, the npm package
telegram-test-api), the real bot (`voronka run`) against it with its own SQLite file under
data/try/ (optionally filled by `voronka demo` first), and a prompt where you are the first
admin: type what you would send the bot, `tap LABEL` to press a button of the last message
that has one, `quit` to stop. Everything the bot sends or edits is printed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.client import BotMessage, Emulator, TgUser

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


def show(messages: list[BotMessage]) -> None:
    for message in messages:
        print(f"\n[bot] {message.text}")
        for row in message.keyboard:
            print("      " + "  ".join(f"[{b.text}]" for b in row))


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
    env = {
        "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
        "BOT_TOKEN": TOKEN,
        "DATABASE_URL": f"sqlite+aiosqlite:///{work / 'voronka.db'}",
        "ADMIN_IDS": str(ADMIN_ID),
        "THROTTLE_SECONDS": "0",
        "PYTHONPATH": str(ROOT),
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
        print("You are Alla, the first admin. Type a message (try /help), `tap LABEL`, `quit`.")
        while True:
            try:
                line = input("\n> ").strip()
            except EOFError:
                break
            if line in ("quit", "exit"):
                break
            if not line:
                continue
            try:
                if line.startswith("tap "):
                    user.tap(line[4:].strip())
                else:
                    user.send(line)
            except AssertionError as exc:
                print(exc)
                continue
            show(changes(user, wait=10))
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
