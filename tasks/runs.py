"""Run bookkeeping tasks: every flow records itself in ``pipeline_runs``, holds its run lock while
it lives, and marks the dead runs of its flow ``crashed``."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from ecgmon.errors import EcgmonError
from ecgmon.settings import Settings
from ecgmon.sources import shown_source
from ecgmon.storage.engine import create_db_engine
from ecgmon.storage.locks import run_is_alive, run_lock
from ecgmon.storage.runs import finish_run, mark_dead_runs, start_run


def current_run_id() -> str:
    """The Prefect flow run id, or a fresh id outside a flow run."""
    return str(flow_run.id or uuid.uuid4())


@task(name="start-run", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def start_run_task(
    settings: Settings, run_id: str, flow: str, parameters: dict, source: str | None
) -> str:
    """Record the run as running (any database URL among the parameters with secrets masked)."""
    shown = {k: shown_source(v) if isinstance(v, str) else v for k, v in parameters.items()}
    source = shown_source(source) if source is not None else None
    start_run(create_db_engine(settings.database_url_plain), run_id, flow, shown, source)
    return run_id


@task(name="mark-crashed-runs", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def mark_crashed_runs_task(settings: Settings, run_id: str, flow: str) -> list[str]:
    """Mark ``crashed`` the other runs of ``flow`` still recorded as working whose process died."""
    engine = create_db_engine(settings.database_url_plain)
    dead = mark_dead_runs(engine, flow, run_id, lambda other: run_is_alive(engine, other))
    for other in dead:
        get_run_logger().warning(
            "run %s of flow %s died before it ended: marked crashed; its flagged beats go with "
            "the next alert",
            other,
            flow,
        )
    return dead


@task(name="finish-run", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def finish_run_task(settings: Settings, run_id: str, status: str, **values: object) -> dict:
    """Record how the run ended; returns the run row."""
    return finish_run(create_db_engine(settings.database_url_plain), run_id, status, **values)


def failure_text(err: BaseException) -> str:
    """What a failed run records: our own errors' sentence (free of secrets), else the type only."""
    return f"{type(err).__name__}: {err}" if isinstance(err, EcgmonError) else type(err).__name__


@contextmanager
def recorded_run(
    settings: Settings, flow: str, parameters: dict, source: str | None
) -> Iterator[str]:
    """Record a flow run in ``pipeline_runs`` as running; on an exception, as failed (re-raised).

    Yields the run id. The run lock is held for the block, so other processes can tell this run
    is alive; runs of ``flow`` that died are marked ``crashed`` first. The caller records success
    with :func:`finish_run_task`, with its figures (inside the block, so the run is never seen
    dead while it still works).
    """
    run_id = current_run_id()
    with run_lock(create_db_engine(settings.database_url_plain), run_id):
        start_run_task(settings, run_id, flow, parameters, source)
        mark_crashed_runs_task(settings, run_id, flow)
        try:
            yield run_id
        except Exception as err:
            finish_run_task(settings, run_id, "failed", error=failure_text(err))
            _alert_failure(settings, run_id)
            raise


def _alert_failure(settings: Settings, run_id: str) -> None:
    """Alert that the run failed (tasks/alerts.py); logged, never raised over the run's error."""
    from ecgmon.tasks.alerts import alert_failed_run

    try:
        outcome = alert_failed_run(settings, run_id)
    except Exception as err:  # noqa: BLE001 - the run's own error is the one to raise
        logging.getLogger(__name__).error("failure alert of run %s: %s", run_id, type(err).__name__)
        return
    logging.getLogger(__name__).info("failure alert %s: %s", outcome.state, outcome.detail)
