"""timeline and Telegram Business (issue 12)

Revision ID: 0008
Revises: 0006

`activities` becomes the one timeline of a deal, a lead or a contact: it gains the
contact, the task, Telegram file ids (with media type and caption), the business chat and
message ids and a JSON payload, and indexes for the card and the history pages. The
measurement files that lived in `attachments` are copied into it (file rows marked
``text = 'attachment:<id>'``); `attachments` stays, no longer written, for a downgrade
(which copies the files written since back into it). Every step keeps the rows of the
tables it does not create, going down and up again (tests/integration/test_migrations.py).
Contacts get their Telegram user id; `business_connections` and `business_chats` record
the managers' connected Telegram Business accounts and the client chats seen through them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types
from storage.migrate import announce_drops

revision: str = "0008"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# An activity copied from an attachment says which: text = 'attachment:<id>'.
MARK = "'attachment:' || t.id"
FILE_COLUMNS = (
    ("task_id", "task_id"),
    ("file_id", "file_id"),
    ("file_unique_id", "file_unique_id"),
    ("media_type", "kind"),
    ("caption", "caption"),
)


def _sequence_past_max(table: str) -> None:
    """PostgreSQL: the id sequence past the table's largest id before INSERT ... SELECT
    (rows written with explicit ids leave it behind)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
        )


