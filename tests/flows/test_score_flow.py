"""The score flow on real Parquet partitions: conservation, idempotency, incremental reads."""

import numpy as np
import pytest
import sqlalchemy as sa

from ecgmon.storage.engine import create_db_engine
from tests.conftest import write_day

pytestmark = pytest.mark.flow


def counts(settings) -> dict[str, int]:
    engine = create_db_engine(settings.database_url_plain)
    with engine.connect() as conn:
        return {
            t: conn.execute(sa.text(f"select count(*) from {t}")).scalar_one()
            for t in ("scores", "anomalies", "rejected_records", "pipeline_runs")
        }


def test_rerun_changes_nothing_and_new_partition_scores_only_new_beats(
    prefect_harness, ecgmon_env, champion, synthetic_set, tmp_path
):
    from ecgmon.flows.score import score_flow

    folder = tmp_path / "incoming"
    signals = synthetic_set.signals
    write_day(folder, "2026-11-01", signals[:100], 0)
    write_day(folder, "2026-11-02", signals[100:200], 100)

    first = score_flow(source=str(folder))
    assert (first["n_read"], first["n_scored"], first["n_rejected"]) == (200, 200, 0)
    after_first = counts(ecgmon_env)
    assert after_first["scores"] == 200
    assert 0 < after_first["anomalies"] < 200

    second = score_flow(source=str(folder))
    assert second["n_read"] == 0
    assert {k: v for k, v in counts(ecgmon_env).items() if k != "pipeline_runs"} == {
        k: v for k, v in after_first.items() if k != "pipeline_runs"
    }

    write_day(folder, "2026-11-03", signals[200:250], 200)
    third = score_flow(source=str(folder))
    assert third["n_read"] == 50
    assert counts(ecgmon_env)["scores"] == 250


def test_bad_rows_are_quarantined_and_runs_conserve_counts(
    prefect_harness, ecgmon_env, champion, synthetic_set, tmp_path
):
    import pandas as pd

    from ecgmon.flows.score import score_flow

    path = write_day(tmp_path / "in", "2026-11-01", synthetic_set.signals[:10])
    frame = pd.read_parquet(path)
    frame.loc[3, "signal"] = np.full(140, np.nan, dtype=np.float32)
    frame.loc[4, "signal"] = np.zeros(7, dtype=np.float32)
    frame.loc[5, "record_id"] = None
    frame.to_parquet(path, index=False)
    (tmp_path / "in" / "date=2026-11-02").mkdir()
    (tmp_path / "in" / "date=2026-11-02" / "broken.parquet").write_bytes(b"not parquet at all")

    result = score_flow(source=str(tmp_path / "in"))
    assert result["n_read"] == result["n_scored"] + result["n_rejected"]
    assert (result["n_scored"], result["n_rejected"]) == (7, 4)
    engine = create_db_engine(ecgmon_env.database_url_plain)
    with engine.connect() as conn:
        reasons = sorted(r[0] for r in conn.execute(sa.text("select reason from rejected_records")))
        run = conn.execute(
            sa.text(
                "select n_read, n_scored, n_rejected, status from pipeline_runs "
                "where flow = 'score'"
            )
        ).one()
    assert reasons == ["missing_record_id", "non_finite", "unreadable_file", "wrong_length"]
    assert tuple(run) == (11, 7, 4, "completed")
