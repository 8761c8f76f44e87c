"""Models of the analytics area (imported by storage.models)."""

from __future__ import annotations
