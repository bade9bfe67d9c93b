"""The numpy Elgendi 2010 and Rodrigues 2021 detectors give NeuroKit2's peaks (real records)."""

from __future__ import annotations

from pathlib import Path

import neurokit2 as nk
import numpy as np
import pytest

from ecgmon import qrs
from ecgmon import recordings as rec


# 108: noisy, large P waves; 232: long pauses; 106: frequent PVCs
@pytest.mark.parametrize("name", ["108", "232", "106"])
def test_same_peaks_as_neurokit(mitbih: Path, name: str) -> None:
    recording = rec.read_recording(mitbih / "records" / name, sampto=360 * 600)
    fs = recording.fs
    band = nk.ecg_clean(recording.signal, sampling_rate=fs, method="elgendi2010")
    cleaned = rec.clean_signal(recording.signal, fs)
    elgendi = nk.ecg_peaks(band, sampling_rate=fs, method="elgendi2010")[1]["ECG_R_Peaks"]
    rodrigues = nk.ecg_peaks(cleaned, sampling_rate=fs, method="rodrigues2021")[1]["ECG_R_Peaks"]
    assert len(elgendi) > 500 and len(rodrigues) > 500
    np.testing.assert_array_equal(qrs.elgendi2010_peaks(band, fs), elgendi)
    np.testing.assert_array_equal(qrs.rodrigues2021_peaks(cleaned, fs), rodrigues)


def neurokit_vote(signal: np.ndarray, fs: float) -> np.ndarray:
    """``detect_r_peaks``'s vote with every cleaning and detector run by NeuroKit2 itself."""
    cleaned = nk.ecg_clean(signal, sampling_rate=fs, method="neurokit")
    candidates = []
    for detector, cleaning in rec._VOTERS:
        band = cleaned if cleaning == "neurokit" else nk.ecg_clean(signal, fs, method=cleaning)
        candidates.append(nk.ecg_peaks(band, sampling_rate=fs, method=detector)[1]["ECG_R_Peaks"])
    peaks = rec.vote_peaks(candidates, min_votes=2, tolerance=int(0.1 * fs))
    return rec.drop_noise_peaks(cleaned, rec.refine_peaks(cleaned, np.sort(peaks), fs))


def assert_same_as_neurokit(signal: np.ndarray, fs: float) -> None:
    """Cleaning, Pan-Tompkins and the whole vote of ``ecgmon`` equal NeuroKit2's, to the bit."""
    for method, band in (("pantompkins1985", (5, 15, 1)), ("elgendi2010", (8, 20, 2))):
        np.testing.assert_array_equal(
            qrs.band_clean(signal, fs, *band), nk.ecg_clean(signal, fs, method=method)
        )
    cleaned = nk.ecg_clean(signal, sampling_rate=fs, method="neurokit")
    np.testing.assert_array_equal(rec.clean_signal(signal, fs), cleaned)
    band = nk.ecg_clean(signal, sampling_rate=fs, method="pantompkins1985")
    expected = nk.ecg_peaks(band, sampling_rate=fs, method="pantompkins1985")[1]["ECG_R_Peaks"]
    assert len(expected) > 50
    np.testing.assert_array_equal(qrs.pantompkins1985_peaks(band, fs), expected)
    np.testing.assert_array_equal(rec.detect_r_peaks(signal, fs), neurokit_vote(signal, fs))


@pytest.mark.parametrize("name", ["100", "108", "232", "106", "223"])
def test_cleaning_and_vote_are_neurokits_on_real_records(mitbih: Path, name: str) -> None:
    recording = rec.read_recording(mitbih / "records" / name, sampto=360 * 600)
    assert_same_as_neurokit(recording.signal, recording.fs)


@pytest.mark.parametrize(("fs", "heart_rate", "seed"), [(360, 70, 1), (250, 110, 2), (500, 45, 3)])
def test_cleaning_and_vote_are_neurokits_on_synthetic_signal(fs, heart_rate, seed) -> None:
    """NeuroKit2's simulated ECG with noise, baseline wander and 50 Hz hum, at three rates."""
    signal = nk.ecg_simulate(
        duration=180, sampling_rate=fs, heart_rate=heart_rate, noise=0.05, random_state=seed
    )
    t = np.arange(signal.size) / fs
    signal = signal + 0.4 * np.sin(2 * np.pi * 0.2 * t) + 0.05 * np.sin(2 * np.pi * 50 * t)
    assert_same_as_neurokit(signal, float(fs))


@pytest.mark.filterwarnings("ignore::neurokit2.misc.NeuroKitWarning")
def test_missing_samples_are_filled_as_neurokit_fills_them() -> None:
    """NaN samples at the start, inside and at the end: NeuroKit2 fills them before cleaning."""
    signal = nk.ecg_simulate(duration=120, sampling_rate=360, heart_rate=80, random_state=4)
    for gap in (slice(0, 50), slice(9000, 9400), slice(20000, 20001), slice(-30, None)):
        signal[gap] = np.nan
    assert_same_as_neurokit(signal, 360.0)
    assert np.array_equal(
        qrs.fill_missing(np.array([np.nan, 1.0, np.nan, 3.0, np.nan])), [1, 1, 1, 3, 3]
    )


def test_a_recording_is_cut_without_importing_neurokit(mitbih: Path) -> None:
    """A WFDB record read, cleaned, detected and cut as a score run does it imports no
    NeuroKit2 (about 4.5 CPU seconds of imports per run)."""
    import subprocess
    import sys

    header = str(mitbih / "records" / "223.hea")
    code = (
        "import sys\n"
        "from ecgmon.recordings import new_recording_beats\n"
        f"n = sum(len(beats) for beats in new_recording_beats({header!r}, 187))\n"
        "print(n, 'neurokit2' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    count, imported = out.stdout.split()
    assert int(count) > 2500 and imported == "False"
