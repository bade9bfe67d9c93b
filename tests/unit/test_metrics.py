"""Detection metrics on a 6-beat example worked out by hand, and the edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ecgmon.models.evaluation.metrics import METRIC_KEYS, detection_metrics, summarise_runs

# Anomalies (the positive class) are beats 2, 4 and 5; a beat is flagged when score > 0.4.
SCORES = np.array([0.1, 0.3, 0.4, 0.7, 0.5, 0.9])
TRUTH = np.array([False, True, False, True, True, False])
THRESHOLD = 0.4


def test_six_beats_by_hand() -> None:
    # beats:        1      2     3      4     5     6
    # score:        0.1    0.3   0.4    0.7   0.5   0.9
    # anomaly:      no     yes   no     yes   yes   no
    # flagged:      no     no    no     yes   yes   yes   -> TP 2, FP 1, FN 1, TN 2
    metrics = detection_metrics(SCORES, TRUTH, THRESHOLD)
    assert list(metrics) == list(METRIC_KEYS)
    assert metrics["precision"] == pytest.approx(2 / 3)
    assert metrics["recall"] == pytest.approx(2 / 3)
    assert metrics["f1"] == pytest.approx(2 / 3)
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["false_alarm_rate"] == pytest.approx(1 / 3)
    # AUROC: of the 9 (anomaly, normal) pairs the anomaly scores higher in
    # 0.3>0.1; 0.7>0.1,0.4; 0.5>0.1,0.4  -> 5 of 9.
    assert metrics["auroc"] == pytest.approx(5 / 9)
    assert metrics["threshold"] == 0.4
    assert metrics["n_test"] == 6 and isinstance(metrics["n_test"], int)
    assert metrics["n_anomalies"] == 3


def test_integer_truth_is_accepted() -> None:
    assert detection_metrics(SCORES, TRUTH.astype(int), THRESHOLD) == detection_metrics(
        SCORES, TRUTH, THRESHOLD
    )


def test_only_normal_beats() -> None:
    metrics = detection_metrics(np.array([0.1, 0.5]), np.array([False, False]), 0.3)
    assert math.isnan(metrics["auroc"])
    assert metrics["precision"] == 0.0 and metrics["recall"] == 0.0 and metrics["f1"] == 0.0
    assert metrics["false_alarm_rate"] == 0.5 and metrics["accuracy"] == 0.5


def test_only_anomalies_and_nothing_flagged() -> None:
    metrics = detection_metrics(np.array([0.1, 0.2]), np.array([True, True]), 1.0)
    assert math.isnan(metrics["auroc"]) and math.isnan(metrics["false_alarm_rate"])
    assert metrics["precision"] == 0.0 and metrics["recall"] == 0.0 and metrics["accuracy"] == 0.0


def test_perfect_separation() -> None:
    metrics = detection_metrics(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1]), 0.5)
    for key in ("auroc", "f1", "precision", "recall", "accuracy"):
        assert metrics[key] == 1.0, key
    assert metrics["false_alarm_rate"] == 0.0


@pytest.mark.parametrize(
    ("scores", "truth"),
    [
        (np.array([0.1, 0.2]), np.array([True])),
        (np.array([]), np.array([], dtype=bool)),
        (np.array([0.1, np.nan]), np.array([True, False])),
        (np.array([0.1, 0.2]), np.array([2, 0])),
    ],
)
def test_invalid_input(scores: np.ndarray, truth: np.ndarray) -> None:
    with pytest.raises(ValueError):
        detection_metrics(scores, truth, 0.5)


def test_summarise_runs() -> None:
    runs = [
        {"auroc": 0.8, "f1": 0.5, "n_test": 6, "architecture": "dense", "seed": 0},
        {"auroc": 0.9, "f1": 0.7, "n_test": 6, "architecture": "dense", "seed": 1},
    ]
    summary = summarise_runs(runs)
    assert summary["auroc"] == pytest.approx(0.85) and summary["f1"] == pytest.approx(0.6)
    assert summary["n_test"] == 6 and isinstance(summary["n_test"], int)
    assert "architecture" not in summary
    assert summary["std"]["auroc"] == pytest.approx(np.std([0.8, 0.9], ddof=1))
    assert summary["std"]["n_test"] == 0.0
    assert summary["n_runs"] == 2 and summary["runs"] == runs


def test_summarise_one_run_and_none() -> None:
    summary = summarise_runs([{"auroc": 0.8}])
    assert summary["auroc"] == 0.8 and summary["std"] == {"auroc": 0.0}
    with pytest.raises(ValueError):
        summarise_runs([])


def test_agrees_with_scikit_learn_on_random_scores() -> None:
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

    rng = np.random.default_rng(0)
    truth = rng.random(200) < 0.3
    scores = rng.normal(0.0, 1.0, 200) + truth
    metrics = detection_metrics(scores, truth, 0.5)
    flagged = scores > 0.5
    assert metrics["precision"] == pytest.approx(precision_score(truth, flagged))
    assert metrics["recall"] == pytest.approx(recall_score(truth, flagged))
    assert metrics["f1"] == pytest.approx(f1_score(truth, flagged))
    assert metrics["accuracy"] == pytest.approx(accuracy_score(truth, flagged))
