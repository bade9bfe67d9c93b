"""How a model version's calibration losses were produced (``model_versions.calibration``).

Thresholds are calibrated on out-of-fold losses of k-fold cross-fitting over the normal training
beats (every beat scored by a model that never trained on it); the final model trains on all of
them. The new JSON column records the procedure, e.g. ``{"procedure": "cross_fit", "folds": 5,
"seed": 0, "n": 2344, "fold_sizes": [...]}``, beside the losses in ``normal_losses``. Versions
registered before it stay NULL: they were calibrated on a held-out 20 % of their normal beats.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

from ecgmon.storage.engine import view_files

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.add_column("model_versions", sa.Column("calibration", sa.JSON, nullable=True))


def downgrade() -> None:
    # plain ALTER TABLE on both dialects (SQLite >= 3.35): a batch copy of the table would lose
    # the partial unique index on the champion; views are recreated by upgrade_schema
    for path in view_files():
        op.execute(f"DROP VIEW IF EXISTS {path.stem}")
    op.drop_column("model_versions", "calibration")
