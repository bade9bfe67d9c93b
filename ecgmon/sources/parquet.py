"""Parquet source: a file or a folder of (date-partitioned) files, read in record batches."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ecgmon.errors import SourceNotFoundError
from ecgmon.records import RawBatch, Rejection, RowNumbers, StreamPosition

ID_COLUMNS = ("record_id", "recorded_at", "patient_id", "label")
DATE_IN_PATH = re.compile(r"(\d{4}-\d{2}-\d{2})")
WIDE_COLUMN = re.compile(r"^(.*?)(\d+)$")
READ_BUFFER_BYTES = 1 << 20


class ParquetSource:
    """A Parquet file or a folder of files, possibly partitioned by date (``date=YYYY-MM-DD``)."""

    def __init__(self, path: Path, until: date | None = None) -> None:
        self.path = path
        self.key = source_key(path)
        self.until = until  # partitions dated after this day are left for a later run

    def new_batches(self, watermarks: dict[str, dict], batch_size: int) -> Iterator[RawBatch]:
        """Raw batches of every file not read to its end ({stream: watermark row})."""
        for file in list_files(self.path):
            day = partition_date(file)
            if self.until is not None and day is not None and day > self.until:
                continue
            mark = watermarks.get(stream_name(self.path, file))
            same_file = mark is not None and mark["fingerprint"] == file_fingerprint(file)
            if same_file and mark["complete"]:
                continue
            start = int(mark["position_offset"]) if same_file else 0
            yield from read_file_batches(self.path, file, batch_size, start)

    def partitions(self) -> dict[date, list[str]]:
        """Streams (files) by the day their path names."""
        out: dict[date, list[str]] = {}
        for file in list_files(self.path):
            day = partition_date(file)
            if day is not None:
                out.setdefault(day, []).append(stream_name(self.path, file))
        return out

    def stream_batches(self, stream: str, batch_size: int) -> Iterator[RawBatch]:
        """Every raw batch of one file, from its start."""
        file = self.path if self.path.is_file() else self.path / stream
        yield from read_file_batches(self.path, file, batch_size, 0)


def source_key(path: Path) -> str:
    """The stable name of a Parquet source in watermarks and rejections."""
    return f"parquet:{path.resolve()}"


def list_files(path: Path) -> list[Path]:
    """The Parquet files of a source, in a stable order (partition paths sort by date)."""
    if not path.exists():
        raise SourceNotFoundError(f"source {path} does not exist")
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*.parquet") if p.is_file())


def partition_date(file: Path) -> date | None:
    """The date a file's path names (``date=2026-11-01/part-0.parquet``), if any."""
    match = DATE_IN_PATH.search(str(file))
    return date.fromisoformat(match.group(1)) if match else None


def file_fingerprint(file: Path) -> str:
    """Size and modification time: a rewritten file is read again."""
    stat = file.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def stream_name(root: Path, file: Path) -> str:
    """A file's name within its source (its path relative to the source folder)."""
    return file.name if root.is_file() else str(file.relative_to(root))


def read_file_batches(
    root: Path, file: Path, batch_size: int, start_row: int = 0
) -> Iterator[RawBatch]:
    """Raw batches of one file from ``start_row``; a file that cannot be read is one rejection."""
    source, stream = source_key(root), stream_name(root, file)
    try:
        fp = file_fingerprint(file)
    except FileNotFoundError:  # listed, then removed before we got to it
        yield _file_rejection(source, stream, "", "missing_file", f"{file.name} disappeared")
        return
    try:
        # no pre-buffering: it caches the column chunks of every row group ahead of
        # iter_batches, so memory grew with the file (+450 MB per 1M-beat file) and was slower;
        # a 1 MiB read buffer instead of whole column chunks: 1M beats read with 280,000 page
        # faults instead of 420,000, and 20 % faster (docs/performance.md)
        handle = pq.ParquetFile(file, pre_buffer=False, buffer_size=READ_BUFFER_BYTES)
        signal_columns = _signal_columns(handle.schema_arrow)
    except (pa.ArrowException, OSError, ValueError) as err:
        yield _file_rejection(source, stream, fp, "unreadable_file", f"{file.name}: {err}")
        return
    if isinstance(signal_columns, str):
        yield _file_rejection(
            source, stream, fp, "schema_mismatch", f"{file.name}: {signal_columns}"
        )
        return
    total = handle.metadata.num_rows
    offset = 0
    try:
        # use_threads: Arrow decodes each batch's columns on its own pool. Not only faster: it
        # took half the CPU of decoding in this thread (0.67 s against 1.1 s per 1M beats, and
        # 129,000 page faults against 313,000); the score pipeline ran 3.3 s instead of 4.3 s
        # (docs/performance.md)
        for batch in handle.iter_batches(batch_size=batch_size, use_threads=True):
            end = offset + batch.num_rows
            if end > start_row:
                batch = batch.slice(max(0, start_row - offset))
                first = max(start_row, offset)
                position = StreamPosition(stream, end, fp, complete=end >= total)
                yield _raw_batch(source, stream, batch, signal_columns, first, position)
            offset = end
    except (pa.ArrowException, OSError) as err:
        detail = f"{file.name}: unreadable after row {offset}: {err}"
        yield _file_rejection(source, stream, fp, "truncated_file", detail, offset)
        return
    if total == 0 or start_row >= total:
        yield RawBatch(source, *_empty(), [], StreamPosition(stream, total, fp, complete=True))


