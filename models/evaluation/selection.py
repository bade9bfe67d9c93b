"""Model selection on validation folds of the training beats only (``ecgmon evaluate --select``).

The protocol, fixed before any test beat is scored:

1. The normal training beats are dealt into ``CALIBRATION_FOLDS`` seeded folds, and the
   abnormal training beats into as many folds of their own. For each candidate architecture,
   fold f's model trains on the normal beats of the other folds (the cross-fitting a detector
   is calibrated with) and scores fold f's normal and abnormal beats, which it never saw.
2. For each candidate threshold rule and each fold f, the threshold is the rule applied to the
   out-of-fold normal losses of the *other* folds; fold f's beats are flagged against it and
   give an anomaly F1 and a false-alarm rate.
3. The chosen (architecture, rule, parameter) has the highest mean validation F1 over the folds;
   a tie goes to the earlier candidate in the lists below (simpler rules, cheaper models first).
4. Only then is the final model trained on all normal training beats (its calibration is the
   chosen architecture's out-of-fold losses of step 1) and the test beats are scored once.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np

from ecgmon.models.autoencoder.calibration import CALIBRATION_FOLDS, CrossFit, cross_fitted_losses
from ecgmon.models.autoencoder.detector import AutoencoderDetector
from ecgmon.models.evaluation.metrics import detection_metrics
from ecgmon.models.thresholds import compute_threshold

log = logging.getLogger(__name__)

#: Candidates, in tie-break order; fixed before the selection was first run.
CANDIDATE_ARCHITECTURES: tuple[str, ...] = ("dense", "dense_ensemble", "conv_denoising", "vae")
CANDIDATE_RULES: tuple[tuple[str, float], ...] = (
    *(("mean_std", k) for k in (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0)),
    *(("quantile", q) for q in (0.95, 0.975, 0.99)),
)


@dataclass(frozen=True)
class Candidate:
    """Validation figures of one (architecture, rule, parameter) over the folds."""

    architecture: str
    method: str
    param: float
    mean_f1: float
    worst_f1: float
    mean_false_alarm_rate: float
    auroc: float


@dataclass(frozen=True)
class Selection:
    """Every candidate's validation figures, the chosen one, and each architecture's cross-fit."""

    candidates: list[Candidate]
    chosen: Candidate
    crossfits: dict[str, CrossFit]

    def to_json(self) -> dict:
        """The protocol's record, JSON-ready (the cross-fit losses are left out)."""
        return {
            "protocol": "validation folds of the training beats only (evaluation/selection.py)",
            "folds": next(iter(self.crossfits.values())).n_folds,
            "chosen": asdict(self.chosen),
            "candidates": [asdict(c) for c in self.candidates],
        }


def rule_figures(crossfit: CrossFit, architecture: str, method: str, param: float) -> Candidate:
    """Step 2 of the protocol for one rule, from a cross-fit with abnormal ``extra`` beats."""
    f1s, fars = [], []
    for fold in range(crossfit.n_folds):
        calibration = crossfit.losses[crossfit.folds != fold]
        threshold = compute_threshold(calibration, method, param).value
        normal = crossfit.losses[crossfit.folds == fold]
        abnormal = crossfit.extra_losses[crossfit.extra_folds == fold]
        truth = np.concatenate([np.zeros(normal.size, bool), np.ones(abnormal.size, bool)])
        metrics = detection_metrics(np.concatenate([normal, abnormal]), truth, threshold)
        f1s.append(metrics["f1"])
        fars.append(metrics["false_alarm_rate"])
    pooled = np.concatenate([crossfit.losses, crossfit.extra_losses])
    truth = np.concatenate(
        [np.zeros(crossfit.losses.size, bool), np.ones(crossfit.extra_losses.size, bool)]
    )
    auroc = detection_metrics(pooled, truth, 0.0)["auroc"]
    return Candidate(
        architecture,
        method,
        float(param),
        float(np.mean(f1s)),
        float(np.min(f1s)),
        float(np.mean(fars)),
        auroc,
    )


def select(
    normal: np.ndarray,
    abnormal: np.ndarray,
    *,
    epochs: int,
    seed: int,
    architectures: tuple[str, ...] | None = None,
    rules: tuple[tuple[str, float], ...] | None = None,
    folds: int = CALIBRATION_FOLDS,
) -> Selection:
    """Steps 1-3 on training beats: normal (n, length) and labelled abnormal (m, length).

    ``architectures`` and ``rules`` default to the module's candidate lists."""
    architectures = architectures or CANDIDATE_ARCHITECTURES
    rules = rules or CANDIDATE_RULES
    if len(abnormal) < folds:
        raise ValueError(
            f"selection needs at least {folds} abnormal training beats, got {len(abnormal)}"
        )
    from ecgmon.models.autoencoder.architectures import default_hyperparameters

    candidates, crossfits = [], {}
    for name in architectures:
        hp = default_hyperparameters(name)
        crossfits[name] = cross_fitted_losses(
            normal,
            lambda x, s, name=name, hp=hp: AutoencoderDetector.train(x, name, hp, epochs, s),
            folds=folds,
            seed=seed,
            extra=abnormal,
        )
        for method, param in rules:
            candidates.append(rule_figures(crossfits[name], name, method, param))
            log.info("selection: %s", candidates[-1])
    chosen = max(candidates, key=lambda c: c.mean_f1)  # max keeps the first of equals
    return Selection(candidates, chosen, crossfits)
