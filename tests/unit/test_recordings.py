"""ecgmon.recordings on tiny hand-made signals whose answers are exact."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from ecgmon import recordings as rec
from ecgmon.errors import DataFormatError
from tests.wfdb_records import write_record

FS = 360.0


def spike_train(peaks: list[int], n: int) -> np.ndarray:
    """Narrow Gaussian 'QRS' spikes (1 mV, sd 3 samples) at ``peaks`` on a flat line, (n,)."""
    t = np.arange(n)
    return sum(np.exp(-0.5 * ((t - p) / 3.0) ** 2) for p in peaks).astype(np.float64)


def test_vote_keeps_peaks_two_of_three_detectors_agree_on() -> None:
    a, b, c = np.array([100, 500, 900]), np.array([104, 700, 903]), np.array([98, 1300])
    assert rec.vote_peaks([a, b, c], min_votes=2, tolerance=10).tolist() == [100, 901]


def test_refine_moves_to_largest_deflection_and_drops_close_duplicates() -> None:
    signal = spike_train([200, 600], 1000)
    signal[610] = -2.0  # a deeper (negative) deflection 10 samples after the second spike
    assert rec.refine_peaks(signal, np.array([195, 605, 650]), FS).tolist() == [200, 610]


def test_detector_finds_every_spike_to_the_sample() -> None:
    peaks = [int(FS * (0.5 + 0.8 * i)) for i in range(12)]
    found = rec.detect_r_peaks(spike_train(peaks, int(FS * 10.5)), FS)
    assert found.tolist() == peaks


def test_cut_beats_is_the_window_when_no_resampling_is_needed() -> None:
    pre, post = rec.beat_window(FS)
    ramp = np.arange(1000, dtype=np.float64)
    beats = rec.cut_beats(ramp, np.array([400]), FS, pre + post)
    assert beats.dtype == np.float32 and beats.shape == (1, pre + post)
    assert beats[0, 0] == 400 - pre and beats[0, pre] == 400


def test_complete_mask_and_incomplete_beats_are_refused() -> None:
    pre, post = rec.beat_window(FS)
    peaks = np.array([pre - 1, pre, 1000 - post, 1000 - post + 1])
    assert rec.complete_mask(peaks, 1000, FS).tolist() == [False, True, True, False]
    with pytest.raises(ValueError, match="complete"):
        rec.cut_beats(np.zeros(1000), peaks, FS, 50)


def test_normalise_beats_per_row() -> None:
    beats = np.array([[1.0, 2.0, 3.0, 4.0], [5.0, 5.0, 5.0, 5.0]])
    out = rec.normalise_beats(beats)
    np.testing.assert_allclose(out[0].mean(), 0.0, atol=1e-7)
    np.testing.assert_allclose(out[0].std(), 1.0, atol=1e-6)
    assert out[1].tolist() == [0.0, 0.0, 0.0, 0.0]


def test_rr_features_show_a_premature_beat_and_its_pause() -> None:
    peaks = np.array([0, 300, 600, 900, 1200, 1380, 1800, 2100])  # beat 5 early, pause after
    rr = rec.rr_features(peaks)
    assert rr[3].tolist() == [1.0, 1.0]
    assert rr[5].tolist() == pytest.approx([0.6, 420 / 300])


def test_read_annotations_and_match(tmp_path: Path) -> None:
    path = tmp_path / "100annotations.txt"
    path.write_text(
        "      Time   Sample #  Type  Sub Chan  Num\tAux\n"
        "    0:00.050       18     +    0    0    0\t(N\n"
        "    0:00.214       77     N    0    0    0\n"
        "    0:01.028      370     V    0    0    0\n"
        "    0:01.839      662     N    0    0    0\n"
    )
    notes = rec.read_annotations(path)
    assert notes.samples.tolist() == [18, 77, 370, 662]
    beats = notes.beats()
    assert beats.symbols.tolist() == ["N", "V", "N"]
    detected = np.array([80, 300, 380, 900])
    assert rec.match_beats(detected, beats.samples, tolerance=54).tolist() == [0, -1, 1, -1]


def test_bad_annotation_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_text("Time Sample # Type\n0:00.1 12 N\n0:00.2 oops N\n")
    with pytest.raises(DataFormatError, match="bad.txt line 3"):
        rec.read_annotations(path)


def test_grown_recording_yields_only_its_new_beats(tmp_path: Path) -> None:
    peaks = [int(FS * (0.5 + 0.8 * i)) for i in range(40)]
    full = spike_train(peaks, int(FS * 32.5))
    write_record(tmp_path, "rec1", full[: int(FS * 15)])
    first = next(rec.iter_recording_beats(tmp_path, 64, {}))
    assert first.record_ids[0] == f"rec1:MLII:{first.samples[0]}"
    assert first.signals.shape == (len(first), 64) and first.signals.dtype == np.float32
    assert first.recorded_at[0] == rec.EPOCH + timedelta(seconds=first.samples[0] / FS)
    assert first.samples[-1] < FS * 15 - rec.TAIL_GUARD_S * FS
    write_record(tmp_path, "rec1", full)
    second = next(rec.iter_recording_beats(tmp_path, 64, {"rec1": first.watermark}))
    emitted = first.samples.tolist() + second.samples.tolist()
    assert emitted == [p for p in peaks if p >= rec.beat_window(FS)[0]][: len(emitted)]
    assert len(emitted) == len(set(emitted)) and second.samples[0] > first.watermark
    again = next(rec.iter_recording_beats(tmp_path, 64, {"rec1": second.watermark}))
    assert len(again) == 0 and again.watermark == second.watermark


def _reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int | None]]:
    """Spy on wfdb.rdrecord: the (sampfrom, sampto) of every signal read."""
    import wfdb

    calls: list[tuple[int, int | None]] = []
    real = wfdb.rdrecord

    def spy(*args: object, **kwargs: object) -> object:
        calls.append((int(kwargs.get("sampfrom", 0)), kwargs.get("sampto")))
        return real(*args, **kwargs)

    monkeypatch.setattr(wfdb, "rdrecord", spy)
    return calls


def test_grown_recording_reads_only_its_new_signal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    peaks = [int(FS * (0.5 + 0.8 * i)) for i in range(150)]
    full = spike_train(peaks, int(FS * 121))
    write_record(tmp_path, "rec1", full[: int(FS * 60)])
    first = list(rec.iter_recording_beats(tmp_path, 64, {}))
    mark = first[-1].watermark
    write_record(tmp_path, "rec1", full)
    calls = _reads(monkeypatch)
    second = list(rec.iter_recording_beats(tmp_path, 64, {"rec1": mark}))
    assert calls and min(start for start, _ in calls) >= mark - rec.OVERLAP_S * FS
    emitted = [p for item in first + second for p in item.samples.tolist()]
    assert emitted == [p for p in peaks if p < FS * 120][: len(emitted)]
    assert len(emitted) >= len([p for p in peaks if p < FS * 119])


def test_new_signal_is_read_in_chunks_and_every_beat_comes_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    peaks = [int(FS * (0.5 + 0.8 * i)) for i in range(150)]
    write_record(tmp_path, "rec1", spike_train(peaks, int(FS * 121)))
    calls = _reads(monkeypatch)
    items = list(rec.new_recording_beats(tmp_path / "rec1.hea", 64, -1, chunk_s=20.0))
    assert len(items) == 7 and all(
        (end or 0) - start <= (20.0 + rec.OVERLAP_S) * FS for start, end in calls
    )
    emitted = [p for item in items for p in item.samples.tolist()]
    assert emitted == [p for p in peaks if p < FS * 120 and p >= rec.beat_window(FS)[0]]
    rr = np.concatenate([item.rr for item in items])
    np.testing.assert_allclose(rr[20:], 1.0)


def test_atr_beside_the_record_is_found_before_a_text_dump(tmp_path: Path) -> None:
    import wfdb

    (tmp_path / "records").mkdir()
    (tmp_path / "annotations").mkdir()
    write_record(tmp_path / "records", "rec1", spike_train([360, 720], 1440))
    (tmp_path / "annotations" / "rec1annotations.txt").write_text(
        "Time Sample # Type\n0:01.000 360 N 0 0 0\n"
    )
    header = tmp_path / "records" / "rec1.hea"
    assert rec.find_annotations(header).symbols.tolist() == ["N"]
    wfdb.wrann(
        "rec1", "atr", np.array([360, 720]), np.array(["N", "V"]), write_dir=str(header.parent)
    )
    notes = rec.find_annotations(header)
    assert notes.samples.tolist() == [360, 720] and notes.symbols.tolist() == ["N", "V"]
    assert rec.find_annotations(tmp_path / "records" / "none.hea") is None


def _spike_train(fs: float, seconds: float, rr_s: float, seed: int) -> np.ndarray:
    """Narrow Gaussian spikes every ``rr_s`` seconds on low noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fs)) / fs
    signal = 0.01 * rng.standard_normal(t.size)
    for centre in np.arange(0.5, seconds - 0.5, rr_s):
        signal += np.exp(-0.5 * ((t - centre) / 0.012) ** 2)
    return signal


