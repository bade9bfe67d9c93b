"""Initial schema: registry, thresholds, scores, anomalies, quarantine, watermarks, runs.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None

TS = sa.DateTime(timezone=True)
SOURCE = sa.String(512)
RUN_ID = sa.String(64)


def _model_versions() -> None:
    op.create_table(
        "model_versions",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("architecture", sa.String(64), nullable=False),
        sa.Column("hyperparameters", sa.JSON, nullable=False),
        sa.Column("input_length", sa.Integer, nullable=False),
        sa.Column("preprocessing", sa.JSON, nullable=False),
        sa.Column("train_fingerprint", sa.String(64), nullable=False),
        sa.Column("train_size", sa.Integer, nullable=False),
        sa.Column("calibration_size", sa.Integer, nullable=False),
        sa.Column("loss_mean", sa.Float, nullable=False),
        sa.Column("loss_std", sa.Float, nullable=False),
        sa.Column("normal_losses", sa.JSON, nullable=False),
        sa.Column("epochs", sa.Integer),
        sa.Column("seed", sa.Integer),
        sa.Column("training_seconds", sa.Float),
        sa.Column("artifact_uri", sa.Text, nullable=False),
        sa.Column("artifact_sha256", sa.String(64), nullable=False),
        sa.Column("metrics", sa.JSON),
        sa.Column("gate", sa.JSON),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("patient_id", sa.String(128)),
        sa.Column("parent_version", sa.Integer),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("promoted_at", TS),
        sa.Column("archived_at", TS),
        sa.CheckConstraint(
            "status in ('candidate', 'champion', 'archived', 'rejected')", name="ck_model_status"
        ),
    )
    op.create_index(
        "ux_model_versions_one_champion",
        "model_versions",
        ["status"],
        unique=True,
        sqlite_where=sa.text("status = 'champion'"),
        postgresql_where=sa.text("status = 'champion'"),
    )


def _thresholds() -> None:
    op.create_table(
        "thresholds",
        sa.Column("threshold_version", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "model_version",
            sa.Integer,
            sa.ForeignKey("model_versions.version", name="fk_thresholds_model"),
            nullable=False,
        ),
        sa.Column("patient_id", sa.String(128)),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("loss_stats", sa.JSON, nullable=False),
        sa.Column("origin", sa.String(512), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    where = "active and patient_id is null"
    op.create_index(
        "ux_thresholds_one_active",
        "thresholds",
        ["model_version"],
        unique=True,
        sqlite_where=sa.text(where),
        postgresql_where=sa.text(where),
    )
    where_patient = "active and patient_id is not null"
    op.create_index(
        "ux_thresholds_one_active_per_patient",
        "thresholds",
        ["model_version", "patient_id"],
        unique=True,
        sqlite_where=sa.text(where_patient),
        postgresql_where=sa.text(where_patient),
    )


def _beat_columns() -> list[sa.Column]:
    return [
        sa.Column("record_id", sa.String(256), primary_key=True),
        sa.Column("model_version", sa.Integer, primary_key=True),
        sa.Column("source", SOURCE, nullable=False),
        sa.Column("patient_id", sa.String(128)),
        sa.Column("recorded_at", TS, nullable=False),
        sa.Column("loss", sa.Float, nullable=False),
        sa.Column("threshold_version", sa.Integer, nullable=False),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("score_ratio", sa.Float, nullable=False),
        sa.Column("baseline", sa.String(128), nullable=False),
        sa.Column("run_id", RUN_ID, nullable=False),
    ]


def _scores_and_anomalies() -> None:
    op.create_table(
        "scores",
        *_beat_columns(),
        sa.Column("is_anomaly", sa.Boolean, nullable=False),
        sa.Column("scored_at", TS, nullable=False),
    )
    op.create_index("ix_scores_recorded_at", "scores", ["recorded_at"])
    op.create_index("ix_scores_run_id", "scores", ["run_id"])
    op.create_table(
        "anomalies",
        *_beat_columns(),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("flagged_at", TS, nullable=False),
        sa.Column("alert_state", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("alerted_at", TS),
    )
    op.create_index("ix_anomalies_recorded_at", "anomalies", ["recorded_at"])
    op.create_index("ix_anomalies_run_id", "anomalies", ["run_id"])


def _operations() -> None:
    op.create_table(
        "rejected_records",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("source", SOURCE, nullable=False),
        sa.Column("record_key", sa.String(512), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("raw_payload", sa.Text),
        sa.Column("run_id", RUN_ID, nullable=False),
        sa.Column("rejected_at", TS, nullable=False),
        sa.Column("replayed_at", TS),
        sa.UniqueConstraint("source", "record_key", "reason", name="uq_rejected_key"),
    )
    op.create_table(
        "ingest_watermarks",
        sa.Column("source", SOURCE, primary_key=True),
        sa.Column("stream", sa.String(512), primary_key=True),
        sa.Column("position_time", TS),
        sa.Column("position_key", sa.String(256)),
        sa.Column("position_offset", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("fingerprint", sa.String(128)),
        sa.Column("complete", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("run_id", RUN_ID, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "pipeline_runs",
        sa.Column("run_id", RUN_ID, primary_key=True),
        sa.Column("flow", sa.String(32), nullable=False),
        sa.Column("parameters", sa.JSON, nullable=False),
        sa.Column("source", SOURCE),
        sa.Column("model_version", sa.Integer),
        sa.Column("threshold_version", sa.Integer),
        sa.Column("n_read", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("n_scored", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("n_rejected", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("n_flagged", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("loss_sum", sa.Float, nullable=False, server_default="0"),
        sa.Column("drift_psi", sa.Float),
        sa.Column("drift", sa.JSON),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("alert_state", sa.String(16)),
        sa.Column("alert_detail", sa.Text),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS),
    )
    op.create_index("ix_pipeline_runs_started_at", "pipeline_runs", ["started_at"])


def upgrade() -> None:
    _model_versions()
    _thresholds()
    _scores_and_anomalies()
    _operations()


def downgrade() -> None:
    for name in (
        "pipeline_runs",
        "ingest_watermarks",
        "rejected_records",
        "anomalies",
        "scores",
        "thresholds",
        "model_versions",
    ):
        op.drop_table(name)
