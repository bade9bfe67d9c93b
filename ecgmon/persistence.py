"""Writes of the score path: one database transaction per batch, set-based upserts.

Each batch is bulk-loaded into a temporary staging table (PostgreSQL: COPY; SQLite: one
executemany) and merged with portable ``INSERT ... ON CONFLICT`` statements, so a re-run of any
batch leaves the same rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ecgmon.clock import utcnow
from ecgmon.db import table
from ecgmon.records import Rejection, ScoredBeats, StreamPosition

STAGE_COLUMNS = (
    "record_id",
    "model_version",
    "source",
    "patient_id",
    "recorded_at",
    "loss",
    "threshold_version",
    "threshold",
    "score_ratio",
    "baseline",
    "run_id",
    "is_anomaly",
    "scored_at",
    "severity",
)
_STAGE_DDL = {
    "postgresql": """CREATE TEMP TABLE IF NOT EXISTS stage_scores (
        record_id varchar(256), model_version integer, source varchar(512), patient_id varchar(128),
        recorded_at timestamptz, loss double precision, threshold_version integer,
        threshold double precision, score_ratio double precision, baseline varchar(128),
        run_id varchar(64), is_anomaly boolean, scored_at timestamptz, severity varchar(16)
    ) ON COMMIT DELETE ROWS""",
    "sqlite": """CREATE TEMP TABLE IF NOT EXISTS stage_scores (
        record_id TEXT, model_version INTEGER, source TEXT, patient_id TEXT, recorded_at TEXT,
        loss REAL, threshold_version INTEGER, threshold REAL, score_ratio REAL, baseline TEXT,
        run_id TEXT, is_anomaly INTEGER, scored_at TEXT, severity TEXT)""",
}
_BEAT = "record_id, model_version, source, patient_id, recorded_at, loss, threshold_version, threshold, score_ratio, baseline, run_id"
_MERGE = (
    f"""INSERT INTO scores ({_BEAT}, is_anomaly, scored_at)
    SELECT {_BEAT}, is_anomaly, scored_at FROM stage_scores WHERE true
    ON CONFLICT (record_id, model_version) DO UPDATE SET
      source = excluded.source, patient_id = excluded.patient_id,
      recorded_at = excluded.recorded_at, loss = excluded.loss,
      threshold_version = excluded.threshold_version, threshold = excluded.threshold,
      score_ratio = excluded.score_ratio, baseline = excluded.baseline, run_id = excluded.run_id,
      is_anomaly = excluded.is_anomaly, scored_at = excluded.scored_at""",
    # a beat flagged again keeps its alert state: an alert is sent at most once per beat
    f"""INSERT INTO anomalies ({_BEAT}, severity, flagged_at)
    SELECT {_BEAT}, severity, scored_at FROM stage_scores WHERE is_anomaly
    ON CONFLICT (record_id, model_version) DO UPDATE SET
      loss = excluded.loss, threshold_version = excluded.threshold_version,
      threshold = excluded.threshold, score_ratio = excluded.score_ratio,
      severity = excluded.severity, baseline = excluded.baseline""",
    """DELETE FROM anomalies WHERE EXISTS (
      SELECT 1 FROM stage_scores s WHERE s.record_id = anomalies.record_id
      AND s.model_version = anomalies.model_version AND NOT s.is_anomaly)""",
)
SEVERITY_BOUNDS = ((3.0, "high"), (1.5, "medium"), (0.0, "low"))


@dataclass
class BatchWrite:
    """Everything one batch commits: scores, rejections, the watermark and the run's counts."""

    run_id: str
    source: str
    model_version: int
    scored: ScoredBeats | None
    rejections: list[Rejection]
    position: StreamPosition
    n_read: int
    counts: dict[str, float] = field(default_factory=dict)


def severity(score_ratio: np.ndarray) -> np.ndarray:
    """low (ratio < 1.5), medium (< 3) or high, for flagged beats."""
    out = np.full(score_ratio.shape, "low", dtype=object)
    out[score_ratio >= 1.5] = "medium"
    out[score_ratio >= 3.0] = "high"
    return out


def commit_batch(engine: Engine, write: BatchWrite) -> None:
    """Write a batch in ONE transaction: scores and flags, rejections, watermark, run counts."""
    with engine.begin() as conn:
        if write.scored is not None and len(write.scored.beats):
            _merge_scores(conn, write)
        if write.rejections:
            _upsert_rejections(conn, write)
        advance_watermark(conn, write.source, write.position, write.run_id)
        _add_run_counts(conn, write)


def _stage_rows(write: BatchWrite) -> list[tuple]:
    scored = write.scored
    assert scored is not None
    beats = scored.beats
    ratio = scored.score_ratio
    sev = severity(ratio)
    now = utcnow()
    times = beats.recorded_at.tz_convert("UTC").tz_localize(None).to_pydatetime()
    return list(
        zip(
            beats.record_id.tolist(),
            [write.model_version] * len(beats),
            [write.source] * len(beats),
            beats.patient_id.tolist(),
            times.tolist(),
            scored.loss.astype(float).tolist(),
            scored.threshold_version.astype(int).tolist(),
            scored.threshold.astype(float).tolist(),
            ratio.astype(float).tolist(),
            scored.baseline.tolist(),
            [write.run_id] * len(beats),
            scored.is_anomaly.astype(bool).tolist(),
            [now.replace(tzinfo=None)] * len(beats),
            sev.tolist(),
            strict=True,
        )
    )


