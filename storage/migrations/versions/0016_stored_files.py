"""stored_files: Voronka's own copies of the files people send (issue 22)

Revision ID: 0016
Revises: 0012

One row per distinct file seen on the timeline (keyed by Telegram's file_unique_id, else
the file id), with the state of its copy under FILES_DIR (content-addressed by SHA-256).
The downgrade drops the table: the copies on disk stay where they are (nothing else
refers to them), only the record of which file id each one is goes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.migrate import announce_drops
from storage.types import UTCDateTime

revision: str = "0016"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stored_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=256), nullable=False),
        sa.Column("file_id", sa.String(length=256), nullable=False),
        sa.Column("media_type", sa.String(length=16), nullable=False),
        sa.Column("activity_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_try_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("stored_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stored_files")),
        sa.UniqueConstraint("key", name=op.f("uq_stored_files_key")),
    )
    op.create_index(
        op.f("ix_stored_files_activity_id"), "stored_files", ["activity_id"], unique=False
    )
    op.create_index(op.f("ix_stored_files_sha256"), "stored_files", ["sha256"], unique=False)
    op.create_index("ix_stored_files_due", "stored_files", ["state", "next_try_at"], unique=False)


def downgrade() -> None:
    count = op.get_bind().scalar(sa.text("SELECT count(*) FROM stored_files"))
    if count:
        announce_drops(
            "0016",
            f"table stored_files ({count} rows: which file id each copy under FILES_DIR "
            "is); the copies on disk are kept",
        )
    op.drop_index("ix_stored_files_due", table_name="stored_files")
    op.drop_index(op.f("ix_stored_files_sha256"), table_name="stored_files")
    op.drop_index(op.f("ix_stored_files_activity_id"), table_name="stored_files")
    op.drop_table("stored_files")
