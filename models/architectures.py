"""Keras autoencoders, registered by name. Each builder returns a compiled model.

Contract: training is ``model.fit(x, x)`` on scaled beats ``x`` of shape (n, input_length);
``model(x, training=False)`` returns the reconstruction, same shape. Works for any input length.
"""

from __future__ import annotations

from collections.abc import Callable

import keras

Builder = Callable[[int, dict, int], keras.Model]


def _dense(input_length: int, hp: dict, seed: int) -> keras.Model:
    """The TensorFlow tutorial's dense autoencoder: 32-16-8 encoder, mirrored decoder, sigmoid."""
    init = keras.initializers.GlorotUniform(seed=seed)
    inputs = keras.Input(shape=(input_length,), name="beat")
    x = inputs
    for i, units in enumerate(hp["encoder_units"]):
        x = keras.layers.Dense(units, activation="relu", kernel_initializer=init, name=f"enc_{i}")(
            x
        )
    for i, units in enumerate(reversed(hp["encoder_units"][:-1])):
        x = keras.layers.Dense(units, activation="relu", kernel_initializer=init, name=f"dec_{i}")(
            x
        )
    outputs = keras.layers.Dense(
        input_length, activation="sigmoid", kernel_initializer=init, name="reconstruction"
    )(x)
    model = keras.Model(inputs, outputs, name="dense_autoencoder")
    model.compile(optimizer=keras.optimizers.Adam(hp["learning_rate"]), loss="mae")
    return model


ARCHITECTURES: dict[str, Builder] = {"dense": _dense}
HYPERPARAMETERS: dict[str, dict] = {
    "dense": {"encoder_units": [32, 16, 8], "learning_rate": 1e-3, "batch_size": 512},
}
DEFAULT_ARCHITECTURE = "dense"


def default_hyperparameters(name: str) -> dict:
    """A fresh copy of the measured default hyper-parameters of an architecture."""
    _check(name)
    return {
        key: (list(v) if isinstance(v, list) else v) for key, v in HYPERPARAMETERS[name].items()
    }


def build_autoencoder(
    name: str, input_length: int, hyperparameters: dict | None = None, seed: int = 0
) -> keras.Model:
    """A compiled autoencoder for beats of ``input_length`` samples."""
    _check(name)
    hp = default_hyperparameters(name) | (hyperparameters or {})
    return ARCHITECTURES[name](input_length, hp, seed)


def _check(name: str) -> None:
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; choose from {', '.join(ARCHITECTURES)}")


def mean_absolute_error(model: keras.Model, x):  # noqa: ANN001, ANN201
    """Per-beat mean absolute reconstruction error: tensor (n,) from a batch x (n, length)."""
    return keras.ops.mean(keras.ops.abs(model(x, training=False) - x), axis=1)


SCORE_FUNCTIONS: dict[str, Callable] = {}


def anomaly_score_fn(name: str) -> Callable:
    """The per-beat anomaly score of an architecture (MAE of the reconstruction by default)."""
    _check(name)
    return SCORE_FUNCTIONS.get(name, mean_absolute_error)
