"""Readers on tiny hand-made files: exact arrays for every format, a named error for every fault."""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ecgmon.errors import DataFormatError, SourceNotFoundError
from ecgmon.sources.datasets import LabelledBeats, read_beats, read_training_data, read_ucr_pair

SIGNALS = np.array([[0.5, -1.0, 2.0], [1.5, 0.0, -2.5], [3.0, 0.25, 1.0]], dtype=np.float32)
LABELS = np.array([1.0, 2.0, 1.0])


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def assert_beats(beats: LabelledBeats, labels: np.ndarray | None = LABELS) -> None:
    assert beats.signals.dtype == np.float32
    np.testing.assert_array_equal(beats.signals, SIGNALS)
    if labels is None:
        assert beats.labels is None
    else:
        assert beats.labels is not None and beats.labels.dtype == np.float64
        np.testing.assert_array_equal(beats.labels, labels)
    assert beats.input_length == 3


# --- formats --------------------------------------------------------------------------------------


def test_ucr_tsv(tmp_path: Path) -> None:
    path = write(tmp_path / "X_TRAIN.tsv", "1\t0.5\t-1\t2\n2\t1.5\t0\t-2.5\n1\t3\t0.25\t1\n")
    beats = read_beats(path)
    assert_beats(beats)
    assert beats.source == str(path)


def test_ucr_txt_whitespace_scientific_and_blank_lines(tmp_path: Path) -> None:
    text = (
        "  1.0000000e+00   5.0000000e-01  -1.0000000e+00   2.0000000e+00\n\n"
        "2  1.5 0 -2.5\n"
        "1\t3 0.25 1\n\n"
    )
    assert_beats(read_beats(write(tmp_path / "X_TEST.txt", text)))


def test_tutorial_csv_label_last(tmp_path: Path) -> None:
    path = write(tmp_path / "ecg.csv", "0.5,-1,2,1\n1.5,0,-2.5,2\n3,0.25,1,1\n")
    assert_beats(read_beats(path))


@pytest.mark.parametrize("header", ["s0,s1,s2,label", "0,1,2,3", "\ufeffa,b,c,label"])
def test_csv_header_row_is_skipped(tmp_path: Path, header: str) -> None:
    path = write(tmp_path / "ecg.csv", f"{header}\n0.5,-1,2,1\n1.5,0,-2.5,2\n3,0.25,1,1\n")
    assert_beats(read_beats(path))


def test_parquet_list_column_with_record_columns(tmp_path: Path) -> None:
    table = pa.table(
        {
            "record_id": ["a", "b", "c"],
            "recorded_at": pa.array([1, 2, 3], pa.timestamp("s")),
            "patient_id": ["p1", "p1", "p2"],
            "signal": [list(map(float, row)) for row in SIGNALS],
            "label": [1, 2, 1],
        }
    )
    pq.write_table(table, tmp_path / "beats.parquet")
    assert_beats(read_beats(tmp_path / "beats.parquet"))


def test_parquet_wide_columns_in_numeric_order_without_label(tmp_path: Path) -> None:
    # Written out of order and with x10 after x9 to prove numeric (not text) ordering.
    signals = np.arange(33, dtype=np.float32).reshape(3, 11)
    columns = {f"x{i}": signals[:, i] for i in (10, 2, 0, 1, 3, 4, 5, 6, 7, 8, 9)}
    pq.write_table(pa.table({"record_id": ["a", "b", "c"], **columns}), tmp_path / "w.parquet")
    beats = read_beats(tmp_path / "w.parquet")
    np.testing.assert_array_equal(beats.signals, signals)
    assert beats.labels is None
    np.testing.assert_array_equal(beats.normal_mask(), [True, True, True])


def test_parquet_wide_zero_padded(tmp_path: Path) -> None:
    table = pa.table({f"s{i:03d}": SIGNALS[:, i].astype(np.float64) for i in range(3)})
    pq.write_table(table.append_column("label", pa.array(LABELS)), tmp_path / "p.parquet")
    assert_beats(read_beats(tmp_path / "p.parquet"))


# --- LabelledBeats --------------------------------------------------------------------------------


