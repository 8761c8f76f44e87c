"""rules a manager expects (issue 20): a loss reason may require a comment and apply to
leads or deals only

Revision ID: 0014
Revises: 0012

``loss_reasons.comment_required``: losing with this reason asks for a comment (the default
pipelines: "Other"). ``loss_reasons.applies_to``: ``any``, ``leads`` or ``deals`` (the
conditional refusal is for deals). Both are set from the pipelines file on every sync; a
stage that needs an assigned measurer is a ``requires`` entry of the stage (no column).
Plain ADD/DROP COLUMN (SQLite >= 3.35), not batch mode: recreating `loss_reasons` would drop
its cache-epoch triggers (migration 0006).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.migrate import announce_drops

revision: str = "0014"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "loss_reasons",
        sa.Column("comment_required", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "loss_reasons",
        sa.Column("applies_to", sa.String(16), nullable=False, server_default="any"),
    )


def downgrade() -> None:
    announce_drops(
        "0014",
        "loss_reasons.comment_required, loss_reasons.applies_to (configuration only: the "
        "pipelines file sets them again after an upgrade)",
    )
    op.drop_column("loss_reasons", "applies_to")
    op.drop_column("loss_reasons", "comment_required")
