"""A real local Prefect deployment for benchmarks: a ``prefect server``, a process work pool and
worker, and the project's ``score`` deployment from the packaged ``prefect.yaml``.

    with LivePrefect(home, port, worker_env) as live:
        live.deploy("score")
        run_id = live.run("score/score", {"source": "/path/to/feed"})
        live.wait(run_id)  # the final state type, e.g. "COMPLETED"

Everything runs in child processes with their own ``PREFECT_HOME`` (a temporary folder) and the
server's scheduler off, so only the runs the benchmark asks for happen. The benchmark talks to
the server over its REST API (httpx), so its own process needs no Prefect settings.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx
import psutil

POOL = "ecgmon-process"  # the work pool prefect.yaml names
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


class LivePrefect:
    """A Prefect server and a process worker on ``port``, stopped (and their children) on exit."""

    def __init__(self, home: Path, port: int, worker_env: dict[str, str]) -> None:
        self.home, self.port = home, port
        self.api = f"http://127.0.0.1:{port}/api"
        self.env = {
            **os.environ,
            "PREFECT_HOME": str(home),
            "PREFECT_API_URL": self.api,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",  # no scheduled runs
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_WORKER_PREFETCH_SECONDS": "1",
            **worker_env,
        }
        self.processes: list[subprocess.Popen] = []
        self.client = httpx.Client(base_url=self.api, timeout=30)

    def __enter__(self) -> LivePrefect:
        self.home.mkdir(parents=True, exist_ok=True)
        self._start("server", "server", "start", "--host", "127.0.0.1", "--port", str(self.port))
        self._wait_healthy(timeout=180)
        self.prefect("work-pool", "create", POOL, "--type", "process", "--overwrite")
        self.worker = self._start("worker", "worker", "start", "--pool", POOL, "--type", "process")
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.client.close()
        for process in reversed(self.processes):
            stop_tree(process.pid)

    def prefect(self, *args: str) -> str:
        """Run a ``prefect`` command against the server; its stdout (raises on failure)."""
        done = subprocess.run(
            [sys.executable, "-m", "prefect", "--no-prompt", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise RuntimeError(f"prefect {' '.join(args)} failed: {done.stderr[-2000:]}")
        return done.stdout

    def deploy(self, name: str) -> None:
        """Deploy ``name`` of the packaged prefect.yaml (the production deployment file)."""
        from ecgmon.resources import prefect_file

        self.prefect("deploy", "--prefect-file", str(prefect_file()), "--name", name)

    def run(self, deployment: str, parameters: dict) -> str:
        """Create a flow run of ``deployment`` ("flow/deployment"); returns its id."""
        found = self.client.get(f"/deployments/name/{deployment}")
        found.raise_for_status()
        created = self.client.post(
            f"/deployments/{found.json()['id']}/create_flow_run", json={"parameters": parameters}
        )
        created.raise_for_status()
        return created.json()["id"]

    def state(self, flow_run_id: str) -> str | None:
        """The state type of a flow run (None before it has one)."""
        response = self.client.get(f"/flow_runs/{flow_run_id}")
        response.raise_for_status()
        return response.json().get("state_type")

    def wait(self, flow_run_id: str, timeout: float = 600) -> str | None:
        """Wait for a terminal state; returns the last state type seen."""
        deadline, state = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            state = self.state(flow_run_id)
            if state in TERMINAL:
                return state
            time.sleep(0.5)
        return state

    def flow_run_process(self, flow_run_id: str) -> psutil.Process | None:
        """The engine process the worker started for a flow run, if it runs now."""
        try:
            children = psutil.Process(self.worker.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return None
        for child in children:
            try:
                if child.environ().get("PREFECT__FLOW_RUN_ID") == flow_run_id:
                    return child
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return None

    def _start(self, log_name: str, *args: str) -> subprocess.Popen:
        log = (self.home / f"{log_name}.log").open("w")
        process = subprocess.Popen(
            [sys.executable, "-m", "prefect", *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.client.get("/health").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.processes[0].poll() is not None:
                break
            time.sleep(0.5)
        log = (self.home / "server.log").read_text()[-2000:]
        raise RuntimeError(f"the Prefect server did not start on port {self.port}: {log}")


def stop_tree(pid: int, grace: float = 10) -> None:
    """Terminate a process and its children (SIGTERM, then SIGKILL after ``grace`` s)."""
    try:
        parent = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    family = [*parent.children(recursive=True), parent]
    for process in family:
        try:
            process.terminate()
        except psutil.NoSuchProcess:
            continue
    _gone, alive = psutil.wait_procs(family, timeout=grace)
    for process in alive:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            continue
