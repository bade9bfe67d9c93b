"""The morphology and rhythm channels of a patient baseline (models/patient/channels.py and
baseline.py) on hand-made beats whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from ecgmon.models.patient import channels
from ecgmon.models.patient.baseline import MIN_CHANNEL_Z, fit_patient_baseline

T = np.linspace(-1, 1, 32)


def bumps(n: int, width: float = 0.2, seed: int = 0) -> np.ndarray:
    """n noisy copies of one bump (n, 32)."""
    rng = np.random.default_rng(seed)
    return np.exp(-((T / width) ** 2)) * rng.normal(1, 0.05, (n, 1)) + rng.normal(0, 0.01, (n, 32))


def sinus_rr(n: int, seed: int = 1) -> np.ndarray:
    """RR context (n, 2) of a sinus rhythm: 1 +- 1 %."""
    return 1.0 + np.random.default_rng(seed).normal(0, 0.01, (n, 2))


def fibrillation_rr(n: int, seed: int = 2) -> np.ndarray:
    """RR context (n, 2) of an irregularly irregular rhythm: uniform 0.6..1.4 of the median."""
    rr = np.random.default_rng(seed).uniform(0.6, 1.4, n + 1)
    return np.c_[rr[:-1], rr[1:]]


def test_repeating_share_tells_ectopy_from_fibrillation() -> None:
    bigeminy = np.tile([0.7, 1.3], 40)  # short coupling, long pause: repeats at lag 2
    assert not channels.irregular(bigeminy).any()
    sinus_with_premature = np.ones(80)
    sinus_with_premature[[20, 50]] = 0.6
    assert not channels.irregular(sinus_with_premature).any()
    assert channels.irregular(fibrillation_rr(200)[:, 0]).mean() > 0.9


def test_two_channels_split_the_budget_and_call_v_and_s() -> None:
    baseline = fit_patient_baseline("p1", bumps(300), sinus_rr(300), source="test", alpha=0.01)
    assert baseline.threshold.value == 1.0 and baseline.threshold.params == {"alpha": 0.01}
    shape_limit, rhythm_limit = baseline.channel_thresholds
    assert min(shape_limit, rhythm_limit) >= MIN_CHANNEL_Z
    beats, rr = bumps(40, seed=5), sinus_rr(40, seed=6)
    beats[10] = np.exp(-((T / 0.6) ** 2))  # wide: ventricular
    rr[25] = [0.6, 1.4]  # early with a pause, normal shape: supraventricular
    calls = baseline.classify(beats, rr)
    assert calls[10] == "V" and calls[25] == "S"
    assert (np.delete(calls, [10, 25]) == "N").all()
    flags = baseline.flag(beats, rr)
    np.testing.assert_array_equal(flags, calls != "N")


def test_a_sustained_shape_change_is_not_flagged_beat_by_beat() -> None:
    baseline = fit_patient_baseline("p1", bumps(300), sinus_rr(300), source="test")
    changed = bumps(60, width=0.3, seed=7)  # every beat wider than the baseline's, alike
    changed[30] = np.exp(-((T / 0.7) ** 2))  # one beat unlike its neighbours
    calls = baseline.classify(changed, sinus_rr(60, seed=8))
    assert calls[30] == "V"
    assert (np.delete(calls, 30) == "N").mean() > 0.95


def test_fibrillation_gets_no_premature_calls() -> None:
    baseline = fit_patient_baseline("p1", bumps(300), sinus_rr(300), source="test")
    calls = baseline.classify(bumps(200, seed=3), fibrillation_rr(200))
    assert (calls == "S").mean() < 0.05


def test_baselines_saved_before_the_channels_keep_their_summed_score(tmp_path) -> None:
    baseline = fit_patient_baseline(
        "p1", bumps(200), sinus_rr(200), source="t", rule="mean_std_log1p"
    )
    assert baseline.channel_thresholds is None
    baseline.save(tmp_path)
    from ecgmon.models.patient.baseline import PatientBaseline

    loaded = PatientBaseline.load(tmp_path)
    beats, rr = bumps(10, seed=4), sinus_rr(10, seed=4)
    np.testing.assert_array_equal(loaded.score(beats, rr), baseline.score(beats, rr))
    assert loaded.threshold.value == pytest.approx(baseline.threshold.value)


def test_a_few_beats_are_not_called_irregular() -> None:
    # a batch of two beats, the second premature: too few intervals to judge the rhythm
    assert not channels.irregular(np.array([1.0, 0.6])).any()
    baseline = fit_patient_baseline("p1", bumps(300), sinus_rr(300), source="test")
    calls = baseline.classify(bumps(2, seed=4), np.array([[1.0, 1.0], [0.6, 1.4]]))
    assert calls.tolist() == ["N", "S"]


SECONDS = np.arange(140) / 200.0 - 0.25  # a 140-sample beat: 250 ms before to 450 ms after R


def wave(centre: float, width: float) -> np.ndarray:
    return np.exp(-(((SECONDS - centre) / width) ** 2))


def sinus_beats(n: int, seed: int) -> np.ndarray:
    """n beats (n, 140): P wave, narrow QRS, T wave, with a little noise."""
    rng = np.random.default_rng(seed)
    beat = 0.2 * wave(-0.18, 0.03) + wave(0.0, 0.015) + 0.3 * wave(0.22, 0.05)
    return beat * rng.normal(1, 0.03, (n, 1)) + rng.normal(0, 0.01, (n, 140))


def test_atrial_waves_outside_the_ventricular_complex_are_not_called_ventricular() -> None:
    baseline = fit_patient_baseline("p1", sinus_beats(300, 0), sinus_rr(300), source="test")
    rng = np.random.default_rng(9)
    beats = sinus_beats(60, 10)
    # flutter-like atrial waves where the beat's own P wave was, and the next beat's P wave
    # arriving early at a fast, varying rate: neither belongs to the ventricular complex
    beats -= 0.2 * wave(-0.18, 0.03)
    beats += (
        0.4
        * np.sin(2 * np.pi * 5 * SECONDS + rng.uniform(0, 2 * np.pi, (60, 1)))
        * (SECONDS < -0.16)
    )
    beats += 0.5 * wave(rng.uniform(0.36, 0.42, (60, 1)), 0.03)
    beats[30] += 0.8 * wave(0.03, 0.06)  # one wide QRS: ventricular
    calls = baseline.classify(beats, sinus_rr(60, seed=11))
    assert calls[30] == "V"
    assert (np.delete(calls, 30) == "N").mean() > 0.95


def test_baselines_saved_before_the_ventricular_window_judge_the_whole_beat(tmp_path) -> None:
    from dataclasses import replace

    from ecgmon.models.patient.baseline import PatientBaseline

    fitted = fit_patient_baseline("p1", sinus_beats(300, 0), sinus_rr(300), source="test")
    older = replace(fitted, ventricular=None, ventricular_stats=None)
    older.save(tmp_path)
    with np.load(tmp_path / "baseline.npz") as arrays:
        assert "v_basis" not in arrays
    loaded = PatientBaseline.load(tmp_path)
    assert loaded.ventricular is None
    beats, rr = sinus_beats(20, 12), sinus_rr(20, seed=12)
    np.testing.assert_array_equal(loaded.score(beats, rr), older.score(beats, rr))
    whole = channels.morphology_score(
        fitted.shape.loss(beats), channels.local_distance(beats), fitted.shape_stats,
        fitted.local_stats,
    )  # fmt: skip
    np.testing.assert_array_equal(loaded.channels(beats, rr)[0], whole)
