"""A throwaway PostgreSQL server for the test session.

``PgServer.start()`` runs ``initdb`` into a fresh temporary directory (on /dev/shm when
there is one: creating a database from a template is ~20x faster on tmpfs) and starts
``postgres`` on 127.0.0.1 (a free port) and a unix socket in that directory, with trust
auth and durability switched off (fsync, synchronous_commit, full_page_writes): the data
is thrown away anyway. ``stop()`` shuts it down and deletes the directory.

PostgreSQL refuses to run as root, so when the tests run as root the server binaries run
as the ``postgres`` system user (setuid/setgid in the child, like ``runuser -u postgres``,
supplementary groups dropped) and the temporary directory is chowned to it.

The postmaster runs under a tiny shell watchdog that holds a pipe from this process: when
the test process goes away for any reason (even SIGKILL), the pipe closes and the watchdog
stops the server, so no orphaned servers pile up.

``VORONKA_TEST_PG_URL`` points the tests at an existing server instead (a superuser or a
role with CREATEDB); databases are then created with a per-run prefix and dropped at the end.
"""

from __future__ import annotations

import atexit
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import URL, make_url

MODE_ENV = "VORONKA_TEST_PG"
URL_ENV = "VORONKA_TEST_PG_URL"
MODES = ("auto", "required", "off")


# Runs postgres ("$@" after the directory argument) and exits with it. A background reader
# holds our pipe: on EOF (we closed it, or the test process died, even by SIGKILL) it sends
# SIGINT, PostgreSQL's "fast shutdown". After a clean shutdown (exit 0) the directory is
# deleted; if postgres failed, it is kept so its log can be read (stop() deletes it, and
# the next start sweeps directories whose owner process is gone). fd 3: asynchronous
# lists get /dev/null as stdin.
def watchdog_script(signal: str) -> str:
    """The sh watchdog above, ending the server with `signal` (shared with tests/redis_server)."""
    return f"""
root=$1
shift
exec 3<&0
"$@" &
pid=$!
( read -r _ <&3 || true; kill -{signal} "$pid" 2>/dev/null ) &
wait "$pid"
status=$?
if [ "$status" -eq 0 ]; then rm -rf "$root"; fi
exit "$status"
"""


_WATCHDOG = watchdog_script("INT")


class PgUnavailable(Exception):
    """The server cannot be started here (binaries missing, startup failed...)."""


def mode() -> str:
    value = os.environ.get(MODE_ENV, "auto").strip().lower() or "auto"
    if value not in MODES:
        raise PgUnavailable(f"{MODE_ENV}={value!r}: expected one of {', '.join(MODES)}")
    return value


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", path.parent.name) or ["0"])


def find_bin_dir() -> Path | None:
    """Directory holding initdb and postgres: newest /usr/lib/postgresql/*/bin, else PATH."""
    candidates = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").is_file()),
        key=_version_key,
        reverse=True,
    )
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for directory in candidates:
        if all((directory / name).is_file() for name in ("initdb", "postgres", "pg_isready")):
            return directory
    return None


_PREFIX = "voronka-pg-"
_OWNER_FILE = "owner.pid"


def _base_dirs() -> list[Path]:
    """Where server directories may live: tmpfs first (CREATE DATABASE from a template is
    ~20x faster there than on a disk even with fsync off), then the usual temp dir."""
    dirs = []
    shm = Path("/dev/shm")
    try:
        usage = shutil.disk_usage(shm)
        if os.access(shm, os.W_OK) and usage.free > 1 << 30:
            dirs.append(shm)
    except OSError:
        pass
    dirs.append(Path(tempfile.gettempdir()))
    return dirs


def _sweep_stale() -> None:
    """Delete directories left by test processes that were killed before cleaning up.

    (Their servers are already gone: the watchdog stops them.)
    """
    for directory in (d for base in _base_dirs() for d in base.glob(_PREFIX + "*")):
        try:
            owner = int((directory / _OWNER_FILE).read_text())
        except (OSError, ValueError):
            # Half-deleted or half-created: leave it unless it is clearly abandoned.
            try:
                if time.time() - directory.stat().st_mtime > 3600:
                    shutil.rmtree(directory, ignore_errors=True)
            except OSError:
                pass
            continue
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            shutil.rmtree(directory, ignore_errors=True)
        except PermissionError:
            continue  # alive, someone else's


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class _RunAs:
    uid: int | None
    gid: int | None
    groups: list[int] | None


