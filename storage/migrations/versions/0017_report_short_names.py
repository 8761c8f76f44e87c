"""phone-first reports: stage short names, the managers ranking led by the manager (issue 23)

Revision ID: 0017
Revises: 0012

``stages.short`` / ``short_en``: a stage's name in a /funnel table column (config `short`);
None until the next config sync fills them. ``ix_funnel_facts_manager`` (pipeline, manager,
outcome, first entry, amount): the managers ranking reads one short range per (manager,
outcome) of the period's cohort instead of the whole cohort grouped in a temporary b-tree.
``ix_funnel_facts_happened`` (pipeline, outcome, stage entry, ...): what *happened* in a period
(won, lost, parked by the date of it), whenever the deal came in.
The leads of a manager (response times in the index) come from it too.
The downgrade drops the indexes and the two columns (the short names come back from the
config on the next sync after an upgrade: nothing is lost that the config does not hold).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.migrate import announce_drops

revision: str = "0017"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("stages", sa.Column("short", sa.String(16), nullable=True))
    op.add_column("stages", sa.Column("short_en", sa.String(16), nullable=True))
    op.create_index(
        "ix_funnel_facts_manager",
        "funnel_facts",
        ["pipeline_id", "manager_id", "outcome", "entered_ts", "amount", "response_s"],
    )
    op.create_index(
        "ix_funnel_facts_happened",
        "funnel_facts",
        [
            "pipeline_id",
            "outcome",
            "reason_id",
            "flow_stage_id",
            "stage_ts",
            "manager_id",
            "amount",
        ],
    )


def downgrade() -> None:
    announce_drops("0017", "stages.short, stages.short_en (read again from the pipelines file)")
    op.drop_index("ix_funnel_facts_happened", table_name="funnel_facts")
    op.drop_index("ix_funnel_facts_manager", table_name="funnel_facts")
    op.drop_column("stages", "short_en")
    op.drop_column("stages", "short")
