"""NeuroKit2's ECG cleaning and three of its R-peak detectors, in numpy and scipy.

NeuroKit2 0.3.0 runs Elgendi 2010 (``ecg_peaks(method="elgendi2010")``) and Rodrigues 2021
(``method="rodrigues2021"``) as Python loops over every sample: about 1.0 and 0.4 CPU seconds per
30 minutes at 360 Hz, two thirds of all of a recording's per-signal cost; and importing NeuroKit2
for the rest (its cleaning filters, Pan-Tompkins) costs about 4.5 CPU seconds per run
(docs/performance.md). The functions here give the same output (the same algorithm, step for
step, on the same scipy filters; ``tests/data/test_qrs.py`` compares them with NeuroKit2 on the
shared MIT-BIH records and on synthetic signal). The published methods and their parameters are
NeuroKit2's; nothing here is tuned.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.signal import butter, filtfilt, find_peaks, lfilter, sosfilt, sosfilt_zi, sosfiltfilt

POWERLINE_HZ = 50
"""NeuroKit2's default powerline frequency for its 'neurokit' cleaning."""


def fill_missing(signal: np.ndarray) -> np.ndarray:
    """``signal`` (n,) with each NaN replaced by the last sample before it, leading NaNs by the
    first sample (NeuroKit2's ``signal_fillmissing(method="both")``, which its cleaning applies);
    ValueError when no sample is a number."""
    missing = np.isnan(signal)
    if not missing.any():
        return signal
    if missing.all():
        raise ValueError("the signal has no sample that is a number")
    last = np.maximum.accumulate(np.where(missing, 0, np.arange(signal.size)))
    filled = signal[last]
    first = int(np.argmax(~missing))
    filled[:first] = signal[first]
    return filled


def neurokit_clean(signal: np.ndarray, fs: float) -> np.ndarray:
    """NeuroKit2's 'neurokit' cleaning of an ECG ``signal`` (n,): NaNs filled, a zero-phase
    0.5 Hz order-5 Butterworth high-pass, then a zero-phase moving average over one powerline
    period."""
    sos = butter(5, 0.5, btype="highpass", output="sos", fs=fs)
    clean = sosfiltfilt(sos, fill_missing(signal))
    kernel = np.ones(int(fs / POWERLINE_HZ)) if fs >= 100 else np.ones(2)
    return filtfilt(kernel, [len(kernel)], clean, method="pad")


def band_clean(signal: np.ndarray, fs: float, low: float, high: float, order: int) -> np.ndarray:
    """NeuroKit2's causal Butterworth band-pass ('butterworth_zi') of ``signal`` (n,), NaNs
    filled first, started from the steady state of the signal's mean. Pan-Tompkins cleaning is
    (5, 15) Hz order 1, Elgendi's (8, 20) Hz order 2."""
    signal = fill_missing(signal)
    sos = butter(order, sorted([low, high]), btype="bandpass", output="sos", fs=fs)
    return sosfilt(sos, signal, zi=sosfilt_zi(sos) * np.mean(signal))[0]


