"""Threshold rules on tiny hand-made loss vectors with exact answers."""

import numpy as np
import pytest

from ecgmon.models.thresholds import (
    compute_threshold,
    fpr_threshold,
    mean_std_threshold,
    quantile_threshold,
)

LOSSES = np.array([1.0, 2.0, 3.0, 4.0, 5.0])  # mean 3, population std sqrt(2)


def test_mean_std_is_mean_plus_k_std():
    assert mean_std_threshold(LOSSES, 1.0) == pytest.approx(3.0 + np.sqrt(2.0))
    assert mean_std_threshold(LOSSES, 0.0) == pytest.approx(3.0)


def test_quantile_and_fpr_agree():
    assert quantile_threshold(LOSSES, 0.5) == pytest.approx(3.0)
    assert fpr_threshold(LOSSES, 0.25) == pytest.approx(quantile_threshold(LOSSES, 0.75))


def test_compute_threshold_records_rule_and_stats():
    t = compute_threshold(LOSSES, "quantile", 0.75)
    assert (t.method, t.params, t.value) == ("quantile", {"q": 0.75}, pytest.approx(4.0))
    assert t.loss_stats["n"] == 5 and t.loss_stats["mean"] == pytest.approx(3.0)


@pytest.mark.parametrize(("method", "param"), [("quantile", 1.5), ("fpr", 0.0), ("nope", None)])
def test_bad_rules_are_refused(method, param):
    with pytest.raises(ValueError):
        compute_threshold(LOSSES, method, param)
