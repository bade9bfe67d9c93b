"""Owner of ``scores`` and ``anomalies``: one database transaction per batch, set-based upserts,
and the reads of scored and flagged beats.

A batch's transaction also holds its rejections, watermark and run counts, written by their
owners (:mod:`~ecgmon.storage.quarantine`, :mod:`~ecgmon.storage.watermarks`,
:mod:`~ecgmon.storage.runs`) on this transaction's connection.

Each batch is bulk-loaded into a temporary staging table (PostgreSQL: binary COPY encoded from
Arrow columns by pgpq, :mod:`~ecgmon.storage.pg_copy`; SQLite: one executemany) and merged with
portable ``INSERT ... ON CONFLICT`` statements, so a re-run of any batch leaves the same rows.
Staged columns are built column-wise: no Python loop per row on this hot path.

On PostgreSQL a batch first tries the fast path: COPY straight into ``scores`` and ``anomalies``
inside a savepoint. It succeeds only when no beat of the batch has a row yet (the usual case: the
watermark says the batch is new); any existing row raises a unique violation, the savepoint is
rolled back and the batch takes the staged upsert instead, so the rows are the same either way.
The fast path needs no delete of unflagged anomalies: an anomaly row is only ever written
together with its score row.
Batch transactions use ``synchronous_commit = off``: a commit lost in a server crash loses its
watermark with it, so the batch is read and scored again (never half-written, never skipped).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ecgmon.clock import utcnow
from ecgmon.records import Rejection, ScoredBeats, StreamPosition
from ecgmon.storage.engine import table
from ecgmon.storage.pg_copy import as_arrow, copy_columns
from ecgmon.storage.quarantine import upsert_rejections
from ecgmon.storage.runs import BatchCounts, add_batch_counts, set_alert_outcome
from ecgmon.storage.watermarks import advance_watermark

STAGE_COLUMNS = (
    "record_id",
    "patient_id",
    "recorded_at",
    "loss",
    "threshold_version",
    "threshold",
    "score_ratio",
    "baseline",
    "is_anomaly",
    "severity",
)  # per-beat values; model_version, source, run_id and scored_at are one bind value per batch
_STAGE_DDL = {
    "postgresql": """CREATE TEMP TABLE IF NOT EXISTS stage_scores (
        record_id varchar(256), patient_id varchar(128), recorded_at timestamptz,
        loss double precision, threshold_version integer, threshold double precision,
        score_ratio double precision, baseline varchar(128), is_anomaly boolean,
        severity varchar(16)
    ) ON COMMIT DELETE ROWS""",
    "sqlite": """CREATE TEMP TABLE IF NOT EXISTS stage_scores (
        record_id TEXT, patient_id TEXT, recorded_at TEXT, loss REAL, threshold_version INTEGER,
        threshold REAL, score_ratio REAL, baseline TEXT, is_anomaly INTEGER, severity TEXT)""",
}
_BEAT = (
    "record_id, model_version, source, patient_id, recorded_at, loss, threshold_version,"
    " threshold, score_ratio, baseline, run_id"
)
_STAGED = (
    "record_id, :model_version, :source, patient_id, recorded_at, loss, threshold_version,"
    " threshold, score_ratio, baseline, :run_id"
)
_MERGE = (
    f"""INSERT INTO scores ({_BEAT}, is_anomaly, scored_at)
    SELECT {_STAGED}, is_anomaly, :scored_at FROM stage_scores WHERE true
    ON CONFLICT (record_id, model_version, source) DO UPDATE SET
      patient_id = excluded.patient_id,
      recorded_at = excluded.recorded_at, loss = excluded.loss,
      threshold_version = excluded.threshold_version, threshold = excluded.threshold,
      score_ratio = excluded.score_ratio, baseline = excluded.baseline, run_id = excluded.run_id,
      is_anomaly = excluded.is_anomaly, scored_at = excluded.scored_at""",
    # a beat flagged again keeps its alert state: an alert is sent at most once per beat
    f"""INSERT INTO anomalies ({_BEAT}, severity, flagged_at)
    SELECT {_STAGED}, severity, :scored_at FROM stage_scores WHERE is_anomaly
    ON CONFLICT (record_id, model_version, source) DO UPDATE SET
      loss = excluded.loss, threshold_version = excluded.threshold_version,
      threshold = excluded.threshold, score_ratio = excluded.score_ratio,
      severity = excluded.severity, baseline = excluded.baseline""",
)
_DELETE_UNFLAGGED = {
    # IN (not a correlated EXISTS): SQLite probes the anomalies primary key per staged id
    "sqlite": """DELETE FROM anomalies WHERE model_version = :model_version
      AND source = :source AND record_id IN (
      SELECT record_id FROM stage_scores WHERE NOT is_anomaly)""",
    # an array parameter, not the staging table: the planner has no statistics on a fresh temp
    # table and picked a nested loop over it (tens of seconds per batch on a new database)
    "postgresql": """DELETE FROM anomalies WHERE model_version = :model_version
      AND source = :source AND record_id = ANY(:unflagged)""",
}
_SCORE_COLUMNS = (*(c.strip() for c in _BEAT.split(",")), "is_anomaly", "scored_at")
_ANOMALY_COLUMNS = (*(c.strip() for c in _BEAT.split(",")), "severity", "flagged_at")
_UNIQUE_VIOLATION = "23505"
#: Arrow types whose binary COPY encoding matches the columns of scores, anomalies and
#: stage_scores (the others are text)
SCORE_COPY_TYPES = {
    "model_version": pa.int32(),
    "threshold_version": pa.int32(),
    "loss": pa.float64(),
    "threshold": pa.float64(),
    "score_ratio": pa.float64(),
    "is_anomaly": pa.bool_(),
    "recorded_at": pa.timestamp("us", tz="UTC"),
    "scored_at": pa.timestamp("us", tz="UTC"),
    "flagged_at": pa.timestamp("us", tz="UTC"),
}
SEVERITY_BOUNDS = ((3.0, "high"), (1.5, "medium"), (0.0, "low"))
#: Test-only fault point, None in production: called with the batch inside its transaction,
#: after its last write and before its commit. The chaos benchmark (benchmarks/chaos.py) sets it
#: in its child runs to record that point and pause there, so a SIGKILL provably lands inside a
#: commit.
before_commit_hook: Callable[[BatchWrite], None] | None = None


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
    #: the batch's loss counts against the model's normal reference (DriftAccumulator.state)
    drift: dict | None = None
    #: the batch's idempotency key: a retried commit of it adds its run's counts only once
    key: str = field(default_factory=lambda: str(uuid.uuid4()))


def severity(score_ratio: np.ndarray) -> pa.Array:
    """low (ratio < 1.5), medium (< 3) or high, for flagged beats (Arrow strings)."""
    ratio = pa.array(score_ratio)
    out = pa.repeat(pa.scalar(SEVERITY_BOUNDS[-1][1]), len(ratio))
    for bound, name in reversed(SEVERITY_BOUNDS[:-1]):  # medium, then high over it
        out = pc.if_else(pc.greater_equal(ratio, bound), name, out)
    return out


def _labels(values: np.ndarray) -> np.ndarray | pa.Array:
    """A column of labels (n,) object; one label repeated (the usual case) as an Arrow array
    built without a Python object per row."""
    if len(values) and (values == values[0]).all():
        return pa.repeat(pa.scalar(values[0], pa.string()), len(values))
    return values


def commit_batch(
    engine: Engine, write: BatchWrite, in_turn: Callable[[], None] | None = None
) -> None:
    """Write a batch in ONE transaction: scores and flags, rejections, watermark, run counts.

    ``in_turn``, if given, is called inside the transaction after the rows are written and before
    the watermark moves: it blocks until the batch's predecessor has committed and raises if the
    predecessor failed (the transaction then rolls back), so batch transactions written in
    parallel still commit their watermarks in order.
    """
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # see the module docstring
            conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
        if write.scored is not None and len(write.scored.beats):
            _merge_scores(conn, write)
        if write.rejections:
            upsert_rejections(conn, write.source, write.run_id, write.rejections)
        if in_turn is not None:
            in_turn()
        advance_watermark(conn, write.source, write.position, write.run_id)
        add_batch_counts(
            conn, write.run_id, _run_counts(write), _drift_state(write), batch_key=write.key
        )
        if before_commit_hook is not None:
            before_commit_hook(write)


def _run_counts(write: BatchWrite) -> BatchCounts:
    """What the batch adds to its run's counts."""
    scored = write.scored
    n_scored = len(scored.beats) if scored is not None else 0
    n_flagged = int(scored.is_anomaly.sum()) if scored is not None else 0
    loss_sum = float(scored.loss.sum()) if scored is not None and n_scored else 0.0
    return BatchCounts(write.n_read, n_scored, len(write.rejections), n_flagged, loss_sum)