def _signal_columns(schema: pa.Schema) -> list[str] | str:
    """['signal'] for a list column, the wide sample columns in order, or a message why not."""
    names = schema.names
    missing = [c for c in ("record_id", "recorded_at") if c not in names]
    if missing:
        return f"missing column(s) {', '.join(missing)}"
    if "signal" in names:
        return ["signal"]
    wide = [(m.group(1), int(m.group(2)), n) for n in names if (m := WIDE_COLUMN.match(n))]
    wide = [w for w in wide if w[2] not in ID_COLUMNS]
    prefixes = {w[0] for w in wide}
    if len(prefixes) != 1 or len(wide) < 2:
        return "no 'signal' list column and no numbered sample columns (s000, s001, ...)"
    return [name for _p, _i, name in sorted(wide, key=lambda w: w[1])]


def _raw_batch(
    source: str,
    stream: str,
    batch: pa.RecordBatch,
    signal_columns: list[str],
    first: int,
    position: StreamPosition,
) -> RawBatch:
    n = batch.num_rows
    names = batch.schema.names
    patient = batch.column("patient_id") if "patient_id" in names else pa.nulls(n, pa.string())
    return RawBatch(
        source=source,
        record_id=_ids(batch.column("record_id")),
        recorded_at=pd.Series(batch.column("recorded_at").to_pandas()),
        patient_id=_ids(patient),
        signals=_signals(batch, signal_columns),
        row_keys=RowNumbers(f"{stream}#row=", first, n),
        position=position,
    )


def _ids(column: pa.Array) -> pa.Array | np.ndarray:
    """A text column as it is (Arrow strings: no Python object per row on the hot path); any
    other type as a numpy object array, for validation to judge row by row."""
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind):
        return column
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=object)


def _signals(batch: pa.RecordBatch, columns: list[str]) -> np.ndarray | list:
    """A float array (n, length) when possible without loss, else a list of per-row values."""
    if columns != ["signal"]:
        try:
            return np.column_stack(
                [batch.column(c).to_numpy(zero_copy_only=False).astype(np.float32) for c in columns]
            )
        except (TypeError, ValueError, pa.ArrowException):
            values = [batch.column(c).to_pylist() for c in columns]
            return [list(row) for row in zip(*values, strict=True)]
    column = batch.column("signal")
    kind = column.type
    is_list = (
        pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)
    )
    if is_list and column.null_count == 0 and _numeric(kind.value_type):
        lengths = pc_lengths(column)
        if len(lengths) and (lengths == lengths[0]).all():
            values = column.flatten().to_numpy(zero_copy_only=False)
            return values.astype(np.float32, copy=False).reshape(len(column), int(lengths[0]))
    return column.to_pylist()


def _numeric(kind: pa.DataType) -> bool:
    return pa.types.is_floating(kind) or pa.types.is_integer(kind)


def pc_lengths(column: pa.Array) -> np.ndarray:
    """Number of samples per row of a list column."""
    import pyarrow.compute as pc

    return pc.list_value_length(column).fill_null(-1).to_numpy(zero_copy_only=False)


def _empty() -> tuple:
    return (
        np.empty(0, dtype=object),
        pd.Series([], dtype="datetime64[ns, UTC]"),
        np.empty(0, dtype=object),
        np.empty((0, 0), dtype=np.float32),
    )


def _file_rejection(
    source: str, stream: str, fp: str, reason: str, detail: str, offset: int = 0
) -> RawBatch:
    rejection = Rejection(stream, reason, detail, None)
    position = StreamPosition(stream, offset, fp, complete=True)
    return RawBatch(source, *_empty(), [], position, rejections=[rejection])
