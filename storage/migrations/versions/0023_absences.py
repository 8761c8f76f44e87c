"""absences: managers' days off (issue 26)

Revision ID: 0023
Revises: 0019

``absences``: one row per (employee, local day) a leader marked as a day off; lead
distribution skips them that day and the first-response escalation offers only the
managers on duty.

Downgrade drops the table: the days off set by leaders are lost (leads would be given to
those managers again on those days).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.migrate import announce_drops
from storage.types import UTCDateTime

revision: str = "0023"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "absences",
        sa.Column("employee_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("set_by_id", sa.Integer(), nullable=True),
        sa.Column("set_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["employee_id"],
            ["employees.id"],
            name=op.f("fk_absences_employee_id_employees"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["set_by_id"], ["employees.id"], name=op.f("fk_absences_set_by_id_employees")
        ),
        sa.PrimaryKeyConstraint("employee_id", "day", name=op.f("pk_absences")),
    )
    op.create_index(op.f("ix_absences_day"), "absences", ["day"], unique=False)


def downgrade() -> None:
    count = op.get_bind().scalar(sa.text("SELECT count(*) FROM absences"))
    if count:
        announce_drops("0023", f"table absences ({count} rows: managers' days off)")
    op.drop_index(op.f("ix_absences_day"), table_name="absences")
    op.drop_table("absences")
