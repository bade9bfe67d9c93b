"""Record ids compared byte by byte in the primary keys of scores and anomalies (PostgreSQL).

Each scored beat inserts one entry into the primary key of ``scores`` (record_id,
model_version); each entry is placed by about twenty comparisons of record ids. Under the
database's linguistic collation every comparison copies both ids into NUL-terminated buffers
and calls ``strcoll``; under ``COLLATE "C"`` it is one ``memcmp``. Scoring 1M beats into
PostgreSQL took 2.65-2.66 s instead of 2.78-2.79 s, with 0.1 s less server CPU
(docs/performance.md).

What analysts see: ``ORDER BY record_id`` sorts by code point (the same order as a C.UTF-8
database, not a linguistic one such as en_US), and comparing record_id with a column of the
database's default collation uses "C" without error (a default collation gives way to a
column's own). SQLite already compares text byte by byte: nothing changes there.

On an existing database the ALTER rewrites both tables and their indexes, under an exclusive
lock: plan it for a quiet hour on large tables.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

from ecgmon.storage.engine import view_files

revision = "0003"
down_revision = "0002"
TABLES = ("scores", "anomalies")


def upgrade() -> None:
    _set_collation('"C"')


def downgrade() -> None:
    _set_collation("pg_catalog.default")


def _set_collation(collation: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for path in view_files():  # a view pins its columns' types; upgrade_schema recreates them
        op.execute(f"DROP VIEW IF EXISTS {path.stem}")
    for table in TABLES:
        op.execute(
            f"ALTER TABLE {table} ALTER COLUMN record_id TYPE varchar(256) COLLATE {collation}"
        )
