"""Label-free threshold rules on the reconstruction losses of normal beats (pure numpy)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Threshold:
    """A threshold value with the rule and loss statistics it came from."""

    method: str
    params: dict[str, float]
    value: float
    loss_stats: dict[str, float] = field(default_factory=dict)


def loss_statistics(losses: np.ndarray) -> dict[str, float]:
    """Summary of normal losses (n,) kept with every threshold so recalibration needs no model."""
    losses = np.asarray(losses, dtype=np.float64)
    quantiles = np.quantile(losses, [0.5, 0.9, 0.95, 0.99])
    return {
        "n": int(losses.size),
        "mean": float(losses.mean()),
        "std": float(losses.std()),
        "min": float(losses.min()),
        "max": float(losses.max()),
        "q50": float(quantiles[0]),
        "q90": float(quantiles[1]),
        "q95": float(quantiles[2]),
        "q99": float(quantiles[3]),
    }


def mean_std_threshold(losses: np.ndarray, k: float = 1.0) -> float:
    """The seed's rule: mean + k standard deviations of the normal losses."""
    losses = np.asarray(losses, dtype=np.float64)
    return float(losses.mean() + k * losses.std())


def quantile_threshold(losses: np.ndarray, q: float = 0.99) -> float:
    """The q-quantile of the normal losses (q in (0, 1))."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must be in (0, 1), got {q}")
    return float(np.quantile(np.asarray(losses, dtype=np.float64), q))


def fpr_threshold(losses: np.ndarray, fpr: float = 0.02) -> float:
    """The loss above which a share ``fpr`` of the held-out normal beats would be flagged."""
    if not 0.0 < fpr < 1.0:
        raise ValueError(f"fpr must be in (0, 1), got {fpr}")
    return quantile_threshold(losses, 1.0 - fpr)


def tail_threshold(losses: np.ndarray, alpha: float = 0.01, tail: float = 0.1) -> float:
    """Peaks over threshold: the loss a share ``alpha`` of normal beats exceed, extrapolated.

    The ``tail`` share of the highest losses (n,) above their (1 - tail)-quantile ``u`` is modelled
    as exponential (the generalised Pareto tail with shape 0, the extreme-value limit of light
    tails), its scale the mean excess over ``u`` (its maximum-likelihood estimate); the threshold is
    ``u + scale * ln(tail / alpha)``. Unlike a raw 99 % quantile of a few hundred losses it uses
    the whole tail, and it reaches beyond the largest loss seen when ``alpha`` asks for it.
    """
    if not 0.0 < alpha < tail < 1.0:
        raise ValueError(f"need 0 < alpha < tail < 1, got alpha={alpha}, tail={tail}")
    losses = np.asarray(losses, dtype=np.float64)
    u = float(np.quantile(losses, 1.0 - tail))
    excess = losses[losses > u] - u
    scale = float(excess.mean()) if excess.size else 0.0
    return u + scale * float(np.log(tail / alpha))


RULES: dict[str, tuple[Callable[..., float], str, float]] = {
    "mean_std": (mean_std_threshold, "k", 1.0),
    "quantile": (quantile_threshold, "q", 0.99),
    "fpr": (fpr_threshold, "fpr", 0.02),
}
# Applied to the out-of-fold losses of all normal training beats. Chosen across datasets on
# validation folds of training beats only (selection.choose_default_rule, benchmarks/
# default_rule.py, docs/results.md): the best worst-dataset F1 within a 5 % false-alarm budget.
# k = 1 (the tutorial's rule) flags about 10 % of normal beats.
DEFAULT_THRESHOLD: tuple[str, float] = ("mean_std", 2.0)


def compute_threshold(
    losses: np.ndarray, method: str | None = None, param: float | None = None
) -> Threshold:
    """Apply a named rule to normal losses (n,); ``method=None`` uses the measured default."""
    method = method or DEFAULT_THRESHOLD[0]
    if method not in RULES:
        raise ValueError(f"unknown threshold method {method!r}; choose from {', '.join(RULES)}")
    rule, param_name, default = RULES[method]
    if param is None:
        param = DEFAULT_THRESHOLD[1] if method == DEFAULT_THRESHOLD[0] else default
    if np.asarray(losses).size < 2:
        raise ValueError("a threshold needs at least two normal losses")
    value = rule(losses, param)
    return Threshold(method, {param_name: float(param)}, value, loss_statistics(losses))
