"""An autoencoder anomaly detector with a small life cycle: fit, calibrate, score, save, load."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ecgmon.models.autoencoder.calibration import CALIBRATION_FOLDS, CrossFit, cross_fitted_losses
from ecgmon.models.autoencoder.preprocessing import MinMaxScaler
from ecgmon.models.thresholds import Threshold, compute_threshold

if TYPE_CHECKING:  # imported late: TensorFlow loads when a model is first used
    import tensorflow as tf

MODEL_FILE = "model.keras"
METADATA_FILE = "metadata.json"
#: How models saved before cross-fitting were calibrated (their metadata does not say).
HOLDOUT_CALIBRATION = {"procedure": "holdout", "fraction": 0.2}
SCORE_CHUNK = 16_384  # beats per compiled call: small activations, same speed (docs/performance.md)


def resolve_architecture(name: str | None) -> str:
    """``name``, or the architecture measured best when it is None."""
    from ecgmon.models.autoencoder.architectures import DEFAULT_ARCHITECTURE

    return name or DEFAULT_ARCHITECTURE


def fingerprint(signals: np.ndarray) -> str:
    """sha256 of the training beats (n, length) as float32, identifying the training data."""
    data = np.ascontiguousarray(signals, dtype=np.float32)
    digest = hashlib.sha256(str(data.shape).encode())
    digest.update(data.tobytes())
    return digest.hexdigest()


def split_calibration(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (train, held-out) index split of n normal beats; the held-out part never trains."""
    order = np.random.default_rng(seed + 7919).permutation(n)
    n_cal = max(2, int(round(fraction * n)))
    return np.sort(order[n_cal:]), np.sort(order[:n_cal])


