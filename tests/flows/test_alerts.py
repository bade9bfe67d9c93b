"""Alerts end to end against a real local webhook; automations validated offline."""

from __future__ import annotations

import http.server
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from ecgmon.storage.engine import create_db_engine
from tests.conftest import write_day

AUTOMATIONS = Path(__file__).resolve().parents[2] / "automations"


class Receiver:
    """A local HTTP endpoint that records POST bodies and answers with ``status``."""

    def __init__(self, status: int = 200) -> None:
        self.bodies: list[dict] = []
        received = self.bodies

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                received.append(json.loads(self.rfile.read(length) or b"{}"))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def runs(settings) -> list[dict]:
    with create_db_engine(settings.database_url_plain).connect() as conn:
        rows = conn.execute(sa.text("select * from pipeline_runs order by started_at"))
        return [dict(r._mapping) for r in rows]


def beat_states(settings) -> dict[str, int]:
    with create_db_engine(settings.database_url_plain).connect() as conn:
        rows = conn.execute(sa.text("select alert_state, count(*) from anomalies group by 1"))
        return dict(rows.fetchall())


@pytest.mark.parametrize("name", ["anomalies-flagged.yaml", "flow-run-failed.yaml"])
def test_automation_files_validate_offline(name: str) -> None:
    from prefect.events.schemas.automations import AutomationCore, EventTrigger

    automation = AutomationCore.model_validate(yaml.safe_load((AUTOMATIONS / name).read_text()))
    assert isinstance(automation.trigger, EventTrigger) and automation.actions
    if name.startswith("anomalies"):
        assert automation.trigger.expect == {"ecg.anomalies.flagged"}


@pytest.mark.flow
def test_one_alert_per_run_with_counts_worst_beats_and_query(
    prefect_harness, ecgmon_env, champion, synthetic_set, tmp_path, monkeypatch, receiver
):
    import prefect.events

    from ecgmon.flows.score import score_flow

    events: list[dict] = []
    monkeypatch.setattr(prefect.events, "emit_event", lambda **kw: events.append(kw))
    monkeypatch.setenv("ECGMON_ALERT_URLS", f"json://127.0.0.1:{receiver.port}/alerts")
    folder = tmp_path / "in"
    write_day(folder, "2026-11-01", synthetic_set.signals[:200], 0)

    first = score_flow(source=str(folder))
    assert first["n_flagged"] > 0 and first["alert_state"] == "sent"
    assert len(receiver.bodies) == 1
    message = receiver.bodies[0]["message"]
    assert first["run_id"] in message and f"flagged {first['n_flagged']}" in message
    assert "SELECT * FROM v_flagged_beats WHERE run_id" in message
    assert "worst beats" in message and first["drift_psi"] is not None
    run = runs(ecgmon_env)[-1]
    assert run["alert_state"] == "sent" and run["drift_psi"] == pytest.approx(first["drift_psi"])
    assert beat_states(ecgmon_env) == {"sent": first["n_flagged"]}
    assert [e["event"] for e in events] == ["ecg.anomalies.flagged"]
    assert events[0]["payload"]["n_flagged"] == first["n_flagged"]

    second = score_flow(source=str(folder))  # nothing new: nothing sent
    assert second["n_read"] == 0 and second["alert_state"] == "none"
    assert len(receiver.bodies) == 1 and len(events) == 1

    write_day(folder, "2026-11-02", synthetic_set.signals[200:400], 200)
    third = score_flow(source=str(folder))
    assert third["n_flagged"] > 0 and len(receiver.bodies) == 2
    assert beat_states(ecgmon_env) == {"sent": first["n_flagged"] + third["n_flagged"]}


@pytest.mark.flow
def test_rate_bound_says_drift_or_broken_feed(
    prefect_harness, ecgmon_env, champion, synthetic_set, tmp_path, monkeypatch, receiver
):
    from ecgmon.flows.score import score_flow

    monkeypatch.setenv("ECGMON_ALERT_URLS", f"json://127.0.0.1:{receiver.port}/alerts")
    monkeypatch.setenv("ECGMON_ANOMALY_RATE_BOUND", "0.01")
    write_day(tmp_path / "in", "2026-11-01", synthetic_set.signals[:100] * 3.0, 0)
    score_flow(source=str(tmp_path / "in"))
    message = receiver.bodies[0]["message"]
    assert "ANOMALY RATE" in message and "broken feed" in message


