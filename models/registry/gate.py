"""The champion/challenger gate: may a retrained candidate replace the champion? (pure numpy)

Both models are judged on beats NEITHER trained on (the "gate set"): held-out normal beats and,
when the data is labelled, its abnormal beats (autoencoders only ever train on normals).

The candidate passes when all of these hold:

1. its losses on the gate set are not degenerate: all finite and with a spread (std) above
   ``min_loss_std``;
2. its false-alarm rate (share of held-out normal beats flagged at its own threshold) is at
   most the champion's (at the champion's active threshold) plus ``far_tolerance``;
3. where labels exist, its AUROC is at least the champion's minus ``auroc_tolerance``.

With no champion, a non-degenerate candidate passes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from ecgmon.models.evaluation.metrics import detection_metrics

FAR_TOLERANCE = 0.02
AUROC_TOLERANCE = 0.01
MIN_LOSS_STD = 1e-12


@dataclass(frozen=True)
class GatePolicy:
    """Tolerances of the gate (shares, not percent)."""

    far_tolerance: float = FAR_TOLERANCE
    auroc_tolerance: float = AUROC_TOLERANCE
    min_loss_std: float = MIN_LOSS_STD


@dataclass(frozen=True)
class ModelFigures:
    """One model's figures on the gate set."""

    false_alarm_rate: float
    auroc: float | None
    threshold: float
    loss_mean: float
    loss_std: float
    finite: bool


@dataclass
class GateDecision:
    """The outcome, its reasons and the figures it was taken on (JSON-ready via ``to_json``)."""

    promote: bool
    reasons: list[str]
    candidate: ModelFigures
    champion: ModelFigures | None
    policy: GatePolicy
    n_normal: int
    n_abnormal: int
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """Plain dict with nan replaced by None (JSON columns reject nan on PostgreSQL)."""
        return _clean(asdict(self))


def model_figures(
    normal_losses: np.ndarray, abnormal_losses: np.ndarray | None, threshold: float
) -> ModelFigures:
    """Figures of one model from its losses (n_normal,) and (n_abnormal,) on the gate set."""
    normal = np.asarray(normal_losses, dtype=np.float64)
    abnormal = np.empty(0) if abnormal_losses is None else np.asarray(abnormal_losses, float)
    both = np.concatenate([normal, abnormal])
    finite = bool(np.isfinite(both).all()) and both.size > 0
    far = float(np.mean(normal > threshold)) if normal.size else math.nan
    auroc = None
    if finite and abnormal.size and normal.size:
        truth = np.concatenate([np.zeros(normal.size, bool), np.ones(abnormal.size, bool)])
        auroc = detection_metrics(both, truth, threshold)["auroc"]
    return ModelFigures(
        far,
        auroc,
        float(threshold),
        float(np.nanmean(both)) if both.size else math.nan,
        float(np.nanstd(both)) if both.size else math.nan,
        finite,
    )


def decide(
    candidate: ModelFigures,
    champion: ModelFigures | None,
    n_normal: int,
    n_abnormal: int,
    policy: GatePolicy | None = None,
) -> GateDecision:
    """Apply the gate rules (module docstring) to the two models' figures."""
    policy = policy or GatePolicy()
    reasons: list[str] = []
    if not candidate.finite:
        reasons.append("candidate losses are not all finite")
    elif not candidate.loss_std > policy.min_loss_std:
        reasons.append(f"candidate losses have no spread (std {candidate.loss_std:.3g})")
    if champion is not None and not reasons:
        reasons += _compare(candidate, champion, policy)
    promote = not reasons
    if promote:
        reasons.append("no champion yet" if champion is None else "passes every rule")
    return GateDecision(promote, reasons, candidate, champion, policy, n_normal, n_abnormal)


def _compare(candidate: ModelFigures, champion: ModelFigures, policy: GatePolicy) -> list[str]:
    reasons = []
    bound = champion.false_alarm_rate + policy.far_tolerance
    if not candidate.false_alarm_rate <= bound:
        reasons.append(
            f"false-alarm rate {candidate.false_alarm_rate:.4f} exceeds the champion's "
            f"{champion.false_alarm_rate:.4f} + {policy.far_tolerance}"
        )
    both = candidate.auroc is not None and champion.auroc is not None
    if both and not candidate.auroc >= champion.auroc - policy.auroc_tolerance:
        reasons.append(
            f"AUROC {candidate.auroc:.4f} is below the champion's {champion.auroc:.4f} "
            f"- {policy.auroc_tolerance}"
        )
    return reasons


def _clean(value: object) -> object:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _clean(value.item())
    return value
