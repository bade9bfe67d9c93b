"""Against a real local Prefect server, process work pool, packaged deployments and worker
(tests/live_prefect.py): a SIGKILLed score deployment run is reconciled by the next one, and
``ecgmon alerts setup`` makes the notification blocks and Automations, idempotently.

Slow (a server start, a deploy, worker runs: minutes on 2 cores); marked ``live``. The server
port is ``ECGMON_TEST_PREFECT_PORT`` if set, else a free one."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from ecgmon.storage.engine import create_db_engine
from tests.conftest import write_day
from tests.flows.test_alerts import Receiver
from tests.live_prefect import BIN, LivePrefect

pytestmark = pytest.mark.live
DAYS, PER_DAY, BATCH = 2, 1000, 100


def _port() -> int:
    if os.environ.get("ECGMON_TEST_PREFECT_PORT"):
        return int(os.environ["ECGMON_TEST_PREFECT_PORT"])
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LivePrefect]:
    with LivePrefect(tmp_path_factory.mktemp("prefect-home"), _port()) as server:
        server.create_pool()
        yield server


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def _count(url: str, sql: str, **params: object) -> int:
    with create_db_engine(url).connect() as conn:
        return conn.execute(sa.text(sql), params).scalar_one()


def _feed(folder: Path, signals: np.ndarray) -> None:
    rng = np.random.default_rng(5)
    for d in range(DAYS):
        picks = signals[rng.integers(0, len(signals), PER_DAY)]
        noisy = picks + rng.normal(0, 0.005, picks.shape)
        write_day(folder, f"2026-11-{d + 1:02d}", noisy, d * PER_DAY)


def _pause_second_commit(folder: Path, marker: Path) -> dict[str, str]:
    """Environment that makes the first flow run started with it pause inside its second batch
    transaction (after the first batch committed: commits are in turn) and write ``marker``.

    A ``sitecustomize`` on ``PYTHONPATH`` sets the writer's test-only ``before_commit_hook`` in
    the flow-run process, so the kill lands mid-run however fast the database is; runs started
    after the marker exists are not paused."""
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(
        "import os\n"
        "if os.environ.get('PREFECT__FLOW_RUN_ID') and not os.path.exists(os.environ['MARKER']):\n"
        "    import itertools, pathlib, time\n"
        "    from ecgmon.storage import batches\n"
        "    seen = itertools.count()\n"
        "    def hook(write):\n"
        "        if next(seen) == 1:\n"
        "            pathlib.Path(os.environ['MARKER']).write_text(write.run_id)\n"
        "            time.sleep(3600)\n"
        "    batches.before_commit_hook = hook\n"
    )
    path = [str(folder), os.environ.get("PYTHONPATH", "")]
    return {"PYTHONPATH": os.pathsep.join(p for p in path if p), "MARKER": str(marker)}


def test_sigkilled_score_deployment_run_is_crashed_and_its_beats_reach_the_webhook(
    live, ecgmon_env, champion, synthetic_set, tmp_path, receiver
):
    url = ecgmon_env.database_url_plain
    feed = tmp_path / "incoming"
    _feed(feed, synthetic_set.signals)
    marker = tmp_path / "paused"
    env = dict(
        os.environ,
        ECGMON_DATABASE_URL=url,
        ECGMON_MODEL_STORE=ecgmon_env.model_store,
        ECGMON_ARTIFACT_DIR=str(tmp_path / "artifacts"),
        ECGMON_BATCH_SIZE=str(BATCH),
        ECGMON_ALERT_URLS=f"json://127.0.0.1:{receiver.port}/alerts",
        **_pause_second_commit(tmp_path / "site", marker),
    )
    live.deploy(["score"], env=env, project_dir=tmp_path)
    worker = live.start_worker(env=env)  # ended after the test: the next one has its own env
    try:
        _kill_mid_run_then_recover(live, url, feed, marker, receiver)
    finally:
        live.end(worker)


def _kill_mid_run_then_recover(
    live: LivePrefect, url: str, feed: Path, marker: Path, receiver: Receiver
) -> None:
    killed = live.run_deployment("score/score", {"source": str(feed)})
    pid = live.wait_for_pid(killed)
    deadline = time.monotonic() + 600
    while not marker.exists():  # the run is inside its second batch transaction
        assert live.state(killed) not in ("COMPLETED", "FAILED"), live.log_tail("worker")
        assert time.monotonic() < deadline, "the run reached no second commit in 10 minutes"
        time.sleep(0.1)
    assert marker.read_text() == killed
    os.kill(pid, signal.SIGKILL)
    assert live.wait_for_state(killed, {"CRASHED"}, timeout=300) == "CRASHED"
    flagged = _count(url, "select count(*) from anomalies where run_id = :r", r=killed)
    assert _count(url, "select count(*) from scores") == BATCH and flagged
    assert not receiver.bodies  # the killed run alerted nothing

    nxt = live.run_deployment("score/score", {"source": str(feed)})
    assert live.wait_for_state(nxt, {"COMPLETED"}, timeout=900) == "COMPLETED"
    with create_db_engine(url).connect() as conn:
        status = dict(conn.execute(sa.text("select run_id, status from pipeline_runs")).all())
    assert status == {killed: "crashed", nxt: "completed"}
    assert _count(url, "select count(distinct record_id) from scores") == DAYS * PER_DAY
    assert _count(url, "select count(*) from anomalies where alert_state <> 'sent'") == 0
    messages = [body["message"] for body in receiver.bodies]
    assert len(messages) == 1
    assert f"including {flagged} beats flagged by crashed run {killed}" in messages[0]


def _setup(live: LivePrefect, alert_url: str) -> str:
    env = live.prefect_env() | {"ECGMON_ALERT_URLS": alert_url}
    env.pop("ECGMON_ALERT_BLOCK", None)
    done = subprocess.run(
        [str(BIN / "ecgmon"), "alerts", "setup"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _automations(live: LivePrefect) -> list[dict]:
    response = live.http.post("/automations/filter", json={})
    response.raise_for_status()
    return [a for a in response.json() if a["name"].startswith("ecgmon")]


def test_alerts_setup_makes_block_and_automations_once_and_they_deliver(live, receiver):
    other = Receiver()
    try:
        _setup(live, f"json://127.0.0.1:{other.port}/old")
        out = _setup(live, f"json://127.0.0.1:{receiver.port}/hook")  # channel changed
    finally:
        other.server.shutdown()
    assert "custom-webhook/ecgmon-alert-1" in out and "updated" in out
    automations = _automations(live)
    assert sorted(a["name"] for a in automations) == [
        "ecgmon anomalies flagged",
        "ecgmon flow run failed or crashed",
    ]
    block_ids = {action["block_document_id"] for a in automations for action in a["actions"]}
    assert len(block_ids) == 1
    block = live.http.get(f"/block_documents/{block_ids.pop()}").json()
    assert block["data"]["url"] == f"http://127.0.0.1:{receiver.port}/hook"

    emit = (
        "from prefect.events import emit_event; emit_event(event='ecg.anomalies.flagged', "
        "resource={'prefect.resource.id': 'ecgmon.run.r-live'}, payload={'n_flagged': 7, "
        "'n_scored': 70, 'run_id': 'r-live', 'anomaly_rate': 0.1, 'rate_exceeded': False, "
        "'model_version': 1, 'threshold_version': 1, 'drift_psi': 0.01, 'query': 'q'})"
    )
    subprocess.run([sys.executable, "-c", emit], env=live.prefect_env(), check=True)
    deadline = time.monotonic() + 120
    while not receiver.bodies and time.monotonic() < deadline:
        time.sleep(0.5)
    assert receiver.bodies, live.log_tail("server")
    body = receiver.bodies[0]
    assert body["title"] == "ecgmon: 7 beats flagged in run r-live", json.dumps(body)
    assert "7 of 70 beats flagged" in body["message"]
