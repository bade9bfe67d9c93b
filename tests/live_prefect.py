"""A real local Prefect server, work pool, deployments and worker, for tests and benchmarks.

Not the in-process ``prefect_test_harness``: everything here runs as it does in production, as
separate processes talking HTTP -- ``prefect server start``, ``prefect deploy`` of the packaged
``prefect.yaml``, ``prefect worker start`` on a ``process`` pool -- so a flow run can be killed
and the worker and server react as they would for an operator.

Usage (the whole API)::

    with LivePrefect(tmp_path / "prefect", port=4321) as live:   # server started, healthy
        live.create_pool()                                        # "ecgmon-process", type process
        live.deploy(["score"], env=ecgmon_env, project_dir=tmp_path)
        worker = live.start_worker(env=ecgmon_env)                # killed again on exit
        run_id = live.run_deployment("score/score", {"source": "/data/incoming"})
        pid = live.wait_for_pid(run_id)                           # the flow run's own process
        state = live.wait_for_state(run_id, {"COMPLETED"})       # -> "COMPLETED", or raises

``env`` of ``deploy``/``start_worker`` is what the flow runs see (``ECGMON_DATABASE_URL``, ...);
the harness adds its own ``PREFECT_*``. Every process it starts is ended (SIGTERM, then SIGKILL)
on exit, and their output is in ``<home>/logs/*.log`` for a failing test to show
(:meth:`LivePrefect.log_tail`). Nothing is global: several instances on different ports and homes
can run side by side. The server's scheduler is off by default, so the packaged schedules create
no runs behind a test's back (``scheduler=True`` to keep it).

Costs on a 2-core machine: server start 10-25 s (first start migrates its SQLite database), a
deploy 5-10 s, the worker picks a run up within its poll interval (``poll_seconds``, 2 s here).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent
POOL = "ecgmon-process"
FINAL_STATES = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})


class _PatientTransport(httpx.HTTPTransport):
    """Retries a request the server answers 503 (too busy, on a loaded machine), waiting 1, 2, 4
    ... up to 10 s between up to 12 tries."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        for attempt in range(12):
            response = super().handle_request(request)
            if response.status_code != 503 or attempt == 11:
                return response
            response.close()
            time.sleep(min(2**attempt, 10))
        raise AssertionError("unreachable")


class LivePrefectError(RuntimeError):
    """The live server, a deploy or a flow run did not do what the harness waited for."""


