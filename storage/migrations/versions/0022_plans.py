"""plans and the expected close of a deal (issue 26)

Revision ID: 0022
Revises: 0021

``plans``: a month's plan (sales and money) per manager, and for the company
(``employee_id`` NULL). ``deals.expected_close_at``: the close date a manager typed (None:
the stage's ``close_days`` rule decides, services/sales/plans.py), with two partial indexes
the Plan view's forecast reads, and one on the won funnel facts (a month's wins per
manager). Plain ADD/DROP COLUMN: recreating ``deals`` would drop its analytics and
cache-epoch triggers.

Downgrade drops the table ``plans`` (every month's plans) and ``deals.expected_close_at``
(the typed expected-close dates).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.migrate import announce_drops
from storage.types import UTCDateTime

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FORECAST = ["pipeline_id", "stage_id", "manager_id"]


def upgrade() -> None:
    op.create_table(
        "plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("employee_id", sa.Integer(), nullable=True),
        sa.Column("sales_count", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("set_by_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["employee_id"],
            ["employees.id"],
            name=op.f("fk_plans_employee_id_employees"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["set_by_id"], ["employees.id"], name=op.f("fk_plans_set_by_id_employees")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plans")),
    )
    op.create_index("uq_plans_month_employee", "plans", ["month", "employee_id"], unique=True)
    op.create_index(
        "uq_plans_month_company",
        "plans",
        ["month"],
        unique=True,
        sqlite_where=sa.text("employee_id IS NULL"),
        postgresql_where=sa.text("employee_id IS NULL"),
    )
    op.add_column("deals", sa.Column("expected_close_at", UTCDateTime(), nullable=True))
    op.create_index(
        "ix_deals_expected_close",
        "deals",
        [*_FORECAST, "expected_close_at", "amount"],
        sqlite_where=sa.text("expected_close_at IS NOT NULL"),
        postgresql_where=sa.text("expected_close_at IS NOT NULL"),
    )
    op.create_index(
        "ix_deals_close_rule",
        "deals",
        [*_FORECAST, "stage_entered_at", "amount", "expected_close_at"],
        sqlite_where=sa.text("expected_close_at IS NULL"),
        postgresql_where=sa.text("expected_close_at IS NULL"),
    )

    op.create_index(
        "ix_funnel_facts_won_by",
        "funnel_facts",
        ["pipeline_id", "manager_id", "stage_ts", "amount", "outcome"],
        sqlite_where=sa.text("outcome = 'won'"),
        postgresql_where=sa.text("outcome = 'won'"),
    )


def downgrade() -> None:
    bind = op.get_bind()
    plans = bind.scalar(sa.text("SELECT count(*) FROM plans"))
    typed = bind.scalar(sa.text("SELECT count(*) FROM deals WHERE expected_close_at IS NOT NULL"))
    if plans or typed:
        announce_drops(
            "0022",
            f"table plans ({plans} rows: every month's sales plans)",
            f"deals.expected_close_at ({typed} typed expected-close dates)",
        )
    op.drop_index("ix_funnel_facts_won_by", table_name="funnel_facts")
    op.drop_index("ix_deals_close_rule", table_name="deals")
    op.drop_index("ix_deals_expected_close", table_name="deals")
    op.drop_column("deals", "expected_close_at")
    op.drop_index("uq_plans_month_company", table_name="plans")
    op.drop_index("uq_plans_month_employee", table_name="plans")
    op.drop_table("plans")
