"""The training recipe shared by every architecture."""

from __future__ import annotations

import keras
import numpy as np

from ecgmon.progress import step


class EpochProgress(keras.callbacks.Callback):
    """Tells :mod:`ecgmon.progress` of each epoch; an early stop completes the count."""

    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.epochs, self.done = epochs, 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        step("epochs", total=self.epochs)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.done += 1
        step("epochs", advance=1)

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.done < self.epochs:  # early stopping: the rest will not run
            step("epochs", advance=self.epochs - self.done)


def fit_autoencoder(
    model: keras.Model,
    x_scaled: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    validation_fraction: float = 0.1,
) -> dict[str, list[float]]:
    """Train on scaled normal beats (n, length) to reconstruct themselves; returns the history.

    A seeded shuffle picks the validation slice; early stopping keeps the best weights.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x_scaled))
    n_val = int(round(validation_fraction * len(x_scaled))) if len(x_scaled) >= 20 else 0
    val, train = x_scaled[order[:n_val]], x_scaled[order[n_val:]]
    callbacks: list[keras.callbacks.Callback] = [EpochProgress(epochs)]
    if n_val:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=max(5, epochs // 10), restore_best_weights=True
            )
        )
    history = model.fit(
        train,
        train,
        epochs=epochs,
        batch_size=batch_size,
        validation_data=(val, val) if n_val else None,
        shuffle=True,
        verbose=0,
        callbacks=callbacks,
    )
    return {key: [float(v) for v in values] for key, values in history.history.items()}
