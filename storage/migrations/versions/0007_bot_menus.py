"""commands menus set in Telegram, by scope (issue 11): bot_menus

Revision ID: 0007
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types
from storage.migrate import announce_drops

revision: str = "0007"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bot_menus",
        sa.Column("scope", sa.String(length=40), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("set_at", storage.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("scope", name=op.f("pk_bot_menus")),
    )


def downgrade() -> None:
    announce_drops("0007", "table bot_menus (per-person menu settings)")
    op.drop_table("bot_menus")
