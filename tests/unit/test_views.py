"""Every analyst view on SQLite and PostgreSQL, with real scored rows and one figure each."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
import sqlalchemy as sa

from ecgmon.drift import drift_report
from ecgmon.storage.engine import create_db_engine, view_files
from ecgmon.storage.runs import finish_run, start_run
from ecgmon.tasks.reporting import _json, measure_drift
from ecgmon.tasks.scoring import resolve_judge, score_new_records
from tests.conftest import write_day


@pytest.fixture
def scored(ecgmon_env, champion, synthetic_set, tmp_path):
    """Two days of 60 beats scored by the champion in one completed run with drift measured."""
    settings = ecgmon_env
    engine = create_db_engine(settings.database_url_plain)
    write_day(tmp_path / "in", "2026-11-01", synthetic_set.signals[:60], 0)
    write_day(tmp_path / "in", "2026-11-02", synthetic_set.signals[60:120], 60)
    start_run(engine, "run-1", "score", {}, "in")
    ref = resolve_judge(settings)
    score_new_records(settings, str(tmp_path / "in"), None, ref, "run-1")
    drift = measure_drift(engine, "run-1", ref.model_version)
    finish_run(
        engine,
        "run-1",
        "completed",
        model_version=ref.model_version,
        threshold_version=ref.threshold_version,
        drift_psi=drift["psi"],
        drift=drift,
    )
    return engine, ref, drift


def test_drift_counted_batch_by_batch_equals_the_stored_losses(scored) -> None:
    engine, ref, drift = scored
    losses = [r["loss"] for r in rows(engine, "select loss from scores where run_id = 'run-1'")]
    normal = one(
        engine, "select normal_losses from model_versions where version = :v", v=ref.model_version
    )
    expected = drift_report(np.asarray(_json(normal)), np.asarray(losses))
    assert drift["n_observed"] == len(losses) == 120
    assert drift["psi"] == pytest.approx(expected["psi"])
    assert drift["ks"] == pytest.approx(expected["ks"])
    assert one(engine, "select count(*) from scores where run_id = 'run-1'") == 120


def rows(engine, sql: str, **params) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(sql), params)]


def one(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar_one()


def test_every_view_is_documented_and_returns_rows(scored) -> None:
    engine, _ref, _drift = scored
    names = [path.stem for path in view_files()]
    assert len(names) >= 5 and "v_drift" in names
    for path in view_files():
        header = path.read_text().split("CREATE VIEW")[0]
        assert "Grain:" in header and "Columns:" in header, path.name
        assert rows(engine, f"select * from {path.stem}"), f"{path.stem} is empty"


def test_daily_anomaly_rate_is_flagged_over_scored(scored) -> None:
    engine, _ref, _drift = scored
    day = rows(engine, "select * from v_daily_anomaly_rate where day = '2026-11-02'")[0]
    flagged = one(
        engine,
        "select count(*) from anomalies where recorded_at >= :a and recorded_at < :b",
        a=datetime(2026, 11, 2, tzinfo=UTC),
        b=datetime(2026, 11, 3, tzinfo=UTC),
    )
    assert day["beats_scored"] == 60 and day["beats_flagged"] == flagged
    assert float(day["anomaly_rate"]) == pytest.approx(flagged / 60)


def test_flagged_beats_match_anomalies(scored) -> None:
    engine, ref, _drift = scored
    view = rows(engine, "select * from v_flagged_beats")
    assert len(view) == one(engine, "select count(*) from anomalies") > 0
    assert all(
        r["score_ratio"] > 1 and r["threshold_version"] == ref.threshold_version for r in view
    )


def test_model_history_shows_the_active_threshold(scored) -> None:
    engine, ref, _drift = scored
    (row,) = rows(engine, "select * from v_model_history")
    assert row["model_status"] == "champion" and bool(row["threshold_active"])
    assert row["threshold_value"] == pytest.approx(ref.threshold)


def test_run_summary_conserves_and_rates(scored) -> None:
    engine, _ref, _drift = scored
    (run,) = rows(engine, "select * from v_run_summary where run_id = 'run-1'")
    assert (run["n_read"], run["n_scored"], run["conserved"]) == (120, 120, 1)
    assert float(run["anomaly_rate"]) == pytest.approx(run["n_flagged"] / 120)


def test_drift_view_carries_the_measured_psi(scored) -> None:
    engine, _ref, drift = scored
    (row,) = rows(engine, "select * from v_drift")
    mean = one(engine, "select avg(loss) from scores")
    reference = one(engine, "select loss_mean from model_versions")
    assert row["drift_psi"] == pytest.approx(drift["psi"]) and row["n_scored"] == 120
    assert float(row["mean_loss_ratio"]) == pytest.approx(mean / reference)