@dataclass
class AutoencoderDetector:
    """A trained autoencoder, its fitted scaler and the out-of-fold losses of its normal beats.

    ``calibration`` says how ``calibration_losses`` were produced (procedure, folds, seed, n).
    """

    architecture: str
    hyperparameters: dict
    input_length: int
    scaler: MinMaxScaler
    model: object
    calibration_losses: np.ndarray
    history: dict[str, list[float]] = field(default_factory=dict)
    train_size: int = 0
    train_fingerprint: str = ""
    epochs: int = 0
    seed: int = 0
    training_seconds: float = 0.0
    calibration: dict = field(default_factory=dict)
    _score_fn: object = field(default=None, repr=False)

    @classmethod
    def fit(
        cls,
        normal_signals: np.ndarray,
        *,
        architecture: str,
        epochs: int,
        seed: int = 0,
        hyperparameters: dict | None = None,
        folds: int = CALIBRATION_FOLDS,
        calibration: CrossFit | None = None,
    ) -> AutoencoderDetector:
        """Train on every normal beat (n, length); calibrate on out-of-fold losses.

        ``folds`` models, each trained on the other folds, give every normal beat a loss from a
        model that never saw it (``calibration.py``); the final model then trains on all of
        them. ``calibration``: out-of-fold losses already computed for these beats, seed and
        recipe (model selection computes them), so the fold models are not trained twice.
        """
        if len(normal_signals) < 10:
            raise ValueError(f"need at least 10 normal beats to train, got {len(normal_signals)}")
        started = time.perf_counter()
        from ecgmon.models.autoencoder.architectures import default_hyperparameters

        hp = default_hyperparameters(architecture) | (hyperparameters or {})
        if calibration is None:
            calibration = cross_fitted_losses(
                normal_signals,
                lambda x, fold_seed: cls.train(x, architecture, hp, epochs, fold_seed),
                folds=folds,
                seed=seed,
            )
        elif calibration.losses.shape != (len(normal_signals),):
            raise ValueError("the given out-of-fold losses are not those of these beats")
        detector = cls.train(normal_signals, architecture, hp, epochs, seed)
        detector.calibration_losses = np.asarray(calibration.losses, dtype=np.float64)
        detector.calibration = calibration.description()
        detector.train_fingerprint = fingerprint(normal_signals)
        detector.training_seconds = time.perf_counter() - started
        return detector

    @classmethod
    def train(
        cls, normal_signals: np.ndarray, architecture: str, hp: dict, epochs: int, seed: int
    ) -> AutoencoderDetector:
        """One seeded training run on beats (n, length), with no calibration losses yet."""
        # Keras loads here, not at import: flow modules import this one (see PREFECT.md)
        from ecgmon.models.autoencoder.architectures import build_autoencoder
        from ecgmon.models.autoencoder.seeding import seed_everything
        from ecgmon.models.autoencoder.training import fit_autoencoder

        seed_everything(seed)
        scaler = MinMaxScaler.fit(normal_signals)
        length = normal_signals.shape[1]
        model = build_autoencoder(architecture, length, hp, seed)
        history = fit_autoencoder(
            model,
            scaler.transform(normal_signals),
            epochs=epochs,
            batch_size=int(hp.get("batch_size", 512)),
            seed=seed,
        )
        detector = cls(architecture, hp, length, scaler, model, np.empty(0), history)
        detector.train_size, detector.epochs, detector.seed = len(normal_signals), epochs, seed
        return detector

    def reconstruct(self, signals: np.ndarray) -> np.ndarray:
        """Reconstructions (n, length) in the scaled space of the model."""
        x = self.scaler.transform(self._check_length(signals))
        return np.asarray(self.model.predict(x, batch_size=4096, verbose=0))

    def losses(self, signals: np.ndarray) -> np.ndarray:
        """Per-beat anomaly score (n,) float64, through one compiled function, in chunks.

        Each chunk is scaled into one reused buffer: no batch-sized scaled copy, whose fresh pages
        would fault on every batch (docs/performance.md, "Memory")."""
        signals = self._check_length(signals)
        fn = self._compiled()
        buffer = np.empty((min(len(signals), SCORE_CHUNK), self.input_length), np.float32)
        out = []
        for i in range(0, len(signals), SCORE_CHUNK):
            part = signals[i : i + SCORE_CHUNK]
            out.append(np.asarray(fn(self.scaler.transform_into(part, buffer[: len(part)]))))
        return np.concatenate(out).astype(np.float64) if out else np.empty(0)

    def threshold(self, method: str | None = None, param: float | None = None) -> Threshold:
        """A threshold from the out-of-fold normal losses by a named rule."""
        return compute_threshold(self.calibration_losses, method, param)

    def _compiled(self) -> Callable[[np.ndarray], tf.Tensor]:
        if self._score_fn is None:
            import tensorflow as tf

            from ecgmon.models.autoencoder.architectures import anomaly_score_fn

            score = anomaly_score_fn(self.architecture)
            model = self.model
            spec = tf.TensorSpec([None, self.input_length], tf.float32)
            self._score_fn = tf.function(lambda x: score(model, x), input_signature=[spec])
        return self._score_fn

    def _check_length(self, signals: np.ndarray) -> np.ndarray:
        if signals.ndim != 2 or signals.shape[1] != self.input_length:
            raise ValueError(
                f"beats of shape {signals.shape} do not match the model's input length "
                f"{self.input_length}"
            )
        return signals

    def metadata(self) -> dict:
        """Everything needed to rebuild scoring besides the weights (JSON-ready)."""
        return {
            "architecture": self.architecture,
            "hyperparameters": self.hyperparameters,
            "input_length": self.input_length,
            "preprocessing": self.scaler.to_dict(),
            "calibration_losses": [float(v) for v in self.calibration_losses],
            "calibration": self.calibration,
            "train_size": self.train_size,
            "train_fingerprint": self.train_fingerprint,
            "epochs": self.epochs,
            "seed": self.seed,
            "training_seconds": self.training_seconds,
        }

    def save(self, folder: Path) -> list[Path]:
        """Write ``model.keras`` and ``metadata.json`` into ``folder``; returns both paths."""
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save(folder / MODEL_FILE)
        (folder / METADATA_FILE).write_text(json.dumps(self.metadata(), indent=2, sort_keys=True))
        return [folder / MODEL_FILE, folder / METADATA_FILE]

    @classmethod
    def load(cls, folder: Path) -> AutoencoderDetector:
        """Load a saved detector; Keras safe mode, nothing unpickled."""
        import keras

        import ecgmon.models.autoencoder.architectures  # noqa: F401  (registers custom layers before loading)

        meta = json.loads((folder / METADATA_FILE).read_text())
        model = keras.saving.load_model(folder / MODEL_FILE, safe_mode=True, compile=False)
        detector = cls(
            meta["architecture"],
            meta["hyperparameters"],
            int(meta["input_length"]),
            MinMaxScaler.from_dict(meta["preprocessing"]),
            model,
            np.asarray(meta["calibration_losses"], dtype=np.float64),
        )
        detector.train_size, detector.epochs = meta["train_size"], meta["epochs"]
        detector.train_fingerprint, detector.seed = meta["train_fingerprint"], meta["seed"]
        detector.training_seconds = meta.get("training_seconds", 0.0)
        detector.calibration = meta.get("calibration", HOLDOUT_CALIBRATION)
        return detector
