"""The recalibrate flow: a new active threshold version for a model version, no retraining."""

from __future__ import annotations

from prefect import flow

from ecgmon.settings import get_settings
from ecgmon.tasks.recalibration import recalibrate_task
from ecgmon.tasks.reporting import publish_run_summary
from ecgmon.tasks.runs import finish_run_task, recorded_run


@flow(name="recalibrate")
def recalibrate_flow(
    model_version: int | None = None,
    method: str | None = None,
    param: float | None = None,
    data: str | None = None,
) -> dict:
    """Threshold of ``model_version`` (default: the champion) by ``method`` with ``param``
    (k, q or fpr), from its stored out-of-fold normal losses or the normal beats in ``data``."""
    settings = get_settings()
    params = {"model_version": model_version, "method": method, "param": param, "data": data}
    with recorded_run(settings, "recalibrate", params, data) as run_id:
        result = recalibrate_task(settings, model_version, method, param, data)
    row = finish_run_task(
        settings,
        run_id,
        "completed",
        model_version=result["model_version"],
        threshold_version=result["threshold_version"],
    )
    extra = {k: result[k] for k in ("value", "method", "params", "added")}
    publish_run_summary(row | {"extra": extra}, [])
    return {"run_id": run_id, **result}
