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
