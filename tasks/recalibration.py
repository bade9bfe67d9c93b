"""Recalibration: a new threshold version for a model version, without retraining."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy.engine import Engine

from ecgmon.models.autoencoder.detector import fingerprint
from ecgmon.models.registry.versions import (
    ThresholdRecord,
    active_threshold,
    add_threshold,
    calibration_origin,
    champion_version,
    get_version,
    load_detector,
)
from ecgmon.models.thresholds import compute_threshold
from ecgmon.settings import Settings
from ecgmon.sources.datasets import read_training_data
from ecgmon.storage.engine import create_db_engine


def recalibrate(
    settings: Settings,
    model_version: int | None = None,
    method: str | None = None,
    param: float | None = None,
    data: str | None = None,
    normal_label: float = 1.0,
) -> dict:
    """Compute a threshold from the stored out-of-fold normal losses or from normal beats in
    ``data``. Beats the model trained on would give optimistic losses: when ``data`` holds the
    very normal beats the version was trained on (same fingerprint), its stored out-of-fold
    losses of them are used, as at training.

    The new threshold version becomes active (older ones stay, and scores keep the version
    they were judged with). When it equals the active one (same method, parameters, value and
    origin), nothing is added, so a daily schedule does not pile up identical versions.
    Returns model_version, threshold_version, value, method, params and ``added``.
    """
    engine = create_db_engine(settings.database_url_plain)
    version = champion_version(engine) if model_version is None else model_version
    row = get_version(engine, version)
    normal = None
    if data is not None:
        beats = read_training_data(Path(data))
        normal = beats.signals[beats.normal_mask(normal_label)]
        if fingerprint(normal) == row["train_fingerprint"]:
            normal, data = None, None  # the training beats: their out-of-fold losses
    if normal is None:
        losses = np.asarray(row["normal_losses"], dtype=np.float64)
        origin = calibration_origin(row)
    else:
        losses = load_detector(engine, version, settings.model_store).losses(normal)
        origin = f"{len(normal)} normal beats of {data}"[:512]
    threshold = compute_threshold(losses, method or settings.threshold_method, param)
    current = _active_or_none(engine, version)
    same = (
        current is not None
        and (current.method, current.params) == (threshold.method, threshold.params)
        and np.isclose(current.value, threshold.value, rtol=0, atol=1e-12)
    )
    if same and data is None:
        threshold_version, added = current.threshold_version, False
    else:
        threshold_version, added = add_threshold(engine, version, threshold, origin), True
    return {
        "model_version": version,
        "threshold_version": threshold_version,
        "value": threshold.value,
        "method": threshold.method,
        "params": threshold.params,
        "added": added,
    }


def _active_or_none(engine: Engine, version: int) -> ThresholdRecord | None:
    from ecgmon.errors import ModelNotFoundError

    try:
        return active_threshold(engine, version)
    except ModelNotFoundError:
        return None


@task(name="recalibrate", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def recalibrate_task(
    settings: Settings,
    model_version: int | None,
    method: str | None,
    param: float | None,
    data: str | None,
) -> dict:
    """Store a new active threshold version (or keep an identical active one)."""
    result = recalibrate(settings, model_version, method, param, data)
    get_run_logger().info("recalibrated: %s", result)
    return result
