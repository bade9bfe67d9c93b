"""Out-of-fold losses by k-fold cross-fitting (pure numpy; the caller supplies the training).

The normal training beats are dealt into ``folds`` seeded folds. For each fold a model is
trained on the other folds and scores the beats of its own fold, so every normal beat gets a
loss from a model that never trained on it. Thresholds are calibrated on all of those losses
(not on a small held-out slice), and the final model is trained on every normal beat.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

#: Folds of the cross-fitting every detector is calibrated with.
CALIBRATION_FOLDS = 5
PROCEDURE = "cross_fit"


class Scorer(Protocol):
    """Anything that gives a per-beat loss (n,) for beats (n, length)."""

    def losses(self, signals: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class CrossFit:
    """Out-of-fold losses (n,) of the normal beats, in their order, with each beat's fold (n,).

    ``extra_losses`` (m,) and ``extra_folds`` (m,): beats that never train any fold model (for
    instance labelled abnormal beats), each scored by the model of the fold it was dealt to.
    """

    losses: np.ndarray
    folds: np.ndarray
    n_folds: int
    seed: int
    extra_losses: np.ndarray = field(default_factory=lambda: np.empty(0))
    extra_folds: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    def description(self) -> dict:
        """How the losses were produced (JSON-ready; stored with the model version)."""
        return {
            "procedure": PROCEDURE,
            "folds": self.n_folds,
            "seed": self.seed,
            "n": int(self.losses.size),
            "fold_sizes": [int(np.sum(self.folds == f)) for f in range(self.n_folds)],
        }


def fold_ids(n: int, folds: int, seed: int) -> np.ndarray:
    """Fold (0..folds-1) of each of n beats (n,): a seeded deal, fold sizes differ by at most 1."""
    if folds < 2:
        raise ValueError(f"cross-fitting needs at least 2 folds, got {folds}")
    if n < folds:
        raise ValueError(f"cannot deal {n} beats into {folds} folds")
    order = np.random.default_rng(seed + 104_729).permutation(n)
    ids = np.empty(n, dtype=np.int64)
    ids[order] = np.arange(n) % folds
    return ids


def fold_seed(seed: int, fold: int) -> int:
    """The training seed of fold ``fold``'s model, distinct from the final model's ``seed``."""
    return seed + 7_919 * (fold + 1)


def cross_fitted_losses(
    signals: np.ndarray,
    train: Callable[[np.ndarray, int], Scorer],
    *,
    folds: int = CALIBRATION_FOLDS,
    seed: int = 0,
    extra: np.ndarray | None = None,
) -> CrossFit:
    """Out-of-fold losses of normal beats (n, length); ``train(beats, seed)`` fits one model.

    ``extra`` (m, length) beats are dealt into the same number of folds (their own seeded deal)
    and scored by their fold's model; they never train anything.
    """
    ids = fold_ids(len(signals), folds, seed)
    extra_ids = (
        np.empty(0, dtype=np.int64) if extra is None else fold_ids(len(extra), folds, seed + 1)
    )
    losses = np.full(len(signals), np.nan)
    extra_losses = np.full(len(extra_ids), np.nan)
    for fold in range(folds):
        model = train(signals[ids != fold], fold_seed(seed, fold))
        losses[ids == fold] = model.losses(signals[ids == fold])
        if extra is not None and np.any(extra_ids == fold):
            extra_losses[extra_ids == fold] = model.losses(extra[extra_ids == fold])
    return CrossFit(losses, ids, folds, seed, extra_losses, extra_ids)
