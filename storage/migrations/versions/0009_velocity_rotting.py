"""velocity and rotting (issue 14): the won-facts and stale-deal indexes

Revision ID: 0009
Revises: 0007

(``stages.rot_after_days``, the days a deal may stay in a stage before it is stale, came
with 0011.) ``ix_deals_stage_entered``: the stale-deal scan reads
one range per stage. ``ix_funnel_facts_won`` (partial: won facts): the sales cycle of a
cohort is one range of it. Adding indexes recreates no table, so the
analytics and cache-epoch triggers stay.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WON = sa.text("outcome = 'won'")


def upgrade() -> None:
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
