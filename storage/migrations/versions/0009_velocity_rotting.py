"""velocity and rotting (issue 14): stages.rot_after_days, the won-facts and stale-deal indexes

Revision ID: 0009
Revises: 0006

``stages.rot_after_days``: days a deal may stay in the stage before it is stale (from the
pipelines TOML, ``rot_after_days``). ``ix_deals_stage_entered``: the stale-deal scan reads
one range per stage. ``ix_funnel_facts_won`` (partial: won facts): the sales cycle of a
cohort is one range of it. Adding a column and indexes recreates no table, so the
analytics and cache-epoch triggers stay.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WON = sa.text("outcome = 'won'")


def upgrade() -> None:
    op.add_column("stages", sa.Column("rot_after_days", sa.Integer(), nullable=True))
    op.create_index("ix_deals_stage_entered", "deals", ["stage_id", "stage_entered_at"])
    op.create_index(
        "ix_funnel_facts_won",
        "funnel_facts",
        ["pipeline_id", "entered_ts", "manager_id", "stage_ts"],
        sqlite_where=WON,
        postgresql_where=WON,
    )


def downgrade() -> None:
    op.drop_index("ix_funnel_facts_won", table_name="funnel_facts")
    op.drop_index("ix_deals_stage_entered", table_name="deals")
    # SQLite >= 3.35 drops a column in place (no table rebuild: the triggers stay).
    op.drop_column("stages", "rot_after_days")
