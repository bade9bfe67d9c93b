"""Small untrusted inputs: WFDB headers, R-peak failures, epoch numbers (docs/guarantees.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecgmon.errors import DataFormatError
from ecgmon.recordings import Recording, read_recording, recording_beats
from ecgmon.records import RawBatch, StreamPosition
from ecgmon.validation import validate_batch


def _record(folder: Path, name: str = "100", n: int = 3600) -> Path:
    import wfdb

    folder.mkdir(parents=True, exist_ok=True)
    signal = np.sin(np.linspace(0, 60, n))[:, None]
    wfdb.wrsamp(name, 360, ["mV"], ["MLII"], p_signal=signal, fmt=["16"], write_dir=str(folder))
    return folder / f"{name}.hea"


def _edit_header(header: Path, old: str, new: str) -> None:
    header.write_text(header.read_text().replace(old, new, 1))


@pytest.mark.parametrize("where", ["absolute", "parent"])
def test_a_header_naming_a_data_file_outside_its_folder_is_refused(
    tmp_path: Path, where: str
) -> None:
    """wfdb's own header parser already refuses a path in the file name (checked with the
    pinned wfdb); ``check_header`` refuses it too, whatever the parser lets through."""
    outside = _record(tmp_path / "elsewhere", "999").with_suffix(".dat")
    header = _record(tmp_path / "in")
    name = str(outside) if where == "absolute" else "../elsewhere/999.dat"
    _edit_header(header, "100.dat", name)
    with pytest.raises(DataFormatError, match="WFDB"):
        read_recording(header)


def test_a_header_claiming_more_samples_than_its_file_holds_is_refused(tmp_path: Path) -> None:
    header = _record(tmp_path / "in")
    _edit_header(header, " 3600", " 360000000")
    with pytest.raises(DataFormatError, match="holds fewer"):
        read_recording(header)


def test_an_r_peak_detection_failure_is_a_data_format_error() -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    recording = Recording("100", "MLII", 360.0, np.full(3000, np.nan), start)
    with pytest.raises(DataFormatError, match="R-peak detection failed"):
        recording_beats(recording, 140, -1)


def test_integer_epoch_timestamps_are_seconds_not_nanoseconds() -> None:
    raw = RawBatch(
        source="f",
        record_id=np.array(["a", "b"], dtype=object),
        recorded_at=pd.Series(np.array([1_790_000_000, 1_790_000_000_123], dtype=np.int64)),
        patient_id=np.array([None, None], dtype=object),
        signals=np.zeros((2, 3), np.float32),
        row_keys=["f#row=0", "f#row=1"],
        position=StreamPosition("f"),
    )
    valid, rejected = validate_batch(raw, 3)
    assert not rejected
    assert [t.isoformat() for t in valid.recorded_at] == [
        "2026-09-21T14:13:20+00:00",  # seconds
        "2026-09-21T14:13:20.123000+00:00",  # milliseconds
    ]
