"""The two anomaly channels of a patient baseline: morphology and rhythm, per beat.

Both read only what a recording's beats carry, in time order: the z-normalised beats (n, length)
and the RR context (n, 2) of ``ecgmon.recordings.rr_features`` (RR before and after each beat
over the running median RR). Nothing here knows a label.

- **Morphology** (ventricular ectopy: a different QRS-T), judged on the ventricular complex only
  (``ventricular``: VENTRICULAR_S, 150 ms before to 300 ms after the R peak, out of the beat's
  250 ms before to 450 ms after): the atrial waves (the P wave, the f waves of fibrillation and
  flutter) and, at fast rates, the neighbouring beats' waves that the full window holds are
  supraventricular or not the beat's own, and they made normal beats look ventricular. The
  complex's reconstruction loss under the baseline's subspace of complexes, as a robust z-score
  of its logarithm against the baseline's own (losses are scale quantities: an ectopic beat's is
  hundreds of times a normal one's, drift and noise multiply it by a few); and the same against
  the beat's neighbours: the mean squared difference from the median of the LOCAL_BEATS
  complexes either side (itself left out). A beat is as anomalous as
  the *smaller* of the two: an ectopic beat differs from the patient's baseline and from the beats
  around it, while a sustained change of every beat (rate-dependent T waves, the f waves of atrial
  fibrillation, electrode drift) differs from the baseline only. The price: a run of more than
  LOCAL_BEATS ectopic beats in a row (sustained ventricular tachycardia) becomes its own
  neighbourhood.
- **Rhythm** (supraventricular ectopy: a normal shape, early): the positive robust z-scores of
  prematurity (short RR before) plus half that of a long RR after, against the baseline's RR
  context (de Chazal et al. 2004; Llamedo & Martinez 2011: pre-RR, post-RR and their ratio to
  the local RR). Beats inside an irregular stretch get no rhythm score: in atrial fibrillation
  every RR differs from the last and prematurity means nothing beat by beat. A stretch is
  irregular when fewer than REGULAR_SHARE of its RR intervals repeat (within REPEAT_TOLERANCE)
  one of the REPEAT_LAGS intervals before them: sinus rhythm with ectopic beats, bigeminy and
  trigeminy repeat, fibrillation does not (the RR "irregularly irregular", Lorenz-plot view of
  Sarkar et al. 2008).
"""

from __future__ import annotations

import numpy as np

from ecgmon.recordings import POST_S, PRE_S, normalise_beats

VENTRICULAR_S = (0.15, 0.30)
"""Seconds before and after the R peak that the morphology channel judges (QRS-T, the P wave and
the next beat's waves at rates up to about 130 bpm left out); chosen between (0.10, 0.15) and this
on the ten shared MIT-BIH records (docs/recordings.md)."""
LOCAL_BEATS = 15
"""Neighbours either side whose median beat is a beat's local template."""
POST_RR_WEIGHT = 0.5
"""Weight of a long RR after (compensatory pause) in the rhythm score, against prematurity 1."""
REPEAT_TOLERANCE = 0.05
"""Two RR intervals repeat when they differ by at most this share of the later one."""
REPEAT_LAGS = 3
"""An RR repeats when one of this many intervals before it matches (sinus, bigeminy, trigeminy)."""
REGULAR_WINDOW = 32
"""Beats around each beat over which the share of repeating RR intervals is taken."""
MIN_INTERVALS = REGULAR_WINDOW // 2
"""Fewer RR intervals than this around a beat say nothing about regularity: taken as regular."""
REGULAR_SHARE = 0.5
"""Below this share of repeating RR intervals a stretch is irregular (fibrillation-like)."""


def local_distance(beats: np.ndarray, half: int = LOCAL_BEATS) -> np.ndarray:
    """Mean squared difference (n,) of each beat (n, length) from the element-wise median of the
    ``half`` beats either side, itself left out; NaN for a beat with fewer than 2 neighbours."""
    beats = np.asarray(beats, dtype=np.float64)
    n = beats.shape[0]
    out = np.full(n, np.nan)
    for i in range(n):
        others = np.r_[np.arange(max(0, i - half), i), np.arange(i + 1, min(n, i + half + 1))]
        if others.size >= 2:
            template = np.median(beats[others], axis=0)
            out[i] = float(np.mean((beats[i] - template) ** 2))
    return out


