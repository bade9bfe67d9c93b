"""SIGKILLed score runs leave exactly the rows of an uninterrupted run; concurrent runs never
double-write (the per-source lock of ecgmon.storage.locks)."""

import random
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from ecgmon.storage.engine import create_db_engine
from ecgmon.storage.locks import SourceBusyError, source_lock
from tests.conftest import write_day

N_DAYS, PER_DAY = 3, 120


@pytest.fixture(scope="module")
def context():
    from benchmarks.chaos import forkserver

    return forkserver()


def _feed(tmp_path: Path, synthetic_set) -> tuple[Path, set[str], set[str]]:
    folder = tmp_path / "feed"
    good, bad = set(), set()
    for d in range(N_DAYS):
        signals = synthetic_set.signals[d * PER_DAY : (d + 1) * PER_DAY].copy()
        signals[::25] = np.nan
        write_day(folder, f"2026-11-0{d + 1}", signals, d * PER_DAY)
        ids = [f"beat-{d * PER_DAY + i:06d}" for i in range(PER_DAY)]
        bad |= set(ids[::25])
        good |= set(ids) - set(ids[::25])
    return folder, good, bad


def _state(url: str) -> tuple[list[str], list[str], list[tuple]]:
    with create_db_engine(url).connect() as conn:
        scores = conn.execute(sa.text("select record_id from scores")).scalars().all()
        rejected = conn.execute(sa.text("select record_key from rejected_records")).scalars().all()
        runs = conn.execute(
            sa.text("select flow, n_read, n_scored, n_rejected from pipeline_runs")
        ).all()
    return scores, [k.rsplit(":", 1)[-1] for k in rejected], [tuple(r) for r in runs]


def test_sigkilled_score_runs_then_a_rerun_leave_each_row_once(
    ecgmon_env, champion, synthetic_set, tmp_path, context
):
    from benchmarks.chaos import Target, kill_at_random, run_to_end, spawn, watermark_ahead

    url, store = ecgmon_env.database_url_plain, Path(ecgmon_env.model_store)
    folder, good, bad = _feed(tmp_path, synthetic_set)
    rng = random.Random(1)
    target = Target(url, store, folder, 10)
    for _ in range(3):
        child, ready = spawn(context, "score", target)
        kill_at_random(child, ready, rng, window=1.5)
        assert watermark_ahead(create_db_engine(url), folder) == 0
    run_to_end(context, "score", target)
    scores, rejected, runs = _state(url)
    assert sorted(scores) == sorted(good) and sorted(rejected) == sorted(bad)
    assert all(r[1] == r[2] + r[3] for r in runs)  # every run conserves, killed ones too


def test_two_concurrent_score_runs_score_each_record_once(
    ecgmon_env, champion, synthetic_set, tmp_path, context
):
    from benchmarks.chaos import Target, spawn

    url, store = ecgmon_env.database_url_plain, Path(ecgmon_env.model_store)
    folder, good, bad = _feed(tmp_path, synthetic_set)
    target = Target(url, store, folder, 10)
    children = [spawn(context, "score", target) for _ in range(2)]
    for child, _ready in children:  # keep the events alive until the children have them
        child.join(timeout=300)
        assert child.exitcode == 0
    scores, rejected, runs = _state(url)
    assert len(runs) == 2
    assert sum(r[2] for r in runs) == len(good) == len(scores)
    assert sum(r[3] for r in runs) == len(bad) == len(rejected)


def test_a_second_holder_of_the_source_lock_waits_or_is_told_busy(ecgmon_env):
    engine = create_db_engine(ecgmon_env.database_url_plain)
    with source_lock(engine, "parquet:/feed"):
        with pytest.raises(SourceBusyError), source_lock(engine, "parquet:/feed", wait=False):
            pass
        with source_lock(engine, "parquet:/other", wait=False):
            pass  # another source is not blocked
    with source_lock(engine, "parquet:/feed", wait=False):
        pass  # released
