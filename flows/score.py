"""The score flow: new records from a source -> scores and flags in SQL, one commit per batch."""

from __future__ import annotations

from prefect import flow

from ecgmon.settings import get_settings
from tasks.runs import current_run_id, finish_run_task, start_run_task
from tasks.scoring import resolve_judge_task, score_new_records_task


@flow(name="score", log_prints=False)
def score_flow(
    source: str,
    table: str | None = None,
    model_version: int | None = None,
    batch_size: int | None = None,
) -> dict:
    """Score every new record of ``source`` (Parquet file/folder) with the champion model."""
    settings = get_settings(batch_size=batch_size)
    run_id = current_run_id()
    params = {"source": source, "table": table, "model_version": model_version}
    start_run_task(settings, run_id, "score", params, source)
    try:
        ref = resolve_judge_task(settings, model_version)
        counts = score_new_records_task(settings, source, table, ref, run_id)
    except Exception as err:
        finish_run_task(settings, run_id, "failed", error=type(err).__name__)
        raise
    row = finish_run_task(
        settings,
        run_id,
        "completed",
        model_version=ref.model_version,
        threshold_version=ref.threshold_version,
    )
    return {
        "run_id": run_id,
        **counts,
        "model_version": ref.model_version,
        "threshold_version": ref.threshold_version,
        "threshold": ref.threshold,
        "status": row["status"],
    }
