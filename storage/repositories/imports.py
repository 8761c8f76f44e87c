"""Spreadsheet imports: import jobs and the look-ups an import row needs."""

from __future__ import annotations

from storage.repositories.base import Repo


class ImportRepo(Repo):
    pass
