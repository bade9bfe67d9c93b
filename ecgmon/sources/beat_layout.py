"""Beats from Parquet: one row per beat, a list column ``signal`` or numbered wide columns.

Wide sample columns share one prefix and are numbered consecutively (s000..s139, x0..x186);
``record_id``, ``recorded_at`` and ``patient_id`` describe the record and ``label`` (optional)
holds the raw class label. Errors raise :class:`~ecgmon.errors.DataFormatError` naming the file,
row (with its ``record_id`` when present) and column.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ecgmon.errors import DataFormatError

#: Parquet columns that describe a record rather than hold its samples.
RECORD_COLUMNS: frozenset[str] = frozenset({"record_id", "recorded_at", "patient_id", "label"})
_WIDE_COLUMN = re.compile(r"^(?P<prefix>.*?)(?P<index>\d+)$")


def read_parquet_beats(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(signals (n_beats, length) float32, labels (n_beats,) float64 or None) of one file."""
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as err:
        first_line = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataFormatError(f"{path} cannot be read as Parquet ({first_line}).") from err
    if table.num_rows == 0:
        raise DataFormatError(f"{path} holds no beats (the table has no rows).")
    names = set(table.column_names)
    signals = _list_signals(table, path) if "signal" in names else _wide_signals(table, path)
    if signals.shape[1] < 2:
        raise DataFormatError(f"{path} has {signals.shape[1]} sample per beat; at least 2 needed.")
    labels = _parquet_labels(table, path) if "label" in names else None
    return signals, labels


def _row_name(table: pa.Table, row: int) -> str:
    """'row 3' or 'row 3 (record_id 'abc')', 1-based."""
    if "record_id" in table.column_names:
        return f"row {row + 1} (record_id {table.column('record_id')[row].as_py()!r})"
    return f"row {row + 1}"


def _list_signals(table: pa.Table, path: Path) -> np.ndarray:
    """(n_beats, length) float32 from the list column ``signal``."""
    column = table.column("signal").combine_chunks()
    kind = column.type
    is_list = pa.types.is_list(kind) or pa.types.is_large_list(kind)
    if not (is_list or pa.types.is_fixed_size_list(kind)) or not _is_numeric(kind.value_type):
        raise DataFormatError(f"{path} column 'signal' must hold lists of numbers, not {kind}.")
    if column.null_count:
        row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
        raise DataFormatError(f"{path} {_row_name(table, row)}: field 'signal' is empty (null).")
    lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
    ragged = np.flatnonzero(lengths != lengths[0])
    if ragged.size:
        row = int(ragged[0])
        raise DataFormatError(
            f"{path} {_row_name(table, row)}: field 'signal' has length {lengths[row]} but row 1 "
            f"has length {lengths[0]}; every beat must have the same length."
        )
    flat = column.flatten().to_numpy(zero_copy_only=False).astype(np.float64)
    signals = flat.reshape(len(column), int(lengths[0])).astype(np.float32)
    check_finite(
        signals, path, lambda row, col: f"{_row_name(table, row)}, field 'signal' sample {col}"
    )
    return signals


def sample_columns(column_names: list[str], path: Path | str) -> list[str]:
    """Sample columns sharing one prefix (s000..s139, x0..x186), in numeric order."""
    groups: dict[str, list[tuple[int, str]]] = {}
    for name in column_names:
        match = _WIDE_COLUMN.match(name)
        if name not in RECORD_COLUMNS and match:
            groups.setdefault(match["prefix"], []).append((int(match["index"]), name))
    if not groups:
        raise DataFormatError(
            f"{path} has neither a 'signal' column nor numbered sample columns (s000, s001, ...)."
        )
    if len(groups) > 1:
        prefixes = ", ".join(repr(p) for p in sorted(groups))
        raise DataFormatError(f"{path} has sample columns with several prefixes: {prefixes}.")
    numbered = sorted(next(iter(groups.values())))
    indices = [index for index, _ in numbered]
    if indices != list(range(indices[0], indices[0] + len(indices))):
        missing = sorted(set(range(indices[0], indices[-1] + 1)) - set(indices))
        detail = f"index {missing[0]} is missing" if missing else "an index appears twice"
        raise DataFormatError(f"{path} sample columns are not consecutive: {detail}.")
    return [name for _, name in numbered]


def _wide_signals(table: pa.Table, path: Path) -> np.ndarray:
    """(n_beats, length) float32 from numbered wide columns."""
    names = sample_columns(table.column_names, path)
    for name in names:
        if not _is_numeric(table.schema.field(name).type):
            kind = table.schema.field(name).type
            raise DataFormatError(f"{path} column {name!r} must be numeric, not {kind}.")
    columns = [table.column(name).to_numpy().astype(np.float64) for name in names]
    signals = np.column_stack(columns).astype(np.float32)
    check_finite(signals, path, lambda row, col: f"{_row_name(table, row)}, column {names[col]!r}")
    return signals


def _parquet_labels(table: pa.Table, path: Path) -> np.ndarray:
    """(n_beats,) float64 from the ``label`` column."""
    kind = table.schema.field("label").type
    if not _is_numeric(kind):
        raise DataFormatError(f"{path} column 'label' must be numeric, not {kind}.")
    labels = table.column("label").to_numpy().astype(np.float64)
    check_finite(labels[:, None], path, lambda row, _: f"{_row_name(table, row)}, field 'label'")
    return labels


def _is_numeric(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind)


def check_finite(values: np.ndarray, path: Path | str, where: Callable[[int, int], str]) -> None:
    """Raise naming the first NaN or infinite entry of a 2-D array."""
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise DataFormatError(
            f"{path} {where(row, col)}: {values[row, col]} is not a finite value."
        )
