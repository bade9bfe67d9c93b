"""Drift figures: PSI by hand on tiny arrays, exact KS against scipy, chunked = one shot."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import ks_2samp

from ecgmon.drift import DriftAccumulator, bin_counts, drift_report, psi_from_counts, quantile_edges


def test_quantile_edges_and_bins_by_hand() -> None:
    edges = quantile_edges(np.arange(1.0, 11.0), bins=2)
    assert edges.tolist() == [5.5]
    assert bin_counts(np.array([1.0, 5.5, 6.0, 99.0]), edges).tolist() == [2, 2]


def test_psi_by_hand() -> None:
    # shares r = (0.5, 0.5), o = (0.8, 0.2): 0.3 ln(1.6) + (-0.3) ln(0.4)
    expected = 0.3 * math.log(1.6) - 0.3 * math.log(0.4)
    assert psi_from_counts(np.array([5, 5]), np.array([8, 2])) == pytest.approx(expected)
    assert psi_from_counts(np.array([5, 5]), np.array([50, 50])) == 0.0


def test_same_distribution_is_stable_and_a_shift_is_large() -> None:
    rng = np.random.default_rng(0)
    ref = rng.gamma(2.0, 0.01, 2000)
    same = drift_report(ref, rng.gamma(2.0, 0.01, 5000))
    moved = drift_report(ref, rng.gamma(2.0, 0.02, 5000))
    assert same["psi"] < 0.02 and moved["psi"] > 0.25
    assert same["ks"] < 0.05 < moved["ks"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ks_is_exact_including_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref = rng.integers(0, 20, 300).astype(float)  # many ties
    obs = rng.integers(3, 25, 700).astype(float)
    assert drift_report(ref, obs)["ks"] == pytest.approx(ks_2samp(ref, obs).statistic)


def test_chunks_give_the_same_report_and_ignore_non_finite() -> None:
    rng = np.random.default_rng(4)
    ref, obs = rng.normal(size=500), rng.normal(0.3, 1, 1000)
    acc = DriftAccumulator(ref)
    for chunk in np.array_split(np.append(obs, [np.nan, np.inf]), 7):
        acc.add(chunk)
    assert acc.report() == drift_report(ref, obs)
    assert acc.report()["n_observed"] == 1000


def test_empty_run_and_empty_reference() -> None:
    report = drift_report(np.array([1.0, 2.0]), np.array([]))
    assert report["n_observed"] == 0 and math.isnan(report["psi"]) and math.isnan(report["ks"])
    with pytest.raises(ValueError, match="no losses"):
        DriftAccumulator(np.array([]))


def test_states_of_batches_merge_into_the_one_shot_report() -> None:
    rng = np.random.default_rng(5)
    ref, obs = rng.gamma(2.0, 0.01, 800), rng.gamma(2.0, 0.015, 3000)
    total = DriftAccumulator(ref)
    for chunk in np.array_split(obs, 4):  # each batch counted alone, its state stored as JSON
        batch = DriftAccumulator(ref)
        batch.add(chunk)
        total.merge(json.loads(json.dumps(batch.state())))
    assert total.report() == drift_report(ref, obs)
    with pytest.raises(ValueError, match="another reference"):
        total.merge(DriftAccumulator(ref[:10]).state())