def ventricular(beats: np.ndarray, pre_s: float = PRE_S, post_s: float = POST_S) -> np.ndarray:
    """The VENTRICULAR_S part (n, m) of beats (n, length) that span ``pre_s`` before to ``post_s``
    after the R peak, z-normalised per beat again (float32)."""
    beats = np.asarray(beats)
    length, span = beats.shape[1], pre_s + post_s
    lo = max(0, round(length * (pre_s - VENTRICULAR_S[0]) / span))
    hi = min(length, round(length * (pre_s + VENTRICULAR_S[1]) / span))
    return normalise_beats(beats[:, lo:hi])


def repeating_share(rr_before: np.ndarray, window: int = REGULAR_WINDOW) -> np.ndarray:
    """Share (n,) of the RR intervals in the ``window`` beats around each beat that repeat one of
    the REPEAT_LAGS intervals before them; rr_before (n,) in beat order (any common scale); 1
    where fewer than MIN_INTERVALS intervals are around the beat."""
    rr = np.asarray(rr_before, dtype=np.float64)
    n = rr.size
    repeats = np.zeros(n, dtype=bool)
    for lag in range(1, REPEAT_LAGS + 1):
        repeats[lag:] |= np.abs(rr[lag:] - rr[:-lag]) <= REPEAT_TOLERANCE * rr[lag:]
    counted = np.arange(n) >= 1  # the first interval has nothing before it to repeat
    total = np.cumsum(np.r_[0, repeats & counted])
    seen = np.cumsum(np.r_[0, counted])
    lo = np.clip(np.arange(n) - window // 2, 0, n)
    hi = np.clip(np.arange(n) + window // 2 + 1, 0, n)
    counted_here = seen[hi] - seen[lo]
    share = (total[hi] - total[lo]) / np.maximum(counted_here, 1)
    # too few intervals to call a stretch irregular (a handful of beats): regular
    return np.where(counted_here >= MIN_INTERVALS, share, 1.0)


def irregular(rr_before: np.ndarray) -> np.ndarray:
    """Boolean (n,): the beat lies in an irregular (fibrillation-like) stretch of rhythm."""
    return repeating_share(rr_before) < REGULAR_SHARE


def robust_z(values: np.ndarray, stats: tuple[float, float]) -> np.ndarray:
    """Positive part of (values - centre) / scale, (n,)."""
    return np.maximum(0.0, (np.asarray(values, dtype=np.float64) - stats[0]) / stats[1])


def rhythm_score(
    rr: np.ndarray, rr_stats: tuple[np.ndarray, np.ndarray], gate: bool = True
) -> np.ndarray:
    """Rhythm score (n,) of RR context rr (n, 2): prematurity z + POST_RR_WEIGHT x pause z;
    with ``gate``, 0 in irregular stretches (a baseline strip is taken as it is: no gate)."""
    rr = np.asarray(rr, dtype=np.float64)
    z = (rr - rr_stats[0]) / rr_stats[1]
    score = np.maximum(0.0, -z[:, 0]) + POST_RR_WEIGHT * np.maximum(0.0, z[:, 1])
    return np.where(irregular(rr[:, 0]), 0.0, score) if gate else score


def morphology_score(
    loss: np.ndarray,
    local: np.ndarray,
    shape_stats: tuple[float, float],
    local_stats: tuple[float, float],
) -> np.ndarray:
    """Morphology score (n,): the smaller of the robust z of log subspace loss (n,) and of log
    local distance (n,) (``*_stats`` are of the logs); the subspace z alone where local is NaN."""
    global_z = shape_z(loss, shape_stats)
    local_z = robust_z(np.nan_to_num(log_of(local), nan=np.inf), local_stats)
    return np.minimum(global_z, local_z)


def shape_z(loss: np.ndarray, shape_stats: tuple[float, float]) -> np.ndarray:
    """Positive robust z (n,) of the log subspace loss (n,) against the baseline's."""
    return robust_z(log_of(loss), shape_stats)


def two_tier(level: np.ndarray, global_z: np.ndarray, shape_limit: float) -> np.ndarray:
    """The patient score (n,): ``level`` (the larger channel score over its threshold) where it
    is above 1 (a flagged, ectopic beat); else how far the beat is from the baseline's shape,
    global_z / shape_limit mapped into [0, 1) by x / (1 + x). Flagged beats rank above all others,
    and among the rest a sustained change (a new bundle branch block, fibrillation) ranks above
    the patient's usual beats, without flagging anyone beat by beat."""
    change = np.asarray(global_z, dtype=np.float64) / shape_limit
    return np.where(level > 1.0, level, change / (1.0 + change))


def log_of(values: np.ndarray) -> np.ndarray:
    """Natural log of losses or distances (n,), floored at 1e-12 (exact reconstructions)."""
    return np.log(np.maximum(np.asarray(values, dtype=np.float64), 1e-12))
