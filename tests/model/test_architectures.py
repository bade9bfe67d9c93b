"""Every registered autoencoder trains, reconstructs any input length and survives save/load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ecgmon.models.autoencoder.architectures import (
    ARCHITECTURES,
    DEFAULT_ARCHITECTURE,
    anomaly_score_fn,
    build_autoencoder,
    default_hyperparameters,
)
from tests.shared_data import missing_reason, shared_dataset

LENGTHS = (96, 187)


def _beats(n: int, length: int, seed: int = 0) -> np.ndarray:
    """Tiny scaled beats (n, length) in [0, 1]: a bump on a baseline plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, length, dtype=np.float32)
    centres = rng.uniform(0.4, 0.6, size=(n, 1)).astype(np.float32)
    bump = np.exp(-((t - centres) ** 2) / 0.002)
    return np.clip(0.3 + 0.5 * bump + 0.02 * rng.standard_normal((n, length)), 0, 1).astype(
        np.float32
    )


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_trains_and_round_trips_through_safe_mode(name: str, length: int, tmp_path: Path) -> None:
    import keras

    x = _beats(16, length)
    model = build_autoencoder(name, length, {"batch_size": 8}, seed=3)
    history = model.fit(x, x, epochs=2, batch_size=8, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    out = np.asarray(model(x, training=False))
    assert out.shape == (16, length)
    assert np.array_equal(out, np.asarray(model(x, training=False))), "inference must not be random"

    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)
    np.testing.assert_array_equal(np.asarray(loaded(x, training=False)), out)


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_anomaly_score_compiles_in_one_tf_function(name: str) -> None:
    import tensorflow as tf

    model = build_autoencoder(name, 96, seed=0)
    score = anomaly_score_fn(name)
    fn = tf.function(lambda x: score(model, x), input_signature=[tf.TensorSpec([None, 96])])
    losses = np.asarray(fn(_beats(5, 96)))
    assert losses.shape == (5,)
    assert np.all(np.isfinite(losses)) and np.all(losses >= 0)


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_same_seed_builds_the_same_weights(name: str) -> None:
    first = build_autoencoder(name, 96, seed=5).get_weights()
    second = build_autoencoder(name, 96, seed=5).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


def test_registry_names_and_defaults() -> None:
    assert DEFAULT_ARCHITECTURE in ARCHITECTURES
    assert {"dense", "conv_denoising", "vae"} <= set(ARCHITECTURES)
    hp = default_hyperparameters(DEFAULT_ARCHITECTURE)
    hp["batch_size"] = -1
    assert default_hyperparameters(DEFAULT_ARCHITECTURE)["batch_size"] != -1, "must be a copy"
    with pytest.raises(ValueError, match="unknown architecture"):
        build_autoencoder("no_such_model", 96)


@pytest.mark.slow
@pytest.mark.skipif(shared_dataset("ecg5000") is None, reason=missing_reason("ecg5000"))
def test_default_architecture_quality_on_ecg5000() -> None:
    from ecgmon.models.evaluation.labelled import evaluate

    summary, _ = evaluate(shared_dataset("ecg5000"), split="tf", seeds=1)
    assert summary["auroc"] >= 0.98
    assert summary["f1"] >= 0.95
    assert summary["false_alarm_rate"] <= 0.05


def test_losses_in_chunks_match_one_pass_over_the_scaled_beats(tiny_detector) -> None:
    """Chunked scoring through one reused buffer gives the loss of each beat on its own."""
    from ecgmon.models.autoencoder.detector import SCORE_CHUNK

    rng = np.random.default_rng(3)
    beats = rng.normal(0, 1, (SCORE_CHUNK + 37, tiny_detector.input_length)).astype(np.float32)
    scaled = tiny_detector.scaler.transform(beats)
    expected = np.mean(np.abs(np.asarray(tiny_detector.model(scaled)) - scaled), axis=1)
    losses = tiny_detector.losses(beats)
    assert losses.shape == (len(beats),)
    np.testing.assert_allclose(losses, expected, rtol=1e-5)
    np.testing.assert_array_equal(losses[-37:], tiny_detector.losses(beats[-37:]))
