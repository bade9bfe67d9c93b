"""Database outages: transient commit errors are retried; a commit that keeps failing leaves
nothing half-written, the run fails cleanly, and the next run resumes at the last commit."""

from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from ecgmon.storage.engine import create_db_engine
from ecgmon.storage.runs import BatchCounts
from tests.conftest import write_day


def _outage(message: str = "server closed the connection unexpectedly") -> sa.exc.OperationalError:
    return sa.exc.OperationalError("UPDATE pipeline_runs", {}, Exception(message))


def _tables(url: str) -> dict[str, int]:
    with create_db_engine(url).connect() as conn:
        return {
            t: conn.execute(sa.text(f"select count(*) from {t}")).scalar_one()
            for t in ("scores", "anomalies", "rejected_records")
        }


def _feed(tmp_path: Path, synthetic_set) -> Path:
    folder = tmp_path / "in"
    signals = synthetic_set.signals[:40].copy()
    signals[5] = np.nan  # one rejection in the first batch
    write_day(folder, "2026-11-01", signals)
    return folder


@pytest.fixture
def no_sleep(monkeypatch):
    monkeypatch.setattr("ecgmon.storage.locks.time.sleep", lambda _s: None)


def _score(settings, folder: Path, run_id: str):
    from ecgmon.storage.runs import start_run
    from ecgmon.tasks.scoring import resolve_judge, score_new_records

    start_run(create_db_engine(settings.database_url_plain), run_id, "score", {}, str(folder))
    return score_new_records(settings, str(folder), None, resolve_judge(settings), run_id)


def test_a_transient_error_is_retried(
    ecgmon_env, champion, synthetic_set, tmp_path, monkeypatch, no_sleep
):
    import ecgmon.storage.batches as batches

    real, calls = batches.add_batch_counts, {"n": 0}

    def flaky(
        conn: sa.Connection, run_id: str, counts: BatchCounts, drift: dict | None = None, **kw
    ) -> bool:
        calls["n"] += 1
        if calls["n"] == 2:
            raise _outage()
        return real(conn, run_id, counts, drift, **kw)

    monkeypatch.setattr(batches, "add_batch_counts", flaky)
    settings = ecgmon_env.model_copy(update={"batch_size": 10})
    counts = _score(settings, _feed(tmp_path, synthetic_set), "run-a")
    assert (counts.n_read, counts.n_scored, counts.n_rejected) == (40, 39, 1)
    assert _tables(settings.database_url_plain)["scores"] == 39


def test_a_lasting_outage_fails_cleanly_and_the_next_run_resumes(
    ecgmon_env, champion, synthetic_set, tmp_path, monkeypatch, no_sleep
):
    import ecgmon.storage.batches as batches
    from ecgmon.storage.watermarks import read_watermarks

    real, calls = batches.add_batch_counts, {"n": 0}

    def down_after_first(
        conn: sa.Connection, run_id: str, counts: BatchCounts, drift: dict | None = None, **kw
    ) -> bool:
        calls["n"] += 1
        if calls["n"] > 1:  # the scores of this batch are already merged: must roll back
            raise _outage()
        return real(conn, run_id, counts, drift, **kw)

    monkeypatch.setattr(batches, "add_batch_counts", down_after_first)
    settings = ecgmon_env.model_copy(update={"batch_size": 10})
    folder = _feed(tmp_path, synthetic_set)
    with pytest.raises(sa.exc.OperationalError):
        _score(settings, folder, "run-down")
    url = settings.database_url_plain
    assert _tables(url)["scores"] == 9 and _tables(url)["rejected_records"] == 1
    marks = read_watermarks(create_db_engine(url), f"parquet:{folder.resolve()}")
    assert [m["position_offset"] for m in marks.values()] == [10]

    monkeypatch.setattr(batches, "add_batch_counts", real)
    counts = _score(settings, folder, "run-up")
    assert (counts.n_read, counts.n_scored) == (30, 30)
    assert _tables(url)["scores"] == 39
    with create_db_engine(url).connect() as conn:
        runs = conn.execute(sa.text("select n_read, n_scored, n_rejected from pipeline_runs")).all()
    assert all(r[0] == r[1] + r[2] for r in runs)
    assert sum(r[1] for r in runs) == 39  # each beat scored exactly once over both runs
