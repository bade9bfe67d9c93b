"""k-fold cross-fitting on a hand-made scorer: exact fold bookkeeping, no Keras."""

from __future__ import annotations

import numpy as np
import pytest

from ecgmon.models.autoencoder.calibration import cross_fitted_losses, fold_ids, fold_seed


class _MeanModel:
    """Scores a beat by its distance to the mean of the beats it was trained on."""

    def __init__(self, trained_on: np.ndarray, seed: int) -> None:
        self.centre, self.seed, self.trained_on = trained_on.mean(), seed, trained_on

    def losses(self, signals: np.ndarray) -> np.ndarray:
        return np.abs(signals[:, 0] - self.centre)


def test_fold_ids_are_balanced_seeded_and_cover_every_beat() -> None:
    ids = fold_ids(23, 5, seed=4)
    assert sorted(np.bincount(ids)) == [4, 4, 5, 5, 5]
    np.testing.assert_array_equal(ids, fold_ids(23, 5, seed=4))
    assert not np.array_equal(ids, fold_ids(23, 5, seed=5))
    with pytest.raises(ValueError, match="at least 2 folds"):
        fold_ids(10, 1, 0)
    with pytest.raises(ValueError, match="cannot deal"):
        fold_ids(3, 5, 0)


def test_each_beat_is_scored_by_the_model_of_its_own_fold_which_never_saw_it() -> None:
    beats = np.arange(10, dtype=float).reshape(10, 1)
    trained: list[_MeanModel] = []

    def train(x: np.ndarray, seed: int) -> _MeanModel:
        trained.append(_MeanModel(x, seed))
        return trained[-1]

    fit = cross_fitted_losses(beats, train, folds=2, seed=0)
    assert len(trained) == 2
    assert [m.seed for m in trained] == [fold_seed(0, 0), fold_seed(0, 1)]
    for fold, model in enumerate(trained):
        own = beats[fit.folds == fold]
        assert not set(own[:, 0]) & set(model.trained_on[:, 0]), "a model saw its own fold"
        np.testing.assert_array_equal(
            fit.losses[fit.folds == fold], np.abs(own[:, 0] - model.centre)
        )
    assert fit.description() | {"fold_sizes": None} == {
        "procedure": "cross_fit",
        "folds": 2,
        "seed": 0,
        "n": 10,
        "fold_sizes": None,
    }


def test_extra_beats_are_scored_by_their_fold_model_and_train_nothing() -> None:
    beats = np.arange(12, dtype=float).reshape(12, 1)
    extra = np.full((6, 1), 100.0)
    seen: list[np.ndarray] = []

    def train(x: np.ndarray, seed: int) -> _MeanModel:
        seen.append(x)
        return _MeanModel(x, seed)

    fit = cross_fitted_losses(beats, train, folds=3, seed=1, extra=extra)
    assert all(np.all(x < 100) for x in seen)
    assert fit.extra_losses.shape == (6,) and np.all(np.isfinite(fit.extra_losses))
    assert sorted(np.bincount(fit.extra_folds)) == [2, 2, 2]
