"""Retraining with a champion/challenger gate (rules in models/registry/gate.py).

Each model is judged on losses of beats it did not train on, by the procedure thresholds are
calibrated with. A seeded 20 % of the normal beats (the gate set) is held out from the
candidate, which trains (and cross-fits its threshold) on the rest. The champion is judged on
the same beats: by its stored out-of-fold losses of them when it was trained on these very
normal beats (same ``train_fingerprint``; its final model saw them), by its own losses
otherwise (it never saw this data, as far as the registry can tell). A champion calibrated
before cross-fitting, on the same beats, is judged on its own held-out 20 % (which then is the
gate set). Labelled abnormal beats never train either model and join the gate set for AUROC.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy.engine import Engine

from ecgmon.errors import DataFormatError, NoChampionError
from ecgmon.models.autoencoder.detector import fingerprint, split_calibration
from ecgmon.models.registry.gate import GatePolicy, ModelFigures, decide, model_figures
from ecgmon.models.registry.versions import (
    active_threshold,
    champion_version,
    get_version,
    load_detector,
    promote,
    record_gate,
    require_population_model,
)
from ecgmon.settings import Settings
from ecgmon.sources.datasets import read_training_data
from ecgmon.storage.engine import create_db_engine
from ecgmon.tasks.training import calibrate, train_on_normals

GATE_FRACTION = 0.2


def gate_split(
    normal: np.ndarray, champion: dict | None, seed: int
) -> tuple[np.ndarray, np.ndarray, str]:
    """(train indices, gate indices, how chosen) over normal beats (n, length)."""
    if _trained_on(champion, normal) and not _cross_fitted(champion, normal):
        train_idx, gate_idx = split_calibration(len(normal), GATE_FRACTION, int(champion["seed"]))
        if len(gate_idx) == int(champion["calibration_size"]):
            return train_idx, gate_idx, "held-out normals of the champion (same training data)"
    train_idx, gate_idx = split_calibration(len(normal), GATE_FRACTION, seed + 1)
    how = f"seeded {GATE_FRACTION:.0%} of the normals, not trained on by the candidate"
    if _cross_fitted(champion, normal):
        how += "; the champion's out-of-fold losses of them (it trained on these normals)"
    return train_idx, gate_idx, how


def _trained_on(champion: dict | None, normal: np.ndarray) -> bool:
    return champion is not None and champion["train_fingerprint"] == fingerprint(normal)


def _cross_fitted(champion: dict | None, normal: np.ndarray) -> bool:
    """Whether the champion holds an out-of-fold loss of each of these (its training) beats."""
    how = (champion or {}).get("calibration") or {}
    return (
        _trained_on(champion, normal)
        and how.get("procedure") == "cross_fit"
        and len(champion["normal_losses"]) == len(normal)
    )


def retrain(
    settings: Settings,
    data: str,
    architecture: str | None = None,
    epochs: int | None = None,
    seed: int | None = None,
    normal_label: float = 1.0,
    policy: GatePolicy | None = None,
) -> dict:
    """Train, register and calibrate a candidate, gate it against the champion, store the decision.

    The candidate's threshold uses the champion's active rule (method and parameter), so the
    two false-alarm rates answer the same question.

    Returns the gate record (also stored in ``model_versions.gate``) with ``model_version``,
    ``threshold_version`` and ``promoted``.
    """
    engine = create_db_engine(settings.database_url_plain)
    beats = read_training_data(Path(data))
    mask = beats.normal_mask(normal_label)
    normal, abnormal = beats.signals[mask], beats.signals[~mask]
    champion = _champion_row(engine)
    if champion is not None and champion["input_length"] != beats.input_length:
        raise DataFormatError(
            f"{data} holds beats of {beats.input_length} samples but the champion (version "
            f"{champion['version']}) expects {champion['input_length']}"
        )
    seed = settings.seed if seed is None else seed
    train_idx, gate_idx, how = gate_split(normal, champion, seed)
    version = train_on_normals(settings, normal[train_idx], architecture, epochs, seed)
    method, param = _champion_rule(engine, champion)
    threshold_version = calibrate(settings, version, method, param)
    gate_normal = normal[gate_idx]
    gate_abnormal = abnormal if beats.labels is not None and len(abnormal) else None
    cand = _figures(engine, settings.model_store, version, gate_normal, gate_abnormal)
    champ = None
    if champion is not None:
        out_of_fold = None
        if _cross_fitted(champion, normal):
            out_of_fold = np.asarray(champion["normal_losses"], dtype=np.float64)[gate_idx]
        champ = _figures(
            engine,
            settings.model_store,
            champion["version"],
            gate_normal,
            gate_abnormal,
            out_of_fold,
        )
    decision = decide(
        cand, champ, len(gate_normal), 0 if gate_abnormal is None else len(gate_abnormal), policy
    )
    record = decision.to_json() | {
        "model_version": version,
        "threshold_version": threshold_version,
        "champion_version": None if champion is None else champion["version"],
        "gate_set": how,
        "data": str(data),
        "promoted": decision.promote,
    }
    record_gate(engine, version, record, None if decision.promote else "rejected")
    if decision.promote:
        promote(engine, version)
    return record


def _champion_rule(engine: Engine, champion: dict | None) -> tuple[str | None, float | None]:
    """The champion's active threshold rule, so that both false-alarm rates are comparable."""
    if champion is None:
        return None, None
    active = active_threshold(engine, champion["version"])
    return active.method, next(iter(active.params.values()), None)


def _champion_row(engine: Engine) -> dict | None:
    try:
        return get_version(engine, champion_version(engine))
    except NoChampionError:
        return None


def _figures(
    engine: Engine,
    store: str,
    version: int,
    normal: np.ndarray,
    abnormal: np.ndarray | None,
    normal_losses: np.ndarray | None = None,
) -> ModelFigures:
    """A model's gate figures; ``normal_losses``: its out-of-fold losses of ``normal``, if any."""
    detector = load_detector(engine, version, store)
    threshold = active_threshold(engine, version).value
    abnormal_losses = None if abnormal is None else detector.losses(abnormal)
    if normal_losses is None:
        normal_losses = detector.losses(normal)
    return model_figures(normal_losses, abnormal_losses, threshold)


@task(name="retrain-with-gate", cache_policy=NO_CACHE)
def retrain_task(
    settings: Settings, data: str, architecture: str | None, epochs: int | None, seed: int | None
) -> dict:
    """Train a candidate and let the gate decide whether it becomes the champion."""
    record = retrain(settings, data, architecture, epochs, seed)
    get_run_logger().info(
        "model version %d %s: %s",
        record["model_version"],
        "promoted" if record["promoted"] else "rejected",
        "; ".join(record["reasons"]),
    )
    return record


def promote_by_hand(settings: Settings, version: int) -> None:
    """Make ``version`` the champion without the gate: only a population model with an active
    threshold (a champion must be able to judge beats)."""
    engine = create_db_engine(settings.database_url_plain)
    require_population_model(engine, version)
    active_threshold(engine, version)
    promote(engine, version)
