"""Operations flows: retrain gate, recalibration, resumable backfill (threads and Dask), as_of."""

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from ecgmon.storage.engine import create_db_engine
from tests.conftest import write_day

pytestmark = pytest.mark.flow
DAYS = ["2026-11-01", "2026-11-02", "2026-11-03"]


def scalar(settings, sql: str):
    with create_db_engine(settings.database_url_plain).connect() as conn:
        return conn.execute(sa.text(sql)).scalar_one()


def score_rows(settings) -> list[tuple]:
    sql = (
        "select record_id, model_version, threshold_version, loss, is_anomaly "
        "from scores order by record_id"
    )
    with create_db_engine(settings.database_url_plain).connect() as conn:
        rows = conn.execute(sa.text(sql))
        return [(r[0], r[1], r[2], round(r[3], 9), bool(r[4])) for r in rows]


@pytest.fixture
def incoming(tmp_path, synthetic_set):
    folder = tmp_path / "incoming"
    for i, day in enumerate(DAYS):
        write_day(folder, day, synthetic_set.signals[i * 60 : (i + 1) * 60], i * 60)
    return folder


@pytest.fixture
def training_file(tmp_path, synthetic_set):
    from ecgmon.synthetic import write_ucr

    return write_ucr(synthetic_set, tmp_path / "train.tsv")


def test_retrain_gate_promotes_or_rejects_and_records_the_decision(
    ecgmon_env, champion, training_file
):
    from ecgmon.models.registry.gate import GatePolicy
    from ecgmon.models.registry.versions import champion_version, get_version, rollback
    from ecgmon.tasks.gate import retrain

    engine = create_db_engine(ecgmon_env.database_url_plain)
    strict = GatePolicy(far_tolerance=-1.0)  # no candidate can pass: reject
    record = retrain(ecgmon_env, str(training_file), "dense", 1, 0, policy=strict)
    rejected = get_version(engine, record["model_version"])
    assert rejected["status"] == "rejected" and not rejected["gate"]["promoted"]
    assert rejected["gate"]["champion_version"] == champion
    assert rejected["gate"]["n_abnormal"] > 0 and rejected["gate"]["candidate"]["auroc"]
    assert champion_version(engine) == champion

    lax = GatePolicy(far_tolerance=1.0, auroc_tolerance=1.0)
    record = retrain(ecgmon_env, str(training_file), "dense", 1, 0, policy=lax)
    assert record["promoted"] and champion_version(engine) == record["model_version"]
    assert get_version(engine, champion)["status"] == "archived"
    assert rollback(engine) == champion and champion_version(engine) == champion


def test_retrain_flow_without_champion_promotes(prefect_harness, ecgmon_env, training_file):
    from ecgmon.flows.retrain import retrain_flow

    result = retrain_flow(data=str(training_file), architecture="dense", epochs=1)
    assert result["promoted"] and result["reasons"] == ["no champion yet"]
    assert scalar(ecgmon_env, "select status from model_versions") == "champion"
    assert scalar(ecgmon_env, "select count(*) from pipeline_runs where flow = 'retrain'") == 1


def test_recalibrate_adds_one_version_and_old_scores_keep_theirs(
    prefect_harness, ecgmon_env, champion, incoming
):
    from ecgmon.flows.recalibrate import recalibrate_flow
    from ecgmon.flows.score import score_flow

    score_flow(source=str(incoming))
    before = scalar(ecgmon_env, "select count(*) from thresholds")
    result = recalibrate_flow(method="quantile", param=0.99)
    assert result["added"] and result["threshold_version"] != 1
    assert scalar(ecgmon_env, "select count(*) from thresholds") == before + 1
    assert scalar(ecgmon_env, "select count(*) from thresholds where active") == 1
    assert scalar(ecgmon_env, "select count(distinct threshold_version) from scores") == 1
    assert scalar(ecgmon_env, "select max(threshold_version) from scores") == 1
    again = recalibrate_flow(method="quantile", param=0.99)  # identical: nothing new
    assert (
        not again["added"] and scalar(ecgmon_env, "select count(*) from thresholds") == before + 1
    )


def test_backfill_twice_no_duplicates_and_resume_skips_done_days(
    prefect_harness, ecgmon_env, champion, incoming
):
    from ecgmon.flows.backfill import backfill_flow

    first = backfill_flow(source=str(incoming), start=date(2026, 11, 1), end=date(2026, 11, 2))
    assert (first["days_done"], first["n_scored"]) == (2, 120)
    assert scalar(ecgmon_env, "select count(*) from scores") == 120
    again = backfill_flow(source=str(incoming), start=date(2026, 11, 1), end=date(2026, 11, 3))
    assert (again["days_done"], again["days_skipped"], again["n_scored"]) == (1, 2, 60)
    assert scalar(ecgmon_env, "select count(*) from scores") == 180
    # a crash after day 1: its marker is missing, so only it is redone, as upserts
    with create_db_engine(ecgmon_env.database_url_plain).begin() as conn:
        conn.execute(sa.text("delete from ingest_watermarks where stream = '2026-11-01'"))
    redo = backfill_flow(source=str(incoming), start="2026-11-01", end="2026-11-03")
    assert (redo["days_done"], redo["n_scored"]) == (1, 60)
    assert scalar(ecgmon_env, "select count(*) from scores") == 180
    runs = "select count(*) from pipeline_runs where flow = 'backfill' and status = 'completed'"
    assert scalar(ecgmon_env, runs) == 3


def test_dask_backfill_gives_the_same_rows_as_threads(
    prefect_harness, ecgmon_env, champion, incoming
):
    from ecgmon.flows.backfill import backfill_flow

    backfill_flow(source=str(incoming), start="2026-11-01", end="2026-11-03")
    threads = score_rows(ecgmon_env)
    with create_db_engine(ecgmon_env.database_url_plain).begin() as conn:
        for name in ("anomalies", "scores", "ingest_watermarks"):
            conn.execute(sa.text(f"delete from {name}"))
    result = backfill_flow(
        source=str(incoming), start="2026-11-01", end="2026-11-03", task_runner="dask"
    )
    assert result["days_done"] == 3
    assert len(threads) == 180 and score_rows(ecgmon_env) == threads


def test_score_window_comes_from_the_scheduled_start_time(
    prefect_harness, ecgmon_env, champion, incoming, monkeypatch
):
    import prefect.runtime.flow_run as runtime_flow_run

    from ecgmon.flows.score import score_flow, window_end

    scheduled = datetime(2026, 11, 2, 0, 15, tzinfo=UTC)  # what a scheduled run's API row says
    monkeypatch.setitem(runtime_flow_run.FIELDS, "scheduled_start_time", lambda: scheduled)
    assert window_end(None) == scheduled
    first = score_flow(source=str(incoming))  # day 3 is after the window: left for later
    assert first["n_scored"] == 120
    later = score_flow(source=str(incoming), as_of=datetime(2026, 11, 3, 0, 15, tzinfo=UTC))
    assert later["n_scored"] == 60
    assert scalar(ecgmon_env, "select count(*) from scores") == 180
