"""Each committed batch leaves its idempotency key on its run.

A commit whose connection dies after the server committed is ambiguous: the client retries it.
Rows and the watermark are upserts (a retry rewrites the same values), but a run's counts and
drift counts are sums: a retried batch added them twice. Batches of a run commit their counts
in batch order, each after its predecessor, so the key of the last batch that added its counts
(``pipeline_runs.last_batch_key``) is enough to recognise a retry of the same batch.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.add_column("pipeline_runs", sa.Column("last_batch_key", sa.String(36)))


def downgrade() -> None:
    with op.batch_alter_table("pipeline_runs") as batch:
        batch.drop_column("last_batch_key")
