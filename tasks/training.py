"""Training tasks: fit a detector on curated normal beats, register it, calibrate, promote."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from ecgmon.models.autoencoder.detector import AutoencoderDetector, resolve_architecture
from ecgmon.models.registry.versions import add_threshold, promote, register_model
from ecgmon.settings import Settings
from ecgmon.sources.datasets import read_training_data
from ecgmon.storage.engine import create_db_engine


def train_and_register(
    settings: Settings,
    data: str,
    architecture: str | None = None,
    epochs: int | None = None,
    seed: int | None = None,
    normal_label: float = 1.0,
) -> int:
    """Train on the normal beats of ``data`` and register a candidate; returns its version.

    Labelled data trains on beats with ``normal_label`` only; unlabelled data is taken as
    curated normal beats.
    """
    beats = read_training_data(Path(data))
    normal = beats.signals[beats.normal_mask(normal_label)]
    return train_on_normals(settings, normal, architecture, epochs, seed)


def train_on_normals(
    settings: Settings,
    normal: np.ndarray,
    architecture: str | None = None,
    epochs: int | None = None,
    seed: int | None = None,
) -> int:
    """Fit a detector on normal beats (n, length), register it as a candidate; its version."""
    detector = AutoencoderDetector.fit(
        normal,
        architecture=resolve_architecture(architecture or settings.architecture),
        epochs=epochs or settings.epochs,
        seed=settings.seed if seed is None else seed,
    )
    engine = create_db_engine(settings.database_url_plain)
    return register_model(
        engine, detector, settings.model_store, metrics=training_metrics(detector)
    )


def training_metrics(detector: AutoencoderDetector) -> dict:
    """What training achieved (``model_versions.metrics``): loss curves and final figures."""
    history = detector.history
    last = {f"final_{name}": round(values[-1], 6) for name, values in history.items() if values}
    return {
        "epochs_run": len(history.get("loss", [])),
        "training_seconds": round(detector.training_seconds, 2),
        **last,
        "history": history,
    }


def training_summary(settings: Settings, version: int) -> dict:
    """Figures of a registered version for its run summary artifact (no loss curves)."""
    from ecgmon.models.registry.versions import active_threshold, get_version

    engine = create_db_engine(settings.database_url_plain)
    row = get_version(engine, version)
    threshold = active_threshold(engine, version)
    metrics = {k: v for k, v in (row["metrics"] or {}).items() if k != "history"}
    return {
        "architecture": row["architecture"],
        "input_length": row["input_length"],
        "train_size": row["train_size"],
        "calibration_beats": row["calibration_size"],
        "calibration": row.get("calibration") or "held-out 20 % of the normals",
        "calibration_loss_mean": round(row["loss_mean"], 6),
        "calibration_loss_std": round(row["loss_std"], 6),
        "threshold": f"{threshold.method} {threshold.params} = {threshold.value:.6f}",
        **metrics,
    }


def training_pictures(settings: Settings, version: int) -> dict[str, bytes]:
    """{title: PNG} of a registered version: its learning curves, and its held-out normal losses
    against its active threshold; {} (logged) when they cannot be drawn: the version is
    registered whatever happens here."""
    try:
        return _training_pictures(settings, version)
    except Exception as err:  # noqa: BLE001 - pictures are a courtesy
        logging.getLogger(__name__).error("training pictures of v%d: %s", version, err)
        return {}


def _training_pictures(settings: Settings, version: int) -> dict[str, bytes]:
    from ecgmon.models.registry.versions import active_threshold, get_version
    from ecgmon.report.figures import learning_curve, loss_histogram

    engine = create_db_engine(settings.database_url_plain)
    row = get_version(engine, version)
    pictures = {}
    history = (row["metrics"] or {}).get("history") or {}
    if history:
        pictures["Learning curves"] = learning_curve(history)
    threshold = active_threshold(engine, version)
    losses = np.asarray(row["normal_losses"], dtype=np.float64)
    title = f"Held-out normal losses of v{version} ({losses.size} beats)"
    label = f"threshold t{threshold.threshold_version} = {threshold.value:.4g}"
    pictures["Held-out loss histogram"] = loss_histogram(losses, {label: threshold.value}, title)
    return pictures


def calibrate(
    settings: Settings, version: int, method: str | None = None, param: float | None = None
) -> int:
    """A new active threshold version for ``version`` from its stored out-of-fold normal losses."""
    from ecgmon.models.registry.versions import calibration_origin, get_version
    from ecgmon.models.thresholds import compute_threshold

    engine = create_db_engine(settings.database_url_plain)
    row = get_version(engine, version)
    threshold = compute_threshold(
        np.asarray(row["normal_losses"]), method or settings.threshold_method, param
    )
    return add_threshold(engine, version, threshold, origin=calibration_origin(row))


@task(name="train-and-register", cache_policy=NO_CACHE)
def train_task(
    settings: Settings, data: str, architecture: str | None, epochs: int | None, seed: int | None
) -> int:
    """Train a candidate and register it."""
    version = train_and_register(settings, data, architecture, epochs, seed)
    get_run_logger().info("registered model version %d", version)
    return version


@task(name="calibrate-threshold", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def calibrate_task(
    settings: Settings, version: int, method: str | None, param: float | None
) -> int:
    """Store a new active threshold version for a model version."""
    threshold_version = calibrate(settings, version, method, param)
    get_run_logger().info("model %d: threshold version %d active", version, threshold_version)
    return threshold_version


@task(name="promote", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def promote_task(settings: Settings, version: int) -> None:
    """Make a version the champion."""
    promote(create_db_engine(settings.database_url_plain), version)
    get_run_logger().info("model version %d is the champion", version)
