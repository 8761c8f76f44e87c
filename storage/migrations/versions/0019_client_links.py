"""client_links, client_invites: the client's own Telegram (issue 25)

Revision ID: 0019
Revises: 0017

``client_links``: a client's Telegram account linked to a contact (through a one-time invite
link or a request left in the bot), with /stop and "blocked the bot" marks.
``client_invites``: the one-time, expiring deep links (only the token's hash is kept).

Downgrade drops both tables: which Telegram account belongs to which contact is lost (the
clients would need a new invite link), and so are the unused invite links.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.migrate import announce_drops
from storage.types import UTCDateTime

revision: str = "0019"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "client_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("telegram_id", sa.BigInteger(), nullable=False),
        sa.Column("first_name", sa.String(length=100), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("linked_at", UTCDateTime(), nullable=False),
        sa.Column("stopped_at", UTCDateTime(), nullable=True),
        sa.Column("blocked_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_client_links_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_links")),
        sa.UniqueConstraint("contact_id", name=op.f("uq_client_links_contact_id")),
    )
    op.create_index(
        op.f("ix_client_links_telegram_id"), "client_links", ["telegram_id"], unique=False
    )
    op.create_table(
        "client_invites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("deal_id", sa.Integer(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.Column("used_by_telegram_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_client_invites_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["deal_id"],
            ["deals.id"],
            name=op.f("fk_client_invites_deal_id_deals"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["employees.id"],
            name=op.f("fk_client_invites_created_by_id_employees"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_invites")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_client_invites_token_hash")),
    )


def downgrade() -> None:
    count = op.get_bind().scalar(sa.text("SELECT count(*) FROM client_links"))
    if count:
        announce_drops(
            "0019",
            f"table client_links ({count} rows: which client's Telegram belongs to which "
            "contact; they need a new invite link)",
            "table client_invites (unused invite links)",
        )
    op.drop_table("client_invites")
    op.drop_index(op.f("ix_client_links_telegram_id"), table_name="client_links")
    op.drop_table("client_links")
