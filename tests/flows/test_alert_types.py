"""Alerts say what and where: the Apprise type (warning for drift, info for new flags alone,
failure for a failed run), and a failed run's alert names the flow, the error and the run's page
in the Prefect UI. Against a real local webhook."""

from __future__ import annotations

import pytest
from prefect.settings import PREFECT_UI_URL, temporary_settings

from tests.conftest import write_day
from tests.flows.test_alerts import Receiver, runs

pytestmark = pytest.mark.flow
UI = "http://prefect.example:4200"


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()


@pytest.mark.parametrize(("drift_bound", "expected"), [("0.0", "warning"), ("1000", "info")])
def test_drift_alert_is_a_warning_new_flags_alone_are_info(
    prefect_harness,
    ecgmon_env,
    champion,
    synthetic_set,
    tmp_path,
    monkeypatch,
    receiver,
    drift_bound,
    expected,
):
    from ecgmon.flows.score import score_flow

    monkeypatch.setenv("ECGMON_ALERT_URLS", f"json://127.0.0.1:{receiver.port}/alerts")
    monkeypatch.setenv("ECGMON_DRIFT_BOUND", drift_bound)
    monkeypatch.setenv("ECGMON_ANOMALY_RATE_BOUND", "1.0")
    write_day(tmp_path / "in", "2026-11-01", synthetic_set.signals[:200], 0)
    result = score_flow(source=str(tmp_path / "in"))
    assert result["n_flagged"] > 0 and len(receiver.bodies) == 1
    assert receiver.bodies[0]["type"] == expected
    assert ("DRIFT" in receiver.bodies[0]["message"]) == (expected == "warning")


def test_failed_run_alert_names_flow_error_and_links_to_the_run(
    prefect_harness, ecgmon_env, champion, tmp_path, monkeypatch, receiver
):
    from ecgmon.flows.score import score_flow

    monkeypatch.setenv("ECGMON_ALERT_URLS", f"json://127.0.0.1:{receiver.port}/alerts")
    missing = tmp_path / "no-such-folder"
    with temporary_settings({PREFECT_UI_URL: UI}), pytest.raises(Exception, match="not exist"):
        score_flow(source=str(missing))
    run = runs(ecgmon_env)[-1]
    assert run["status"] == "failed" and run["alert_state"] == "failure_sent"
    assert len(receiver.bodies) == 1
    alert = receiver.bodies[0]
    assert alert["type"] == "failure"
    assert alert["title"] == f"ecgmon: score run {run['run_id']} failed"
    assert f"error: {run['error']}" in alert["message"] and "SourceNotFoundError" in run["error"]
    assert f"{UI}/runs/flow-run/{run['run_id']}" in alert["message"]


def test_failure_message_without_a_ui_url_says_how_to_get_one() -> None:
    from ecgmon.tasks.alerts import failure_message

    run = {
        "flow": "backfill",
        "run_id": "r1",
        "status": "crashed",
        "error": "KeyError",
        "source": "var/incoming",
        "started_at": "2026-11-01 00:00:00",
        "finished_at": None,
        "n_read": 5,
        "n_scored": 4,
        "n_rejected": 1,
    }
    title, body = failure_message(run, None)
    assert title == "ecgmon: backfill run r1 crashed"
    assert "error: KeyError" in body and "set PREFECT_UI_URL" in body
