"""The selection protocol on hand-made out-of-fold losses: exact figures, no Keras."""

from __future__ import annotations

import numpy as np
import pytest

from ecgmon.models.autoencoder.calibration import CrossFit
from ecgmon.models.evaluation.selection import rule_figures


def _crossfit() -> CrossFit:
    """Two folds; normals 0.1..0.4 (well apart from) abnormals at 1.0 and 2.0."""
    return CrossFit(
        losses=np.array([0.1, 0.2, 0.3, 0.4]),
        folds=np.array([0, 0, 1, 1]),
        n_folds=2,
        seed=0,
        extra_losses=np.array([1.0, 2.0]),
        extra_folds=np.array([0, 1]),
    )


def test_each_fold_is_judged_by_a_threshold_from_the_other_folds_only() -> None:
    # quantile 0.5 of fold 1's normals (0.3, 0.4) = 0.35 flags nothing normal in fold 0;
    # of fold 0's normals (0.1, 0.2) = 0.15 flags 0.3 and 0.4 of fold 1 (false-alarm rate 1)
    figures = rule_figures(_crossfit(), "dense", "quantile", 0.5)
    assert figures.mean_false_alarm_rate == pytest.approx(0.5)
    assert figures.worst_f1 == pytest.approx(2 * (1 / 3) / (1 / 3 + 1))
    assert figures.mean_f1 == pytest.approx((1.0 + 0.5) / 2)
    assert figures.auroc == pytest.approx(1.0)


def test_a_threshold_above_every_abnormal_gives_no_f1() -> None:
    figures = rule_figures(_crossfit(), "dense", "mean_std", 100.0)
    assert figures.mean_f1 == 0.0 and figures.mean_false_alarm_rate == 0.0