def _drift_state(write: BatchWrite) -> dict | None:
    """The batch's loss counts with the model they are measured against, None without."""
    if write.drift is None:
        return None
    return {**write.drift, "model_version": write.model_version}


def _stage_columns(write: BatchWrite, dialect: str) -> dict[str, np.ndarray | pa.Array]:
    """The staged columns of a batch, built column-wise (no per-row Python)."""
    scored = write.scored
    assert scored is not None
    beats = scored.beats
    ratio = scored.score_ratio
    naive_utc = beats.recorded_at.tz_convert("UTC").tz_localize(None).as_unit("us")
    times = pa.array(naive_utc.to_numpy()).cast(pa.timestamp("us", tz="UTC"))
    if dialect != "postgresql":  # the text form SQLAlchemy itself stores in SQLite
        times = pc.strftime(times, format="%Y-%m-%d %H:%M:%S")
    return {
        "record_id": beats.record_id,
        "patient_id": beats.patient_id,
        "recorded_at": times,
        "loss": scored.loss.astype(np.float64, copy=False),
        "threshold_version": scored.threshold_version.astype(np.int64, copy=False),
        "threshold": scored.threshold.astype(np.float64, copy=False),
        "score_ratio": ratio.astype(np.float64, copy=False),
        "baseline": _labels(scored.baseline),
        "is_anomaly": scored.is_anomaly.astype(bool, copy=False),
        "severity": severity(ratio),
    }


