"""Detection metrics with the ANOMALY as the positive class (numpy and scikit-learn only).

A beat is flagged when its score (reconstruction loss) is strictly greater than the threshold.
Conventions for undefined ratios: precision, recall and F1 are 0.0 when their denominator is
zero (scikit-learn's ``zero_division=0``); ``false_alarm_rate`` is nan when there are no normal
beats and ``auroc`` is nan when only one class is present.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

#: Keys of :func:`detection_metrics`, in report order.
METRIC_KEYS: tuple[str, ...] = (
    "auroc",
    "f1",
    "precision",
    "recall",
    "accuracy",
    "false_alarm_rate",
    "threshold",
    "n_test",
    "n_anomalies",
)


def detection_metrics(
    scores: np.ndarray, is_anomaly: np.ndarray, threshold: float
) -> dict[str, float]:
    """Metrics of flagging ``scores > threshold`` against the truth ``is_anomaly``.

    scores: (n,) finite anomaly scores, higher = more anomalous. is_anomaly: (n,) bool (or 0/1).
    Returns auroc, f1, precision, recall, accuracy, false_alarm_rate (share of normal beats
    flagged), threshold, n_test (int) and n_anomalies (int).
    """
    scores, truth = _validated(scores, is_anomaly)
    flagged = scores > threshold
    true_pos = int(np.sum(flagged & truth))
    false_pos = int(np.sum(flagged & ~truth))
    n_anomalies = int(truth.sum())
    n_normal = truth.size - n_anomalies
    precision = _ratio(true_pos, true_pos + false_pos, empty=0.0)
    recall = _ratio(true_pos, n_anomalies, empty=0.0)
    f1 = _ratio(2 * precision * recall, precision + recall, empty=0.0)
    both_classes = 0 < n_anomalies < truth.size
    return {
        "auroc": float(roc_auc_score(truth, scores)) if both_classes else math.nan,
        "f1": f1,
        "precision": precision,
        "recall": recall,
        "accuracy": float(np.mean(flagged == truth)),
        "false_alarm_rate": _ratio(false_pos, n_normal, empty=math.nan),
        "threshold": float(threshold),
        "n_test": int(truth.size),
        "n_anomalies": n_anomalies,
    }


def summarise_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean of each numeric metric over runs (e.g. seeds) at top level, plus ``std`` and ``runs``.

    A metric is summarised when every run has it as a number. ``std`` holds the sample standard
    deviation (ddof=1) of each, 0.0 for a single run. A count that is the same integer in every
    run (n_test) stays an int. ``n_runs`` is the number of runs.
    """
    if not runs:
        raise ValueError("summarise_runs needs at least one run")
    summary: dict[str, Any] = {}
    spread: dict[str, float] = {}
    for key in runs[0]:
        values = [run.get(key) for run in runs]
        if not all(_is_number(value) for value in values):
            continue
        array = np.asarray(values, dtype=np.float64)
        same_int = all(isinstance(v, int) for v in values) and len(set(values)) == 1
        summary[key] = values[0] if same_int else float(array.mean())
        spread[key] = float(array.std(ddof=1)) if len(runs) > 1 else 0.0
    summary["n_runs"] = len(runs)
    summary["std"] = spread
    summary["runs"] = list(runs)
    return summary


def _validated(scores: np.ndarray, is_anomaly: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n,) float64 scores and (n,) bool truth, or ValueError."""
    scores = np.asarray(scores, dtype=np.float64)
    truth = np.asarray(is_anomaly)
    if scores.ndim != 1 or scores.shape != truth.shape:
        raise ValueError(f"scores {scores.shape} and is_anomaly {truth.shape} must be equal 1-D")
    if scores.size == 0:
        raise ValueError("detection_metrics needs at least one score")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores must be finite")
    if not np.all((truth == 0) | (truth == 1)):
        raise ValueError("is_anomaly must hold only booleans or 0/1")
    return scores, truth.astype(bool)


def _ratio(numerator: float, denominator: float, empty: float) -> float:
    return float(numerator) / float(denominator) if denominator else empty


def _is_number(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)