def test_normal_mask_and_concat() -> None:
    beats = LabelledBeats(SIGNALS, LABELS, "a")
    np.testing.assert_array_equal(beats.normal_mask(), [True, False, True])
    np.testing.assert_array_equal(beats.normal_mask(normal_label=2.0), [False, True, False])
    both = beats.concat(LabelledBeats(SIGNALS[:1], LABELS[:1], "b"))
    assert len(both) == 4 and both.source == "a; b"
    np.testing.assert_array_equal(both.labels, [1.0, 2.0, 1.0, 1.0])


def test_concat_refuses_other_length_and_mixed_labels() -> None:
    beats = LabelledBeats(SIGNALS, LABELS, "a")
    with pytest.raises(DataFormatError, match="3 samples"):
        beats.concat(LabelledBeats(SIGNALS[:, :2], LABELS, "b"))
    with pytest.raises(DataFormatError, match="labelled and unlabelled"):
        beats.concat(LabelledBeats(SIGNALS, None, "b"))


# --- folders --------------------------------------------------------------------------------------


def ucr_folder(root: Path, test_length: int = 3) -> Path:
    write(root / "Toy_TRAIN.tsv", "1\t0.5\t-1\t2\n2\t1.5\t0\t-2.5\n1\t3\t0.25\t1\n")
    write(root / "Toy_TEST.tsv", "\t".join(["2"] + ["0.5"] * test_length) + "\n")
    return root


def test_read_ucr_pair(tmp_path: Path) -> None:
    train, test = read_ucr_pair(ucr_folder(tmp_path))
    assert_beats(train)
    assert test.signals.shape == (1, 3) and test.labels is not None and test.labels[0] == 2.0


def test_training_data_of_a_ucr_folder_is_its_train_file(tmp_path: Path) -> None:
    beats = read_training_data(ucr_folder(tmp_path))
    assert_beats(beats)
    assert beats.source.endswith("Toy_TRAIN.tsv")


def test_training_data_pools_partitioned_parquet(tmp_path: Path) -> None:
    for day, rows in (("2024-01-01", SIGNALS[:2]), ("2024-01-02", SIGNALS[2:])):
        folder = tmp_path / f"recorded_date={day}"
        folder.mkdir()
        pq.write_table(
            pa.table({"signal": [list(map(float, r)) for r in rows]}), folder / "p.parquet"
        )
    beats = read_training_data(tmp_path)
    assert_beats(beats, labels=None)
    assert beats.source == str(tmp_path)


def test_training_data_of_a_file(tmp_path: Path) -> None:
    assert_beats(read_beats(write(tmp_path / "ecg.csv", "0.5,-1,2,1\n1.5,0,-2.5,2\n3,0.25,1,1\n")))


# --- errors ---------------------------------------------------------------------------------------


def raises_naming(
    error: type[Exception], path: Path, *fragments: str
) -> AbstractContextManager[Any]:
    """pytest.raises whose message must name the file and contain every fragment."""
    pattern = re.escape(path.name) + ".*" + ".*".join(re.escape(f) for f in fragments)
    return pytest.raises(error, match=pattern)


@pytest.mark.parametrize(
    ("name", "text", "fragments"),
    [
        ("r.tsv", "1\t1\t2\t3\n1\t1\t2\n", ("line 2", "3 values", "line 1 has 4")),
        ("n.tsv", "1\t1\t2\n1\t1\tabc\n", ("line 2, column 3", "'abc'", "not a number")),
        ("e.tsv", "1\t1\t\t2\n", ("line 1, column 3", "''")),
        ("nan.tsv", "1\t1\t2\n\n1\t1\tnan\n", ("line 3, column 3", "nan", "not a finite")),
        ("inf.csv", "1,2,1\n1,-inf,1\n", ("line 2, column 2", "-inf", "not a finite")),
        ("big.tsv", "1\t1\t1e39\n", ("line 1, column 3", "1e+39 is too large")),
        ("lab.tsv", "nan\t1\t2\n", ("line 1, column 1:", "nan")),
        ("empty.tsv", "", ("no beats",)),
        ("blank.txt", "\n  \n", ("no beats",)),
        ("short.tsv", "1\t0.5\n", ("1 sample", "at least 2")),
        ("short.csv", "0.5,1\n", ("1 sample", "at least 2")),
        ("x.json", "[]", ("unknown suffix", "'.json'")),
        ("bad.parquet", "not parquet", ("cannot be read as Parquet",)),
    ],
)
def test_text_faults_name_the_file(tmp_path: Path, name: str, text: str, fragments: tuple) -> None:
    path = write(tmp_path / name, text)
    with raises_naming(DataFormatError, path, *fragments):
        read_beats(path)