def _batch_values(write: BatchWrite, dialect: str) -> dict[str, object]:
    now = utcnow()
    scored_at = now if dialect == "postgresql" else now.strftime("%Y-%m-%d %H:%M:%S.%f")
    return {
        "model_version": write.model_version,
        "source": write.source,
        "run_id": write.run_id,
        "scored_at": scored_at,
    }


def _merge_scores(conn: Connection, write: BatchWrite) -> None:
    dialect = "postgresql" if conn.dialect.name == "postgresql" else "sqlite"
    columns = _stage_columns(write, dialect)
    values = _batch_values(write, dialect)
    # fast path: no score row existed, so no anomaly row did (both are only ever written
    # together, in one transaction, and nothing deletes scores): nothing to merge or delete
    if dialect == "postgresql" and _copy_new_rows(conn, columns, values):
        return
    conn.exec_driver_sql(_STAGE_DDL[dialect])
    if dialect == "postgresql":
        unflagged = pa.array(~columns["is_anomaly"])
        values["unflagged"] = as_arrow(columns["record_id"]).filter(unflagged).to_pylist()
        copy_columns(conn, "stage_scores", STAGE_COLUMNS, columns, SCORE_COPY_TYPES)
    else:
        conn.exec_driver_sql("DELETE FROM stage_scores")
        marks = ", ".join("?" for _ in STAGE_COLUMNS)
        rows = list(zip(*(_as_list(columns[c]) for c in STAGE_COLUMNS), strict=True))
        conn.exec_driver_sql(f"INSERT INTO stage_scores VALUES ({marks})", rows)
    for statement in (*_MERGE, _DELETE_UNFLAGGED[dialect]):
        conn.execute(sa.text(statement), values)
    if dialect != "postgresql":
        conn.exec_driver_sql("DELETE FROM stage_scores")


