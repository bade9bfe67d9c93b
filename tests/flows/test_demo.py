"""The offline demo: no shared data, no internet -> synthetic beats, and still rows everywhere."""

import pytest
import sqlalchemy as sa

from ecgmon.storage.engine import create_db_engine

pytestmark = pytest.mark.flow


def test_demo_offline_falls_back_to_synthetic_beats(
    prefect_harness, ecgmon_env, tmp_path, monkeypatch, capsys
):
    import ecgmon.flows.demo as demo

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(demo, "SHARED_ECG5000", tmp_path / "no-such-folder")
    monkeypatch.setattr(demo, "PUBLIC_ECG_CSV", "http://127.0.0.1:9/ecg.csv")
    assert demo.run_demo(data=None, beats_per_day=40, epochs=3, say=print)["n_scored"] == 120
    out = capsys.readouterr().out
    assert "synthetic heartbeats (offline fallback)" in out
    assert "beats read 122, scored 120, rejected 2" in out
    engine = create_db_engine(ecgmon_env.database_url_plain)
    with engine.connect() as conn:
        n = {
            t: conn.execute(sa.text(f"select count(*) from {t}")).scalar_one()
            for t in ("scores", "anomalies", "model_versions", "thresholds", "pipeline_runs")
        }
    assert n["scores"] == 120 and 0 < n["anomalies"] < 120
    assert n["model_versions"] == 1 and n["thresholds"] == 1 and n["pipeline_runs"] == 2