def _merge_scores(conn: Connection, write: BatchWrite) -> None:
    dialect = conn.dialect.name
    conn.exec_driver_sql(_STAGE_DDL["postgresql" if dialect == "postgresql" else "sqlite"])
    rows = _stage_rows(write)
    if dialect == "postgresql":
        _copy_rows(conn, rows)
    else:
        marks = ", ".join("?" for _ in STAGE_COLUMNS)
        conn.exec_driver_sql("DELETE FROM stage_scores")
        conn.exec_driver_sql(f"INSERT INTO stage_scores VALUES ({marks})", rows)
    for statement in _MERGE:
        conn.exec_driver_sql(statement)
    if dialect != "postgresql":
        conn.exec_driver_sql("DELETE FROM stage_scores")


def _copy_rows(conn: Connection, rows: list[tuple]) -> None:
    raw = conn.connection.driver_connection
    with raw.cursor() as cursor:
        # rows carry naive UTC times; the session zone makes COPY read them as UTC
        cursor.execute("SET LOCAL TIME ZONE 'UTC'")
        with cursor.copy(f"COPY stage_scores ({', '.join(STAGE_COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def _upsert_rejections(conn: Connection, write: BatchWrite) -> None:
    rejected = table(conn.engine, "rejected_records")
    insert = _dialect_insert(conn)(rejected)
    now = utcnow()
    values = [
        {
            "source": write.source,
            "record_key": r.record_key[:512],
            "reason": r.reason,
            "detail": r.detail,
            "raw_payload": r.raw_payload,
            "run_id": write.run_id,
            "rejected_at": now,
        }
        for r in write.rejections
    ]
    statement = insert.on_conflict_do_update(
        index_elements=["source", "record_key", "reason"],
        set_={"detail": insert.excluded.detail, "raw_payload": insert.excluded.raw_payload},
    )
    conn.execute(statement, values)


def _dialect_insert(conn: Connection):  # noqa: ANN202
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def advance_watermark(conn: Connection, source: str, position: StreamPosition, run_id: str) -> None:
    """Upsert the watermark of one stream of a source, inside the caller's transaction."""
    marks = table(conn.engine, "ingest_watermarks")
    insert = _dialect_insert(conn)(marks)
    values = {
        "source": source,
        "stream": position.stream,
        "position_offset": position.offset,
        "position_time": position.time,
        "position_key": position.key,
        "fingerprint": position.fingerprint,
        "complete": position.complete,
        "run_id": run_id,
        "updated_at": utcnow(),
    }
    keep = ("source", "stream")
    conn.execute(
        insert.values(**values).on_conflict_do_update(
            index_elements=list(keep),
            set_={k: v for k, v in values.items() if k not in keep},
        )
    )


def read_watermarks(engine: Engine, source: str) -> dict[str, dict]:
    """Every stream's watermark of a source: {stream: row}."""
    marks = table(engine, "ingest_watermarks")
    with engine.connect() as conn:
        rows = conn.execute(sa.select(marks).where(marks.c.source == source))
        return {row.stream: dict(row._mapping) for row in rows}


def _add_run_counts(conn: Connection, write: BatchWrite) -> None:
    runs = table(conn.engine, "pipeline_runs")
    scored = write.scored
    n_scored = len(scored.beats) if scored is not None else 0
    n_flagged = int(scored.is_anomaly.sum()) if scored is not None else 0
    loss_sum = float(scored.loss.sum()) if scored is not None and n_scored else 0.0
    conn.execute(
        runs.update()
        .where(runs.c.run_id == write.run_id)
        .values(
            n_read=runs.c.n_read + write.n_read,
            n_scored=runs.c.n_scored + n_scored,
            n_rejected=runs.c.n_rejected + len(write.rejections),
            n_flagged=runs.c.n_flagged + n_flagged,
            loss_sum=runs.c.loss_sum + loss_sum,
        )
    )


def start_run(engine: Engine, run_id: str, flow: str, parameters: dict, source: str | None) -> None:
    """Record a run as ``running``; a retried run keeps the counts its committed batches added."""
    runs = table(engine, "pipeline_runs")
    insert = None
    with engine.begin() as conn:
        insert = _dialect_insert(conn)(runs)
        values = {
            "run_id": run_id,
            "flow": flow,
            "parameters": json.loads(json.dumps(parameters, default=str)),
            "source": source,
            "status": "running",
            "started_at": utcnow(),
            "n_read": 0,
            "n_scored": 0,
            "n_rejected": 0,
            "n_flagged": 0,
            "loss_sum": 0.0,
        }
        conn.execute(
            insert.values(**values).on_conflict_do_update(
                index_elements=["run_id"], set_={"status": "running", "finished_at": None}
            )
        )


def finish_run(engine: Engine, run_id: str, status: str, **values: object) -> dict:
    """Close a run with its status and any extra columns; returns the run row."""
    runs = table(engine, "pipeline_runs")
    with engine.begin() as conn:
        conn.execute(
            runs.update()
            .where(runs.c.run_id == run_id)
            .values(status=status, finished_at=utcnow(), **values)
        )
        return dict(conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).one()._mapping)


def update_run(engine: Engine, run_id: str, **values: object) -> None:
    """Set columns of a run row (model and threshold versions, drift, alert state)."""
    runs = table(engine, "pipeline_runs")
    with engine.begin() as conn:
        conn.execute(runs.update().where(runs.c.run_id == run_id).values(**values))
