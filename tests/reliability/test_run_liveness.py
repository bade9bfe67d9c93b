"""A run's lock tells a live run from a dead one, however its process died; only dead runs of the
same flow are marked crashed, and a dead run's unfinished alert becomes claimable again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import sqlalchemy as sa

from ecgmon.storage.engine import create_db_engine
from ecgmon.storage.locks import run_is_alive, run_lock
from ecgmon.storage.runs import claim_alert, claim_crashed_alerts, mark_dead_runs, start_run

HOLDER = textwrap.dedent(
    """
    import sys, time
    from ecgmon.storage.engine import create_db_engine
    from ecgmon.storage.locks import run_lock
    with run_lock(create_db_engine(sys.argv[1]), sys.argv[2]):
        print("held", flush=True)
        time.sleep(600)
    """
)


def _holder(url: str, run_id: str) -> subprocess.Popen:
    """A process holding run ``run_id``'s lock (started, and holding, when this returns)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url, run_id], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def _status(url: str) -> dict[str, tuple]:
    with create_db_engine(url).connect() as conn:
        rows = conn.execute(sa.text("select run_id, status, alert_state from pipeline_runs"))
        return {r[0]: (r[1], r[2]) for r in rows}


def test_a_sigkilled_holder_is_dead_a_live_one_alive(ecgmon_env):
    url = ecgmon_env.database_url_plain
    engine = create_db_engine(url)
    holder = _holder(url, "run-a")
    try:
        assert run_is_alive(engine, "run-a")
        assert run_is_alive(engine, "run-a")  # checking does not take the lock away
        assert not run_is_alive(engine, "run-never-locked")
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    assert not run_is_alive(engine, "run-a")
    with run_lock(engine, "run-a"):  # free again for a retry of the same run
        assert run_is_alive(engine, "run-a")
    assert not run_is_alive(engine, "run-a")


def test_a_killed_runs_lock_file_is_removed_once_found_dead(tmp_path):
    url = f"sqlite:///{tmp_path / 'ecgmon.db'}"
    engine = create_db_engine(url)
    holder = _holder(url, "run-k")
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    runs = tmp_path / "ecgmon.db.runs"
    assert [p.name for p in runs.iterdir()] == ["run-k.lock"]  # the kill left it behind
    assert not run_is_alive(engine, "run-k")
    assert list(runs.iterdir()) == []


def test_only_dead_runs_of_the_flow_are_marked_crashed(ecgmon_env):
    url = ecgmon_env.database_url_plain
    engine = create_db_engine(url)
    for run_id, flow in [("dead", "score"), ("live", "score"), ("other", "retrain")]:
        start_run(engine, run_id, flow, {}, "src")
    start_run(engine, "dead-alerting", "score", {}, "src")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "update pipeline_runs set status = 'completed', alert_state = 'sending' "
                "where run_id = 'dead-alerting'"
            )
        )
    holder = _holder(url, "live")
    try:
        marked = mark_dead_runs(engine, "score", "me", lambda r: run_is_alive(engine, r))
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    assert marked == ["dead"]
    assert _status(url) == {
        "dead": ("crashed", None),
        "live": ("running", None),
        "other": ("running", None),  # another flow's run: its own next run decides
        "dead-alerting": ("completed", "failed"),  # claimable again
    }
    assert claim_crashed_alerts(engine, "score") == ["dead"]
    assert claim_crashed_alerts(engine, "score") == []  # claimed once
    assert claim_alert(engine, "dead-alerting")
