"""Handler tests drive the real dispatcher (see tests/tg.py)."""

from tests.tg import harness  # noqa: F401
