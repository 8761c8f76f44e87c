"""The reminder outbox: sweeping, claiming and marking messages owed to people."""

from __future__ import annotations

from storage.repositories.base import Repo


class OutboxRepo(Repo):
    pass
