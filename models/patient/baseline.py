"""Per-patient baselines: a patient's own normal beats as the reference for the rest of the record.

A baseline strip (clinician-confirmed normal rhythm, or the first minutes of a recording with its
outliers trimmed) gives three things, all pure numpy:

- a shape model: the principal subspace of the patient's z-normalised beats (a linear
  autoencoder; on these records it beat a per-patient dense Keras autoencoder, docs/recordings.md);
  the shape loss is the mean squared reconstruction error;
- rhythm statistics: median and spread of the RR before/after each beat relative to the running
  median RR, so a premature beat with a normal shape still stands out;
- two anomaly channels (ecgmon.models.patient.channels): morphology (the smaller of the robust z
  of the loss under a second shape model, of the beats' ventricular complexes, and of the
  complex's distance to the neighbouring beats' complexes) and rhythm (prematurity plus
  half a long RR after, none inside an irregular, fibrillation-like stretch), each with its own
  threshold on this patient's cross-fitted baseline scores (each baseline beat scored by a shape
  model fitted on the other half of the strip, so the thresholds do not rest on losses of beats
  the model has memorised). Default rule ``tail``: peaks over threshold
  (ecgmon.models.thresholds.tail_threshold), the score a share of the patient's normal beats
  would exceed, extrapolated from the exponential tail of the baseline's top 10 %. The
  false-alarm budget ``alpha`` (1 %) is split evenly between the two channels (Bonferroni: a
  normal beat passes either with probability at most ``alpha``); no threshold is below
  MIN_CHANNEL_Z robust standard deviations.

The patient's score is the larger of the two channel scores, each divided by its threshold, so
the patient threshold is 1. A flagged beat is called ventricular (V) when its morphology channel
is over its threshold (a different QRS-T), else supraventricular (S: a normal shape, early): the
AAMI ectopic classes. ``mean_std_log1p`` (mean + k std of log(1 + score), the seed's rule, on
the older sum of the terms) is kept for comparison, as is that sum for baselines saved before the
channels (``channel_thresholds`` None).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ecgmon.models.patient import channels
from ecgmon.models.thresholds import (
    Threshold,
    loss_statistics,
    mean_std_threshold,
    tail_threshold,
)

MIN_BASELINE_BEATS = 100
"""A baseline with fewer beats than this is not enough to judge a patient by."""
RR_SCALE_FLOOR = 0.02
"""Smallest RR spread (fraction of the running mean) a baseline may claim: very regular baselines
would otherwise turn a 3 % RR change into a large z-score."""
POST_RR_WEIGHT = channels.POST_RR_WEIGHT
MIN_CHANNEL_Z = 3.0
"""Smallest channel threshold, in robust standard deviations of the baseline."""
THRESHOLD_RULES = ("tail", "mean_std_log1p")
"""Patient threshold rules: ``tail`` (default, false-alarm target ``alpha``), the seed's."""


@dataclass(frozen=True)
class ShapeModel:
    """Principal subspace of baseline beats: ``mean`` (length,), ``basis`` (k, length)."""

    mean: np.ndarray
    basis: np.ndarray

    @classmethod
    def fit(cls, beats: np.ndarray, variance: float = 0.99) -> ShapeModel:
        """Keep the fewest components explaining ``variance`` of beats (n, length)."""
        beats = np.asarray(beats, dtype=np.float64)
        mean = beats.mean(axis=0)
        _, singular, vt = np.linalg.svd(beats - mean, full_matrices=False)
        explained = np.cumsum(singular**2) / max(float(np.sum(singular**2)), 1e-12)
        k = int(np.searchsorted(explained, variance) + 1)
        return cls(mean, vt[: min(k, vt.shape[0])])

    def reconstruct(self, beats: np.ndarray) -> np.ndarray:
        """Projection of beats (n, length) onto the subspace, same shape, float32."""
        centred = np.asarray(beats, dtype=np.float64) - self.mean
        return (centred @ self.basis.T @ self.basis + self.mean).astype(np.float32)

    def loss(self, beats: np.ndarray) -> np.ndarray:
        """Mean squared reconstruction error per beat, (n,) float64."""
        diff = np.asarray(beats, dtype=np.float64) - self.reconstruct(beats)
        return np.mean(diff**2, axis=1)


