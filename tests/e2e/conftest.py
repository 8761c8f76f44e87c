"""The real `voronka` process against the telegram-test-api emulator.

``emulator`` (session): installs the pinned npm package when missing (``npm ci`` in
tests/e2e), starts emulator.js (the package plus its patches) on 127.0.0.1 and a free port.
``bot`` (module, parametrized "polling" / "webhook"): starts ``voronka run`` or
``voronka webhook`` as a subprocess with its own bot token, SQLite file and log, waits until
it polls (or its webhook is set and listening), and stops it with SIGTERM (SIGKILL after a
timeout) — also when a test failed.

``VORONKA_TEST_E2E``: ``auto`` (default: skipped when node/npm are missing), ``required``
(scripts/test: missing node/npm or a failed install FAIL the run), ``off`` (skipped).
"""

from __future__ import annotations

import json
import os
import secrets
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bot.settings import Settings
from tests.e2e.client import Emulator, TgUser, new_token

E2E_DIR = Path(__file__).resolve().parent
PACKAGE = "telegram-test-api"
START_TIMEOUT = 90.0  # seconds for the bot to migrate a fresh database and start
STOP_TIMEOUT = 15.0
MODES = ("polling", "webhook")


def _mode() -> str:
    return os.environ.get("VORONKA_TEST_E2E", "auto").strip().lower() or "auto"


def unavailable(reason: str) -> None:
    if _mode() == "required":
        pytest.fail(f"{reason} (VORONKA_TEST_E2E=required)", pytrace=False)
    pytest.skip(reason)


# --- the emulator ---------------------------------------------------------------------------


def _pinned_version() -> str:
    manifest = json.loads((E2E_DIR / "package.json").read_text())
    return str(manifest["dependencies"][PACKAGE])


def _installed_version() -> str | None:
    path = E2E_DIR / "node_modules" / PACKAGE / "package.json"
    try:
        return str(json.loads(path.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def ensure_node_modules() -> str:
    """node's path, after `npm ci` when the pinned package is not installed."""
    if _mode() == "off":
        pytest.skip("VORONKA_TEST_E2E=off")
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        unavailable("the e2e tests need node and npm (apt-get install nodejs npm)")
    assert node is not None and npm is not None
    if _installed_version() != _pinned_version():
        try:
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=E2E_DIR,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
        except subprocess.TimeoutExpired:
            unavailable(f"npm ci in {E2E_DIR} took over 10 minutes")
        else:
            if done.returncode != 0 or _installed_version() != _pinned_version():
                unavailable(
                    f"npm ci in {E2E_DIR} failed (exit {done.returncode}):\n"
                    f"{done.stdout[-2000:]}{done.stderr[-2000:]}"
                )
    return node


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The child's first stdout line, or '' when it exits or stays silent."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            return ""
    return proc.stdout.readline()


def stop_process(proc: subprocess.Popen[Any], timeout: float = STOP_TIMEOUT) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    node = ensure_node_modules()
    log_path = tmp_path_factory.mktemp("emulator") / "emulator.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [node, str(E2E_DIR / "emulator.js")],
            cwd=E2E_DIR,
            stdin=subprocess.PIPE,  # closing it stops the emulator, whatever happens to us
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    try:
        line = _read_line(proc, 30)
        try:
            port = int(json.loads(line)["port"])
        except (ValueError, KeyError, TypeError):
            stop_process(proc)
            pytest.fail(
                f"the emulator did not start (first line {line!r}):\n{_tail(log_path)}",
                pytrace=False,
            )
        yield Emulator(f"http://127.0.0.1:{port}", log_path)
    finally:
        stop_process(proc)


# --- the bot process ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, before exec
    """Linux: SIGTERM the bot when the test process dies, even by SIGKILL (no orphan left
    polling a dead emulator)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def voronka_command() -> list[str]:
    script = Path(sys.executable).with_name("voronka")
    return [str(script)] if script.exists() else [sys.executable, "-m", "bot"]


def clean_environment() -> dict[str, str]:
    """os.environ without any Voronka setting (a developer's shell must not leak in)."""
    names = {name.upper() for name in Settings.model_fields}
    return {
        k: v
        for k, v in os.environ.items()
        if k.upper() not in names and not k.upper().startswith("WEBHOOK_")
    }


@dataclass
class BotProcess:
    mode: str
    token: str
    emulator: Emulator
    admin_id: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    _ids: Iterator[int] = field(default_factory=lambda: iter(range(5_000_001, 6_000_000)))

    def user(self, first_name: str, user_id: int | None = None, **kw: Any) -> TgUser:
        """A Telegram user of this bot (a fresh id unless given)."""
        uid = user_id if user_id is not None else next(self._ids)
        return TgUser(self.emulator, self.token, uid, first_name, **kw)

    def admin(self) -> TgUser:
        return self.user("Alla", self.admin_id, username="alla_admin")

    def log_tail(self) -> str:
        return f"\n--- voronka {self.mode} log (tail) ---\n{_tail(self.log_path)}"

    def check_alive(self) -> None:
        code = self.proc.poll()
        assert code is None, f"voronka {self.mode} exited with {code}{self.log_tail()}"


def _ready(bot: BotProcess) -> bool:
    state = bot.emulator.bot_state(bot.token)
    if bot.mode == "polling":
        return bool(state.get("polled"))
    if not state.get("webhook"):
        return False
    with socket.socket() as sock:  # the webhook is set: is its server listening yet?
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", int(bot.env["WEBHOOK_PORT"]))) == 0


def start_bot(
    mode: str, emulator: Emulator, workdir: Path, extra_env: dict[str, str]
) -> BotProcess:
    token = new_token(mode)
    admin_id = 4_000_001
    env = clean_environment()
    env.update(
        BOT_TOKEN=token,
        TELEGRAM_API_URL=emulator.base_url,
        DATABASE_URL=f"sqlite+aiosqlite:///{workdir / 'voronka.db'}",
        ADMIN_IDS=str(admin_id),
        THROTTLE_SECONDS="0",
        LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
        **extra_env,
    )
    command = "run" if mode == "polling" else "webhook"
    log_path = workdir / f"voronka-{mode}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*voronka_command(), command],
            cwd=workdir,  # no project .env is read
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
    bot = BotProcess(mode, token, emulator, admin_id, proc, log_path, env)
    deadline = time.monotonic() + START_TIMEOUT
    while not _ready(bot):
        code = proc.poll()
        if code is not None or time.monotonic() > deadline:
            stop_process(proc)
            what = f"exited with {code}" if code is not None else f"not ready in {START_TIMEOUT:g}s"
            pytest.fail(
                f"voronka {command} {what}{bot.log_tail()}{emulator.log_tail()}",
                pytrace=False,
            )
        time.sleep(0.1)
    return bot


def webhook_env() -> dict[str, str]:
    port = free_port()
    return {
        "WEBHOOK_BASE_URL": f"http://127.0.0.1:{port}",
        "WEBHOOK_PATH": "/telegram/e2e",
        "WEBHOOK_SECRET": secrets.token_urlsafe(24),
        "WEBHOOK_HOST": "127.0.0.1",
        "WEBHOOK_PORT": str(port),
    }


@pytest.fixture(scope="module", params=MODES)
def bot(
    request: pytest.FixtureRequest, emulator: Emulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BotProcess]:
    mode: str = request.param
    extra: dict[str, str] = {}
    if mode == "webhook":
        extra = webhook_env()
    workdir = tmp_path_factory.mktemp(f"voronka-{mode}")
    bot = start_bot(mode, emulator, workdir, extra)
    try:
        yield bot
    finally:
        stop_process(bot.proc)