class LivePrefect:
    """One local Prefect server (own ``home`` and ``port``) and the processes started against it."""

    def __init__(
        self, home: Path, port: int, scheduler: bool = False, poll_seconds: float = 2.0
    ) -> None:
        self.home = Path(home)
        self.port = port
        self.api_url = f"http://127.0.0.1:{port}/api"
        self.scheduler = scheduler
        self.poll_seconds = poll_seconds
        self.processes: list[subprocess.Popen] = []
        self.http = httpx.Client(base_url=self.api_url, timeout=30, transport=_PatientTransport())

    # -- environment and processes ------------------------------------------------------------

    def prefect_env(self, env: dict[str, str] | None = None) -> dict[str, str]:
        """``env`` (default: this process's) pointed at this server, with an own PREFECT_HOME."""
        base = dict(os.environ if env is None else env)
        for key in [k for k in base if k.startswith("PREFECT_")]:
            del base[key]  # e.g. a test session's PREFECT_SERVER_EPHEMERAL_ENABLED
        return base | {
            "PREFECT_HOME": str(self.home),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_WORKER_QUERY_SECONDS": str(self.poll_seconds),
            "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": str(self.scheduler).lower(),
            "PYTHONUNBUFFERED": "1",
        }

    def spawn(
        self, name: str, args: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen:
        """Start ``args`` in its own process group, output to ``<home>/logs/<name>.log``; it is
        ended when the harness stops."""
        logs = self.home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with (logs / f"{name}.log").open("ab") as out:
            proc = subprocess.Popen(
                args,
                env=self.prefect_env(env),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(proc)
        return proc

    def prefect(
        self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> subprocess.CompletedProcess:
        """Run the ``prefect`` command line against this server; raises when it fails."""
        done = subprocess.run(
            [str(BIN / "prefect"), "--no-prompt", *args],
            env=self.prefect_env(env),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode:
            raise LivePrefectError(
                f"prefect {' '.join(args)}: {(done.stdout + done.stderr)[-2000:]}"
            )
        return done

    def log_tail(self, name: str, chars: int = 3000) -> str:
        """The end of a started process's output (``server``, ``worker``, ...)."""
        path = self.home / "logs" / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    # -- server ---------------------------------------------------------------------------------

    def start(self, timeout: float = 180) -> LivePrefect:
        """Start ``prefect server start`` and wait until its API answers."""
        self.home.mkdir(parents=True, exist_ok=True)
        server = self.spawn(
            "server",
            [
                str(BIN / "prefect"),
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise LivePrefectError(f"the server exited: {self.log_tail('server')}")
            try:
                if self.http.get("/health").status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise LivePrefectError(f"no healthy server after {timeout} s: {self.log_tail('server')}")

    def end(self, proc: subprocess.Popen) -> None:
        """End one started process (e.g. a worker whose environment a test no longer wants)."""
        _end_group(proc)
        self.processes.remove(proc)

    def stop(self) -> None:
        """End every started process (SIGTERM to its group, SIGKILL after 15 s)."""
        for proc in reversed(self.processes):
            _end_group(proc)
        self.processes.clear()
        self.http.close()

    def __enter__(self) -> LivePrefect:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- pools, deployments, workers ------------------------------------------------------------

    def create_pool(self, name: str = POOL) -> None:
        """A ``process`` work pool (kept if it exists)."""
        response = self.http.post("/work_pools/", json={"name": name, "type": "process"})
        if response.status_code not in (200, 201, 409):
            raise LivePrefectError(f"work pool {name}: {response.status_code} {response.text}")

    def deploy(
        self,
        names: Iterable[str],
        env: dict[str, str] | None = None,
        project_dir: Path | None = None,
        prefect_file: Path | None = None,
    ) -> list[str]:
        """``prefect deploy`` the named deployments of ``prefect_file`` (default: the packaged
        prefect.yaml) with ``ECGMON_PROJECT_DIR=project_dir``; returns their ids."""
        from ecgmon.resources import prefect_file as packaged

        path = Path(prefect_file or packaged())
        env = dict(os.environ if env is None else env)
        if project_dir is not None:
            env["ECGMON_PROJECT_DIR"] = str(project_dir)
        args = ["deploy", "--prefect-file", str(path)]
        for name in names:
            args += ["--name", name]
        self.prefect(*args, env=env, cwd=project_dir or path.parent)
        return [self.deployment_id(f"{name}/{name}") for name in names]

    def deployment_id(self, name: str) -> str:
        """The id of deployment ``flow/deployment``."""
        response = self.http.get(f"/deployments/name/{name}")
        if response.status_code != 200:
            raise LivePrefectError(f"no deployment {name}: {response.status_code}")
        return response.json()["id"]

    def start_worker(
        self, env: dict[str, str] | None = None, pool: str = POOL, name: str = "worker"
    ) -> subprocess.Popen:
        """``prefect worker start`` on ``pool``; flow runs it starts inherit ``env``."""
        args = [str(BIN / "prefect"), "worker", "start", "--pool", pool, "--type", "process"]
        return self.spawn(name, [*args, "--name", name, "--install-policy", "never"], env)

    # -- flow runs ------------------------------------------------------------------------------

    def run_deployment(self, name: str, parameters: dict | None = None) -> str:
        """Create a run of deployment ``flow/deployment`` now; returns the flow run id."""
        deployment = self.deployment_id(name)
        response = self.http.post(
            f"/deployments/{deployment}/create_flow_run", json={"parameters": parameters or {}}
        )
        if response.status_code not in (200, 201):
            raise LivePrefectError(f"run of {name}: {response.status_code} {response.text}")
        return response.json()["id"]

    def flow_run(self, run_id: str) -> dict:
        """The flow run as the API returns it (``state.type``, ``state.message``, ...)."""
        response = self.http.get(f"/flow_runs/{run_id}")
        response.raise_for_status()
        return response.json()

    def state(self, run_id: str) -> str:
        """The flow run's state type: SCHEDULED, PENDING, RUNNING, COMPLETED, CRASHED, ..."""
        return self.flow_run(run_id)["state"]["type"]

    def wait_for_state(
        self, run_id: str, wanted: Iterable[str] = FINAL_STATES, timeout: float = 600
    ) -> str:
        """Wait until the run is in one of ``wanted``; a different final state raises."""
        wanted = frozenset(wanted)
        deadline = time.monotonic() + timeout
        state = "?"
        while time.monotonic() < deadline:
            state = self.state(run_id)
            if state in wanted:
                return state
            if state in FINAL_STATES:
                message = self.flow_run(run_id)["state"].get("message")
                raise LivePrefectError(f"run {run_id} ended {state} ({message}), not {set(wanted)}")
            time.sleep(0.5)
        raise LivePrefectError(f"run {run_id} still {state} after {timeout} s")

    def wait_for_pid(self, run_id: str, timeout: float = 300) -> int:
        """The pid of the process executing flow run ``run_id`` (the worker's child, found by
        the ``PREFECT__FLOW_RUN_ID`` in its environment); Linux /proc only."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = flow_run_pid(run_id)
            if pid is not None:
                return pid
            time.sleep(0.2)
        raise LivePrefectError(f"no process runs flow run {run_id} after {timeout} s")


def flow_run_pid(run_id: str) -> int | None:
    """The pid whose environment says ``PREFECT__FLOW_RUN_ID=run_id``, None if none (yet)."""
    needle = f"PREFECT__FLOW_RUN_ID={run_id}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return min(found, default=None)  # the run's first process, not a child it started


def _end_group(proc: subprocess.Popen) -> None:
    """SIGTERM a started process group, then SIGKILL what is left after 15 s."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
        except ProcessLookupError:
            pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # children left in the group go too


def free_port(first: int, last: int) -> int:
    """The first port of ``first..last`` nothing listens on (127.0.0.1)."""
    import socket

    for port in range(first, last + 1):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise LivePrefectError(f"no free port in {first}-{last}")
