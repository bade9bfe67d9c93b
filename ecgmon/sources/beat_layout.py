"""The Parquet beat layout, one set of rules for training and scoring.

One row per beat. The beat is the list column ``signal`` when there is one, else the numbered
sample columns: columns named a common prefix then a number (s000..s139, x0..x186), outside the
record columns ``record_id``, ``recorded_at``, ``patient_id`` and ``label``, ordered by their
number, which must run consecutively (no gap, no number twice), at least two of them.

Samples are numbers: integer, floating-point or decimal types (a null-typed column is all
missing values). Text, truth values, nested lists and anything else is not a sample, whatever it
spells. A null list row, a row of another length, a missing or non-finite sample are faults of
that row.

Training (:func:`read_parquet_beats`) refuses a file with any fault, raising
:class:`~ecgmon.errors.DataFormatError` that names the file, row (with its ``record_id`` when
present) and column. Scoring (:mod:`ecgmon.sources.parquet`, then :mod:`ecgmon.validation`)
quarantines a file whose columns fit no layout, and each faulty row (every row, when the columns'
type holds no numbers). Beyond the layout, each path keeps its own needs: training wants a
numeric ``label`` when there is one and rows as long as the first; scoring wants ``record_id``
and ``recorded_at``, beats of the model's input length and plausible amplitudes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ecgmon.errors import DataFormatError

#: Parquet columns that describe a record rather than hold its samples.
RECORD_COLUMNS: frozenset[str] = frozenset({"record_id", "recorded_at", "patient_id", "label"})
LIST_COLUMN = "signal"
#: Values of a list row decoded to Python objects when the list does not hold numbers.
MAX_DECODED_SAMPLES = 4_096
_NUMBERED = re.compile(r"^(?P<prefix>.*?)(?P<index>\d+)$")


def beat_columns(names: Sequence[str], where: object) -> list[str]:
    """['signal'], or the numbered sample columns in numeric order; raises naming ``where``."""
    if LIST_COLUMN in names:
        return [LIST_COLUMN]
    groups: dict[str, list[tuple[int, str]]] = {}
    for name in names:
        match = _NUMBERED.match(name)
        if name not in RECORD_COLUMNS and match:
            groups.setdefault(match["prefix"], []).append((int(match["index"]), name))
    if not groups:
        raise DataFormatError(
            f"{where} has neither a 'signal' column nor numbered sample columns (s000, s001, ...)."
        )
    if len(groups) > 1:
        prefixes = ", ".join(repr(p) for p in sorted(groups))
        raise DataFormatError(f"{where} has sample columns with several prefixes: {prefixes}.")
    numbered = sorted(next(iter(groups.values())))
    indices = [index for index, _ in numbered]
    if indices != list(range(indices[0], indices[0] + len(indices))):
        missing = sorted(set(range(indices[0], indices[-1] + 1)) - set(indices))
        detail = f"index {missing[0]} is missing" if missing else "an index appears twice"
        raise DataFormatError(f"{where} sample columns are not consecutive: {detail}.")
    if len(numbered) < 2:
        raise DataFormatError(
            f"{where} has 1 sample per beat (column {numbered[0][1]!r}); at least 2 needed."
        )
    return [name for _, name in numbered]


def sample_type_problem(schema: pa.Schema, columns: list[str]) -> str | None:
    """Why ``columns`` (from :func:`beat_columns`) hold no numbers, e.g. "column 's005' must be
    numeric, not string"; None when their types are numbers."""
    if columns == [LIST_COLUMN]:
        kind = schema.field(LIST_COLUMN).type
        if pa.types.is_null(kind) or (_is_list(kind) and _is_number(kind.value_type)):
            return None
        return f"column 'signal' must hold lists of numbers, not {kind}"
    for name in columns:
        kind = schema.field(name).type
        if not _is_number(kind):
            return f"column {name!r} must be numeric, not {kind}"
    return None


def beat_matrix(data: pa.RecordBatch | pa.Table, columns: list[str]) -> np.ndarray | None:
    """(n_beats, length) float32 of ``columns`` whose types :func:`sample_type_problem` accepts;
    None when the list column has no rows, a null row or rows of different lengths. A null sample
    becomes NaN."""
    if columns != [LIST_COLUMN]:
        return np.column_stack([_floats(_array(data, name)) for name in columns])
    column = _array(data, LIST_COLUMN)
    if pa.types.is_null(column.type) or not len(column) or column.null_count:
        return None
    lengths = list_lengths(column)
    if not (lengths == lengths[0]).all():
        return None
    return _floats(column.flatten()).reshape(len(column), int(lengths[0]))


def beat_rows(data: pa.RecordBatch | pa.Table, columns: list[str]) -> list:
    """Each row's beat as written (a list of values; None for a null list row), for rows that
    :func:`beat_matrix` cannot give as one array."""
    if columns == [LIST_COLUMN]:
        return _list_rows(_array(data, LIST_COLUMN))
    values = [_array(data, name).to_pylist() for name in columns]
    return [list(row) for row in zip(*values, strict=True)]


