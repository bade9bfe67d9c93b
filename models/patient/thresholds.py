"""Per-patient thresholds: the population rule recalibrated on one patient's baseline losses.

A patient's baseline strip (beats a clinician confirmed as normal rhythm, or by default the first
minutes of the recording) is scored by the population model; the threshold rule of the model's
active population threshold (mean + k·std of normal losses by default) is then applied to those
losses alone. The registry stores it in ``thresholds`` with ``patient_id`` set
(ecgmon.models.registry); the scorer uses it for that patient's beats when no patient model
applies.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ecgmon.models.thresholds import Threshold, compute_threshold

TRIM_MADS = 5.0
"""Baseline losses beyond median + TRIM_MADS robust standard deviations are treated as outliers."""
MIN_BASELINE_BEATS = 30
"""Fewer baseline beats than this give too noisy a mean and std to trust."""


def trim_outliers(losses: np.ndarray, n_mads: float = TRIM_MADS) -> np.ndarray:
    """Losses (n,) without those above median + ``n_mads`` · 1.4826 · MAD (ectopic or noisy
    beats in an unconfirmed strip); returns the kept losses (m,), m <= n."""
    losses = np.asarray(losses, dtype=np.float64)
    median = float(np.median(losses))
    spread = 1.4826 * float(np.median(np.abs(losses - median)))
    if spread <= 0:
        return losses
    return losses[losses <= median + n_mads * spread]


def patient_threshold(
    losses: np.ndarray, method: str, params: Mapping[str, float], trim: bool = True
) -> Threshold:
    """The rule ``method`` with ``params`` (as stored for the population) on one patient's
    baseline losses (n,), after trimming outliers unless the strip was confirmed (``trim=False``).
    """
    kept = trim_outliers(losses) if trim else np.asarray(losses, dtype=np.float64)
    if kept.size < MIN_BASELINE_BEATS:
        raise ValueError(
            f"a patient baseline needs at least {MIN_BASELINE_BEATS} beats, got {kept.size}"
        )
    param = next(iter(params.values()), None)
    threshold = compute_threshold(kept, method, None if param is None else float(param))
    stats = threshold.loss_stats | {"n_baseline": int(np.size(losses)), "n_kept": int(kept.size)}
    return Threshold(threshold.method, threshold.params, threshold.value, stats)
