"""Scores and flags keyed by source too: (record_id, model_version, source).

Record ids are unique within a source, not across sources: two WFDB folders both holding record
``100`` (or two feeds that both number their beats from 1) wrote the same key and the later
overwrote the earlier. The source joins the primary keys of ``scores`` and ``anomalies`` (last:
lookups by record id still use the key's prefix).

On an existing database the key is rebuilt (PostgreSQL) or the tables copied (SQLite), under an
exclusive lock: plan it for a quiet hour on large tables.

Revision ID: 0005
Revises: 0004
"""

import warnings

from alembic import op

from ecgmon.storage.engine import view_files

revision = "0005"
down_revision = "0004"
TABLES = ("scores", "anomalies")


def upgrade() -> None:
    _set_key(("record_id", "model_version", "source"))


def downgrade() -> None:
    _set_key(("record_id", "model_version"))


def _set_key(columns: tuple[str, ...]) -> None:
    for path in view_files():  # views are recreated by upgrade_schema
        op.execute(f"DROP VIEW IF EXISTS {path.stem}")
    for table in TABLES:
        if op.get_bind().dialect.name == "postgresql":
            op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey")
            key = ", ".join(columns)
            op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY ({key})")
            continue
        with warnings.catch_warnings():  # SQLAlchemy notes the copy's key differs: it should
            warnings.simplefilter("ignore")
            with op.batch_alter_table(table, recreate="always") as batch:
                batch.create_primary_key(f"{table}_pkey", list(columns))
