"""Storage's own errors: what the database refused, in words the domain can catch.

SQLAlchemy's exceptions stay inside storage/: the unit of work turns them into these, and
services (services/common.py, the intake API...) map these to domain errors.
"""

from __future__ import annotations


class StorageError(Exception):
    """Base of the errors storage raises on purpose."""


class Conflict(StorageError):
    """A versioned row changed since it was read (optimistic locking): someone else's
    update committed first, ours matched no row."""


class Duplicate(StorageError):
    """A unique key (or another integrity constraint) refused the row: it exists already."""