def moving_average(signal: np.ndarray, window: int) -> np.ndarray:
    """Causal moving average (n,) of ``signal`` (n,) over ``window`` samples; the first
    ``window - 1`` values average only the samples so far (NeuroKit2's ``_ecg_findpeaks_MWA``)."""
    window = int(window)
    mwa = uniform_filter1d(signal, window, origin=(window - 1) // 2)
    head = min(window - 1, len(signal))
    mwa[:head] = np.cumsum(signal[:head]) / np.linspace(1, head, head)
    return mwa


def elgendi2010_peaks(filtered: np.ndarray, fs: float) -> np.ndarray:
    """Elgendi et al. 2010 R peaks (int64, sorted) of an 8-20 Hz band-passed ECG ``filtered`` (n,).

    Blocks where the 120 ms moving average of |x| exceeds the 600 ms one and last longer than
    80 ms; each gives its largest sample, kept when more than 300 ms after the last kept peak.
    """
    mwa_qrs = moving_average(np.abs(filtered), int(0.12 * fs))
    mwa_beat = moving_average(np.abs(filtered), int(0.6 * fs))
    change = np.diff((mwa_qrs > mwa_beat).astype(np.int8))
    rises, falls = np.flatnonzero(change == 1), np.flatnonzero(change == -1)
    if rises.size == 0:
        return np.zeros(0, dtype=np.int64)
    falls = falls[falls > rises[0]]  # a block open at the first sample has no start
    starts, ends = rises[: falls.size], falls - 1
    long_enough = ends - starts > int(0.08 * fs)
    peaks: list[int] = []
    min_gap = int(0.3 * fs)
    for start, end in zip(starts[long_enough], ends[long_enough], strict=True):
        detection = int(start + np.argmax(filtered[start : end + 1]))
        if not peaks or detection - peaks[-1] > min_gap:
            peaks.append(detection)
    return np.asarray(peaks, dtype=np.int64)


def rodrigues2021_peaks(cleaned: np.ndarray, fs: float) -> np.ndarray:
    """Rodrigues 2021 R peaks (int64) of a cleaned ECG ``cleaned`` (n,): a three-state machine on
    the moving sum of the squared double difference (Gutiérrez-Rivas 2015, Sadhukhan 2012).

    Per beat: the largest value in 260 ms, then a short wait, then a threshold (the running mean
    of the peak amplitudes) that decays until the signal reaches it.
    """
    n_sum = int(np.clip(np.round(3 * fs / 128), 2, None))
    lag = n_sum - 1
    decay = float(np.exp(-((0.7 * fs) / 128 + 2.7) / fs))
    diff = cleaned[lag:] - cleaned[:-lag]
    processed = lfilter(np.ones(n_sum), [1], np.square(np.diff(diff)))
    return np.asarray(_rodrigues_states(processed, fs, decay), dtype=np.int64)


def _rodrigues_states(processed: np.ndarray, fs: float, decay: float) -> list[int]:
    """The state machine of ``rodrigues2021_peaks`` over ``processed`` (n,), a beat per step."""
    total, i, amp_mean, position = processed.size, 1, 0.0, 0
    peaks: list[int] = []
    while i < total:
        tf1 = np.round(i + 0.26 * fs)
        end = min(int(tf1), total)
        amp = 0.0
        if end > i:
            k = int(np.argmax(processed[i:end]))
            if processed[i + k] > 0.0:
                amp, position = float(processed[i + k]), i + k + 1
            i = end
        amp_mean = (19 / 20) * amp_mean + (1 / 20) * amp
        peaks.append(position)
        tf2 = i + np.round(0.2 * 2 - (tf1 - position))
        if i <= tf2:
            i = int(np.floor(tf2)) + 1
        i = _first_crossing(processed, i, amp_mean, decay)
    return peaks


def _first_crossing(processed: np.ndarray, i: int, threshold: float, decay: float) -> int:
    """First index >= ``i`` where ``processed`` reaches a threshold that starts at ``threshold``
    and is multiplied by ``decay`` each sample (``processed.size`` when it never does)."""
    block = 512
    while i < processed.size:
        stop = min(i + block, processed.size)
        factors = np.full(stop - i, decay)
        factors[0] = threshold
        levels = np.cumprod(factors)  # the same sequence of products as a running multiply
        reached = np.flatnonzero(processed[i:stop] >= levels)
        if reached.size:
            return i + int(reached[0])
        threshold, i = float(levels[-1]) * decay, stop
    return i


def pantompkins1985_peaks(filtered: np.ndarray, fs: float) -> np.ndarray:
    """Pan & Tompkins 1985 R peaks (int64) of a 5-15 Hz band-passed ECG ``filtered`` (n,):
    the 120 ms moving average of the squared derivative (its first 200 ms zeroed), searched by
    NeuroKit2's adaptive thresholds (``_ecg_findpeaks_peakdetect``)."""
    derivative = np.diff(filtered)
    mwa = moving_average(derivative * derivative, int(0.12 * fs))
    mwa[: int(0.2 * fs)] = 0
    return np.asarray(_pantompkins_thresholds(mwa, fs), dtype=np.int64)


def _pantompkins_thresholds(detection: np.ndarray, fs: float) -> list[int]:
    """Local maxima of ``detection`` (n,) above the running threshold I1 between the signal and
    noise levels, 300 ms apart; after a gap of 1.66 mean RR, the largest skipped maximum above
    I1 / 2 is taken back (search-back)."""
    min_peak, min_missed = int(0.3 * fs), int(0.25 * fs)
    peaks: list[int] = []
    spki = npki = 0.0
    last_peak, last_index = 0, -1
    candidates, _ = find_peaks(detection, plateau_size=(1, 1))
    for index, peak in enumerate(candidates):
        value = detection[peak]
        threshold = npki + 0.25 * (spki - npki)
        if not (value > threshold and peak > last_peak + min_peak):
            npki = 0.125 * value + 0.875 * npki
            continue
        peaks.append(peak)
        if len(peaks) > 9 and peak - last_peak > int(1.66 * ((peaks[-2] - peaks[-10]) // 8)):
            missed = candidates[last_index + 1 : index]
            missed = missed[(missed > last_peak + min_missed) & (missed < peak - min_missed)]
            missed = missed[detection[missed] > 0.5 * threshold]
            if len(missed) > 0:
                peaks[-1] = missed[np.argmax(detection[missed])]
                peaks.append(peak)
        last_peak, last_index = peak, index
        spki = 0.125 * value + 0.875 * spki
    return peaks
