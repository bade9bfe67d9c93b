"""AAMI EC57 classes and VEB/SVEB statistics (models/evaluation/aami.py) on hand-counted beats."""

from __future__ import annotations

import numpy as np
import pytest

from ecgmon.models.evaluation import aami


def test_symbols_map_to_aami_classes() -> None:
    symbols = np.array(
        ["N", "L", "R", "e", "j", "A", "a", "J", "S", "V", "E", "F", "/", "f", "Q", ""]
    )
    assert "".join(aami.aami_classes(symbols)) == "NNNNNSSSSVVFQQQO"
    assert aami.is_paced("104") and not aami.is_paced("100")


def test_ectopic_counts_follow_ec57() -> None:
    # reference:  V  V  N  S  S  F  Q  O  N
    # predicted:  V  N  V  S  V  V  S  S  S
    reference = np.array(list("VVNSSFQON"))
    predicted = np.array(list("VNVSVVSSS"))
    counts = aami.ectopic_counts(reference, predicted, {"V": 2, "S": 1})
    # VEB: TP 1; FN 1 + 2 missed; FP: N->V, S->V (F->V is not counted)
    assert counts["veb"] == {"tp": 1, "fn": 3, "fp": 2}
    # SVEB: TP 1; FN S->V + 1 missed; FP: O->S, N->S (Q->S is not counted)
    assert counts["sveb"] == {"tp": 1, "fn": 2, "fp": 2}


def test_gross_sums_counts_before_dividing() -> None:
    per = {
        "a": {"veb": {"tp": 9, "fn": 1, "fp": 0}, "sveb": {"tp": 0, "fn": 0, "fp": 0}},
        "b": {"veb": {"tp": 1, "fn": 9, "fp": 10}, "sveb": {"tp": 0, "fn": 0, "fp": 0}},
    }
    gross = aami.gross(per)
    assert gross["veb"]["se"] == pytest.approx(0.5) and gross["veb"]["ppv"] == pytest.approx(0.5)
    assert gross["sveb"]["se"] is None and gross["sveb"]["ppv"] is None
