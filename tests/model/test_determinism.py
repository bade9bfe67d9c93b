"""Same beats and seed give bit-identical detectors; thresholds come from out-of-fold losses."""

from __future__ import annotations

import numpy as np
import pytest

from ecgmon.models.autoencoder.detector import AutoencoderDetector


@pytest.fixture(scope="module")
def normal_beats(synthetic_set) -> np.ndarray:
    return synthetic_set.signals[synthetic_set.normal_mask()][:150]


def _fit(normal: np.ndarray, seed: int = 1) -> AutoencoderDetector:
    return AutoencoderDetector.fit(normal, architecture="dense", epochs=3, seed=seed, folds=3)


def test_same_seed_gives_bit_identical_weights_losses_and_threshold(normal_beats) -> None:
    first, second = _fit(normal_beats), _fit(normal_beats)
    for a, b in zip(first.model.get_weights(), second.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(first.calibration_losses, second.calibration_losses)
    np.testing.assert_array_equal(first.losses(normal_beats), second.losses(normal_beats))
    assert first.threshold().value == second.threshold().value
    assert first.history == second.history


def test_another_seed_gives_another_model(normal_beats) -> None:
    first, other = _fit(normal_beats), _fit(normal_beats, seed=2)
    assert not np.array_equal(first.calibration_losses, other.calibration_losses)


def test_every_normal_beat_is_calibrated_by_a_model_that_never_trained_on_it(normal_beats) -> None:
    """The final model trains on all beats; each calibration loss is out-of-fold."""
    detector = _fit(normal_beats)
    assert detector.train_size == len(normal_beats), "the final model trains on every normal"
    assert detector.calibration_losses.shape == (len(normal_beats),)
    assert detector.calibration["procedure"] == "cross_fit"
    assert detector.calibration["folds"] == 3 and sum(detector.calibration["fold_sizes"]) == 150
    in_sample = detector.losses(normal_beats)
    assert not np.allclose(detector.calibration_losses, in_sample), "not the final model's losses"
    # out-of-fold losses are, on the whole, higher than the losses of beats a model trained on
    assert np.mean(detector.calibration_losses) > np.mean(in_sample)


def test_calibration_survives_save_and_load(normal_beats, tmp_path) -> None:
    detector = _fit(normal_beats)
    detector.save(tmp_path)
    loaded = AutoencoderDetector.load(tmp_path)
    assert loaded.calibration == detector.calibration
    np.testing.assert_array_equal(loaded.calibration_losses, detector.calibration_losses)
