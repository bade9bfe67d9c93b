"""The synthetic heartbeat generator: shape, labels, determinism and the morphology of each type."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ecgmon.errors import ConfigurationError, DataFormatError
from ecgmon.sources.datasets import LabelledBeats, read_beats
from ecgmon.synthetic import ARTEFACT, NORMAL, PVC, ST_T_CHANGE, synthetic_beats, write_ucr


@pytest.fixture(scope="module")
def beats() -> LabelledBeats:
    return synthetic_beats(600, length=140, anomaly_fraction=0.3, seed=7)


def mean_beat(beats: LabelledBeats, label: float) -> np.ndarray:
    assert beats.labels is not None
    return beats.signals[beats.labels == label].mean(axis=0)


def test_shape_dtype_and_label_counts() -> None:
    beats = synthetic_beats(100, length=140, anomaly_fraction=0.1, seed=0)
    assert beats.signals.shape == (100, 140) and beats.signals.dtype == np.float32
    assert beats.labels is not None and beats.labels.dtype == np.float64
    values, counts = np.unique(beats.labels, return_counts=True)
    assert dict(zip(values.tolist(), counts.tolist(), strict=True)) == {
        1.0: 90,
        2.0: 4,
        3.0: 3,
        4.0: 3,
    }
    assert beats.normal_mask().sum() == 90
    assert "seed=0" in beats.source


@pytest.mark.parametrize("length", [16, 187, 500])
def test_any_length(length: int) -> None:
    beats = synthetic_beats(5, length=length, seed=1)
    assert beats.input_length == length and np.isfinite(beats.signals).all()


def test_each_beat_is_z_normalised(beats: LabelledBeats) -> None:
    np.testing.assert_allclose(beats.signals.mean(axis=1), 0.0, atol=1e-5)
    np.testing.assert_allclose(beats.signals.std(axis=1), 1.0, atol=1e-5)


def test_deterministic_for_a_seed() -> None:
    first, again = synthetic_beats(50, seed=3), synthetic_beats(50, seed=3)
    np.testing.assert_array_equal(first.signals, again.signals)
    np.testing.assert_array_equal(first.labels, again.labels)
    assert not np.array_equal(first.signals, synthetic_beats(50, seed=4).signals)


@pytest.mark.parametrize(("fraction", "normal"), [(0.0, 20), (1.0, 0), (0.5, 10)])
def test_anomaly_fraction(fraction: float, normal: int) -> None:
    assert synthetic_beats(20, anomaly_fraction=fraction).normal_mask().sum() == normal


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"n": 0}, "at least 1"),
        ({"n": 5, "length": 8}, "at least 16 samples"),
        ({"n": 5, "anomaly_fraction": 1.5}, "between 0 and 1"),
    ],
)
def test_invalid_arguments(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        synthetic_beats(**kwargs)


def test_normal_beat_has_p_qrs_t(beats: LabelledBeats) -> None:
    normal = mean_beat(beats, NORMAL)
    r_peak = int(np.argmax(normal))
    assert abs(r_peak - 42) <= 2  # the R peak sits 30 % into the window
    # At 75 bpm ECGSYN puts P about 74 degrees before R (sample ~13) and T 106 after (~83).
    p_wave = normal[5:25].max()
    t_wave = normal[65:100].max()
    baseline = np.median(normal[110:])
    assert normal[r_peak] > t_wave > p_wave > baseline


def test_pvc_is_wide_without_p_and_with_inverted_t(beats: LabelledBeats) -> None:
    normal, pvc = mean_beat(beats, NORMAL), mean_beat(beats, PVC)

    def width_above_half_peak(beat: np.ndarray) -> int:
        return int(np.sum(beat > beat.max() / 2))

    assert width_above_half_peak(pvc) > 2 * width_above_half_peak(normal)
    assert pvc[65:100].min() < normal[65:100].min() - 0.5  # inverted T
    assert pvc[5:25].max() - np.median(pvc[110:]) < 0.2  # no P wave


def test_every_anomaly_type_departs_from_the_normal_template(beats: LabelledBeats) -> None:
    assert beats.labels is not None
    template = mean_beat(beats, NORMAL)
    distance = np.abs(beats.signals - template).mean(axis=1)
    normal_distance = np.median(distance[beats.labels == NORMAL])
    for label in (PVC, ST_T_CHANGE, ARTEFACT):
        assert np.median(distance[beats.labels == label]) > 1.5 * normal_distance, label


def test_artefacts_are_rough(beats: LabelledBeats) -> None:
    assert beats.labels is not None
    roughness = np.abs(np.diff(beats.signals, n=2, axis=1)).max(axis=1)
    normal = beats.labels == NORMAL
    assert np.median(roughness[beats.labels == ARTEFACT]) > 2 * np.median(roughness[normal])


def test_write_ucr_round_trip(tmp_path: Path) -> None:
    beats = synthetic_beats(30, length=50, seed=2)
    path = write_ucr(beats, tmp_path / "sub" / "Synth_TRAIN.tsv")
    again = read_beats(path)
    np.testing.assert_array_equal(again.signals, beats.signals)
    np.testing.assert_array_equal(again.labels, beats.labels)


def test_write_ucr_needs_labels(tmp_path: Path) -> None:
    unlabelled = LabelledBeats(np.zeros((2, 3), np.float32), None, "x")
    with pytest.raises(DataFormatError, match="no labels"):
        write_ucr(unlabelled, tmp_path / "x.tsv")