def _copy_new_rows(conn: Connection, columns: dict, values: dict) -> bool:
    """PostgreSQL fast path: COPY the batch straight into scores and anomalies in a savepoint.

    Returns False, having written nothing, when a beat already has a row (unique violation).
    """
    n = len(columns["record_id"])
    every = {k: pa.repeat(pa.scalar(v), n) for k, v in values.items()}
    every["flagged_at"] = every["scored_at"]
    merged = {c: as_arrow(v) for c, v in {**columns, **every}.items()}  # each converted once
    flagged = columns["is_anomaly"]
    try:
        with conn.begin_nested():
            copy_columns(conn, "scores", _SCORE_COLUMNS, merged, SCORE_COPY_TYPES)
            if flagged.any():
                mask = pa.array(flagged)
                anomalies = {c: merged[c].filter(mask) for c in _ANOMALY_COLUMNS}
                copy_columns(conn, "anomalies", _ANOMALY_COLUMNS, anomalies, SCORE_COPY_TYPES)
    except Exception as err:
        if getattr(err, "sqlstate", None) == _UNIQUE_VIOLATION:
            return False
        raise
    return True


def _as_list(values: np.ndarray | pa.Array) -> list:
    return values.to_pylist() if isinstance(values, pa.Array) else values.tolist()


def top_flagged_beats(engine: Engine, run_id: str, limit: int) -> list[dict]:
    """The ``anomalies`` rows of the run's ``limit`` worst flagged beats, by score / threshold."""
    anomalies = table(engine, "anomalies")
    query = (
        sa.select(anomalies)
        .where(anomalies.c.run_id == run_id)
        .order_by(anomalies.c.score_ratio.desc(), anomalies.c.record_id)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


#: record ids looked up per query (well under SQLite's and PostgreSQL's parameter limits)
ID_LOOKUP_CHUNK = 1000


def scored_record_ids(engine: Engine, model_version: int, source: str, ids: list[str]) -> set[str]:
    """Which of ``ids`` the source already has scores for under ``model_version``."""
    scores = table(engine, "scores")
    found: set[str] = set()
    with engine.connect() as conn:
        for start in range(0, len(ids), ID_LOOKUP_CHUNK):
            chunk = ids[start : start + ID_LOOKUP_CHUNK]
            query = sa.select(scores.c.record_id).where(
                (scores.c.model_version == model_version)
                & (scores.c.source == source)
                & scores.c.record_id.in_(chunk)
            )
            found.update(conn.execute(query).scalars())
    return found


def judged_normal_ids(engine: Engine, source: str, model_version: int, max_loss: float) -> set[str]:
    """Record ids of a source that ``model_version``'s population autoencoder (not a patient's
    own model) scored normal with a loss at most ``max_loss``."""
    scores = table(engine, "scores")
    query = sa.select(scores.c.record_id).where(
        (scores.c.source == source)
        & (scores.c.model_version == model_version)
        & (scores.c.baseline == "population")
        & ~scores.c.is_anomaly
        & (scores.c.loss <= max_loss)
    )
    with engine.connect() as conn:
        return set(conn.execute(query).scalars())


def new_flag_count(engine: Engine, run_id: str) -> int:
    """Beats this run flagged first that no alert has reached yet."""
    anomalies = table(engine, "anomalies")
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count())
            .select_from(anomalies)
            .where(anomalies.c.run_id == run_id, anomalies.c.alert_state != "sent")
        ).scalar_one()


