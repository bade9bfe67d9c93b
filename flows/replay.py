"""The replay flow: quarantined rows validated and scored again after a fix."""

from __future__ import annotations

from prefect import flow

from ecgmon.settings import get_settings
from ecgmon.tasks.replay import replay_task
from ecgmon.tasks.runs import finish_run_task, recorded_run


@flow(name="replay", log_prints=False)
def replay_flow(source: str | None = None, reason: str | None = None) -> dict:
    """Score again the quarantined rows that kept their raw payload (only of the source key
    ``source`` and the rejection ``reason``, if given); those that now pass leave quarantine."""
    settings = get_settings()
    params = {"source": source, "reason": reason}
    with recorded_run(settings, "replay", params, source) as run_id:
        totals = replay_task(settings, source, reason, run_id)
    finish_run_task(settings, run_id, "completed")
    return totals
