"""fulfilment (issue 24): linked deals, order fields, job settings on stages

Revision ID: 0018
Revises: 0012

``stages.extras``: what a stage does besides its entry task, from the pipelines file: the
deals it links (``links``: entering the stage creates a deal in another pipeline), the final
payment it makes due, whether a debt blocks it. ``deals.items`` (the items to install, one
line each), ``deals.production_at`` and ``deals.delivery_at`` (an order's dates, with
reminders). Plain ADD/DROP COLUMN: recreating ``deals`` or ``stages`` would drop their
analytics and cache-epoch triggers.

Downgrade drops these four columns: an order's items and its production and delivery dates
are lost (the orders themselves stay, as plain deals).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types
from storage.migrate import announce_drops

revision: str = "0018"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("stages", sa.Column("extras", sa.JSON(), nullable=True))
    op.add_column("deals", sa.Column("items", sa.JSON(), nullable=True))
    op.add_column("deals", sa.Column("production_at", storage.types.UTCDateTime(), nullable=True))
    op.add_column("deals", sa.Column("delivery_at", storage.types.UTCDateTime(), nullable=True))


def downgrade() -> None:
    announce_drops(
        "0018",
        "deals.items, deals.production_at, deals.delivery_at (orders' items and dates)",
        "stages.extras (read again from the pipelines file)",
    )
    op.drop_column("deals", "delivery_at")
    op.drop_column("deals", "production_at")
    op.drop_column("deals", "items")
    op.drop_column("stages", "extras")