@dataclass
class PgServer:
    """A running server; ``url(db)`` gives a SQLAlchemy asyncpg URL for one database."""

    base_url: URL
    owned: bool
    bin_dir: Path | None = None
    root: Path | None = None
    version: str = ""
    startup_seconds: float = 0.0
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _user: _RunAs = field(default_factory=lambda: _RunAs(None, None, None), repr=False)

    # --- urls -----------------------------------------------------------------------------

    def url(self, database: str) -> str:
        return self.base_url.set(
            drivername="postgresql+asyncpg", database=database
        ).render_as_string(hide_password=False)

    def dsn(self, database: str = "postgres") -> str:
        """Plain libpq-style DSN for asyncpg.connect()."""
        return self.base_url.set(drivername="postgresql", database=database).render_as_string(
            hide_password=False
        )

    @property
    def admin_database(self) -> str:
        return self.base_url.database or "postgres"

    # --- lifecycle ------------------------------------------------------------------------

    @classmethod
    def from_url(cls, url: str) -> PgServer:
        parsed = make_url(url)
        if parsed.get_backend_name() != "postgresql":
            raise PgUnavailable(f"{URL_ENV} is not a PostgreSQL URL: {url}")
        return cls(base_url=parsed.set(drivername="postgresql"), owned=False)

    @classmethod
    def start(cls) -> PgServer:
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise PgUnavailable(
                "PostgreSQL server binaries not found (looked for initdb in "
                "/usr/lib/postgresql/*/bin and on PATH); install them with "
                "`apt-get install postgresql`, or set VORONKA_TEST_PG_URL"
            )
        started = time.monotonic()
        _sweep_stale()
        root = Path(tempfile.mkdtemp(prefix=_PREFIX, dir=_base_dirs()[0]))
        (root / _OWNER_FILE).write_text(str(os.getpid()))
        server = cls(base_url=make_url("postgresql://"), owned=True, bin_dir=bin_dir, root=root)
        atexit.register(server.stop)
        try:
            server._drop_root()
            server._initdb()
            server._launch()
        except BaseException:
            server.stop()
            raise
        server.startup_seconds = time.monotonic() - started
        return server

    def _drop_root(self) -> None:
        """initdb and postgres refuse to run as root: run them as the postgres user."""
        if os.geteuid() != 0:
            return
        try:
            user = pwd.getpwnam("postgres")
        except KeyError as exc:
            raise PgUnavailable(
                "running as root and there is no `postgres` system user to run the server as "
                "(apt-get install postgresql creates it)"
            ) from exc
        assert self.root is not None
        os.chown(self.root, user.pw_uid, user.pw_gid)
        self._user = _RunAs(user.pw_uid, user.pw_gid, [])

    def _env(self) -> dict[str, str]:
        assert self.root is not None
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LC_ALL": "C",
            "HOME": str(self.root),
        }

    def _initdb(self) -> None:
        assert self.root is not None and self.bin_dir is not None
        data = self.root / "data"
        cmd = [
            str(self.bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]
        result = subprocess.run(
            cmd,
            cwd=self.root,
            env=self._env(),
            capture_output=True,
            text=True,
            check=False,
            user=self._user.uid,
            group=self._user.gid,
            extra_groups=self._user.groups,
        )
        if result.returncode != 0:
            raise PgUnavailable(
                f"initdb failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        version = subprocess.run(
            [str(self.bin_dir / "postgres"), "--version"],
            capture_output=True,
            text=True,
            check=False,
        )
        self.version = version.stdout.strip()

    def _launch(self, attempts: int = 3) -> None:
        assert self.root is not None and self.bin_dir is not None
        log = self.root / "server.log"
        for _ in range(attempts):
            port = _free_port()
            cmd = [
                "/bin/sh",
                "-c",
                _WATCHDOG,
                "pg-watchdog",
                str(self.root),
                str(self.bin_dir / "postgres"),
                "-D",
                str(self.root / "data"),
                "-p",
                str(port),
                "-k",
                str(self.root),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]
            with log.open("ab") as log_file:
                self._proc = subprocess.Popen(
                    cmd,
                    cwd=self.root,
                    env=self._env(),
                    stdin=subprocess.PIPE,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    user=self._user.uid,
                    group=self._user.gid,
                    extra_groups=self._user.groups,
                )
            if self._wait_ready(port):
                self.base_url = make_url(f"postgresql://postgres@127.0.0.1:{port}/postgres")
                return
            text = log.read_text(errors="replace")
            self._shutdown()
            if "could not bind" not in text and "already in use" not in text:
                raise PgUnavailable(f"postgres did not start; its log:\n{text[-3000:]}")
        raise PgUnavailable(f"postgres could not get a free port in {attempts} attempts")

    def _wait_ready(self, port: int, timeout: float = 30.0) -> bool:
        assert self.bin_dir is not None and self._proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = subprocess.run(
                [
                    *(str(self.bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port)),
                    *("-U", "postgres", "-d", "postgres"),
                ],
                check=False,
            )
            if ready.returncode == 0:
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
                proc.stdin.close()  # the watchdog sends SIGINT (fast shutdown) to postgres
            proc.wait(timeout=20)
        except (subprocess.TimeoutExpired, OSError):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)

    def stop(self) -> None:
        """Idempotent: shut the server down and delete its directory."""
        if not self.owned:
            return
        self._shutdown()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None


def connect_info(server: PgServer) -> str:
    """Where the server is, for messages (no password)."""
    return server.base_url.render_as_string(hide_password=True)
