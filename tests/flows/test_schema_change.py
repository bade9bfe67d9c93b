"""A file whose schema changed upstream is loud (warning, summary count, alert) and, once fixed in
place, read again."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from ecgmon.storage.engine import create_db_engine
from tests.conftest import write_day
from tests.flows.test_alerts import Receiver


def _day(path: Path, signals: np.ndarray, column: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "record_id": [f"renamed-{i:04d}" for i in range(len(signals))],
            "recorded_at": pd.Timestamp("2026-11-02", tz="UTC"),
            "patient_id": "p1",
            column: list(signals.astype(np.float32)),
        }
    ).to_parquet(path, index=False)


def _scored(settings, prefix: str) -> int:
    with create_db_engine(settings.database_url_plain).connect() as conn:
        query = sa.text("select count(*) from scores where record_id like :p")
        return conn.execute(query, {"p": f"{prefix}%"}).scalar_one()


@pytest.mark.flow
def test_a_renamed_beat_column_warns_alerts_and_is_read_again_once_fixed(
    prefect_harness, ecgmon_env, champion, synthetic_set, tmp_path, monkeypatch
):
    from ecgmon.flows.score import score_flow

    receiver = Receiver()

    monkeypatch.setenv("ECGMON_ALERT_URLS", f"json://127.0.0.1:{receiver.port}/alerts")
    monkeypatch.setenv("ECGMON_ANOMALY_RATE_BOUND", "1.0")  # only the schema may alert
    monkeypatch.setenv("ECGMON_DRIFT_BOUND", "1000")
    folder = tmp_path / "in"
    normal = synthetic_set.signals[synthetic_set.normal_mask()]
    write_day(folder, "2026-11-01", normal[:50])
    score_flow(source=str(folder))
    receiver.bodies.clear()

    renamed = folder / "date=2026-11-02" / "part-0.parquet"
    _day(renamed, normal[:120], column="beat")
    warned: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = warned.append  # type: ignore[method-assign]
    task_logs = logging.getLogger("prefect.task_runs")  # Prefect's run logs do not propagate
    task_logs.addHandler(handler)
    try:
        result = score_flow(source=str(folder))
    finally:
        task_logs.removeHandler(handler)
    assert result["status"] == "completed" and result["n_scored"] == 0
    assert [f["reason"] for f in result["files_rejected"]] == ["schema_mismatch"]
    assert any("date=2026-11-02/part-0.parquet" in r.getMessage() for r in warned)
    assert any("schema_mismatch" in r.getMessage() for r in warned)
    assert len(receiver.bodies) == 1, "a file rejected whole alerts even with nothing flagged"
    assert "schema_mismatch" in receiver.bodies[0]["message"]
    assert "date=2026-11-02/part-0.parquet" in receiver.bodies[0]["message"]

    _day(renamed, normal[:120], column="signal")  # fixed upstream, same path
    fixed = score_flow(source=str(folder))
    assert fixed["n_scored"] == 120 and fixed["files_rejected"] == []
    assert _scored(ecgmon_env, "renamed-") == 120
    again = score_flow(source=str(folder))
    receiver.server.shutdown()
    assert again["n_read"] == 0  # the fixed file's watermark is complete for its new content


@pytest.mark.flow
def test_a_file_rewritten_in_place_with_more_beats_scores_only_the_new_ones(
    prefect_harness, ecgmon_env, champion, synthetic_set, tmp_path
):
    from ecgmon.flows.score import score_flow

    folder = tmp_path / "in"
    path = folder / "date=2026-11-02" / "part-0.parquet"
    _day(path, synthetic_set.signals[:80], column="signal")
    assert score_flow(source=str(folder))["n_scored"] == 80
    _day(path, synthetic_set.signals[:130], column="signal")  # 50 beats added, same path
    second = score_flow(source=str(folder))
    assert second["n_scored"] == 50 and second["n_read"] == 50
    assert _scored(ecgmon_env, "renamed-") == 130
    with create_db_engine(ecgmon_env.database_url_plain).connect() as conn:
        query = sa.text("select count(*) from scores where run_id = :r")
        assert conn.execute(query, {"r": second["run_id"]}).scalar_one() == 50
        runs = {r[0] for r in conn.execute(sa.text("select source from pipeline_runs"))}
        marks = {r[0] for r in conn.execute(sa.text("select source from ingest_watermarks"))}
    assert runs == marks == {f"parquet:{folder.resolve()}"}  # one absolute form, joinable
