"""Labelled beats cut from the annotated MIT-BIH records (``evaluate --split mitbih``)."""

from __future__ import annotations

import numpy as np
import pytest

from ecgmon import recordings as rec
from ecgmon.models.evaluation.mitbih import AAMI_NORMAL, annotated_beats, read_mitbih_split


def test_record_beats_follow_the_annotations(mitbih) -> None:
    signals, labels, seconds = annotated_beats(
        mitbih / "records" / "100.hea", mitbih / "annotations" / "100annotations.txt"
    )
    marks = rec.read_annotations(mitbih / "annotations" / "100annotations.txt").beats()
    assert signals.shape[1] == 252, "0.7 s at 360 Hz, no resampling"
    assert 0 < len(signals) <= len(marks.samples) and len(signals) >= len(marks.samples) - 2
    expected = np.isin(marks.symbols, AAMI_NORMAL)
    assert labels.sum() == pytest.approx(expected.sum(), abs=2)
    np.testing.assert_allclose(signals.mean(axis=1), 0, atol=1e-4)
    assert np.all(np.diff(seconds) > 0)


def test_each_record_s_first_minutes_train_and_the_rest_test(mitbih) -> None:
    train, test = read_mitbih_split(mitbih, train_minutes=5)
    assert train.input_length == test.input_length == 252
    assert set(np.unique(train.labels)) == {0.0, 1.0} == set(np.unique(test.labels))
    # ten records of 30 minutes: about a sixth of the beats fall in the first 5 minutes
    assert 0.1 < len(train) / (len(train) + len(test)) < 0.25
