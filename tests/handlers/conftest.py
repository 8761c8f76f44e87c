"""Handler tests drive the real dispatcher (see tests/tg.py)."""

import pytest

from services.permissions import Actor
from tests.factories import MakeActor, cast
from tests.tg import harness  # noqa: F401


@pytest.fixture
async def team(make_actor: MakeActor) -> dict[str, Actor]:
    """The staff of most flows: managers ann and bob, head of measurers hank, measurers mia
    and max, leader lee (made in that order)."""
    return await cast(make_actor, "ann", "bob", "hank", "mia", "max", "lee")
