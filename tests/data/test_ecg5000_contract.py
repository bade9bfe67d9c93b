"""Data contract of the shared UCR ECG5000 copy: shape, classes and values the project relies on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ecgmon.sources.datasets import LabelledBeats, read_training_data, read_ucr_pair


@pytest.fixture(scope="module")
def ecg5000(ecg5000_dir: Path) -> tuple[LabelledBeats, LabelledBeats]:
    return read_ucr_pair(ecg5000_dir)


def test_split_sizes_and_length(ecg5000: tuple[LabelledBeats, LabelledBeats]) -> None:
    train, test = ecg5000
    assert train.signals.shape == (500, 140)
    assert test.signals.shape == (4500, 140)
    assert train.input_length == test.input_length == 140


def test_classes_and_normal_count(ecg5000: tuple[LabelledBeats, LabelledBeats]) -> None:
    pooled = ecg5000[0].concat(ecg5000[1])
    assert pooled.labels is not None
    assert set(np.unique(pooled.labels)) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert int(pooled.normal_mask().sum()) == 2919
    counts = {label: int((pooled.labels == label).sum()) for label in (2.0, 3.0, 4.0, 5.0)}
    assert counts == {2.0: 1767, 3.0: 96, 4.0: 194, 5.0: 24}


def test_values_finite_and_z_normalised(ecg5000: tuple[LabelledBeats, LabelledBeats]) -> None:
    for beats in ecg5000:
        assert beats.signals.dtype == np.float32
        assert np.isfinite(beats.signals).all()
        np.testing.assert_allclose(beats.signals.mean(axis=1), 0.0, atol=1e-3)
        np.testing.assert_allclose(beats.signals.std(axis=1), 1.0, atol=0.02)


def test_training_data_of_the_folder_is_the_train_file(ecg5000_dir: Path) -> None:
    beats = read_training_data(ecg5000_dir)
    assert beats.signals.shape == (500, 140)
    assert beats.source.endswith("ECG5000_TRAIN.tsv")
