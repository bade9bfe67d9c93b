"""A clinician's list of baseline beats (ecgmon/sources/beat_lists.py): format, matching, errors."""

import numpy as np
import pytest

from ecgmon.errors import DataFormatError, SourceNotFoundError
from ecgmon.sources.beat_lists import match_listed_beats, read_beat_list

FS = 360.0


def write(tmp_path, text: str):
    path = tmp_path / "beats.csv"
    path.write_text(text)
    return path


def test_sample_indices_record_ids_header_and_comments(tmp_path) -> None:
    text = "sample,note\n# confirmed by Dr X\n\n900,ok\n 360 \n100:MLII:1260\n900\n"
    samples = read_beat_list(write(tmp_path, text), "100", "MLII")
    assert samples.tolist() == [360, 900, 1260]  # sorted, duplicates once


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "lists no beats"),
        ("# nothing\n\n", "lists no beats"),
        ("sample\n", "lists no beats"),
        ("360\n12.5\n", "line 2: 12.5 is not a whole sample index"),
        ("360\nabc\n", "line 2: 'abc' is neither an R-peak sample index"),
        ("223:MLII:360\n", "belongs to 223:MLII, not 100:MLII"),
        ("100:V5:360\n", "belongs to 100:V5"),
    ],
)
def test_bad_lists_name_file_and_line(tmp_path, text: str, message: str) -> None:
    with pytest.raises(DataFormatError, match=message):
        read_beat_list(write(tmp_path, text), "100", "MLII")


def test_a_missing_list_is_named(tmp_path) -> None:
    with pytest.raises(SourceNotFoundError, match="no beat list"):
        read_beat_list(tmp_path / "absent.txt", "100", "MLII")


def test_listed_beats_match_detected_beats_within_150_ms() -> None:
    detected = np.arange(100) * 300 + 200  # a beat every 300 samples
    listed = detected[10:60] + 40  # 111 ms off: still the same beats
    chosen, unmatched = match_listed_beats(detected, listed, FS, "list")
    assert chosen.tolist() == list(range(10, 60)) and unmatched == 0


def test_a_few_undetected_beats_are_tolerated_many_are_not() -> None:
    detected = np.arange(200) * 300 + 200
    listed = np.r_[detected[:150], 100_000]  # one of 151 beyond the record
    chosen, unmatched = match_listed_beats(detected, listed, FS, "list")
    assert chosen.size == 150 and unmatched == 1
    with pytest.raises(
        DataFormatError, match="list: 10 of 60 listed beats match no detected.*not seconds"
    ):
        match_listed_beats(detected, np.r_[detected[:50], 100_000 + np.arange(10)], FS, "list")


def test_a_list_in_seconds_instead_of_samples_is_explained() -> None:
    detected = np.arange(100) * 300 + 5000
    seconds = np.arange(0, 600, 6)  # seconds of beats: far before the first detected sample
    with pytest.raises(DataFormatError, match="none of the 100 listed beats.*not seconds"):
        match_listed_beats(detected, seconds, FS, "list")
