"""Per-patient baselines (models/patient/baseline.py) on tiny hand-made beats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ecgmon.models.patient.baseline import (
    PatientBaseline,
    ShapeModel,
    fit_patient_baseline,
    robust_stats,
)


def normal_beats(n: int, seed: int = 0) -> np.ndarray:
    """n noisy copies of one bump, (n, 32)."""
    t = np.linspace(-1, 1, 32)
    rng = np.random.default_rng(seed)
    return np.exp(-((t / 0.2) ** 2)) * rng.normal(1, 0.05, (n, 1)) + rng.normal(0, 0.01, (n, 32))


def test_shape_model_reconstructs_its_own_subspace_exactly() -> None:
    beats = np.array([[1.0, 0.0, 0.0], [2.0, 0.0, 0.0], [3.0, 0.0, 0.0]])
    model = ShapeModel.fit(beats)
    assert model.basis.shape == (1, 3)
    np.testing.assert_allclose(model.reconstruct(np.array([[7.0, 0.0, 0.0]])), [[7.0, 0.0, 0.0]])
    assert model.loss(np.array([[2.0, 1.0, 0.0]]))[0] == pytest.approx(1 / 3)


def test_robust_stats() -> None:
    assert robust_stats(np.array([1.0, 2.0, 3.0, 100.0])) == pytest.approx((2.5, 1.4826))


def test_wide_beat_and_premature_beat_score_above_threshold() -> None:
    beats, rr = normal_beats(200), np.ones((200, 2))
    rr += np.random.default_rng(1).normal(0, 0.03, rr.shape)
    baseline = fit_patient_baseline("p1", beats, rr, source="test", seed=0)
    wide = np.exp(-((np.linspace(-1, 1, 32) / 0.5) ** 2))[None]
    normal = normal_beats(1, seed=9)
    flags = baseline.flag(np.vstack([normal, wide, normal]), np.array([[1, 1], [1, 1], [0.6, 1.4]]))
    assert flags.tolist() == [False, True, True]
    assert baseline.summary()["threshold"]["method"] == "tail"


def test_uncurated_baseline_trims_and_small_baseline_is_refused() -> None:
    beats, rr = normal_beats(200), np.ones((200, 2))
    trimmed = fit_patient_baseline("p1", beats, rr, source="strip", curated=False)
    assert trimmed.n_beats == 180
    with pytest.raises(ValueError, match="99 baseline beats"):
        fit_patient_baseline("p1", beats[:99], rr[:99], source="strip")


def test_baseline_saves_and_loads_to_the_same_scores(tmp_path: Path) -> None:
    beats, rr = normal_beats(150), np.ones((150, 2))
    baseline = fit_patient_baseline("p7", beats, rr, source="first 10 min")
    baseline.save(tmp_path)
    loaded = PatientBaseline.load(tmp_path)
    assert loaded.summary() == baseline.summary()
    np.testing.assert_array_equal(loaded.score(beats, rr), baseline.score(beats, rr))


def test_tail_threshold_extrapolates_an_exponential_tail() -> None:
    from ecgmon.models.thresholds import tail_threshold

    scores = np.random.default_rng(0).exponential(2.0, 200_000)
    # exponential with scale 2: P(score > t) = exp(-t / 2), so alpha = 0.001 <=> t = 2 ln 1000
    assert tail_threshold(scores, alpha=0.001) == pytest.approx(2.0 * np.log(1000.0), rel=0.02)
    with pytest.raises(ValueError, match="alpha"):
        tail_threshold(scores, alpha=0.2)


def test_classify_calls_a_wide_beat_v_and_an_early_normal_beat_s() -> None:
    beats, rr = normal_beats(200), np.ones((200, 2))
    rr += np.random.default_rng(1).normal(0, 0.03, rr.shape)
    baseline = fit_patient_baseline("p1", beats, rr, source="test", seed=0)
    wide = np.exp(-((np.linspace(-1, 1, 32) / 0.5) ** 2))[None]
    normal = normal_beats(1, seed=9)
    calls = baseline.classify(
        np.vstack([normal, wide, normal]), np.array([[1, 1], [1, 1], [0.6, 1.4]])
    )
    assert calls.tolist() == ["N", "V", "S"]
