"""A run that died is marked crashed by the next run of its flow, whose alert carries the dead
run's flagged beats; ``ecgmon alerts resend`` sends what is still pending (real local webhook)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from ecgmon.storage.engine import create_db_engine
from tests.conftest import write_day
from tests.flows.test_alerts import Receiver, beat_states, runs

pytestmark = pytest.mark.flow


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def _as_if_killed(settings, run_id: str) -> None:
    """Leave a run as a SIGKILL after its commits leaves it: row running, no alert, beats
    pending, no live process holding its run lock."""
    with create_db_engine(settings.database_url_plain).begin() as conn:
        conn.execute(
            sa.text(
                "update pipeline_runs set status = 'running', finished_at = null, "
                "alert_state = null, alert_detail = null where run_id = :r"
            ),
            {"r": run_id},
        )
        conn.execute(
            sa.text("update anomalies set alert_state = 'pending', alerted_at = null"),
        )


def test_next_run_marks_the_dead_run_crashed_and_alerts_its_beats(
    prefect_harness, ecgmon_env, champion, synthetic_set, tmp_path, monkeypatch, receiver
):
    from ecgmon.flows.score import score_flow

    folder = tmp_path / "in"
    write_day(folder, "2026-11-01", synthetic_set.signals[:200], 0)
    killed = score_flow(source=str(folder))  # without a channel: nothing delivered
    assert killed["n_flagged"] > 0
    _as_if_killed(ecgmon_env, killed["run_id"])

    monkeypatch.setenv("ECGMON_ALERT_URLS", f"json://127.0.0.1:{receiver.port}/alerts")
    write_day(folder, "2026-11-02", synthetic_set.signals[200:400], 200)
    nxt = score_flow(source=str(folder))

    by_id = {r["run_id"]: r for r in runs(ecgmon_env)}
    dead = by_id[killed["run_id"]]
    assert dead["status"] == "crashed" and dead["finished_at"] is not None
    assert nxt["run_id"] in dead["error"]
    assert dead["alert_state"] == "sent" and nxt["run_id"] in dead["alert_detail"]
    assert by_id[nxt["run_id"]]["status"] == "completed"
    assert beat_states(ecgmon_env) == {"sent": killed["n_flagged"] + nxt["n_flagged"]}
    assert len(receiver.bodies) == 1
    message = receiver.bodies[0]["message"]
    total = killed["n_flagged"] + nxt["n_flagged"]
    assert (
        f"{total} newly flagged beats, including {killed['n_flagged']} beats flagged by "
        f"crashed run {killed['run_id']}" in message
    )

    write_day(folder, "2026-11-03", synthetic_set.signals[400:500], 400)
    score_flow(source=str(folder))  # carries nothing twice
    assert f"crashed run {killed['run_id']}" not in receiver.bodies[-1]["message"]


def test_a_live_run_is_not_marked_crashed(
    prefect_harness, ecgmon_env, champion, synthetic_set, tmp_path
):
    from ecgmon.flows.score import score_flow
    from ecgmon.storage.locks import run_lock

    folder = tmp_path / "in"
    write_day(folder, "2026-11-01", synthetic_set.signals[:100], 0)
    alive = score_flow(source=str(folder))
    _as_if_killed(ecgmon_env, alive["run_id"])
    engine = create_db_engine(ecgmon_env.database_url_plain)
    with run_lock(engine, alive["run_id"]):  # its process still lives: it holds its lock
        score_flow(source=str(folder))
    assert {r["run_id"]: r for r in runs(ecgmon_env)}[alive["run_id"]]["status"] == "running"


def test_resend_sends_what_is_pending_once(
    prefect_harness, ecgmon_env, champion, synthetic_set, tmp_path, monkeypatch, receiver, capsys
):
    from ecgmon.cli.main import main
    from ecgmon.flows.score import score_flow

    write_day(tmp_path / "in", "2026-11-01", synthetic_set.signals[:200], 0)
    first = score_flow(source=str(tmp_path / "in"))  # no channel: unconfigured, beats pending
    assert first["alert_state"] == "unconfigured"
    assert beat_states(ecgmon_env) == {"pending": first["n_flagged"]}
    assert main(["alerts", "resend"]) == 1  # still no channel: says so, fails

    monkeypatch.setenv("ECGMON_ALERT_URLS", f"json://127.0.0.1:{receiver.port}/alerts")
    assert main(["alerts", "resend", "--run-id", first["run_id"]]) == 0
    assert f"run {first['run_id']}: sent" in capsys.readouterr().out
    assert len(receiver.bodies) == 1
    assert (
        f"{first['n_flagged']} flagged beats no alert reached yet"
        in (receiver.bodies[0]["message"])
    )
    assert beat_states(ecgmon_env) == {"sent": first["n_flagged"]}

    assert main(["alerts", "resend"]) == 0  # nothing pending: nothing sent
    assert "no flagged beat is waiting" in capsys.readouterr().out
    assert len(receiver.bodies) == 1
    assert main(["alerts", "resend", "--run-id", "no-such-run"]) == 2
    assert "no run no-such-run" in capsys.readouterr().err
