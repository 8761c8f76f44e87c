"""tasks and reminders (issue 4): indexes for the reminder engine's scans

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("reminders", schema=None) as batch_op:
        batch_op.create_index("ix_reminders_task_id", ["task_id"], unique=False)
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index("ix_tasks_status_due", ["status", "due_at"], unique=False)
    with op.batch_alter_table("installment_dues", schema=None) as batch_op:
        batch_op.create_index("ix_installment_dues_plan_due", ["plan_id", "due_date"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("installment_dues", schema=None) as batch_op:
        batch_op.drop_index("ix_installment_dues_plan_due")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_status_due")
    with op.batch_alter_table("reminders", schema=None) as batch_op:
        batch_op.drop_index("ix_reminders_task_id")
