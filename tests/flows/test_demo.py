"""The offline demo: no shared data, no internet -> synthetic beats, and still rows everywhere."""

import logging

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


def test_a_champion_that_cannot_be_read_is_logged_and_the_demo_trains(
    ecgmon_env, tmp_path, monkeypatch, caplog
):
    import ecgmon.flows.demo as demo
    import ecgmon.models.registry.versions as versions

    def unreadable(engine: sa.Engine) -> int:
        raise sa.exc.OperationalError("select version", {}, Exception("database is locked"))

    def train_flow(**kwargs: object) -> dict:
        trained.append(kwargs)
        return {"model_version": 7}

    trained: list[dict] = []
    monkeypatch.setattr(versions, "champion_version", unreadable)
    with caplog.at_level(logging.WARNING, logger=demo.__name__):
        version = demo._reuse_or_train(ecgmon_env, tmp_path / "t.tsv", 1, train_flow, print)
    assert version == 7 and len(trained) == 1
    assert "champion not read (OperationalError" in caplog.text
