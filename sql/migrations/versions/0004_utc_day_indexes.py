"""Indexes on the UTC day of recorded_at, the expression the analyst views group and filter by.

The views compute days in UTC whatever the session's time zone (``UTC_DAY`` in sql/, written out
by :func:`ecgmon.storage.engine.utc_day_sql`: PostgreSQL ``CAST((recorded_at AT TIME ZONE 'UTC')
AS DATE)``, SQLite ``DATE(recorded_at)``). A one-day filter on that expression
(``WHERE day = '2026-11-12'`` on ``v_daily_anomaly_rate``, or on ``scores`` directly) uses these
indexes; before, days were cut from the timestamp's text in the session's zone and no index
applied.

- ``scores``: on PostgreSQL a BRIN index (beats arrive roughly in time order; a B-tree would be
  paid on every scored beat, see 0002); on SQLite a B-tree (SQLite has no BRIN).
- ``anomalies`` (few rows, read by the last-day query): a B-tree on both.

Revision ID: 0004_utc_day
Revises: 0003
"""

from alembic import op

from ecgmon.storage.engine import utc_day_sql

revision = "0004_utc_day"
down_revision = "0003"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    day = utc_day_sql("recorded_at", dialect)
    scores_method = "USING brin " if dialect == "postgresql" else ""
    op.execute(f"CREATE INDEX ix_scores_utc_day ON scores {scores_method}(({day}))")
    op.execute(f"CREATE INDEX ix_anomalies_utc_day ON anomalies (({day}))")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_anomalies_utc_day")
    op.execute("DROP INDEX IF EXISTS ix_scores_utc_day")
