"""One Parquet file, two readers: training (read_beats) and scoring (the Parquet source, then
validation) accept the same beats, or both refuse (training raises; scoring quarantines)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ecgmon.errors import DataFormatError
from ecgmon.sources import open_source
from ecgmon.sources.datasets import read_beats
from ecgmon.validation import validate_batch

BEATS = np.array([[0.5, -1.0, 2.0], [1.5, 0.0, -2.5], [3.0, 0.25, 1.0]], dtype=np.float32)
N = len(BEATS)


def records(n: int = N) -> dict[str, pa.Array]:
    """Good record columns for ``n`` beats."""
    return {
        "record_id": pa.array([f"r{i}" for i in range(n)]),
        "recorded_at": pa.array(np.arange(n) * 1_000_000, pa.timestamp("us", tz="UTC")),
        "patient_id": pa.array(["p1"] * n),
    }


def wide(names: list[str], values: np.ndarray | list, kind: pa.DataType | None = None) -> dict:
    return {
        name: pa.array(list(np.asarray(values, dtype=object)[:, j]), kind)
        for j, name in enumerate(names)
    }


def listed(rows: list, kind: pa.DataType | None = None) -> dict:
    return {"signal": pa.array(rows, kind)}


S3 = ["s000", "s001", "s002"]
ROWS = BEATS.tolist()

#: (name, beat columns): files on which training and scoring agree, accepting BEATS (x4 for ints).
ACCEPTED = [
    ("list_float32", listed(ROWS, pa.list_(pa.float32()))),
    ("list_float64", listed(ROWS, pa.list_(pa.float64()))),
    ("large_list", listed(ROWS, pa.large_list(pa.float64()))),
    ("fixed_size_list", listed(ROWS, pa.list_(pa.float32(), 3))),
    ("list_int", listed((BEATS * 4).astype(int).tolist(), pa.list_(pa.int16()))),
    ("wide_float", wide(S3, BEATS)),
    ("wide_numeric_order", wide(["x10", "x9", "x11"], BEATS[:, [1, 0, 2]])),
    ("wide_from_one", wide(["v1", "v2", "v3"], BEATS)),
    ("wide_with_other_columns", {**wide(S3, BEATS), "site": pa.array(["ward"] * N)}),
    ("wide_decimal", wide(S3, [[Decimal(str(v)) for v in row] for row in ROWS])),
    ("list_decimal", listed([[Decimal(str(v)) for v in row] for row in ROWS])),
]

#: (name, beat columns): files training refuses; scoring must quarantine something.
REFUSED = [
    ("ragged_list", listed([ROWS[0], ROWS[1][:2], ROWS[2]])),
    ("null_list_row", listed([ROWS[0], None, ROWS[2]], pa.list_(pa.float64()))),
    ("nan_sample", listed([ROWS[0], [1.0, float("nan"), 2.0], ROWS[2]])),
    ("null_wide_sample", wide(S3, [ROWS[0], [1.0, None, 2.0], ROWS[2]], pa.float64())),
    ("null_signal_column", {"signal": pa.nulls(N)}),
    ("two_prefixes", wide(["s0", "x1", "s2"], BEATS)),
    ("no_beat_columns", {"value": pa.array([1.0] * N)}),
    ("one_wide_column", wide(["s0"], BEATS[:, :1])),
    ("wide_gap", wide(["s0", "s1", "s3"], BEATS)),
    ("wide_index_twice", wide(["s0", "s1", "s01"], BEATS)),
    ("wide_text_numbers", wide(S3, [[str(v) for v in row] for row in ROWS])),
    ("wide_bool", wide(S3, BEATS > 0)),
    ("list_text_numbers", listed([[str(v) for v in row] for row in ROWS])),
    ("list_text", listed([["a", "b", "c"]] * N)),
    ("list_bool", listed((BEATS > 0).tolist())),
    ("nested_list", listed([[row[:1], row[1:]] for row in ROWS])),
    ("nested_list_regular", listed([[[v] for v in row] for row in ROWS])),
    ("text_signal", listed([",".join(map(str, row)) for row in ROWS])),
]


def write(tmp_path: Path, name: str, beat_columns: dict) -> Path:
    path = tmp_path / f"{name}.parquet"
    pq.write_table(pa.table({**records(), **beat_columns}), path)
    return path


def by_training(path: Path) -> np.ndarray | DataFormatError:
    """The beats training reads, or its error."""
    try:
        return read_beats(path).signals
    except DataFormatError as err:
        return err


def by_scoring(path: Path, length: int = 3) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """(beats scoring accepts (n, length), [(reason, detail)] of what it quarantines)."""
    accepted, rejected = [], []
    for raw in open_source(str(path)).new_batches({}, batch_size=2):
        valid, rejections = validate_batch(raw, length)
        accepted.append(valid.signals)
        rejected += [(r.reason, r.detail) for r in rejections]
    return np.concatenate(accepted).reshape(-1, length), rejected


@pytest.mark.parametrize(("name", "columns"), ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_both_paths_read_the_same_beats(tmp_path: Path, name: str, columns: dict) -> None:
    path = write(tmp_path, name, columns)
    trained = by_training(path)
    scored, rejected = by_scoring(path)
    assert not isinstance(trained, DataFormatError), trained
    assert rejected == []
    np.testing.assert_array_equal(trained, BEATS * 4 if name == "list_int" else BEATS)
    np.testing.assert_array_equal(scored, trained)


@pytest.mark.parametrize(("name", "columns"), REFUSED, ids=[c[0] for c in REFUSED])
def test_both_paths_refuse_the_same_files(tmp_path: Path, name: str, columns: dict) -> None:
    path = write(tmp_path, name, columns)
    trained = by_training(path)
    scored, rejected = by_scoring(path)
    assert isinstance(trained, DataFormatError), f"training read {trained!r}"
    assert path.name in str(trained)
    assert rejected, f"scoring accepted {len(scored)} beats that training refuses ({trained})"
    assert len(scored) + len(rejected) in (N, 1)  # every row judged, or the file as one


@pytest.mark.parametrize(
    ("name", "reasons"),
    [
        ("wide_gap", {"schema_mismatch"}),
        ("wide_index_twice", {"schema_mismatch"}),
        ("one_wide_column", {"schema_mismatch"}),
        ("wide_text_numbers", {"non_numeric_signal"}),
        ("wide_bool", {"non_numeric_signal"}),
        ("list_text_numbers", {"non_numeric_signal"}),
        ("list_bool", {"non_numeric_signal"}),
        ("nested_list", {"non_numeric_signal"}),
        ("nested_list_regular", {"non_numeric_signal"}),
        ("null_signal_column", {"missing_signal"}),
        ("null_list_row", {"missing_signal"}),
    ],
)
def test_scoring_quarantines_with_the_layout_reason(
    tmp_path: Path, name: str, reasons: set
) -> None:
    path = write(tmp_path, name, dict(REFUSED)[name])
    _, rejected = by_scoring(path)
    assert {reason for reason, _ in rejected} == reasons


def test_a_column_type_that_holds_no_numbers_is_named_in_each_row_rejection(tmp_path: Path) -> None:
    path = write(tmp_path, "t", wide(S3, [[str(v) for v in row] for row in ROWS]))
    _, rejected = by_scoring(path)
    assert rejected == [("non_numeric_signal", "column 's000' must be numeric, not string")] * N
    with pytest.raises(
        DataFormatError, match="t.parquet column 's000' must be numeric, not string"
    ):
        read_beats(path)


def test_a_bad_row_is_named_by_training_and_the_only_one_scoring_quarantines(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "n", listed([ROWS[0], [1.0, float("inf"), 2.0], ROWS[2]]))
    with pytest.raises(DataFormatError, match=r"row 2 \(record_id 'r1'\), field 'signal' sample 1"):
        read_beats(path)
    scored, rejected = by_scoring(path)
    assert [reason for reason, _ in rejected] == ["non_finite"]
    np.testing.assert_array_equal(scored, BEATS[[0, 2]])
