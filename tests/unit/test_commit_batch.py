"""commit_batch: a batch of new beats and the same beats committed again leave the same rows.

On PostgreSQL the first commit takes the COPY fast path and the second one (rows exist) falls
back to the staged upsert; on SQLite both take the staged upsert.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from ecgmon.records import ScoredBeats, StreamPosition, ValidBeats
from ecgmon.storage.batches import BatchWrite, commit_batch
from ecgmon.storage.engine import create_db_engine
from ecgmon.storage.runs import start_run


def _write(ids: list[str], losses: list[float], offset: int) -> BatchWrite:
    n = len(ids)
    beats = ValidBeats(
        record_id=np.array(ids, dtype=object),
        recorded_at=pd.DatetimeIndex(pd.date_range("2026-01-01", periods=n, freq="s", tz="UTC")),
        patient_id=np.array(["p1"] * n, dtype=object),
        signals=np.zeros((n, 0), np.float32),
    )
    loss = np.array(losses)
    scored = ScoredBeats(
        beats=beats,
        loss=loss,
        is_anomaly=loss > 1.0,
        threshold=np.ones(n),
        threshold_version=np.ones(n, dtype=np.int64),
        baseline=np.full(n, "population", dtype=object),
    )
    return BatchWrite("run-1", "src", 1, scored, [], StreamPosition("s", offset), n)


def _rows(engine: sa.Engine, name: str) -> dict[str, float]:
    with engine.connect() as conn:
        query = f"SELECT record_id, loss FROM {name} ORDER BY record_id"
        return {r.record_id: r.loss for r in conn.exec_driver_sql(query)}


def test_recommitting_a_batch_updates_scores_and_flags(ecgmon_env) -> None:
    engine = create_db_engine(ecgmon_env.database_url_plain)
    start_run(engine, "run-1", "score", {}, "src")
    commit_batch(engine, _write(["a", "b", "c"], [0.5, 2.0, 3.0], 3))
    assert _rows(engine, "scores") == {"a": 0.5, "b": 2.0, "c": 3.0}
    assert _rows(engine, "anomalies") == {"b": 2.0, "c": 3.0}
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE anomalies SET alert_state = 'sent' WHERE record_id = 'c'")
    commit_batch(engine, _write(["a", "b", "c", "d"], [1.5, 0.2, 4.0, 0.1], 4))
    assert _rows(engine, "scores") == {"a": 1.5, "b": 0.2, "c": 4.0, "d": 0.1}
    assert _rows(engine, "anomalies") == {"a": 1.5, "c": 4.0}
    with engine.connect() as conn:
        states = dict(conn.exec_driver_sql("SELECT record_id, alert_state FROM anomalies").all())
        run = conn.exec_driver_sql("SELECT n_scored FROM pipeline_runs").scalar_one()
    assert states == {"a": "pending", "c": "sent"}
    assert run == 7


def test_the_before_commit_hook_runs_inside_the_batch_transaction(ecgmon_env, monkeypatch) -> None:
    """The chaos benchmark's fault point: the hook sees every write of the batch done (on the
    batch's own connection) and nothing of it committed; a failure there rolls it all back."""
    from ecgmon.storage import batches

    engine = create_db_engine(ecgmon_env.database_url_plain)
    start_run(engine, "run-1", "score", {}, "src")
    seen: list[dict] = []

    def hook(write: BatchWrite) -> None:
        seen.append(_rows(engine, "scores"))  # another connection: nothing committed yet
        raise KeyboardInterrupt  # like the SIGKILL the benchmark sends while the hook waits

    monkeypatch.setattr(batches, "before_commit_hook", hook)
    with pytest.raises(KeyboardInterrupt):
        commit_batch(engine, _write(["a", "b"], [0.5, 2.0], 2))
    assert seen == [{}]
    assert _rows(engine, "scores") == {} and _rows(engine, "anomalies") == {}
    with engine.connect() as conn:
        marks = conn.exec_driver_sql("SELECT count(*) FROM ingest_watermarks").scalar_one()
        run = conn.exec_driver_sql("SELECT n_scored FROM pipeline_runs").scalar_one()
    assert marks == 0 and run == 0
