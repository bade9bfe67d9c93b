"""Lighter indexes on scores; a run's drift counts kept with the run.

Every index on ``scores`` is paid once per beat on the hot path: with the primary key,
``ix_scores_recorded_at`` and ``ix_scores_run_id``, loading a batch into PostgreSQL cost about
1.5 times what the primary key alone cost (docs/performance.md). So:

- ``ix_scores_run_id`` goes: drift was its only reader, and a run's drift is now counted while its
  batches are written (``pipeline_runs.drift_counts``, committed with each batch).
- On PostgreSQL ``ix_scores_recorded_at`` becomes a BRIN index: beats arrive roughly in time
  order, so block ranges summarise time well, at a small fraction of a B-tree's insert cost.
  Analysts' time-range queries still use it. SQLite keeps the B-tree (it has no BRIN).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.drop_index("ix_scores_run_id", table_name="scores")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_scores_recorded_at", table_name="scores")
        op.create_index("ix_scores_recorded_at", "scores", ["recorded_at"], postgresql_using="brin")
    op.add_column("pipeline_runs", sa.Column("drift_counts", sa.JSON))


def downgrade() -> None:
    op.drop_column("pipeline_runs", "drift_counts")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_scores_recorded_at", table_name="scores")
        op.create_index("ix_scores_recorded_at", "scores", ["recorded_at"])
    op.create_index("ix_scores_run_id", "scores", ["run_id"])
