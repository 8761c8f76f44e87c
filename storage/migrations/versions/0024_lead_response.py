"""leads.response_s, leads.late_at: a lead's first-response time (issue 26)

Revision ID: 0024
Revises: 0022

Written at the lead's first touch (services/sales/leads.py), in working time
(WORK_HOURS, WORK_DAYS), so /funnel's response figures are one aggregate query instead of
working-time arithmetic over every lead of the period. Leads touched before this revision
get it from a scheduler job (services/team/norms.py `backfill_response`, in batches); until
then the report computes theirs as before. The partial index finds what is left to fill;
``ix_leads_came_response`` covers what the period's figures read, and
``ix_leads_manager_came_response`` a manager's times for their median.

``leads.late_at``: when the leaders were told the lead got no first touch in time (the
escalation scan passes over it after that: one escalation per lead, a big import's late
leads in one message).

Downgrade drops both columns: the stored times go (they are computed again after an
upgrade), and so do the escalation marks (escalated leads still waiting would be
escalated once more).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.migrate import announce_drops
from storage.types import UTCDateTime

revision: str = "0024"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNFILLED = sa.text("first_action_at IS NOT NULL AND response_s IS NULL")


def upgrade() -> None:
    op.add_column("leads", sa.Column("response_s", sa.Integer(), nullable=True))
    op.add_column("leads", sa.Column("late_at", UTCDateTime(), nullable=True))
    op.create_index(
        "ix_leads_came_response",
        "leads",
        ["created_at", "manager_id", "response_s", "first_action_at"],
        unique=False,
    )
    op.create_index(
        "ix_leads_manager_came_response",
        "leads",
        ["manager_id", "created_at", "response_s"],
        unique=False,
    )
    op.create_index(
        "ix_leads_response_unfilled",
        "leads",
        ["id"],
        unique=False,
        sqlite_where=_UNFILLED,
        postgresql_where=_UNFILLED,
    )


def downgrade() -> None:
    announce_drops(
        "0024",
        "leads.response_s (first-response times: computed again on upgrade)",
        "leads.late_at (when a late lead was escalated)",
    )
    op.drop_index("ix_leads_response_unfilled", table_name="leads")
    op.drop_index("ix_leads_manager_came_response", table_name="leads")
    op.drop_index("ix_leads_came_response", table_name="leads")
    op.drop_column("leads", "late_at")
    op.drop_column("leads", "response_s")
