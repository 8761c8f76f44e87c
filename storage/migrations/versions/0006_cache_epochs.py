"""cache epochs (issue 10): a counter per cached area, bumped by triggers

Revision ID: 0006
Revises: 0005

Processes cache the staff (actors, names) and the configuration (pipelines, stages, loss
reasons, questions). Every write to those tables bumps its area's counter in the same
transaction -- by trigger, so every writer is covered (services, the CLI, the demo
generator, a later engineer's code) -- and a process compares the counters it cached
against the table's with one read per update.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.migrate import announce_drops

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AREAS = {
    "staff": ("employees",),
    "config": ("pipelines", "stages", "loss_reasons", "qualification_questions"),
}
EVENTS = ("insert", "update", "delete")


def upgrade() -> None:
    op.create_table(
        "cache_epochs",
        sa.Column("name", sa.String(length=16), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_cache_epochs")),
    )
    op.bulk_insert(
        sa.table("cache_epochs", sa.column("name"), sa.column("version")),
        [{"name": area, "version": 0} for area in AREAS],
    )
    sqlite = op.get_bind().dialect.name == "sqlite"
    if not sqlite:
        op.execute(
            "CREATE FUNCTION voronka_bump_epoch() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN UPDATE cache_epochs SET version = version + 1 WHERE name = TG_ARGV[0]; "
            "RETURN NULL; END $$"
        )
    for area, tables in AREAS.items():
        for table in tables:
            if sqlite:
                for ev in EVENTS:
                    op.execute(
                        f"CREATE TRIGGER trg_epoch_{table}_{ev} AFTER {ev.upper()} ON {table} "
                        f"BEGIN UPDATE cache_epochs SET version = version + 1 "
                        f"WHERE name = '{area}'; END"
                    )
            else:
                op.execute(
                    f"CREATE TRIGGER trg_epoch_{table} AFTER INSERT OR UPDATE OR DELETE "
                    f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION voronka_bump_epoch('{area}')"
                )


def downgrade() -> None:
    announce_drops("0006", "table cache_epochs (cache counters; rebuilt empty)")
    sqlite = op.get_bind().dialect.name == "sqlite"
    for tables in AREAS.values():
        for table in tables:
            if sqlite:
                for ev in EVENTS:
                    op.execute(f"DROP TRIGGER IF EXISTS trg_epoch_{table}_{ev}")
            else:
                op.execute(f"DROP TRIGGER IF EXISTS trg_epoch_{table} ON {table}")
    if not sqlite:
        op.execute("DROP FUNCTION IF EXISTS voronka_bump_epoch()")
    op.drop_table("cache_epochs")
