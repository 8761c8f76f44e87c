"""reminders to clients (issue 25): the outbox writes to a client's linked Telegram too

Revision ID: 0021
Revises: 0023

``reminders.client_link_id`` (FK client_links, ON DELETE CASCADE): a row for a client (a
stage message, an appointment to confirm, a payment reminder), swept like the staff's;
``reminders.recipient_id`` becomes NULL for those rows, and a check keeps exactly one of
the two. On SQLite the table is recreated (batch mode): ``reminders`` has no triggers
(migration 0006 and 0003 put none on it), so nothing is lost by that.

Downgrade deletes the rows for clients (messages to clients, sent or not: they cannot be
kept without an employee to address them to) and drops the column.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.migrate import announce_drops

revision: str = "0021"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("reminders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("client_link_id", sa.Integer(), nullable=True))
        batch_op.alter_column("recipient_id", existing_type=sa.Integer(), nullable=True)
        batch_op.create_foreign_key(
            batch_op.f("fk_reminders_client_link_id_client_links"),
            "client_links",
            ["client_link_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_index(
            batch_op.f("ix_reminders_client_link_id"), ["client_link_id"], unique=False
        )
        batch_op.create_check_constraint(
            "one_recipient", "(recipient_id IS NULL) <> (client_link_id IS NULL)"
        )


def downgrade() -> None:
    count = op.get_bind().scalar(
        sa.text("SELECT count(*) FROM reminders WHERE client_link_id IS NOT NULL")
    )
    if count:
        announce_drops("0021", f"reminders to clients ({count} rows, sent or not)")
    op.execute("DELETE FROM reminders WHERE client_link_id IS NOT NULL")
    with op.batch_alter_table("reminders", schema=None) as batch_op:
        batch_op.drop_constraint("one_recipient", type_="check")
        batch_op.drop_index(batch_op.f("ix_reminders_client_link_id"))
        batch_op.drop_constraint(
            batch_op.f("fk_reminders_client_link_id_client_links"), type_="foreignkey"
        )
        batch_op.drop_column("client_link_id")
        batch_op.alter_column("recipient_id", existing_type=sa.Integer(), nullable=False)
