"""A throwaway Redis server for the test session (the counterpart of tests/pg.py).

``RedisServer.start()`` runs Debian's ``redis-server`` on 127.0.0.1 (a free port) with a
fresh temporary directory, no persistence (no RDB snapshots, no AOF) and no unix socket.
``stop()`` shuts it down and deletes the directory.

As with PostgreSQL, the server runs under a tiny shell watchdog that holds a pipe from this
process: when the test process goes away for any reason (even SIGKILL) the pipe closes and
the watchdog stops the server, so no orphaned servers pile up.

``VORONKA_TEST_REDIS``: ``auto`` (default: Redis tests are skipped when ``redis-server`` is
missing), ``required`` (scripts/test: they FAIL if the server cannot start), ``off`` (skipped).
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.pg import watchdog_script

MODE_ENV = "VORONKA_TEST_REDIS"
MODES = ("auto", "required", "off")

# Runs redis-server ("$@" after the directory argument). A background reader holds our
# pipe: on EOF it sends SIGTERM (Redis shuts down; nothing to save). The directory is
# deleted afterwards unless the server failed (its log is kept for reading).
_WATCHDOG = watchdog_script("TERM")

_PREFIX = "voronka-redis-"


class RedisUnavailable(Exception):
    """The server cannot be started here (binary missing, startup failed...)."""


def mode() -> str:
    value = os.environ.get(MODE_ENV, "auto").strip().lower() or "auto"
    if value not in MODES:
        raise RedisUnavailable(f"{MODE_ENV}={value!r}: expected one of {', '.join(MODES)}")
    return value


def find_binary() -> str | None:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").is_file() else None
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def ping(port: int, timeout: float = 1.0) -> bool:
    """True when a Redis server answers PING on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class RedisServer:
    port: int = 0
    root: Path | None = None
    version: str = ""
    startup_seconds: float = 0.0
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    @classmethod
    def start(cls) -> RedisServer:
        binary = find_binary()
        if binary is None:
            raise RedisUnavailable(
                "redis-server not found on PATH; install it with `apt-get install redis-server`"
            )
        started = time.monotonic()
        root = Path(tempfile.mkdtemp(prefix=_PREFIX))
        server = cls(root=root)
        atexit.register(server.stop)
        try:
            version = subprocess.run(
                [binary, "--version"], capture_output=True, text=True, check=False
            )
            server.version = version.stdout.strip().split(" sha=")[0]
            server._launch(binary)
        except BaseException:
            server.stop()
            raise
        server.startup_seconds = time.monotonic() - started
        return server

    def _launch(self, binary: str, attempts: int = 3) -> None:
        assert self.root is not None
        log = self.root / "server.log"
        for _ in range(attempts):
            port = _free_port()
            cmd = [
                *("/bin/sh", "-c", _WATCHDOG, "redis-watchdog", str(self.root), binary),
                *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(self.root)),
                *("--save", "", "--appendonly", "no", "--daemonize", "no"),
                *("--protected-mode", "yes", "--databases", "16", "--unixsocket", ""),
            ]
            with log.open("ab") as log_file:
                self._proc = subprocess.Popen(
                    cmd,
                    cwd=self.root,
                    stdin=subprocess.PIPE,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            if self._wait_ready(port):
                self.port = port
                return
            text = log.read_text(errors="replace")
            self._shutdown()
            if "Address already in use" not in text:
                raise RedisUnavailable(f"redis-server did not start; its log:\n{text[-3000:]}")
        raise RedisUnavailable(f"redis-server could not get a free port in {attempts} attempts")

    def _wait_ready(self, port: int, timeout: float = 20.0) -> bool:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ping(port, timeout=0.5):
                return True
            if self._proc.poll() is not None:
                return False
            time.sleep(0.02)
        return False

    def _shutdown(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()  # the watchdog sends SIGTERM to redis-server
            proc.wait(timeout=20)
        except (subprocess.TimeoutExpired, OSError):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)

    def stop(self) -> None:
        """Idempotent: shut the server down and delete its directory."""
        self._shutdown()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
