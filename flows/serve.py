"""``ecgmon serve``: the prefect.yaml deployments served from this process with ``prefect.serve``.

The zero-infrastructure alternative to a work pool and worker: it needs a running
``prefect server start`` (or Prefect Cloud) to schedule runs. Never serve a flow AND deploy it to
a work pool: both would run its schedule. Schedules, parameters and concurrency limits are read
from prefect.yaml so that both routes run the same plan.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from ecgmon.resources import prefect_file

if TYPE_CHECKING:  # imported late: Prefect loads when a schedule is built
    from prefect.schedules import Schedule


def load_project(path: Path | None = None) -> list[dict]:
    """The ``deployments`` entries of prefect.yaml (the packaged one by default)."""
    return list(yaml.safe_load((path or prefect_file()).read_text()).get("deployments") or [])


def build_schedule(spec: dict) -> Schedule:
    """A Prefect Schedule (interval in seconds, or cron) with its slug and timezone."""
    from prefect.schedules import Schedule

    common = {
        "timezone": spec["timezone"],
        "slug": spec["slug"],
        "active": spec.get("active", True),
    }
    if "interval" in spec:
        anchor = datetime.fromisoformat(str(spec["anchor_date"]))
        return Schedule(
            interval=timedelta(seconds=float(spec["interval"])), anchor_date=anchor, **common
        )
    return Schedule(cron=spec["cron"], **common)


def runner_deployments(path: Path | None = None) -> list:
    """RunnerDeployments for every deployment of prefect.yaml (same names, schedules, limits)."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig
    from prefect.flows import load_flow_from_entrypoint

    out = []
    for spec in load_project(path):
        flow = load_flow_from_entrypoint(spec["entrypoint"])
        limit = spec.get("concurrency_limit")
        out.append(
            flow.to_deployment(
                name=spec["name"],
                description=spec.get("description"),
                parameters=spec.get("parameters") or {},
                schedules=[build_schedule(s) for s in spec.get("schedules") or []],
                concurrency_limit=ConcurrencyLimitConfig(**limit) if limit else None,
            )
        )
    return out


def serve_all(path: Path | None = None) -> None:
    """Serve every deployment until interrupted (blocks)."""
    from prefect import serve

    serve(*runner_deployments(path))
