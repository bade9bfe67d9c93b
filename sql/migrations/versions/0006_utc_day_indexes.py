"""Indexes on the UTC day of recorded_at, the expression the analyst views group and filter by.

The views compute days in UTC whatever the session's time zone (``UTC_DAY`` in sql/, written out
by :func:`ecgmon.storage.engine.utc_day_sql`: PostgreSQL ``CAST((recorded_at AT TIME ZONE 'UTC')
AS DATE)``, SQLite ``DATE(recorded_at)``). A one-day filter on that expression
(``WHERE day = '2026-11-12'`` on ``v_daily_anomaly_rate``, or on ``scores`` directly) uses these
indexes; before, days were cut from the timestamp's text in the session's zone and no index
applied.

- ``scores``: on PostgreSQL a BRIN index (beats arrive roughly in time order; a B-tree would be
  paid on every scored beat, see 0002) with ``autosummarize``: a BRIN index skips only block
  ranges it has summarised, and autovacuum then summarises each range as it fills. On 301,000
  rows (one a 30 s, 105 days) a one-day filter on the view took 259 ms as a text cut of the
  session-zone time (sequential scan), 250 ms through this index before summarisation and 12 ms
  after (docs/operations.md). On SQLite a B-tree (SQLite has no BRIN).
- ``anomalies`` (few rows, read by the last-day query): a B-tree on both.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

from ecgmon.storage.engine import utc_day_sql

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    day = utc_day_sql("recorded_at", dialect)
    if dialect == "postgresql":
        op.execute(
            f"CREATE INDEX ix_scores_utc_day ON scores USING brin (({day})) "
            "WITH (autosummarize = on)"
        )
    else:
        op.execute(f"CREATE INDEX ix_scores_utc_day ON scores (({day}))")
    op.execute(f"CREATE INDEX ix_anomalies_utc_day ON anomalies (({day}))")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_anomalies_utc_day")
    op.execute("DROP INDEX IF EXISTS ix_scores_utc_day")