@pytest.mark.flow
def test_failed_delivery_is_recorded_without_the_token_and_data_is_kept(
    prefect_harness, ecgmon_env, champion, synthetic_set, tmp_path, monkeypatch, caplog
):
    from ecgmon.flows.score import score_flow

    broken = Receiver(status=500)
    secret = "T0KEN-abc123"
    monkeypatch.setenv("ECGMON_ALERT_URLS", f"json://127.0.0.1:{broken.port}/hook/{secret}")
    write_day(tmp_path / "in", "2026-11-01", synthetic_set.signals[:100], 0)
    with caplog.at_level(logging.DEBUG):
        result = score_flow(source=str(tmp_path / "in"))
    broken.server.shutdown()
    assert result["status"] == "completed" and result["n_scored"] == 100
    assert result["alert_state"] == "failed" and len(broken.bodies) == 1
    run = runs(ecgmon_env)[-1]
    assert "#1 json" in run["alert_detail"] and "did not accept" in run["alert_detail"]
    assert secret not in json.dumps(run, default=str) and secret not in caplog.text
    assert beat_states(ecgmon_env) == {"failed": result["n_flagged"]}


@pytest.mark.flow
def test_database_table_scored_once_and_url_password_never_stored(
    prefect_harness, ecgmon_env, champion, synthetic_set, tmp_path
):
    from ecgmon.flows.score import safe_source, score_flow

    url = f"sqlite:///{tmp_path / 'source.db'}"
    frame = pd.DataFrame(
        {
            "record_id": [f"db-{i:04d}" for i in range(30)],
            "recorded_at": pd.Timestamp("2026-11-05", tz="UTC")
            + pd.to_timedelta(np.arange(30), "min"),
            "patient_id": "p9",
        }
    )
    for j in range(140):
        frame[f"s{j:03d}"] = synthetic_set.signals[:30, j]
    frame.to_sql("ecg_records", sa.create_engine(url), index=False)

    first = score_flow(source=url, table="ecg_records", batch_size=8)
    again = score_flow(source=url, table="ecg_records", batch_size=8)
    assert (first["n_read"], first["n_scored"], again["n_read"]) == (30, 30, 0)
    assert runs(ecgmon_env)[-1]["source"] == f"{url}#table=ecg_records"  # the watermarks' key
    shown = safe_source("postgresql+psycopg://ops:pw-Secret@db.example/ecg")
    assert "pw-Secret" not in shown and "ops" in shown


@pytest.mark.flow
@pytest.mark.parametrize("status", [200, 500])
def test_prefect_notification_block_delivers_or_records_the_failure(
    prefect_harness, monkeypatch, status
):
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    from ecgmon.settings import get_settings
    from ecgmon.tasks.alerts import deliver

    endpoint = Receiver(status=status)
    CustomWebhookNotificationBlock(
        name="ecgmon-test",
        url=f"http://127.0.0.1:{endpoint.port}/hook",
        json_data={"text": "{{subject}}\n{{body}}"},
        allow_private_urls=True,
    ).save(f"ops-{status}", overwrite=True)
    monkeypatch.delenv("ECGMON_ALERT_URLS", raising=False)
    settings = get_settings(alert_block=f"custom-webhook/ops-{status}")
    outcome = deliver(settings, "title", "12 beats flagged")
    endpoint.server.shutdown()
    assert "12 beats flagged" in endpoint.bodies[0]["text"]
    assert outcome.state == ("sent" if status == 200 else "failed")
    assert outcome.detail.startswith("1 of 1" if status == 200 else "0 of 1")


RUN = {
    "run_id": "r-1",
    "flow": "score",
    "status": "completed",
    "n_read": 12,
    "n_scored": 10,
    "n_rejected": 2,
    "n_flagged": 6,
    "model_version": 3,
    "threshold_version": 7,
    "drift_psi": 0.4,
    "drift": {"ks": 0.31},
    "alert_state": None,
    "alert_detail": None,
}


def test_alert_reasons_name_rate_and_drift_bounds() -> None:
    from ecgmon.settings import get_settings
    from ecgmon.tasks.alerts import alert_message, alert_reasons

    settings = get_settings(anomaly_rate_bound=0.5, drift_bound=0.25)
    reasons = alert_reasons(RUN, 6, settings)
    assert reasons[0] == "6 newly flagged beats"
    assert "ANOMALY RATE 60.0%" in reasons[1] and "broken feed" in reasons[1]
    assert "DRIFT" in reasons[2]
    assert alert_reasons(RUN | {"n_flagged": 1, "drift_psi": 0.1}, 0, settings) == []
    title, body = alert_message(RUN, reasons, [])
    assert "6 of 10" in title and "rejected 2" in body and "run_id = 'r-1'" in body


def test_run_summary_markdown_and_artifact_keys() -> None:
    from ecgmon.tasks.reporting import artifact_key, run_summary_markdown

    beats = [
        {
            "record_id": "b1",
            "patient_id": "p",
            "recorded_at": "2026-11-01 00:00:00",
            "score_ratio": 2.5,
        }
    ]
    text = run_summary_markdown(RUN | {"extra": {"decision": "promoted"}}, beats)
    assert "| 12 | 10 | 2 | 6 | 60.00% | 3 | 7 | 0.400 | 0.310 |" in text
    assert "| decision | promoted |" in text and "| b1 |" in text
    assert artifact_key("Backfill_Partitions") == "backfill-partitions"