@pytest.mark.parametrize("fs", [250.0, 360.0])
def test_numpy_detectors_match_neurokit(fs: float) -> None:
    import neurokit2 as nk

    from ecgmon import qrs

    raw = _spike_train(fs, 40.0, 0.8, seed=3)
    band = nk.ecg_clean(raw, sampling_rate=fs, method="elgendi2010")
    cleaned = rec.clean_signal(raw, fs)
    for ours, theirs, signal in (
        (qrs.elgendi2010_peaks, "elgendi2010", band),
        (qrs.rodrigues2021_peaks, "rodrigues2021", cleaned),
    ):
        expected = nk.ecg_peaks(signal, sampling_rate=fs, method=theirs)[1]["ECG_R_Peaks"]
        assert len(expected) >= 45
        np.testing.assert_array_equal(ours(signal, fs), expected)


def test_running_median_rr_context_matches_its_definition() -> None:
    rng = np.random.default_rng(0)
    peaks = np.cumsum(rng.integers(200, 400, size=60))
    rr = np.diff(peaks).astype(float)
    expected = [np.median(rr[max(0, i - 1 - 16) : i - 1]) for i in range(2, peaks.size)]
    running = np.r_[np.full(2, np.median(rr[:16])), expected]
    want = np.c_[np.r_[rr[0], rr] / running, np.r_[rr, rr[-1]] / running].astype(np.float32)
    np.testing.assert_array_equal(rec.rr_features(peaks), want)


def test_noise_gate_drops_a_small_peak_by_what_came_before() -> None:
    cleaned = np.zeros(4000)
    peaks = np.arange(100, 3700, 300)
    cleaned[peaks] = 1.0
    cleaned[peaks[6]] = 0.2  # a small but real beat: above an eighth of its neighbours
    cleaned[peaks[9]] = 0.05  # the flat line of a pause
    kept = rec.drop_noise_peaks(cleaned, peaks)
    np.testing.assert_array_equal(kept, np.delete(peaks, 9))
    # causal: what follows a peak does not change its fate
    np.testing.assert_array_equal(
        rec.drop_noise_peaks(cleaned, peaks[:10]), np.delete(peaks, 9)[:9]
    )
