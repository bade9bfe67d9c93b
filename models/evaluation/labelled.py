"""Evaluation on labelled beats: train on normal training beats, threshold without test labels."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from ecgmon.models.autoencoder.detector import AutoencoderDetector, resolve_architecture
from ecgmon.models.evaluation.metrics import detection_metrics, summarise_runs
from ecgmon.models.evaluation.mitbih import read_mitbih_split
from ecgmon.models.evaluation.selection import select as select_model
from ecgmon.progress import step
from ecgmon.sources.datasets import LabelledBeats, read_beats, read_ucr_pair

log = logging.getLogger(__name__)
SPLITS = ("tf", "ucr", "mitbih")


@dataclass
class EvaluationRun:
    """One seed's evaluation: test losses (n,), truth (n,), threshold, history, examples."""

    architecture: str
    split: str
    seed: int
    metrics: dict
    test_losses: np.ndarray
    is_anomaly: np.ndarray
    threshold: float
    threshold_method: str
    calibration_losses: np.ndarray
    history: dict[str, list[float]] = field(default_factory=dict)
    examples: dict[str, np.ndarray] = field(default_factory=dict)


def load_split(
    data: Path, split: str, normal_label: float = 1.0
) -> tuple[LabelledBeats, LabelledBeats]:
    """(train, test) beats: the tutorial split of all rows pooled, the UCR files as given, or
    beats cut from annotated MIT-BIH records (``mitbih.py``)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    if split == "ucr":
        return read_ucr_pair(data)
    if split == "mitbih":
        return read_mitbih_split(data)
    pooled = read_beats(data) if data.is_file() else _pooled(data)
    if pooled.labels is None:
        raise ValueError(f"{data} has no labels; evaluation needs labelled beats")
    x_tr, x_te, y_tr, y_te = train_test_split(
        pooled.signals, pooled.labels, test_size=0.2, random_state=21
    )
    return (
        LabelledBeats(x_tr, y_tr, f"{pooled.source} (tf split train)"),
        LabelledBeats(x_te, y_te, f"{pooled.source} (tf split test)"),
    )


def _pooled(folder: Path) -> LabelledBeats:
    train, test = read_ucr_pair(folder)
    return train.concat(test)


def evaluate_once(
    train: LabelledBeats,
    test: LabelledBeats,
    *,
    architecture: str,
    split: str,
    seed: int,
    epochs: int,
    normal_label: float = 1.0,
    threshold_method: str | None = None,
    threshold_param: float | None = None,
    select: bool = False,
) -> EvaluationRun:
    """Train on the normal training beats, threshold on their out-of-fold losses, score the test.

    ``select``: architecture and threshold rule are chosen first by the protocol of
    ``selection.py`` on the training beats alone; the test beats are scored after the choice.
    """
    mask = train.normal_mask(normal_label)
    normal, calibration, record = train.signals[mask], None, None
    if select:
        chosen = select_model(train.signals[mask], train.signals[~mask], epochs=epochs, seed=seed)
        architecture, calibration, record = (
            chosen.chosen.architecture,
            chosen.crossfits[chosen.chosen.architecture],
            chosen.to_json(),
        )
        threshold_method, threshold_param = chosen.chosen.method, chosen.chosen.param
    detector = AutoencoderDetector.fit(
        normal, architecture=architecture, epochs=epochs, seed=seed, calibration=calibration
    )
    threshold = detector.threshold(threshold_method, threshold_param)
    losses = detector.losses(test.signals)
    is_anomaly = ~test.normal_mask(normal_label)
    metrics = detection_metrics(losses, is_anomaly, threshold.value)
    metrics["training_seconds"] = detector.training_seconds
    metrics["architecture"] = architecture
    metrics["threshold_rule"] = f"{threshold.method} {threshold.params}"
    if record is not None:
        metrics["selection"] = record
    return EvaluationRun(
        architecture,
        split,
        seed,
        metrics,
        losses,
        is_anomaly,
        threshold.value,
        threshold.method,
        detector.calibration_losses,
        detector.history,
        _examples(detector, test.signals, losses, is_anomaly, threshold.value),
    )


def _examples(
    detector: AutoencoderDetector,
    signals: np.ndarray,
    losses: np.ndarray,
    is_anomaly: np.ndarray,
    threshold: float,
) -> dict[str, np.ndarray]:
    """A few normal and flagged test beats with their reconstructions, in the scaled space."""
    normal = np.flatnonzero(~is_anomaly & (losses <= threshold))[:3]
    flagged = np.flatnonzero(losses > threshold)[:3]
    picked = np.concatenate([normal, flagged])
    return {
        "index": picked,
        "kind": np.array(["normal"] * len(normal) + ["flagged"] * len(flagged)),
        "input": detector.scaler.transform(signals[picked]),
        "reconstruction": detector.reconstruct(signals[picked]) if len(picked) else np.empty((0,)),
        "loss": losses[picked],
    }


def evaluate(
    data: Path,
    split: str = "tf",
    architecture: str | None = None,
    seeds: int = 1,
    epochs: int = 60,
    normal_label: float = 1.0,
    threshold_method: str | None = None,
    threshold_param: float | None = None,
    select: bool = False,
) -> tuple[dict, list[EvaluationRun]]:
    """Metrics over ``seeds`` seeds (0..seeds-1): means at top level, plus ``std`` and ``runs``.

    ``select``: each seed runs the selection protocol on the training beats first (the
    architecture and threshold arguments are then ignored)."""
    train, test = load_split(data, split, normal_label)
    name = resolve_architecture(architecture)
    runs = []
    step("seeds", total=seeds)
    for seed in range(seeds):
        run = evaluate_once(
            train,
            test,
            architecture=name,
            split=split,
            seed=seed,
            epochs=epochs,
            normal_label=normal_label,
            threshold_method=threshold_method,
            threshold_param=threshold_param,
            select=select,
        )
        log.info("seed %d: %s", seed, run.metrics)
        runs.append(run)
        step("seeds", advance=1)
    summary = summarise_runs([r.metrics for r in runs]) if seeds > 1 else dict(runs[0].metrics)
    chosen = sorted({r.architecture for r in runs})
    summary.update(
        architecture=chosen[0] if len(chosen) == 1 else ",".join(chosen),
        selected=select,
        threshold_rule=sorted({r.metrics["threshold_rule"] for r in runs}),
        split=split,
        seeds=seeds,
        threshold_method=runs[0].threshold_method,
        input_length=int(train.signals.shape[1]),
        n_train_normal=int(train.normal_mask(normal_label).sum()),
    )
    return summary, runs
