"""Per-patient thresholds on hand-made losses, and the scorer's choice of threshold per patient."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecgmon.models.patient.thresholds import patient_threshold, trim_outliers
from ecgmon.models.scoring import Judge, score_beats
from ecgmon.records import ValidBeats


def test_trim_drops_only_far_outliers() -> None:
    losses = np.r_[np.linspace(1.0, 2.0, 21), 50.0]  # median 1.525, MAD 0.275
    assert trim_outliers(losses).tolist() == np.linspace(1.0, 2.0, 21).tolist()
    assert trim_outliers(np.ones(5)).size == 5  # no spread: nothing to judge by


def test_patient_threshold_applies_the_population_rule_to_kept_losses() -> None:
    losses = np.r_[np.tile([1.0, 3.0], 20), 100.0]
    threshold = patient_threshold(losses, "mean_std", {"k": 2.0})
    assert threshold.value == pytest.approx(2.0 + 2.0 * 1.0)  # mean 2, std 1 without the 100
    assert threshold.loss_stats["n_baseline"] == 41 and threshold.loss_stats["n_kept"] == 40
    confirmed = patient_threshold(losses, "mean_std", {"k": 2.0}, trim=False)
    assert confirmed.value > threshold.value
    with pytest.raises(ValueError, match="at least 30 beats"):
        patient_threshold(np.ones(10), "mean_std", {"k": 2.0})


class _FixedLoss:
    input_length = 3

    def losses(self, signals: np.ndarray) -> np.ndarray:
        return signals[:, 0].astype(np.float64)


def test_scorer_judges_each_patients_beats_by_its_own_threshold() -> None:
    beats = ValidBeats(
        record_id=np.array(["a1", "b1", "a2", "c1"], dtype=object),
        recorded_at=pd.DatetimeIndex(pd.to_datetime([0, 1, 2, 3], unit="s", utc=True)),
        patient_id=np.array(["a", "b", "a", None], dtype=object),
        signals=np.array([[2.0, 0, 0], [2.0, 0, 0], [4.0, 0, 0], [0.5, 0, 0]], np.float32),
    )
    judge = Judge(1, _FixedLoss(), 7, 1.0, patients={"a": (9, 3.0)})
    scored = score_beats(judge, beats)
    assert scored.is_anomaly.tolist() == [False, True, True, False]
    assert scored.threshold.tolist() == [3.0, 1.0, 3.0, 1.0]
    assert scored.threshold_version.tolist() == [9, 7, 9, 7]
    assert scored.baseline.tolist() == ["patient:a:t9", "population", "patient:a:t9", "population"]
