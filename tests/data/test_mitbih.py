"""Contract of the shared MIT-BIH records and of the R-peak detector on them (real data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ecgmon import recordings as rec
from tests.shared_data import copy_record_start

RECORDS = ("100", "104", "106", "108", "113", "121", "202", "223", "231", "232")


def test_ten_records_with_annotations(mitbih: Path) -> None:
    names = [p.stem for p in rec.list_records(mitbih / "records")]
    assert tuple(names) == RECORDS
    for name in names:
        assert (mitbih / "annotations" / f"{name}annotations.txt").is_file()


def test_record_100_layout_and_beat_count(mitbih: Path) -> None:
    recording = rec.read_recording(mitbih / "records" / "100")
    assert (recording.lead, recording.fs, recording.signal.size) == ("MLII", 360.0, 650000)
    notes = rec.read_annotations(mitbih / "annotations" / "100annotations.txt").beats()
    assert notes.samples.size == 2273
    assert {str(s) for s in notes.symbols} == {"N", "A", "V"}


def test_record_104_has_no_mlii_so_lead_0_is_used(mitbih: Path) -> None:
    assert rec.read_recording(mitbih / "records" / "104").lead == "V5"


@pytest.mark.parametrize("name", ["100", "223"])
def test_detector_sensitivity_and_ppv(mitbih: Path, name: str) -> None:
    recording = rec.read_recording(mitbih / "records" / name)
    peaks = rec.detect_r_peaks(recording.signal, recording.fs)
    notes = rec.read_annotations(mitbih / "annotations" / f"{name}annotations.txt").beats()
    matched = rec.match_beats(peaks, notes.samples, tolerance=int(0.15 * recording.fs))
    assert (matched >= 0).sum() / notes.samples.size >= 0.99
    assert (matched >= 0).mean() >= 0.99


def test_no_detections_on_the_flat_line_of_record_232s_pauses(mitbih: Path) -> None:
    # 232's pauses of up to 6 s: the detectors' decaying thresholds reached the flat line
    # (2-5 % of the R amplitude) 95 times in 30 minutes (PPV 0.949) before the noise gate.
    recording = rec.read_recording(mitbih / "records" / "232")
    peaks = rec.detect_r_peaks(recording.signal, recording.fs)
    notes = rec.read_annotations(mitbih / "annotations" / "232annotations.txt").beats()
    matched = rec.match_beats(peaks, notes.samples, tolerance=int(0.15 * recording.fs))
    assert (matched >= 0).mean() >= 0.985
    assert (matched >= 0).sum() / notes.samples.size >= 0.997


def test_record_100_per_patient_auroc(mitbih: Path) -> None:
    from ecgmon.models.evaluation.recordings import evaluate_record

    row = evaluate_record(mitbih, "100", 10.0, seed=0, k=3.0)
    assert row["included"] and row["auroc"] >= 0.95


def test_record_232_without_n_beats_gets_a_dominant_beat_baseline(mitbih: Path) -> None:
    from ecgmon.models.evaluation.recordings import evaluate_record

    row = evaluate_record(mitbih, "232", 5.0, seed=0, k=3.0)
    assert row["eligible"] and row["baseline"]["kind"] == "dominant"
    unlabelled = evaluate_record(mitbih, "232", 5.0, seed=0, k=3.0, kind="unlabelled")
    assert unlabelled["auroc"] is None and not unlabelled["included"]
    assert (
        row["false_alarm_rate"] is not None
        and row["aami"]["sveb"]["tp"] + row["aami"]["sveb"]["fn"] >= 1000
    )


def test_atr_beside_the_record_gives_the_same_evaluation_as_the_text_dump(
    mitbih: Path, tmp_path: Path
) -> None:
    import shutil

    import wfdb

    from ecgmon.models.evaluation.recordings import evaluate_record

    records = tmp_path / "records"
    records.mkdir()
    for suffix in (".hea", ".dat"):
        shutil.copy(mitbih / "records" / f"100{suffix}", records)
    notes = rec.read_annotations(mitbih / "annotations" / "100annotations.txt")
    wfdb.wrann("100", "atr", notes.samples, notes.symbols, write_dir=str(records))
    from_atr = evaluate_record(tmp_path, "100", 5.0, seed=0, k=3.0)
    from_dump = evaluate_record(mitbih, "100", 5.0, seed=0, k=3.0)
    assert from_atr["aami"] == from_dump["aami"] and from_atr["n_annotated"] == 2273


@pytest.mark.parametrize("name", ["232", "223"])
def test_chunked_reads_give_the_whole_record_s_beats(
    mitbih: Path, name: str, tmp_path: Path
) -> None:
    # chunks of 2 minutes with the 30 s overlap: the noise gate and the voters find at every chunk
    # boundary the beats of the whole signal (232's pauses, 223's PVCs); the zero-phase filters'
    # edges may move a peak found in a chunk's last seconds by a few samples
    folder = copy_record_start(mitbih / "records", name, 600.0, tmp_path)
    header = folder / f"{name}.hea"
    whole = rec.recording_beats(rec.read_recording(header), 64)
    chunked = np.concatenate(
        [item.samples for item in rec.new_recording_beats(header, 64, -1, chunk_s=120.0)]
    )
    assert chunked.size == whole.samples.size
    assert np.abs(chunked - whole.samples).max() <= int(0.05 * 360)
