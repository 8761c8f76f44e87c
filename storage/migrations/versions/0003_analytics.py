"""analytics (issue 5): funnel_facts, stage_visits and the triggers that maintain them

Revision ID: 0003
Revises: 0002

Why triggers: the period funnel must aggregate per deal (furthest stage reached, outcome,
cohort) yet cost about one indexed COUNT over the period's history rows. A per-deal GROUP BY
over stage_history cannot (SQLite has no hash aggregate: it sorts every row). So each
history insert maintains one row per (subject, pipeline) in ``funnel_facts`` and one row
per finished stay in ``stage_visits``; reports then read a covering index range.

Triggers rather than calls from services: every writer of stage_history (deal and lead
services, imports, the demo generator, code not written yet) keeps the tables right, in
the same transaction, and a refused operation that rolls back leaves them untouched.
The statements are written once and rendered for SQLite (trigger bodies) and PostgreSQL
(plpgsql trigger functions); only the epoch-seconds expression differs. A stay ends when a
history row names its stage as ``from_stage_id`` (the services always write the subject's
current stage there); a writer that leaves it NULL on a move loses that one visit.

SQLite runs each statement that fires a trigger with a statement journal; with the default
``temp_store`` that is a temporary file, about 20 µs per history insert. Bulk writers
should insert many rows per statement (storage/bulk.py does), or set
``PRAGMA temp_store = MEMORY`` on their connection.

On upgrade, existing history is replayed through the triggers (copied out, deleted and
re-inserted in id order), so old data is reported by the same code as new data.

NOTE for later migrations: on SQLite, a batch_alter_table that *recreates* stage_history,
deals or leads drops these triggers with the old table; such a migration must re-create
them (the analytics tests fail if they are missing).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.migrate import announce_drops

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Duration bucket edges in seconds: bucket 0 is under a minute, then each edge is 15% above
# the previous one, up to two years. storage.models_analytics.VISIT_BUCKET_LIMIT bounds the
# bucket numbers (a reader only needs that bound).
_EDGES: list[int] = [60]
while _EDGES[-1] < 2 * 365 * 86400:
    _EDGES.append(-(-_EDGES[-1] * 115 // 100))
assert len(_EDGES) < 128


def _bucket(d: str, lo: int = 0, hi: int = len(_EDGES)) -> str:
    """SQL for the number of edges <= d, as a balanced CASE tree (7 comparisons)."""
    if lo == hi:
        return str(lo)
    mid = (lo + hi) // 2
    return (
        f"CASE WHEN {d} < {_EDGES[mid]} THEN {_bucket(d, lo, mid)} "
        f"ELSE {_bucket(d, mid + 1, hi)} END"
    )


def _ts(dialect: str, expr: str) -> str:
    """Whole epoch seconds of a stored UTC datetime, truncated, on either database."""
    if dialect == "sqlite":
        # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff'; strftime would round the fraction.
        return f"CAST(strftime('%s', substr({expr}, 1, 19)) AS INTEGER)"
    return f"CAST(floor(extract(epoch FROM {expr})) AS BIGINT)"


def _rank(stage_id: str) -> str:
    """Order of flow stages: active stages by position, then won stages after them."""
    return (
        "(SELECT CASE r.kind WHEN 'won' THEN 1000000 + r.position "
        "WHEN 'active' THEN r.position ELSE -1 END "
        f"FROM stages r WHERE r.id = {stage_id})"
    )


def _history_body(dialect: str, subject: str, table: str) -> str:
    """The statements run for each new history row of a deal or a lead.

    1. The stay the row ends (the subject's facts row in the stage the row comes from)
       becomes a visit. 2. The facts row of the row's pipeline is inserted or moved on.
    3. The subject's facts rows in other pipelines are marked as left.
    ``LIMIT 1 OFFSET 0`` keeps the inner selects from being flattened into the outer ones
    (on both databases), so each timestamp is converted once, not once per use.
    """
    now = _ts(dialect, "NEW.at")
    # A lead's facts carry its response time (kept current by analytics_lead_response).
    lead, response = "", "NULL"
    if table == "leads":
        lead = ", t.first_action_at AS first_action_at, t.created_at AS created_at"
        response = _response(dialect, "n")
    entry = (
        "(SELECT e.id FROM stages e WHERE e.pipeline_id = NEW.pipeline_id "
        "AND e.kind = 'active' AND NOT e.archived ORDER BY e.position, e.id LIMIT 1)"
    )
    return f"""
INSERT INTO stage_visits ({subject}, pipeline_id, stage_id, cohort_ts, duration_s, bucket,
                          manager_id)
SELECT v.subject, v.pipeline_id, v.stage_id, v.cohort_ts, v.d, {_bucket("v.d")}, v.manager_id
FROM (
    SELECT f.{subject} AS subject, f.pipeline_id AS pipeline_id, f.stage_id AS stage_id,
           f.entered_ts AS cohort_ts, f.manager_id AS manager_id,
           CASE WHEN x.now > f.stage_ts THEN x.now - f.stage_ts ELSE 0 END AS d
    FROM funnel_facts f, (SELECT {now} AS now LIMIT 1 OFFSET 0) x
    WHERE f.{subject} = NEW.{subject} AND f.stage_id = NEW.from_stage_id
      AND f.outcome <> 'left'
    LIMIT 1 OFFSET 0
) v;
INSERT INTO funnel_facts ({subject}, pipeline_id, entered_ts, stage_id, stage_ts,
                          flow_stage_id, reached_stage_id, outcome, reason_id, manager_id,
                          amount, response_s)
SELECT n.subject, n.pipeline_id, n.now, n.stage_id, n.now, n.flow, n.flow, n.outcome,
       n.reason_id, n.manager_id, n.amount, {response}
FROM (
    SELECT NEW.{subject} AS subject, NEW.pipeline_id AS pipeline_id, {now} AS now,
           s.id AS stage_id,
           CASE WHEN s.kind IN ('active', 'won') THEN s.id
                ELSE COALESCE({entry}, s.id) END AS flow,
           CASE WHEN s.kind = 'active' THEN 'open' ELSE s.kind END AS outcome,
           NEW.reason_id AS reason_id, t.manager_id AS manager_id, t.amount AS amount{lead}
    FROM stages s JOIN {table} t ON t.id = NEW.{subject}
    WHERE s.id = NEW.to_stage_id
    LIMIT 1 OFFSET 0
) n
WHERE true
ON CONFLICT ({subject}, pipeline_id) WHERE {subject} IS NOT NULL DO UPDATE SET
    stage_id = excluded.stage_id,
    stage_ts = excluded.stage_ts,
    flow_stage_id = CASE WHEN excluded.outcome IN ('open', 'won')
                         THEN excluded.stage_id ELSE funnel_facts.flow_stage_id END,
    reached_stage_id = CASE
        WHEN excluded.outcome IN ('open', 'won')
             AND {_rank("excluded.stage_id")} > {_rank("funnel_facts.reached_stage_id")}
        THEN excluded.stage_id ELSE funnel_facts.reached_stage_id END,
    outcome = excluded.outcome,
    reason_id = excluded.reason_id,
    manager_id = excluded.manager_id,
    amount = excluded.amount;
UPDATE funnel_facts SET outcome = 'left'
WHERE {subject} = NEW.{subject} AND pipeline_id <> NEW.pipeline_id
  AND outcome IN ('open', 'frozen');
"""


def _response(dialect: str, row: str) -> str:
    """first_action_at - created_at in whole seconds (NULL before the first action)."""
    return f"{_ts(dialect, row + '.first_action_at')} - {_ts(dialect, row + '.created_at')}"


def _triggers(dialect: str) -> list[tuple[str, str, str | None, str]]:
    """(name, event clause, WHEN condition or None, body) of every trigger."""
    changed = "IS NOT" if dialect == "sqlite" else "IS DISTINCT FROM"
    result = []
    for subject, table in (("deal_id", "deals"), ("lead_id", "leads")):
        kind = subject.removesuffix("_id")
        result.append(
            (
                f"analytics_history_{kind}",
                "AFTER INSERT ON stage_history",
                f"NEW.{subject} IS NOT NULL",
                _history_body(dialect, subject, table),
            )
        )
        result.append(
            (
                f"analytics_{kind}_manager",
                f"AFTER UPDATE OF manager_id ON {table}",
                f"OLD.manager_id {changed} NEW.manager_id",
                f"UPDATE funnel_facts SET manager_id = NEW.manager_id WHERE {subject} = NEW.id;\n"
                f"UPDATE stage_visits SET manager_id = NEW.manager_id WHERE {subject} = NEW.id;",
            )
        )
        result.append(
            (
                f"analytics_{kind}_amount",
                f"AFTER UPDATE OF amount ON {table}",
                f"OLD.amount {changed} NEW.amount",
                f"UPDATE funnel_facts SET amount = NEW.amount WHERE {subject} = NEW.id;",
            )
        )
    result.append(
        (
            "analytics_lead_response",
            "AFTER UPDATE OF first_action_at, created_at ON leads",
            f"OLD.first_action_at {changed} NEW.first_action_at "
            f"OR OLD.created_at {changed} NEW.created_at",
            f"UPDATE funnel_facts SET response_s = {_response(dialect, 'NEW')} "
            "WHERE lead_id = NEW.id;",
        )
    )
    day = "NEW.cohort_ts / 86400"
    key = "pipeline_id = NEW.pipeline_id AND stage_id = NEW.stage_id AND bucket = NEW.bucket"
    result.append(
        (
            "analytics_visit_day_add",
            "AFTER INSERT ON stage_visits",
            None,
            "INSERT INTO stage_visit_days (pipeline_id, stage_id, bucket, day, visits)\n"
            f"VALUES (NEW.pipeline_id, NEW.stage_id, NEW.bucket, {day}, 1)\n"
            "ON CONFLICT (pipeline_id, stage_id, bucket, day)\n"
            "DO UPDATE SET visits = stage_visit_days.visits + 1;",
        )
    )
    result.append(
        (
            "analytics_visit_day_remove",
            "AFTER DELETE ON stage_visits",
            None,
            f"UPDATE stage_visit_days SET visits = visits - 1 WHERE {key.replace('NEW', 'OLD')}"
            f" AND day = {day.replace('NEW', 'OLD')};",
        )
    )
    return result


def _create_triggers(dialect: str) -> None:
    for name, event, when, body in _triggers(dialect):
        if dialect == "sqlite":
            condition = f" WHEN {when}" if when else ""
            op.execute(f"CREATE TRIGGER {name} {event} FOR EACH ROW{condition}\nBEGIN\n{body}\nEND")
        else:
            op.execute(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
                f"BEGIN\n{body}\nRETURN NULL;\nEND $$"
            )
            condition = f" WHEN ({when})" if when else ""
            op.execute(
                f"CREATE TRIGGER {name} {event} FOR EACH ROW{condition} EXECUTE FUNCTION {name}()"
            )


def _drop_triggers(dialect: str) -> None:
    for name, event, _when, _body in _triggers(dialect):
        table = event.rsplit(" ", 1)[1]
        if dialect == "sqlite":
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")


def _replay_history() -> None:
    """Feed existing history through the new triggers, in id order."""
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT 1 FROM stage_history LIMIT 1")).first() is None:
        return
    op.execute("CREATE TEMPORARY TABLE analytics_replay AS SELECT * FROM stage_history")
    op.execute("DELETE FROM stage_history")
    op.execute("INSERT INTO stage_history SELECT * FROM analytics_replay ORDER BY id")
    op.execute("DROP TABLE analytics_replay")


def upgrade() -> None:
    op.create_table(
        "funnel_facts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deal_id", sa.Integer(), nullable=True),
        sa.Column("lead_id", sa.Integer(), nullable=True),
        sa.Column("pipeline_id", sa.Integer(), nullable=False),
        sa.Column("entered_ts", sa.BigInteger(), nullable=False),
        sa.Column("stage_id", sa.Integer(), nullable=False),
        sa.Column("stage_ts", sa.BigInteger(), nullable=False),
        sa.Column("flow_stage_id", sa.Integer(), nullable=False),
        sa.Column("reached_stage_id", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=8), nullable=False),
        sa.Column("reason_id", sa.Integer(), nullable=True),
        sa.Column("manager_id", sa.Integer(), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("response_s", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "(deal_id IS NULL) <> (lead_id IS NULL)", name=op.f("ck_funnel_facts_one_subject")
        ),
        sa.ForeignKeyConstraint(
            ["deal_id"],
            ["deals.id"],
            name=op.f("fk_funnel_facts_deal_id_deals"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["lead_id"],
            ["leads.id"],
            name=op.f("fk_funnel_facts_lead_id_leads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_funnel_facts")),
    )
    with op.batch_alter_table("funnel_facts", schema=None) as batch_op:
        for subject in ("deal_id", "lead_id"):
            partial = sa.text(f"{subject} IS NOT NULL")
            batch_op.create_index(
                f"uq_funnel_facts_{subject.removesuffix('_id')}_pipeline",
                [subject, "pipeline_id"],
                unique=True,
                sqlite_where=partial,
                postgresql_where=partial,
            )
        batch_op.create_index(
            "ix_funnel_facts_cohort",
            [
                "pipeline_id",
                "reached_stage_id",
                "outcome",
                "flow_stage_id",
                "entered_ts",
                "manager_id",
                "amount",
                "response_s",
            ],
            unique=False,
        )
        batch_op.create_index(
            "ix_funnel_facts_state",
            [
                "pipeline_id",
                "outcome",
                "stage_id",
                "reason_id",
                "flow_stage_id",
                "entered_ts",
                "manager_id",
                "stage_ts",
                "amount",
            ],
            unique=False,
        )

    op.create_table(
        "stage_visits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deal_id", sa.Integer(), nullable=True),
        sa.Column("lead_id", sa.Integer(), nullable=True),
        sa.Column("pipeline_id", sa.Integer(), nullable=False),
        sa.Column("stage_id", sa.Integer(), nullable=False),
        sa.Column("cohort_ts", sa.BigInteger(), nullable=False),
        sa.Column("duration_s", sa.BigInteger(), nullable=False),
        sa.Column("bucket", sa.SmallInteger(), nullable=False),
        sa.Column("manager_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "(deal_id IS NULL) <> (lead_id IS NULL)", name=op.f("ck_stage_visits_one_subject")
        ),
        sa.ForeignKeyConstraint(
            ["deal_id"],
            ["deals.id"],
            name=op.f("fk_stage_visits_deal_id_deals"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["lead_id"],
            ["leads.id"],
            name=op.f("fk_stage_visits_lead_id_leads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stage_visits")),
    )
    with op.batch_alter_table("stage_visits", schema=None) as batch_op:
        for subject in ("deal_id", "lead_id"):
            partial = sa.text(f"{subject} IS NOT NULL")
            batch_op.create_index(
                f"ix_stage_visits_{subject}",
                [subject],
                unique=False,
                sqlite_where=partial,
                postgresql_where=partial,
            )
        batch_op.create_index(
            "ix_stage_visits_median",
            ["pipeline_id", "stage_id", "bucket", "cohort_ts", "manager_id", "duration_s"],
            unique=False,
        )

    op.create_table(
        "stage_visit_days",
        sa.Column("pipeline_id", sa.Integer(), nullable=False),
        sa.Column("stage_id", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.SmallInteger(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("visits", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "pipeline_id", "stage_id", "bucket", "day", name=op.f("pk_stage_visit_days")
        ),
        sqlite_with_rowid=False,
    )

    dialect = op.get_bind().dialect.name
    _create_triggers(dialect)
    _replay_history()


def downgrade() -> None:
    announce_drops(
        "0003",
        "tables funnel_facts, stage_visits, stage_visit_days"
        " (the upgrade rebuilds them from the stage history)",
    )
    _drop_triggers(op.get_bind().dialect.name)
    op.drop_table("stage_visit_days")
    op.drop_table("stage_visits")
    op.drop_table("funnel_facts")