def upgrade() -> None:
    with op.batch_alter_table("activities", schema=None) as batch_op:
        batch_op.add_column(sa.Column("contact_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("task_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("file_id", sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column("file_unique_id", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("media_type", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("caption", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("chat_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("message_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("payload", sa.JSON(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_activities_contact_id_contacts"),
            "contacts",
            ["contact_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_activities_task_id_tasks"),
            "tasks",
            ["task_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.drop_index("ix_activities_deal_at")
        batch_op.drop_index("ix_activities_lead_id")
        batch_op.create_index("ix_activities_deal_at", ["deal_id", "at", "id"], unique=False)
        batch_op.create_index("ix_activities_deal_kind_at", ["deal_id", "kind", "at"], unique=False)
        batch_op.create_index("ix_activities_deal_media", ["deal_id", "media_type"], unique=False)
        batch_op.create_index("ix_activities_lead_at", ["lead_id", "at", "id"], unique=False)
        batch_op.create_index("ix_activities_contact_at", ["contact_id", "at", "id"], unique=False)
        batch_op.create_index("ix_activities_chat_message", ["chat_id", "message_id"], unique=False)
    # The measurement files move onto the timeline: each attachment once, as a file row
    # marked with its id (a row left by a downgrade gets its file columns back instead).
    op.execute(
        "UPDATE activities SET "
        + ", ".join(
            f"{column} = (SELECT t.{source} FROM attachments t WHERE {MARK} = activities.text)"
            for column, source in FILE_COLUMNS
        )
        + " WHERE kind = 'file' AND text LIKE 'attachment:%'"
    )
    _sequence_past_max("activities")
    op.execute(
        "INSERT INTO activities (deal_id, task_id, kind, text, author_id, at, file_id, "
        f"file_unique_id, media_type, caption) SELECT deal_id, task_id, 'file', {MARK}, "
        "uploaded_by_id, at, file_id, file_unique_id, kind, caption FROM attachments t "
        f"WHERE NOT EXISTS (SELECT 1 FROM activities a WHERE a.text = {MARK} "
        "AND a.kind = 'file') ORDER BY t.id"
    )

    # Plain ADD COLUMN (not batch mode): recreating `contacts` on SQLite would fail on the
    # rows that reference it (foreign keys on).
    op.add_column("contacts", sa.Column("telegram_id", sa.BigInteger(), nullable=True))
    op.create_index(op.f("ix_contacts_telegram_id"), "contacts", ["telegram_id"], unique=False)

    op.create_table(
        "business_connections",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("employee_id", sa.Integer(), nullable=True),
        sa.Column("telegram_user_id", sa.BigInteger(), nullable=False),
        sa.Column("user_chat_id", sa.BigInteger(), nullable=False),
        sa.Column("can_reply", sa.Boolean(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("connected_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", storage.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["employee_id"],
            ["employees.id"],
            name=op.f("fk_business_connections_employee_id_employees"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_business_connections")),
    )
    with op.batch_alter_table("business_connections", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_business_connections_employee_id"), ["employee_id"], unique=False
        )
    op.create_table(
        "business_chats",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("employee_id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.String(length=128), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("lead_id", sa.Integer(), nullable=True),
        sa.Column("deal_id", sa.Integer(), nullable=True),
        sa.Column("excluded", sa.Boolean(), nullable=False),
        sa.Column("last_client_message_at", storage.types.UTCDateTime(), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["business_connections.id"],
            name=op.f("fk_business_chats_connection_id_business_connections"),
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_business_chats_contact_id_contacts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["deal_id"],
            ["deals.id"],
            name=op.f("fk_business_chats_deal_id_deals"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["employee_id"], ["employees.id"], name=op.f("fk_business_chats_employee_id_employees")
        ),
        sa.ForeignKeyConstraint(
            ["lead_id"],
            ["leads.id"],
            name=op.f("fk_business_chats_lead_id_leads"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_business_chats")),
    )
    with op.batch_alter_table("business_chats", schema=None) as batch_op:
        batch_op.create_index("ix_business_chats_chat", ["chat_id"], unique=False)
        batch_op.create_index(
            "ix_business_chats_employee_chat", ["employee_id", "chat_id"], unique=True
        )


def downgrade() -> None:
    announce_drops(
        "0008",
        "tables business_connections, business_chats (Telegram Business links)",
        "contacts.telegram_id",
        "activities columns contact_id, task_id, file_id, file_unique_id, media_type,"
        " caption, chat_id, message_id, payload (chat messages and timeline facts;"
        " files are copied back to attachments)",
    )
    with op.batch_alter_table("business_chats", schema=None) as batch_op:
        batch_op.drop_index("ix_business_chats_employee_chat")
        batch_op.drop_index("ix_business_chats_chat")
    op.drop_table("business_chats")
    with op.batch_alter_table("business_connections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_business_connections_employee_id"))
    op.drop_table("business_connections")
    op.drop_index(op.f("ix_contacts_telegram_id"), table_name="contacts")
    op.drop_column("contacts", "telegram_id")  # plain DROP COLUMN (SQLite >= 3.35)

    # Files written since 0008 go where the old code looks (the attachments of a deal, a
    # measurement's task); their rows stay, marked, so an upgrade does not copy them twice.
    _sequence_past_max("attachments")
    op.execute(
        "INSERT INTO attachments (deal_id, task_id, kind, file_id, file_unique_id, caption, "
        "uploaded_by_id, at) SELECT deal_id, task_id, media_type, file_id, file_unique_id, "
        "caption, author_id, at FROM activities WHERE kind = 'file' AND text = '' "
        "AND deal_id IS NOT NULL AND file_id IS NOT NULL ORDER BY id"
    )
    op.execute(
        f"UPDATE activities SET text = (SELECT MIN({MARK}) FROM attachments t "
        "WHERE t.deal_id = activities.deal_id AND t.file_id = activities.file_id "
        "AND t.at = activities.at) WHERE kind = 'file' AND text = '' "
        "AND deal_id IS NOT NULL AND file_id IS NOT NULL"
    )
    with op.batch_alter_table("activities", schema=None) as batch_op:
        batch_op.drop_index("ix_activities_chat_message")
        batch_op.drop_index("ix_activities_contact_at")
        batch_op.drop_index("ix_activities_lead_at")
        batch_op.drop_index("ix_activities_deal_media")
        batch_op.drop_index("ix_activities_deal_kind_at")
        batch_op.drop_index("ix_activities_deal_at")
        batch_op.drop_constraint(batch_op.f("fk_activities_task_id_tasks"), type_="foreignkey")
        batch_op.drop_constraint(
            batch_op.f("fk_activities_contact_id_contacts"), type_="foreignkey"
        )
        batch_op.drop_column("payload")
        batch_op.drop_column("message_id")
        batch_op.drop_column("chat_id")
        batch_op.drop_column("caption")
        batch_op.drop_column("media_type")
        batch_op.drop_column("file_unique_id")
        batch_op.drop_column("file_id")
        batch_op.drop_column("task_id")
        batch_op.drop_column("contact_id")
        batch_op.create_index("ix_activities_deal_at", ["deal_id", "at"], unique=False)
        batch_op.create_index(batch_op.f("ix_activities_lead_id"), ["lead_id"], unique=False)
