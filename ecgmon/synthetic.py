"""Synthetic heartbeats for offline demos and tests: P-QRS-T as a sum of Gaussian waves.

The morphology follows ECGSYN (McSharry et al., IEEE Trans. Biomed. Eng. 50(3), 2003): each wave
i of P, Q, R, S, T sits at an angle theta_i of the cardiac cycle with width b_i; integrating the
ECGSYN derivative over one cycle gives a Gaussian of height a_i * b_i**2, and the heart-rate factor
sqrt(hr / 60) moves and widens the waves as in ECGSYN. Each beat spans one RR interval resampled to
``length`` samples, has jittered amplitudes, widths, timing and heart rate, baseline wander and
noise, and is z-normalised like ECG5000.

Labels: 1 = normal, 2 = premature ventricular beat (no P wave, wide tall QRS, inverted T),
3 = ST elevation or T-wave inversion, 4 = noise burst or motion artefact.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ecgmon.errors import ConfigurationError, DataFormatError
from ecgmon.sources.datasets import LabelledBeats

NORMAL, PVC, ST_T_CHANGE, ARTEFACT = 1.0, 2.0, 3.0, 4.0
ANOMALY_LABELS: tuple[float, ...] = (PVC, ST_T_CHANGE, ARTEFACT)

# ECGSYN parameters for P, Q, R, S, T: angles (rad), a_i and widths b_i (rad).
_ANGLES = np.deg2rad([-70.0, -15.0, 0.0, 15.0, 100.0])
_A = np.array([1.2, -5.0, 30.0, -7.5, 0.75])
_WIDTHS = np.array([0.25, 0.1, 0.1, 0.1, 0.4])
_HEIGHTS = _A * _WIDTHS**2 / (_A[2] * _WIDTHS[2] ** 2)  # relative to R = 1 (about 1 mV)
P, Q, R, S, T = range(5)
#: The beat window in cycles relative to the R peak: from before P to after T.
_WINDOW = (-0.3, 0.7)
MIN_LENGTH = 16


def synthetic_beats(
    n: int, length: int = 140, anomaly_fraction: float = 0.1, seed: int = 0
) -> LabelledBeats:
    """``n`` z-normalised beats of ``length`` samples, labels 1 (normal) or 2..4 (anomaly types).

    round(n * anomaly_fraction) beats are anomalous, the types 2, 3, 4 in turn, at random
    positions. Deterministic for a seed.
    """
    _check_arguments(n, length, anomaly_fraction)
    rng = np.random.default_rng(seed)
    labels = _labels(n, anomaly_fraction, rng)
    phase = 2 * np.pi * np.linspace(_WINDOW[0], _WINDOW[1], length, endpoint=False)
    heart_rate = np.clip(rng.normal(75.0, 8.0, n), 45.0, 130.0)  # beats per minute
    heights, angles, widths = _wave_parameters(labels, heart_rate, rng)
    signals = _render(heights, angles, widths, phase)
    _add_st_t_changes(signals, labels == ST_T_CHANGE, angles, widths, heights, phase, rng)
    _add_wander_and_noise(signals, heart_rate, phase, rng)
    _add_artefacts(signals, labels == ARTEFACT, rng)
    source = f"synthetic(n={n}, length={length}, anomaly_fraction={anomaly_fraction}, seed={seed})"
    return LabelledBeats(_z_normalise(signals).astype(np.float32), labels, source)


def write_ucr(beats: LabelledBeats, path: Path) -> Path:
    """Write labelled beats as a UCR tab-separated file (class first, no header); returns path."""
    if beats.labels is None:
        raise DataFormatError(f"Cannot write {beats.source} as UCR text to {path}: no labels.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = np.column_stack([beats.labels, beats.signals.astype(np.float64)])
    np.savetxt(path, table, fmt=["%.17g"] + ["%.9g"] * beats.input_length, delimiter="\t")
    return path


def _check_arguments(n: int, length: int, anomaly_fraction: float) -> None:
    if n < 1:
        raise ConfigurationError(f"The number of synthetic beats must be at least 1, not {n}.")
    if length < MIN_LENGTH:
        raise ConfigurationError(
            f"Synthetic beats need at least {MIN_LENGTH} samples to show P-QRS-T, not {length}."
        )
    if not 0.0 <= anomaly_fraction <= 1.0:
        raise ConfigurationError(
            f"The anomaly fraction must lie between 0 and 1, not {anomaly_fraction}."
        )


def _labels(n: int, anomaly_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """(n,) float64: 1 everywhere but round(n * fraction) random places holding 2, 3, 4, 2, ..."""
    labels = np.full(n, NORMAL)
    n_anomalies = int(round(n * anomaly_fraction))
    places = rng.permutation(n)[:n_anomalies]
    labels[places] = np.resize(np.array(ANOMALY_LABELS), n_anomalies)
    return labels


def _wave_parameters(
    labels: np.ndarray, heart_rate: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-beat heights (relative to R), angles and widths (rad) of P, Q, R, S, T: (n, 5) each."""
    n = labels.shape[0]
    factor = np.sqrt(heart_rate / 60.0)[:, None]
    # ECGSYN moves P and T by sqrt(factor) and Q and S by factor; widths scale by factor.
    angle_scale = np.hstack(
        [np.sqrt(factor), factor, np.ones_like(factor), factor, np.sqrt(factor)]
    )
    heights = _HEIGHTS * np.clip(rng.normal(1.0, 0.12, (n, 5)), 0.4, None)
    angles = _ANGLES * angle_scale + rng.normal(0.0, 0.03, (n, 5)) + rng.normal(0.0, 0.04, (n, 1))
    widths = _WIDTHS * factor * np.clip(rng.normal(1.0, 0.08, (n, 5)), 0.6, None)
    pvc = labels == PVC
    k = int(pvc.sum())
    heights[pvc, P] = 0.0
    heights[pvc, R] *= rng.uniform(1.3, 1.8, k)
    heights[pvc, S] *= rng.uniform(1.5, 2.5, k)
    heights[pvc, T] *= -rng.uniform(0.8, 1.5, k) * 2.0
    widths[pvc, Q:T] *= rng.uniform(2.2, 3.0, (k, 1))
    widths[pvc, T] *= 1.3
    return heights, angles, widths


