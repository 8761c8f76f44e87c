"""A per-process cache of what changes rarely and is read on every tap: the staff (actors,
names) and the configuration (pipelines, stages, loss reasons).

Each area has an epoch: a counter in the ``cache_epochs`` table that database triggers bump
on every write to the area's tables (migration 0006), whoever writes -- this process,
another worker, the CLI. A unit of work reads the counters once (one statement, shared
with the update-id check on a tap) and drops every area whose counter moved before anything
is read from it, so several workers stay coherent without talking to each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

AREAS = ("staff", "config")


class ProcessCache:
    """Buckets of cached values per area, valid for the epochs they were filled under."""

    def __init__(self) -> None:
        self._epochs: dict[str, int] = {}
        self._buckets: dict[str, dict[Any, Any]] = {area: {} for area in AREAS}

    def validate(self, epochs: Mapping[str, int]) -> None:
        """Forget the areas whose epoch differs from the one their values were read under."""
        for area in AREAS:
            epoch = epochs.get(area, -1)
            if self._epochs.get(area) != epoch:
                self._buckets[area] = {}
                self._epochs[area] = epoch

    def bucket(self, area: str) -> dict[Any, Any]:
        return self._buckets[area]

    def clear(self) -> None:
        self._epochs.clear()
        self._buckets = {area: {} for area in AREAS}
