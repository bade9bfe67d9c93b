"""Run bookkeeping tasks: every flow records itself in ``pipeline_runs``."""

from __future__ import annotations

import uuid

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from ecgmon.db import create_db_engine
from ecgmon.persistence import finish_run, start_run
from ecgmon.settings import Settings


def current_run_id() -> str:
    """The Prefect flow run id, or a fresh id outside a flow run."""
    return str(flow_run.id or uuid.uuid4())


@task(name="start-run", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def start_run_task(
    settings: Settings, run_id: str, flow: str, parameters: dict, source: str | None
) -> str:
    """Record the run as running."""
    start_run(create_db_engine(settings.database_url_plain), run_id, flow, parameters, source)
    return run_id


@task(name="finish-run", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def finish_run_task(settings: Settings, run_id: str, status: str, **values: object) -> dict:
    """Record how the run ended; returns the run row."""
    return finish_run(create_db_engine(settings.database_url_plain), run_id, status, **values)