def test_binary_text_file(tmp_path: Path) -> None:
    path = tmp_path / "bin.tsv"
    path.write_bytes(b"\xff\xfe\x00\x81")
    with raises_naming(DataFormatError, path, "not a UTF-8 text file"):
        read_beats(path)


@pytest.mark.parametrize(
    ("columns", "fragments"),
    [
        ({"record_id": ["a", "b"], "signal": [[1.0, 2.0], [1.0]]}, ("row 2", "'b'", "length 1")),
        ({"signal": [[1.0, 2.0], None]}, ("row 2", "'signal'", "null")),
        ({"signal": [[1.0, 2.0], [1.0, float("nan")]]}, ("row 2", "sample 1", "nan")),
        ({"signal": [["a", "b"]]}, ("'signal'", "lists of numbers")),
        ({"signal": [[1.0]]}, ("1 sample", "at least 2")),
        ({"s0": [1.0], "s1": ["x"]}, ("column 's1'", "numeric")),
        ({"s0": [1.0, 2.0], "s1": [1.0, None]}, ("row 2", "column 's1'", "nan")),
        ({"s0": [1.0], "s2": [1.0]}, ("not consecutive", "index 1 is missing")),
        ({"s0": [1.0], "x1": [1.0]}, ("several prefixes",)),
        ({"record_id": ["a"], "value": [1.0]}, ("neither a 'signal' column",)),
        ({"s0": [1.0], "s1": [1.0], "label": ["normal"]}, ("column 'label'", "numeric")),
        ({"s0": [1.0], "s1": [1.0], "label": pa.array([None], pa.float64())}, ("'label'", "nan")),
        ({"s0": pa.array([], pa.float64()), "s1": pa.array([], pa.float64())}, ("no beats",)),
    ],
)
def test_parquet_faults_name_the_file(tmp_path: Path, columns: dict, fragments: tuple) -> None:
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table(columns), path)
    with raises_naming(DataFormatError, path, *fragments):
        read_beats(path)


def test_missing_paths(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere_TRAIN.tsv"
    for reader in (read_beats, read_training_data, read_ucr_pair):
        with raises_naming(SourceNotFoundError, missing, "does not exist"):
            reader(missing)


def test_folder_faults(tmp_path: Path) -> None:
    with raises_naming(DataFormatError, tmp_path, "is a folder"):
        read_beats(tmp_path)
    with raises_naming(DataFormatError, tmp_path, "no data files"):
        read_training_data(tmp_path)
    with raises_naming(SourceNotFoundError, tmp_path, "no *_TRAIN data file"):
        read_ucr_pair(tmp_path)


def test_ucr_pair_without_test_file_or_with_other_length(tmp_path: Path) -> None:
    write(tmp_path / "a" / "Toy_TRAIN.tsv", "1\t1\t2\n")
    with raises_naming(SourceNotFoundError, tmp_path / "a", "no *_TEST data file"):
        read_ucr_pair(tmp_path / "a")
    with raises_naming(DataFormatError, tmp_path / "b" / "Toy_TRAIN.tsv", "3 samples", "4"):
        read_ucr_pair(ucr_folder(tmp_path / "b", test_length=4))


def test_pooling_files_of_different_lengths(tmp_path: Path) -> None:
    write(tmp_path / "a.csv", "1,2,1\n")
    write(tmp_path / "b.csv", "1,2,3,1\n")
    with raises_naming(DataFormatError, tmp_path / "b.csv", "3 samples", "a.csv", "2 samples"):
        read_training_data(tmp_path)