def _render(
    heights: np.ndarray, angles: np.ndarray, widths: np.ndarray, phase: np.ndarray
) -> np.ndarray:
    """(n, length) sum of the five Gaussian waves sampled at ``phase`` (rad, R peak at 0)."""
    signals = np.zeros((heights.shape[0], phase.shape[0]))
    for wave in range(heights.shape[1]):
        offset = phase[None, :] - angles[:, wave, None]
        signals += heights[:, wave, None] * np.exp(-(offset**2) / (2 * widths[:, wave, None] ** 2))
    return signals


def _add_st_t_changes(
    signals: np.ndarray,
    rows: np.ndarray,
    angles: np.ndarray,
    widths: np.ndarray,
    heights: np.ndarray,
    phase: np.ndarray,
    rng: np.random.Generator,
) -> None:
    """In place: half of ``rows`` get an ST elevation from S into T, the others an inverted T."""
    index = np.flatnonzero(rows)
    elevated = rng.random(index.size) < 0.5
    for row, is_elevation in zip(index, elevated, strict=True):
        start = angles[row, S] + widths[row, S]
        end = angles[row, T] + widths[row, T]
        if is_elevation:
            edge = 0.05
            plateau = 1 / (1 + np.exp(-(phase - start) / edge)) / (1 + np.exp((phase - end) / edge))
            signals[row] += rng.uniform(0.2, 0.4) * plateau
        else:
            t_wave = np.exp(-((phase - angles[row, T]) ** 2) / (2 * widths[row, T] ** 2))
            signals[row] -= heights[row, T] * rng.uniform(1.5, 2.5) * t_wave


def _add_wander_and_noise(
    signals: np.ndarray, heart_rate: np.ndarray, phase: np.ndarray, rng: np.random.Generator
) -> None:
    """In place: respiratory baseline wander (0.15-0.5 Hz) and white noise, relative to R = 1."""
    n = signals.shape[0]
    seconds = phase[None, :] / (2 * np.pi) * (60.0 / heart_rate[:, None])
    frequency = rng.uniform(0.15, 0.5, (n, 1))
    amplitude = rng.uniform(0.0, 0.12, (n, 1))
    start = rng.uniform(0.0, 2 * np.pi, (n, 1))
    signals += amplitude * np.sin(2 * np.pi * frequency * seconds + start)
    signals += rng.normal(0.0, 1.0, signals.shape) * rng.uniform(0.005, 0.02, (n, 1))


def _add_artefacts(signals: np.ndarray, rows: np.ndarray, rng: np.random.Generator) -> None:
    """In place: half of ``rows`` get a burst of strong noise, the others a spike and a step."""
    length = signals.shape[1]
    for row in np.flatnonzero(rows):
        width = int(rng.integers(length // 5, 2 * length // 5 + 1))
        start = int(rng.integers(0, length - width + 1))
        if rng.random() < 0.5:
            envelope = np.hanning(width)
            burst = rng.normal(0.0, rng.uniform(0.25, 0.5), width)
            signals[row, start : start + width] += envelope * burst
        else:
            sign = rng.choice([-1.0, 1.0])
            signals[row, start] += sign * rng.uniform(1.0, 1.8)
            signals[row, start:] += sign * rng.uniform(0.3, 0.6)


def _z_normalise(signals: np.ndarray) -> np.ndarray:
    """(n, length) each row shifted to mean 0 and scaled to standard deviation 1."""
    centred = signals - signals.mean(axis=1, keepdims=True)
    return centred / centred.std(axis=1, keepdims=True)
