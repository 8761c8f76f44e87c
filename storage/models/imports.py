"""Models of the spreadsheet import (re-exported by storage.models).

``import_jobs``  one row per uploaded file. The bot may run several workers, so nothing of an
                 import lives in process memory between taps: the parsed rows are kept here
                 (``payload``: zlib-compressed JSON, written once at upload), the proposed and
                 edited column mapping, the dry run's cleaned rows (``checked``) and its report
                 (``stats``). A tap on any worker reads the row by id (and its owner).

The two blobs are deferred: the mapping taps never load them. A finished, cancelled or
expired job keeps its stats but drops both blobs.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base, JSONDict


class ImportStatus(StrEnum):
    MAPPING = "mapping"  # uploaded; the mapping may change
    CHECKED = "checked"  # dry run done for the current mapping; may be imported
    DONE = "done"
    CANCELLED = "cancelled"
    EXPIRED = "expired"  # abandoned for too long; blobs dropped


OPEN_STATUSES = (ImportStatus.MAPPING, ImportStatus.CHECKED)


class ImportJob(Base):
    __tablename__ = "import_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("employees.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default=ImportStatus.MAPPING, index=True)
    row_count: Mapped[int] = mapped_column(Integer)
    headers: Mapped[list[str]] = mapped_column(default=list)
    samples: Mapped[list[str]] = mapped_column(default=list)  # first non-empty value per column
    mapping: Mapped[list[str]] = mapped_column(default=list)  # a target per column
    stats: Mapped[JSONDict] = mapped_column(default=dict)  # dry-run report, then the result
    payload: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    checked: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