@dataclass(frozen=True)
class PatientBaseline:
    """A patient's normal reference: shape model, robust statistics and threshold.

    ``shape_stats`` / ``rr_stats``: (centre, scale) of the baseline's log shape loss (of the loss
    itself for baselines without channels) and of its RR before/after (rr centre and scale are (2,)
    arrays); ``local_stats`` of its log distance to the neighbouring beats. ``threshold.value`` is 1
    and ``threshold.loss_stats`` holds the channel thresholds (``shape_threshold``,
    ``rhythm_threshold``). ``source`` says which strip it came from. ``baseline_scores`` (m,) are
    the cross-fitted scores of the baseline beats the thresholds came from (empty when unknown).
    ``ventricular`` is the shape model of the beats' ventricular complexes
    (``channels.ventricular``) that the morphology channel judges, ``ventricular_stats`` the
    (centre, scale) of its log losses; None for a baseline saved before that window, whose
    morphology channel judges the whole beat with ``shape``."""

    patient_id: str
    source: str
    n_beats: int
    shape: ShapeModel
    shape_stats: tuple[float, float]
    rr_stats: tuple[np.ndarray, np.ndarray]
    threshold: Threshold
    baseline_scores: np.ndarray = field(
        default_factory=lambda: np.empty(0), repr=False, compare=False
    )
    local_stats: tuple[float, float] | None = None
    ventricular: ShapeModel | None = None
    ventricular_stats: tuple[float, float] | None = None

    @property
    def channel_thresholds(self) -> tuple[float, float] | None:
        """(morphology, rhythm) thresholds; None for a baseline saved before the channels."""
        stats = self.threshold.loss_stats
        if self.local_stats is None or "shape_threshold" not in stats:
            return None
        return float(stats["shape_threshold"]), float(stats["rhythm_threshold"])

    def channels(self, beats: np.ndarray, rr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Morphology and rhythm scores (n,) each of beats (n, length) in time order, RR (n, 2)."""
        if self.local_stats is None:
            raise ValueError(f"{self.patient_id}: baseline saved before the channels; refit it")
        if self.ventricular is None:  # saved before the ventricular window: the whole beat
            part, model, stats = np.asarray(beats), self.shape, self.shape_stats
        else:
            part, model, stats = (
                channels.ventricular(beats),
                self.ventricular,
                self.ventricular_stats,
            )
        morph = channels.morphology_score(
            model.loss(part), channels.local_distance(part), stats, self.local_stats
        )
        return morph, channels.rhythm_score(rr, self.rr_stats)

    def score(self, beats: np.ndarray, rr: np.ndarray) -> np.ndarray:
        """Anomaly score (n,) of beats (n, length) in time order with RR context rr (n, 2): above
        ``threshold.value`` = 1 the larger channel score over its threshold (a flagged beat),
        below it the beat's distance from the baseline's shape (``channels.two_tier``)."""
        limits = self.channel_thresholds
        if limits is None:
            return _legacy_score(self, beats, rr)
        morph, rhythm = self.channels(beats, rr)
        level = np.maximum(morph / limits[0], rhythm / limits[1])
        global_z = channels.shape_z(self.shape.loss(beats), self.shape_stats)
        return channels.two_tier(level, global_z, limits[0])

    def flag(self, beats: np.ndarray, rr: np.ndarray) -> np.ndarray:
        """Boolean (n,): score above this patient's threshold."""
        return self.score(beats, rr) > self.threshold.value

    def classify(self, beats: np.ndarray, rr: np.ndarray) -> np.ndarray:
        """AAMI-style call per beat (n,) str: "V" morphology over its threshold, else "S" rhythm
        over its threshold, else "N"."""
        limits = self.channel_thresholds
        if limits is None:
            shape_z, early, pause = _terms(self.shape, self.shape_stats, self.rr_stats, beats, rr)
            flagged = shape_z + early + POST_RR_WEIGHT * pause > self.threshold.value
            return np.where(flagged, np.where(shape_z >= early, "V", "S"), "N")
        morph, rhythm = self.channels(beats, rr)
        return np.where(morph > limits[0], "V", np.where(rhythm > limits[1], "S", "N"))

    def summary(self) -> dict:
        """JSON-ready description (no arrays) for the registry and reports."""
        return {
            "patient_id": self.patient_id,
            "source": self.source,
            "n_beats": self.n_beats,
            "components": int(self.shape.basis.shape[0]),
            "threshold": asdict(self.threshold),
        }

    def save(self, folder: Path) -> list[Path]:
        """Write ``baseline.npz`` (arrays) and ``baseline.json`` (the rest) into ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        arrays = folder / "baseline.npz"
        ventricular = {}
        if self.ventricular is not None:
            ventricular = {"v_mean": self.ventricular.mean, "v_basis": self.ventricular.basis}
        np.savez(
            arrays,
            mean=self.shape.mean,
            basis=self.shape.basis,
            rr_centre=self.rr_stats[0],
            rr_scale=self.rr_stats[1],
            baseline_scores=self.baseline_scores,
            **ventricular,
        )
        meta = folder / "baseline.json"
        stats = {
            "shape_stats": list(self.shape_stats),
            "local_stats": _listed(self.local_stats),
            "ventricular_stats": _listed(self.ventricular_stats),
        }
        meta.write_text(json.dumps(self.summary() | stats))
        return [arrays, meta]

    @classmethod
    def load(cls, folder: Path) -> PatientBaseline:
        """Read a baseline written by ``save``."""
        meta = json.loads((folder / "baseline.json").read_text())
        with np.load(folder / "baseline.npz") as arrays:
            shape = ShapeModel(arrays["mean"], arrays["basis"])
            rr_stats = (arrays["rr_centre"], arrays["rr_scale"])
            scores = arrays["baseline_scores"] if "baseline_scores" in arrays else np.empty(0)
            ventricular = None
            if "v_basis" in arrays:
                ventricular = ShapeModel(arrays["v_mean"], arrays["v_basis"])
        local, v_stats = meta.get("local_stats"), meta.get("ventricular_stats")
        return cls(
            meta["patient_id"],
            meta["source"],
            meta["n_beats"],
            shape,
            tuple(meta["shape_stats"]),
            rr_stats,
            Threshold(**meta["threshold"]),
            scores,
            None if local is None else tuple(local),
            ventricular,
            None if v_stats is None else tuple(v_stats),
        )


def _listed(stats: tuple[float, float] | None) -> list[float] | None:
    return None if stats is None else list(stats)


def robust_stats(values: np.ndarray, floor: float = 1e-9) -> tuple[float, float]:
    """Median and MAD (scaled to a normal std, at least ``floor``) of values (n,)."""
    centre = float(np.median(values))
    return centre, max(1.4826 * float(np.median(np.abs(values - centre))), floor)


def _legacy_score(baseline: PatientBaseline, beats: np.ndarray, rr: np.ndarray) -> np.ndarray:
    """The sum of the terms, as baselines saved before the channels were judged."""
    shape_z, early, pause = _terms(
        baseline.shape, baseline.shape_stats, baseline.rr_stats, beats, rr
    )
    return shape_z + early + POST_RR_WEIGHT * pause


def _terms(
    shape: ShapeModel,
    shape_stats: tuple[float, float],
    rr_stats: tuple[np.ndarray, np.ndarray],
    beats: np.ndarray,
    rr: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positive robust z-scores (n,) each: shape loss, prematurity, pause after."""
    z_shape = (shape.loss(beats) - shape_stats[0]) / shape_stats[1]
    z_rr = (np.asarray(rr, dtype=np.float64) - rr_stats[0]) / rr_stats[1]
    return np.maximum(0.0, z_shape), np.maximum(0.0, -z_rr[:, 0]), np.maximum(0.0, z_rr[:, 1])


def _rr_stats(rr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    stats = [robust_stats(rr[:, j], RR_SCALE_FLOOR) for j in range(2)]
    return np.array([s[0] for s in stats]), np.array([s[1] for s in stats])


def _cross_fitted_losses(beats: np.ndarray, seed: int, variance: float) -> np.ndarray:
    """Shape losses (n,) of baseline beats, each from the model of the other half."""
    halves = np.random.default_rng(seed).permutation(beats.shape[0]) % 2
    losses = np.zeros(beats.shape[0])
    for half in (0, 1):
        model = ShapeModel.fit(beats[halves != half], variance)
        losses[halves == half] = model.loss(beats[halves == half])
    return losses


def _summed_scores(losses: np.ndarray, rr: np.ndarray) -> np.ndarray:
    """The sum of the positive robust z of shape loss, prematurity and pause (n,)."""
    z_rr = (rr - _rr_stats(rr)[0]) / _rr_stats(rr)[1]
    return (
        channels.robust_z(losses, robust_stats(losses))
        + np.maximum(0.0, -z_rr[:, 0])
        + POST_RR_WEIGHT * np.maximum(0.0, z_rr[:, 1])
    )


def log_mean_std_threshold(scores: np.ndarray, k: float) -> Threshold:
    """The seed's rule, mean + k std, on log(1 + score) of baseline scores (n,), mapped back.

    Combined scores are sums of ratios with a long right tail; on the log scale they are close
    enough to normal for mean + k std to mean what it says.
    """
    value = float(np.expm1(mean_std_threshold(np.log1p(scores), k)))
    return Threshold("mean_std_log1p", {"k": k}, value, loss_statistics(scores))


def channel_threshold(
    morph: np.ndarray, rhythm: np.ndarray, global_z: np.ndarray, alpha: float
) -> tuple[Threshold, np.ndarray]:
    """The ``tail`` rule per channel at ``alpha`` / 2 on baseline channel scores (n,) each, at
    least MIN_CHANNEL_Z; returns the threshold (value 1) and the baseline's scores (n,) on it
    (``global_z`` (n,): their shape z, for the scores below 1)."""
    limits = [max(tail_threshold(x, alpha / 2), MIN_CHANNEL_Z) for x in (morph, rhythm)]
    level = np.maximum(morph / limits[0], rhythm / limits[1])
    scores = channels.two_tier(level, global_z, limits[0])
    stats = loss_statistics(scores) | {"shape_threshold": limits[0], "rhythm_threshold": limits[1]}
    return Threshold("tail", {"alpha": alpha}, 1.0, stats), scores


def fit_patient_baseline(
    patient_id: str,
    beats: np.ndarray,
    rr: np.ndarray,
    *,
    source: str,
    curated: bool = True,
    rule: str = "tail",
    alpha: float = 0.01,
    k: float = 3.0,
    variance: float = 0.99,
    trim_quantile: float = 0.9,
    seed: int = 0,
) -> PatientBaseline:
    """Fit a patient's baseline from beats (n, length) z-normalised, in time order, and rr (n, 2).

    ``curated`` baselines (e.g. beats a clinician confirmed) are used whole; otherwise beats whose
    cross-fitted summed score is above the ``trim_quantile`` are dropped once before fitting
    (ectopic beats in an unreviewed strip). The threshold: ``rule`` "tail" (false-alarm budget
    ``alpha`` split over the two channels) or "mean_std_log1p" (``k``, on the summed score).
    Raises ValueError below MIN_BASELINE_BEATS beats.
    """
    beats, rr = np.asarray(beats, dtype=np.float64), np.asarray(rr, dtype=np.float64)
    if beats.shape[0] < MIN_BASELINE_BEATS:
        raise ValueError(f"{patient_id}: {beats.shape[0]} baseline beats < {MIN_BASELINE_BEATS}")
    if rule not in THRESHOLD_RULES:
        raise ValueError(f"unknown patient threshold rule {rule!r}; choose {THRESHOLD_RULES}")
    if not curated:
        scores = _summed_scores(_cross_fitted_losses(beats, seed, variance), rr)
        keep = scores <= np.quantile(scores, trim_quantile)
        beats, rr = beats[keep], rr[keep]
    losses = _cross_fitted_losses(beats, seed, variance)
    shape_stats, rr_stats = robust_stats(channels.log_of(losses)), _rr_stats(rr)
    complexes = channels.ventricular(beats)
    v_losses = _cross_fitted_losses(complexes, seed, variance)
    ventricular = ShapeModel.fit(complexes, variance)
    v_stats = robust_stats(channels.log_of(v_losses))
    local = channels.local_distance(complexes)
    local_stats = robust_stats(channels.log_of(local[np.isfinite(local)]))
    if rule == "mean_std_log1p":
        scores = _summed_scores(losses, rr)
        threshold = log_mean_std_threshold(scores, k)
        local_stats = ventricular = v_stats = None
        shape_stats = robust_stats(losses)  # the summed score's linear z
    else:
        morph = channels.morphology_score(v_losses, local, v_stats, local_stats)
        rhythm = channels.rhythm_score(rr, rr_stats, gate=False)
        global_z = channels.shape_z(losses, shape_stats)
        threshold, scores = channel_threshold(morph, rhythm, global_z, alpha)
    return PatientBaseline(
        patient_id=patient_id,
        source=source,
        n_beats=int(beats.shape[0]),
        shape=ShapeModel.fit(beats, variance),
        shape_stats=shape_stats,
        rr_stats=rr_stats,
        threshold=threshold,
        baseline_scores=scores,
        local_stats=local_stats,
        ventricular=ventricular,
        ventricular_stats=v_stats,
    )
