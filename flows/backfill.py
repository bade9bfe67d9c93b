"""The backfill flow: re-score a past date range day by day, resumably, on threads or Dask.

The task runner is a per-run choice: the outer ``backfill`` flow runs its partitions in a
``backfill-partitions`` subflow whose runner is chosen with ``with_options(task_runner=...)``,
so a deployment run can pick Dask with a parameter.
"""

from __future__ import annotations

from datetime import date

from prefect import flow
from prefect.futures import wait
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from ecgmon.errors import ConfigurationError
from ecgmon.progress import step
from ecgmon.settings import get_settings
from ecgmon.sources import open_source, refuse_secret_source, shown_source, source_key_of
from ecgmon.storage.engine import create_db_engine
from ecgmon.tasks.backfill import backfill_day_task, days_in_range, done_days
from ecgmon.tasks.progress import progress_artifact
from ecgmon.tasks.reporting import publish_run_summary, top_flagged
from ecgmon.tasks.runs import finish_run_task, recorded_run
from ecgmon.tasks.scoring import JudgeRef, resolve_judge_task

TASK_RUNNERS = ("threads", "dask")


def make_task_runner(
    kind: str = "threads", dask_address: str | None = None, workers: int = 2
) -> TaskRunner:
    """ThreadPoolTaskRunner (default) or a DaskTaskRunner on ``dask_address`` or a local cluster."""
    if kind == "threads":
        return ThreadPoolTaskRunner(max_workers=workers)
    if kind == "dask":
        from prefect_dask import DaskTaskRunner

        if dask_address:
            return DaskTaskRunner(address=dask_address)
        return DaskTaskRunner(
            cluster_kwargs={"n_workers": workers, "processes": False, "threads_per_worker": 1}
        )
    raise ConfigurationError(f"unknown task runner {kind!r}; choose from {', '.join(TASK_RUNNERS)}")


@flow(name="backfill-partitions")
def backfill_partitions_flow(
    source: str,
    table: str | None,
    days: list[date],
    model_version: int,
    threshold_version: int,
    threshold: float,
    run_id: str,
    batch_size: int | None = None,
) -> list[dict]:
    """Submit one task per day and resolve every future (a failed day fails the run)."""
    settings = get_settings(batch_size=batch_size)
    ref = JudgeRef(model_version, threshold_version, threshold)
    futures = [backfill_day_task.submit(settings, source, table, d, ref, run_id) for d in days]
    wait(futures)
    return [f.result() for f in futures]


@flow(name="backfill")
def backfill_flow(
    source: str,
    start: date | None = None,
    end: date | None = None,
    model_version: int | None = None,
    table: str | None = None,
    task_runner: str = "threads",
    dask_address: str | None = None,
    workers: int = 2,
    batch_size: int | None = None,
) -> dict:
    """Re-score days ``start``..``end`` (inclusive) of ``source`` with the champion or a version.

    Days already backfilled with the same model and threshold versions are skipped.
    ``start`` and ``end`` are required; they default to None only so that a deployment can
    exist without them (``prefect deployment run ... --param start=... --param end=...``).
    """
    if start is None or end is None:
        raise ConfigurationError("a backfill needs both start and end dates (YYYY-MM-DD)")
    refuse_secret_source(source)  # flow parameters are stored: a password goes in env:NAME
    settings = get_settings(batch_size=batch_size)
    runner = make_task_runner(task_runner, dask_address, workers)
    shown = shown_source(source)
    params = {
        "source": shown,
        "start": start,
        "end": end,
        "model_version": model_version,
        "table": table,
        "task_runner": task_runner,
    }
    with recorded_run(settings, "backfill", params, source_key_of(source, table)) as run_id:
        ref = resolve_judge_task(settings, model_version)
        src = open_source(source, table)
        days = days_in_range(src, start, end)
        todo = [d for d in days if d not in done_days(settings, src.key, ref)]
        step("days", total=len(todo))
        with progress_artifact("backfill-progress", "days", "days backfilled", len(todo)):
            results = (
                backfill_partitions_flow.with_options(task_runner=runner)(
                    source,
                    table,
                    todo,
                    ref.model_version,
                    ref.threshold_version,
                    ref.threshold,
                    run_id,
                    batch_size,
                )
                if todo
                else []
            )
    row = finish_run_task(
        settings,
        run_id,
        "completed",
        model_version=ref.model_version,
        threshold_version=ref.threshold_version,
    )
    summary = {
        "days_in_range": len(days),
        "days_done": len(todo),
        "days_skipped": len(days) - len(todo),
    }
    publish_run_summary(
        row | {"extra": summary}, top_flagged(create_db_engine(settings.database_url_plain), run_id)
    )
    return {
        "run_id": run_id,
        **summary,
        "model_version": ref.model_version,
        "threshold_version": ref.threshold_version,
        "n_scored": sum(r["n_scored"] for r in results),
        "n_flagged": sum(r["n_flagged"] for r in results),
    }
