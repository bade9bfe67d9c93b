"""``evaluate --select``: the choice is made on training folds; the test beats only measure it."""

from __future__ import annotations

import numpy as np

from ecgmon.models.evaluation import labelled, selection
from ecgmon.sources.datasets import LabelledBeats


def test_selection_never_sees_the_test_beats(synthetic_set, monkeypatch) -> None:
    """One architecture, two rules; the choice and its record do not depend on the test set."""
    monkeypatch.setattr(selection, "CANDIDATE_ARCHITECTURES", ("dense",))
    monkeypatch.setattr(selection, "CANDIDATE_RULES", (("mean_std", 2.0), ("quantile", 0.99)))
    beats = synthetic_set
    train = LabelledBeats(beats.signals[:120], beats.labels[:120], "train")
    test = LabelledBeats(beats.signals[200:260], beats.labels[200:260], "test")
    flipped = LabelledBeats(test.signals, np.where(test.labels == 1, 0, 1).astype(float), "flipped")
    runs = [
        labelled.evaluate_once(
            train, t, architecture="dense", split="tf", seed=0, epochs=1, select=True
        )
        for t in (test, flipped)
    ]
    record = runs[0].metrics["selection"]
    assert record == runs[1].metrics["selection"], "the test labels changed the choice"
    assert len(record["candidates"]) == 2 and record["folds"] == 5
    best = max(record["candidates"], key=lambda c: c["mean_f1"])
    assert record["chosen"] == best
    assert runs[0].architecture == best["architecture"]
    assert runs[0].metrics["threshold_rule"].startswith(best["method"])