def _list_rows(column: pa.Array) -> list:
    """Each row of a list column: a float64 array of a list of numbers (no Python object per
    sample, whatever its length), None for a null row; lists of other values are decoded up to
    ``MAX_DECODED_SAMPLES`` values a row (they are rejected whole, as not numbers)."""
    if pa.types.is_null(column.type):
        return [None] * len(column)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return pc.utf8_slice_codeunits(column, 0, MAX_DECODED_SAMPLES).to_pylist()
    if not _is_list(column.type):
        return column.to_pylist()  # one value a row (rejected as not numbers)
    lengths = list_lengths(column)
    if not _is_number(column.type.value_type):
        cut = pc.list_slice(column, 0, MAX_DECODED_SAMPLES)
        return cut.to_pylist()
    flat = column.flatten().cast(pa.float64()).to_numpy(zero_copy_only=False)
    rows = np.split(flat, np.cumsum(np.maximum(lengths, 0))[:-1])
    return [None if n < 0 else row for n, row in zip(lengths, rows, strict=True)]


def list_lengths(column: pa.Array) -> np.ndarray:
    """Samples per row (n,) int of a list column; -1 for a null row."""
    return pc.list_value_length(column).fill_null(-1).to_numpy(zero_copy_only=False)


def _array(data: pa.RecordBatch | pa.Table, name: str) -> pa.Array:
    column = data.column(name)
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def _floats(values: pa.Array) -> np.ndarray:
    """(n,) float32 of a numeric array; null -> NaN."""
    kind = values.type
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
        values = values.cast(pa.float64())  # decimal or null
    return values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False)


def _is_list(kind: pa.DataType) -> bool:
    return (
        pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)
    )


def _is_number(kind: pa.DataType) -> bool:
    return (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_null(kind)
    )


# --- training: a file is read whole, and any fault refuses it ---------------------------------


def read_parquet_beats(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(signals (n_beats, length) float32, labels (n_beats,) float64 or None) of one file."""
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as err:
        first_line = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataFormatError(f"{path} cannot be read as Parquet ({first_line}).") from err
    if table.num_rows == 0:
        raise DataFormatError(f"{path} holds no beats (the table has no rows).")
    columns = beat_columns(table.column_names, path)
    problem = sample_type_problem(table.schema, columns)
    if problem is not None:
        raise DataFormatError(f"{path} {problem}.")
    signals = beat_matrix(table, columns)
    if signals is None:
        raise _list_fault(table, path)
    if signals.shape[1] < 2:
        raise DataFormatError(f"{path} has {signals.shape[1]} sample per beat; at least 2 needed.")
    check_finite(signals, path, lambda row, col: f"{_row_name(table, row)}, {_where(columns, col)}")
    labels = _parquet_labels(table, path) if "label" in table.column_names else None
    return signals, labels


def _list_fault(table: pa.Table, path: Path) -> DataFormatError:
    """The first null row of the list column ``signal``, else its first row of another length."""
    column = _array(table, LIST_COLUMN)
    lengths = np.full(len(column), -1) if pa.types.is_null(column.type) else list_lengths(column)
    nulls = np.flatnonzero(lengths < 0)
    if nulls.size:
        row = int(nulls[0])
        return DataFormatError(f"{path} {_row_name(table, row)}: field 'signal' is empty (null).")
    row = int(np.flatnonzero(lengths != lengths[0])[0])
    return DataFormatError(
        f"{path} {_row_name(table, row)}: field 'signal' has length {lengths[row]} but row 1 "
        f"has length {lengths[0]}; every beat must have the same length."
    )


def _where(columns: list[str], col: int) -> str:
    return (
        f"field 'signal' sample {col}" if columns == [LIST_COLUMN] else f"column {columns[col]!r}"
    )


def _row_name(table: pa.Table, row: int) -> str:
    """'row 3' or 'row 3 (record_id 'abc')', 1-based."""
    if "record_id" in table.column_names:
        return f"row {row + 1} (record_id {table.column('record_id')[row].as_py()!r})"
    return f"row {row + 1}"


def _parquet_labels(table: pa.Table, path: Path) -> np.ndarray:
    """(n_beats,) float64 from the ``label`` column."""
    kind = table.schema.field("label").type
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
        raise DataFormatError(f"{path} column 'label' must be numeric, not {kind}.")
    labels = table.column("label").to_numpy().astype(np.float64)
    check_finite(labels[:, None], path, lambda row, _: f"{_row_name(table, row)}, field 'label'")
    return labels


def check_finite(values: np.ndarray, path: Path | str, where: Callable[[int, int], str]) -> None:
    """Raise naming the first NaN or infinite entry of a 2-D array."""
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise DataFormatError(
            f"{path} {where(row, col)}: {values[row, col]} is not a finite value."
        )
