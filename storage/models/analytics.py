"""Models of the analytics area (re-exported by storage.models).

Two narrow tables derived from ``stage_history`` so that funnels are one index-range pass
each, never a per-deal GROUP BY over history:

``funnel_facts``  one row per subject (deal or lead) per pipeline it has entered: when it
                  first entered (the cohort), where it is now, the last flow stage it was in,
                  the furthest flow stage it reached, its outcome, copies of its manager
                  and amount, and (a lead) its response time.
``stage_visits``  one row per *finished* stay in a stage (the subject moved on): how long it
                  lasted, with the subject's cohort and manager, for median time in stage.

Nothing in Python writes them: database triggers created by migration 0003 maintain them on
every ``stage_history`` insert and on every change of a deal's or lead's manager or amount,
so every writer (services, imports, the demo generator, a later engineer's code) keeps them
right. Times are whole epoch seconds (UTC, truncated): narrow index keys, and the same
arithmetic on SQLite and PostgreSQL. The semantics are documented in services/reports/analytics.py.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base

# Outcome of a subject in one pipeline (funnel_facts.outcome).
OUTCOME_OPEN = "open"  # in an active stage of this pipeline
OUTCOME_WON = "won"
OUTCOME_LOST = "lost"
OUTCOME_FROZEN = "frozen"  # parked in a conditional-refusal stage
OUTCOME_LEFT = "left"  # moved to another pipeline (and not back)
OUTCOMES = (OUTCOME_OPEN, OUTCOME_WON, OUTCOME_LOST, OUTCOME_FROZEN, OUTCOME_LEFT)

# stage_visits.bucket is a monotone function of duration_s (finer than 15% steps from one
# minute to two years; the boundaries live in migration 0003). Every bucket number is below
# this limit, which is all a reader needs: a median is found from per-bucket counts and
# then one sorted slice of a single bucket.
VISIT_BUCKET_LIMIT = 128


class FunnelFact(Base):
    __tablename__ = "funnel_facts"
    __table_args__ = (
        CheckConstraint("(deal_id IS NULL) <> (lead_id IS NULL)", name="one_subject"),
        # The upserts' conflict targets (and the lookups by subject on a manager change);
        # partial, so that a row is in one of them only.
        Index(
            "uq_funnel_facts_deal_pipeline",
            "deal_id",
            "pipeline_id",
            unique=True,
            sqlite_where=text("deal_id IS NOT NULL"),
            postgresql_where=text("deal_id IS NOT NULL"),
        ),
        Index(
            "uq_funnel_facts_lead_pipeline",
            "lead_id",
            "pipeline_id",
            unique=True,
            sqlite_where=text("lead_id IS NOT NULL"),
            postgresql_where=text("lead_id IS NOT NULL"),
        ),
        # Cohort funnel: group prefix served by IN-lists, then the cohort range.
        Index(
            "ix_funnel_facts_cohort",
            "pipeline_id",
            "reached_stage_id",
            "outcome",
            "flow_stage_id",
            "entered_ts",
            "manager_id",
            "amount",
            "response_s",
        ),
        # Snapshot (outcome = open, grouped by stage) and loss reasons (lost/frozen cohort).
        Index(
            "ix_funnel_facts_state",
            "pipeline_id",
            "outcome",
            "stage_id",
            "reason_id",
            "flow_stage_id",
            "entered_ts",
            "manager_id",
            "stage_ts",
            "amount",
        ),
        # What happened in a period (won, lost, frozen by the date of it): the groups first
        # (outcome, reason, flow stage), then the moment the deal entered its stage.
        Index(
            "ix_funnel_facts_happened",
            "pipeline_id",
            "outcome",
            "reason_id",
            "flow_stage_id",
            "stage_ts",
            "manager_id",
            "amount",
        ),
        # Managers ranking: one range per (manager, outcome) of the cohort, groups in order.
        Index(
            "ix_funnel_facts_manager",
            "pipeline_id",
            "manager_id",
            "outcome",
            "entered_ts",
            "amount",
            "response_s",
        ),
        # Sales cycle (velocity): the cohort's won facts, one range, the days computed
        # from the index alone.
        Index(
            "ix_funnel_facts_won",
            "pipeline_id",
            "entered_ts",
            "manager_id",
            "stage_ts",
            sqlite_where=text("outcome = 'won'"),
            postgresql_where=text("outcome = 'won'"),
        ),
        # Plans (issue 26, migration 0022): the deals won in a month per manager, one range
        # per manager in order (no sort), the amount read from the index (outcome last:
        # SQLite reads a partial index's own WHERE column).
        Index(
            "ix_funnel_facts_won_by",
            "pipeline_id",
            "manager_id",
            "stage_ts",
            "amount",
            "outcome",
            sqlite_where=text("outcome = 'won'"),
            postgresql_where=text("outcome = 'won'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    # Copies of values whose source rows have the foreign keys (no FK here: derived data).
    pipeline_id: Mapped[int] = mapped_column(Integer)
    entered_ts: Mapped[int] = mapped_column(BigInteger)
    stage_id: Mapped[int] = mapped_column(Integer)
    stage_ts: Mapped[int] = mapped_column(BigInteger)
    flow_stage_id: Mapped[int] = mapped_column(Integer)
    reached_stage_id: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(8))
    reason_id: Mapped[int | None] = mapped_column(Integer)
    manager_id: Mapped[int | None] = mapped_column(Integer)
    amount: Mapped[int | None] = mapped_column(BigInteger)
    # A lead's response time: first_action_at - created_at, whole seconds (leads only).
    response_s: Mapped[int | None] = mapped_column(BigInteger)


class StageVisit(Base):
    __tablename__ = "stage_visits"
    __table_args__ = (
        CheckConstraint("(deal_id IS NULL) <> (lead_id IS NULL)", name="one_subject"),
        Index(
            "ix_stage_visits_median",
            "pipeline_id",
            "stage_id",
            "bucket",
            "cohort_ts",
            "manager_id",
            "duration_s",
        ),
        # By subject (a manager change, a cascading delete); partial: one entry per row.
        Index(
            "ix_stage_visits_deal_id",
            "deal_id",
            sqlite_where=text("deal_id IS NOT NULL"),
            postgresql_where=text("deal_id IS NOT NULL"),
        ),
        Index(
            "ix_stage_visits_lead_id",
            "lead_id",
            sqlite_where=text("lead_id IS NOT NULL"),
            postgresql_where=text("lead_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    pipeline_id: Mapped[int] = mapped_column(Integer)
    stage_id: Mapped[int] = mapped_column(Integer)
    cohort_ts: Mapped[int] = mapped_column(BigInteger)
    duration_s: Mapped[int] = mapped_column(BigInteger)
    bucket: Mapped[int] = mapped_column(SmallInteger)
    manager_id: Mapped[int | None] = mapped_column(Integer)


class StageVisitDay(Base):
    """How many finished stays per (pipeline, stage, duration bucket, UTC day of the cohort).

    The median's histogram pass over a period reads these for the period's whole days and
    raw stage_visits only for the partial days at its edges (a period in the company's
    time zone starts and ends mid-UTC-day): exact, at a tenth of the rows. Maintained by
    triggers on stage_visits. Not split by manager: a one-manager report reads the visits.
    """

    __tablename__ = "stage_visit_days"
    __table_args__ = {"sqlite_with_rowid": False}  # the primary key holds the counts

    pipeline_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    stage_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    day: Mapped[int] = mapped_column(Integer, primary_key=True)  # cohort_ts // 86400
    visits: Mapped[int] = mapped_column(BigInteger)
