"""The one seeding function: every random thing in training goes through it."""

from __future__ import annotations

import os
import random

import numpy as np


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, numpy and Keras/TensorFlow and make TensorFlow's ops deterministic.

    Same inputs and seed then give bit-identical weights, losses and thresholds on one machine
    (tests/model/test_determinism.py). Other processors may pick other CPU kernels and differ in
    the last bits, which is why published figures are reported over seeds. Returns a numpy
    Generator for the caller's own draws.
    """
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    return np.random.default_rng(seed)