def runs_with_unalerted_flags(engine: Engine) -> list[str]:
    """Run ids (sorted) that flagged beats no alert has reached yet."""
    anomalies = table(engine, "anomalies")
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(anomalies.c.run_id)
                .where(anomalies.c.alert_state != "sent")
                .group_by(anomalies.c.run_id)
                .order_by(anomalies.c.run_id)
            ).scalars()
        )


def record_alert_outcome(
    engine: Engine, run_id: str, state: str, detail: str, beat_state: str | None
) -> None:
    """Store an alert's outcome on the run and, with ``beat_state``, on the run's beats no alert
    has reached yet, in one transaction."""
    anomalies = table(engine, "anomalies")
    with engine.begin() as conn:
        set_alert_outcome(conn, run_id, state, detail)
        if beat_state:
            conn.execute(
                anomalies.update()
                .where(anomalies.c.run_id == run_id, anomalies.c.alert_state != "sent")
                .values(alert_state=beat_state, alerted_at=utcnow())
            )


def source_scores(engine: Engine, source_prefix: str, source: str | None = None) -> pd.DataFrame:
    """Score rows of the sources whose key starts with ``source_prefix`` (or of one ``source``):
    columns record_id, loss, is_anomaly, threshold, baseline."""
    scores = table(engine, "scores")
    query = sa.select(
        scores.c.record_id,
        scores.c.loss,
        scores.c.is_anomaly,
        scores.c.threshold,
        scores.c.baseline,
    ).where(scores.c.source.like(f"{source_prefix}%"))
    if source is not None:
        query = query.where(scores.c.source == source)
    with engine.connect() as conn:
        result = conn.execute(query)
        return pd.DataFrame(result.all(), columns=list(result.keys()))


#: the columns a period's score counts may be grouped by
COUNT_KEYS = ("model_version", "threshold_version", "patient_id", "baseline")


def score_counts(engine: Engine, start: datetime, end: datetime, by: tuple[str, ...]) -> list[dict]:
    """Beats recorded in [start, end) (UTC-aware bounds) grouped ``by`` columns of
    :data:`COUNT_KEYS`: {key columns, beats, flagged, threshold (the smallest of the group)}."""
    scores = table(engine, "scores")
    keys = [scores.c[name] for name in by if name in COUNT_KEYS]
    query = (
        sa.select(
            *keys,
            sa.func.count().label("beats"),
            sa.func.sum(sa.case((scores.c.is_anomaly, 1), else_=0)).label("flagged"),
            sa.func.min(scores.c.threshold).label("threshold"),
        )
        .where(scores.c.recorded_at >= start, scores.c.recorded_at < end)
        .group_by(*keys)
        .order_by(*keys)
    )
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def period_losses(
    engine: Engine, start: datetime, end: datetime, chunk: int = 50_000
) -> Iterator[pd.DataFrame]:
    """The losses of beats recorded in [start, end), streamed in frames of at most ``chunk``
    rows: columns model_version, patient_id, baseline, loss, is_anomaly."""
    scores = table(engine, "scores")
    columns = ("model_version", "patient_id", "baseline", "loss", "is_anomaly")
    query = sa.select(*(scores.c[name] for name in columns)).where(
        scores.c.recorded_at >= start, scores.c.recorded_at < end
    )
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=chunk).execute(query)
        for part in result.partitions(chunk):
            yield pd.DataFrame(part, columns=list(columns))


def worst_flagged_beats(engine: Engine, start: datetime, end: datetime, limit: int) -> list[dict]:
    """The ``anomalies`` rows of the ``limit`` worst beats recorded in [start, end)."""
    anomalies = table(engine, "anomalies")
    query = (
        sa.select(anomalies)
        .where(anomalies.c.recorded_at >= start, anomalies.c.recorded_at < end)
        .order_by(anomalies.c.score_ratio.desc(), anomalies.c.record_id)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]
