"""Drift of a run's reconstruction losses against a model's normal reference (pure numpy).

Two figures, both computed from counts so a run's losses can be streamed in chunks:

- population stability index (PSI) on ``bins`` quantile bins of the reference:
  ``sum((o - r) * ln(o / r))`` over bin shares o (observed) and r (reference), each floored at
  ``eps``. Rule of thumb: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 large shift.
- Kolmogorov-Smirnov statistic: the largest gap between the two empirical CDFs, exact, from the
  counts of observed losses below and at each distinct reference value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DEFAULT_BINS = 10
EPS = 1e-4


def quantile_edges(reference: np.ndarray, bins: int = DEFAULT_BINS) -> np.ndarray:
    """Inner bin edges (bins - 1,) at the reference's quantiles; ties collapse to fewer bins."""
    qs = np.linspace(0, 1, bins + 1)[1:-1]
    return np.unique(np.quantile(np.asarray(reference, dtype=np.float64), qs))


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts (len(edges) + 1,) of values per bin; bin i holds edges[i-1] < v <= edges[i]."""
    index = np.searchsorted(edges, np.asarray(values, dtype=np.float64), side="left")
    return np.bincount(index, minlength=len(edges) + 1)


def psi_from_counts(reference: np.ndarray, observed: np.ndarray, eps: float = EPS) -> float:
    """Population stability index of two count vectors over the same bins."""
    r = np.maximum(reference / max(reference.sum(), 1), eps)
    o = np.maximum(observed / max(observed.sum(), 1), eps)
    return float(np.sum((o - r) * np.log(o / r)))


def ks_from_counts(
    ref_cdf: np.ndarray, below: np.ndarray, at_or_below: np.ndarray, n_observed: int
) -> float:
    """KS statistic from the reference CDF at its distinct values u (m,) and observed counts.

    ``below[j]`` / ``at_or_below[j]``: observed values < u[j] / <= u[j]. Between u[j] and u[j+1]
    the reference CDF is ref_cdf[j] and the observed CDF runs from at_or_below[j] to below[j+1]
    (over n_observed), so the supremum is at one of those ends.
    """
    if n_observed == 0:
        return float("nan")
    lo = np.concatenate([[0.0], ref_cdf])  # reference CDF left of u[0], then on [u[j], u[j+1])
    start = np.concatenate([[0], at_or_below]) / n_observed
    end = np.concatenate([below, [n_observed]]) / n_observed
    return float(max(np.abs(start - lo).max(), np.abs(end - lo).max()))


@dataclass
class DriftAccumulator:
    """Streams a run's losses in chunks and reports PSI and KS against a reference (n_ref,)."""

    reference: np.ndarray
    bins: int = DEFAULT_BINS
    edges: np.ndarray = field(init=False)
    _support: np.ndarray = field(init=False)
    _ref_cdf: np.ndarray = field(init=False)
    _bins: np.ndarray = field(init=False)
    _below: np.ndarray = field(init=False)
    _at: np.ndarray = field(init=False)
    n: int = field(init=False, default=0)
    total: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        ref = np.sort(np.asarray(self.reference, dtype=np.float64))
        if ref.size == 0:
            raise ValueError("the drift reference holds no losses")
        self.reference = ref
        self.edges = quantile_edges(ref, self.bins)
        self._support, counts = np.unique(ref, return_counts=True)
        self._ref_cdf = np.cumsum(counts) / ref.size
        self._bins = np.zeros(len(self.edges) + 1, dtype=np.int64)
        self._below = np.zeros(len(self._support) + 1, dtype=np.int64)
        self._at = np.zeros(len(self._support) + 1, dtype=np.int64)

    def add(self, losses: np.ndarray) -> None:
        """Count one chunk of observed losses (k,)."""
        self.merge(self.count(losses))

    def count(self, losses: np.ndarray) -> dict[str, int | float | list[int]]:
        """The :meth:`state` of one chunk of losses (k,) alone; this accumulator is unchanged."""
        x = np.asarray(losses, dtype=np.float64)
        x = x[np.isfinite(x)]
        total = float(x.sum())  # summed in the chunk's own order, as a one-shot report sums
        x.sort()
        n = x.size

        def between(points: np.ndarray, side: str) -> list[int]:
            # counts of sorted x in the gaps the points leave: the reference (thousands of
            # values) is looked up in the chunk, not every loss in the reference
            return np.diff(np.searchsorted(x, points, side), prepend=0, append=n).tolist()

        return {
            "n": int(n),
            "total": total,
            "bins": between(self.edges, "right"),  # bin i: edges[i-1] < x <= edges[i]
            "below": between(self._support, "left"),  # cumulated: x < u[j]
            "at": between(self._support, "right"),  # cumulated: x <= u[j]
        }

    def state(self) -> dict[str, int | float | list[int]]:
        """The counts so far, as JSON-ready lists: :meth:`merge` adds them to another
        accumulator over the same reference (how a run's batches add up in the database)."""
        return {
            "n": self.n,
            "total": self.total,
            "bins": self._bins.tolist(),
            "below": self._below.tolist(),
            "at": self._at.tolist(),
        }

    def merge(self, state: dict) -> None:
        """Add the counts of :meth:`state` taken from an accumulator over the same reference."""
        parts = {k: np.asarray(state[k], dtype=np.int64) for k in ("bins", "below", "at")}
        if parts["bins"].shape != self._bins.shape or parts["at"].shape != self._at.shape:
            raise ValueError("drift counts were taken against another reference")
        self._bins += parts["bins"]
        self._below += parts["below"]
        self._at += parts["at"]
        self.n += int(state["n"])
        self.total += float(state["total"])

    def report(self) -> dict[str, float | int | list[float]]:
        """{psi, ks, n_observed, n_reference, observed_mean, reference_mean, bins, shares}."""
        below = np.cumsum(self._below)[:-1]
        at_or_below = np.cumsum(self._at)[:-1]
        ref_bins = bin_counts(self.reference, self.edges)
        n = self.n
        return {
            "psi": psi_from_counts(ref_bins, self._bins) if n else float("nan"),
            "ks": ks_from_counts(self._ref_cdf, below, at_or_below, n),
            "n_observed": n,
            "n_reference": int(self.reference.size),
            "observed_mean": self.total / n if n else float("nan"),
            "reference_mean": float(self.reference.mean()),
            "bins": int(len(self.edges) + 1),
            "observed_shares": (self._bins / max(n, 1)).round(4).tolist(),
        }


def drift_report(
    reference: np.ndarray, observed: np.ndarray, bins: int = DEFAULT_BINS
) -> dict[str, float | int | list[float]]:
    """PSI and KS of observed losses (n,) against reference losses (m,), in one call."""
    acc = DriftAccumulator(reference, bins)
    acc.add(observed)
    return acc.report()


def add_states(first: dict | None, second: dict) -> dict:
    """The sum of two :meth:`DriftAccumulator.state` dicts over the same reference (first may be
    None: nothing counted yet); keys other than the counts are taken from ``second``."""
    if first is None:
        return dict(second)
    out = dict(second)
    for key in ("bins", "below", "at"):
        if len(first[key]) != len(second[key]):
            raise ValueError("drift counts were taken against another reference")
        out[key] = (np.asarray(first[key], np.int64) + np.asarray(second[key], np.int64)).tolist()
    out["n"] = int(first["n"]) + int(second["n"])
    out["total"] = float(first["total"]) + float(second["total"])
    return out
