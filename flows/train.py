"""The train flow: a candidate from curated normal beats, its threshold, optional promotion."""

from __future__ import annotations

from prefect import flow

from ecgmon.settings import get_settings
from ecgmon.tasks.reporting import publish_run_summary
from ecgmon.tasks.runs import finish_run_task, recorded_run
from ecgmon.tasks.training import (
    calibrate_task,
    promote_task,
    train_task,
    training_pictures,
    training_summary,
)


@flow(name="train")
def train_flow(
    data: str,
    architecture: str | None = None,
    epochs: int | None = None,
    seed: int | None = None,
    promote: bool = False,
) -> dict:
    """Train, register, calibrate and (when asked) promote a model version."""
    settings = get_settings()
    params = {"data": data, "architecture": architecture, "epochs": epochs, "promote": promote}
    with recorded_run(settings, "train", params, data) as run_id:
        version = train_task(settings, data, architecture, epochs, seed)
        threshold_version = calibrate_task(settings, version, None, None)
        if promote:
            promote_task(settings, version)
    row = finish_run_task(
        settings, run_id, "completed", model_version=version, threshold_version=threshold_version
    )
    extra = training_summary(settings, version) | {"promoted": promote}
    publish_run_summary(row | {"extra": extra}, [], training_pictures(settings, version))
    return {
        "run_id": run_id,
        "model_version": version,
        "threshold_version": threshold_version,
        "promoted": promote,
    }
