"""the Mini App board (issue 15): stale-after days per stage, an index for board columns

Revision ID: 0011
Revises: 0006

``stages.rot_after_days``: a deal in the stage longer than this is stale (the board colours
its card); set from the pipelines file (``rot_after_days`` of a stage). The index serves the
board: a column's open deals, longest in the stage first, and the per-stage count and sum
(amount, manager) without reading the table.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.migrate import announce_drops

revision: str = "0011"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD/DROP COLUMN (SQLite >= 3.35), not batch mode: recreating `stages` would
    # drop its cache-epoch triggers (migration 0006).
    op.add_column("stages", sa.Column("rot_after_days", sa.Integer(), nullable=True))
    op.create_index(
        "ix_deals_board",
        "deals",
        ["pipeline_id", "closed_at", "stage_id", "stage_entered_at", "amount", "manager_id"],
        unique=False,
    )


def downgrade() -> None:
    announce_drops(
        "0011", "stages.rot_after_days (set again from the pipelines file on the next start)"
    )
    op.drop_index("ix_deals_board", table_name="deals")
    op.drop_column("stages", "rot_after_days")
