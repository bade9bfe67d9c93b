"""The selection protocol on hand-made out-of-fold losses: exact figures, no Keras."""

from __future__ import annotations

import numpy as np
import pytest

from ecgmon.models.autoencoder.calibration import CrossFit
from ecgmon.models.evaluation.selection import Candidate, choose_default_rule, rule_figures


def _crossfit() -> CrossFit:
    """Two folds; normals 0.1..0.4 (well apart from) abnormals at 1.0 and 2.0."""
    return CrossFit(
        losses=np.array([0.1, 0.2, 0.3, 0.4]),
        folds=np.array([0, 0, 1, 1]),
        n_folds=2,
        seed=0,
        extra_losses=np.array([1.0, 2.0]),
        extra_folds=np.array([0, 1]),
    )


def test_each_fold_is_judged_by_a_threshold_from_the_other_folds_only() -> None:
    # quantile 0.5 of fold 1's normals (0.3, 0.4) = 0.35 flags nothing normal in fold 0;
    # of fold 0's normals (0.1, 0.2) = 0.15 flags 0.3 and 0.4 of fold 1 (false-alarm rate 1)
    figures = rule_figures(_crossfit(), "dense", "quantile", 0.5)
    assert figures.mean_false_alarm_rate == pytest.approx(0.5)
    assert figures.worst_f1 == pytest.approx(2 * (1 / 3) / (1 / 3 + 1))
    assert figures.mean_f1 == pytest.approx((1.0 + 0.5) / 2)
    assert figures.auroc == pytest.approx(1.0)


def test_a_threshold_above_every_abnormal_gives_no_f1() -> None:
    figures = rule_figures(_crossfit(), "dense", "mean_std", 100.0)
    assert figures.mean_f1 == 0.0 and figures.mean_false_alarm_rate == 0.0


def _rule(method: str, param: float, f1: float, far: float) -> Candidate:
    return Candidate("dense_ensemble", method, param, f1, f1, far, 0.99)


def _tables(**per_dataset: list[tuple[float, float, float, float]]) -> dict:
    """``dataset=[(f1 rule a, far a, f1 rule b, far b), ...one per seed]``."""
    return {
        name: [
            [_rule("mean_std", 1.5, a, fa), _rule("mean_std", 2.0, b, fb)] for a, fa, b, fb in rows
        ]
        for name, rows in per_dataset.items()
    }


def test_the_default_rule_is_the_best_worst_dataset_f1_within_the_false_alarm_budget() -> None:
    # rule a has the better F1 everywhere but breaks the budget on "big" (mean 0.06)
    tables = _tables(
        small=[(0.95, 0.04, 0.90, 0.03), (0.93, 0.04, 0.88, 0.03)],
        big=[(0.97, 0.07, 0.96, 0.02), (0.97, 0.05, 0.96, 0.02)],
    )
    chosen, rows = choose_default_rule(tables, budget=0.05)
    assert (chosen.method, chosen.param) == ("mean_std", 2.0)
    assert not rows[0].admissible and rows[1].admissible
    assert rows[1].mean_f1 == pytest.approx({"small": 0.89, "big": 0.96})
    assert rows[1].worst_seed_f1 == pytest.approx({"small": 0.88, "big": 0.96})
    assert rows[0].false_alarm_rate["big"] == pytest.approx(0.06)


def test_within_the_budget_the_worst_dataset_decides_not_the_average() -> None:
    # a: 0.99 / 0.80 (average 0.895); b: 0.88 / 0.88 (average 0.88, worst 0.88 > 0.80)
    tables = _tables(one=[(0.99, 0.01, 0.88, 0.01)], two=[(0.80, 0.01, 0.88, 0.01)])
    chosen, _ = choose_default_rule(tables, budget=0.05)
    assert chosen.param == 2.0
    tied = _tables(one=[(0.9, 0.01, 0.9, 0.01)])
    assert choose_default_rule(tied)[0].param == 1.5, "a tie goes to the earlier rule"


def test_no_admissible_rule_or_mismatched_lists_are_refused() -> None:
    with pytest.raises(ValueError, match="false-alarm rate within"):
        choose_default_rule(_tables(one=[(0.9, 0.2, 0.9, 0.3)]), budget=0.05)
    tables = _tables(one=[(0.9, 0.01, 0.9, 0.01)], two=[(0.9, 0.01, 0.9, 0.01)])
    tables["two"][0].reverse()
    with pytest.raises(ValueError, match="same rules"):
        choose_default_rule(tables)
