"""The score flow: new records from a source -> scores and flags in SQL, one commit per batch."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from prefect import flow

from ecgmon.recordings import is_wfdb_folder
from ecgmon.settings import get_settings
from ecgmon.sources import refuse_secret_source, shown_source, source_key_of
from ecgmon.storage.engine import create_db_engine
from ecgmon.tasks.alerts import alert_run_task
from ecgmon.tasks.baseline import auto_baselines_task
from ecgmon.tasks.flagged_beats import publish_flagged_beats_task, wants_pictures
from ecgmon.tasks.progress import progress_artifact
from ecgmon.tasks.reporting import measure_drift_task, publish_run_summary, top_flagged
from ecgmon.tasks.runs import finish_run_task, recorded_run
from ecgmon.tasks.scoring import resolve_judge_task, score_new_records_task


@flow(name="score", log_prints=False)
def score_flow(
    source: str,
    table: str | None = None,
    model_version: int | None = None,
    batch_size: int | None = None,
    as_of: datetime | None = None,
) -> dict:
    """Score every new record of ``source`` (Parquet file/folder, or a database URL or
    ``env:VAR`` with ``table``, or a WFDB folder) with the champion model (and each patient's
    own model); then drift, alert, summary, and for a WFDB folder the top flagged beats in
    context."""
    refuse_secret_source(source)  # flow parameters are stored: a password goes in env:NAME
    settings = get_settings(batch_size=batch_size)
    as_of = window_end(as_of)
    shown = safe_source(source)  # a database URL may hold a password: never stored or logged
    params = {"source": shown, "table": table, "model_version": model_version}
    # the run lock is held to the end of the alert: a run dying before is found and reconciled
    with recorded_run(settings, "score", params, source_key_of(source, table)) as run_id:
        ref = resolve_judge_task(settings, model_version)
        if settings.auto_baseline_minutes and is_wfdb_folder(Path(source)):
            auto_baselines_task(settings, Path(source), ref.model_version)
        with progress_artifact("score-progress", "records", "records of the source read"):
            counts = score_new_records_task(settings, source, table, ref, run_id, as_of)
        drift = (
            measure_drift_task(settings, run_id, ref.model_version) if counts["n_scored"] else None
        )
        row = finish_run_task(
            settings,
            run_id,
            "completed",
            model_version=ref.model_version,
            threshold_version=ref.threshold_version,
            drift_psi=(drift or {}).get("psi"),
            drift=drift,
        )
        alert = alert_run_task(settings, run_id)  # after the commit; never raises
    row = row | {"alert_state": alert["state"], "alert_detail": alert["detail"]}
    extra = {"files rejected whole": len(counts["files_rejected"])}
    publish_run_summary(
        row | {"extra": extra}, top_flagged(create_db_engine(settings.database_url_plain), run_id)
    )
    if wants_pictures(source, counts["n_flagged"]):
        publish_flagged_beats_task(settings, run_id, source)  # never raises
    return {
        "run_id": run_id,
        **counts,
        "model_version": ref.model_version,
        "threshold_version": ref.threshold_version,
        "threshold": ref.threshold,
        "status": row["status"],
        "drift_psi": row["drift_psi"],
        "alert_state": alert["state"],
    }


def safe_source(spec: str) -> str:
    """A source as it may be shown: database URLs (also ``env:NAME``) with the password masked."""
    return shown_source(spec)


def window_end(as_of: datetime | None) -> datetime:
    """End of the run's window: ``as_of`` if given, else the run's SCHEDULED start, never now()."""
    if as_of is not None:
        return as_of
    from prefect.runtime import flow_run

    return flow_run.scheduled_start_time
