"""The one seeding function: every random thing in training goes through it."""

from __future__ import annotations

import os
import random

import numpy as np


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, numpy and Keras/TensorFlow; returns a numpy Generator for the caller's draws."""
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    import keras

    keras.utils.set_random_seed(seed)
    return np.random.default_rng(seed)
