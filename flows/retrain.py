"""The retrain flow: a candidate on curated normal beats, gated against the champion."""

from __future__ import annotations

from prefect import flow

from ecgmon.settings import get_settings
from ecgmon.tasks.gate import retrain_task
from ecgmon.tasks.reporting import publish_run_summary
from ecgmon.tasks.runs import finish_run_task, recorded_run


@flow(name="retrain")
def retrain_flow(
    data: str,
    architecture: str | None = None,
    epochs: int | None = None,
    seed: int | None = None,
) -> dict:
    """Train, calibrate and register a candidate; promote it only if it passes the gate."""
    settings = get_settings()
    params = {"data": data, "architecture": architecture, "epochs": epochs, "seed": seed}
    with recorded_run(settings, "retrain", params, data) as run_id:
        record = retrain_task(settings, data, architecture, epochs, seed)
    row = finish_run_task(
        settings,
        run_id,
        "completed",
        model_version=record["model_version"],
        threshold_version=record["threshold_version"],
    )
    extra = {
        "decision": "promoted" if record["promoted"] else "rejected",
        "reasons": "; ".join(record["reasons"]),
        "candidate_false_alarm_rate": record["candidate"]["false_alarm_rate"],
        "candidate_auroc": record["candidate"]["auroc"],
        "champion_false_alarm_rate": (record["champion"] or {}).get("false_alarm_rate"),
        "champion_auroc": (record["champion"] or {}).get("auroc"),
    }
    publish_run_summary(row | {"extra": extra}, [])
    return {"run_id": run_id, **record}
