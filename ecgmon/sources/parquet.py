"""Parquet source: a file or a folder of (date-partitioned) files, read in record batches.

Beats are read with the layout rules of :mod:`ecgmon.sources.beat_layout` (the ones training
uses). A file that cannot be read, lacks ``record_id`` or ``recorded_at``, or whose columns fit no
beat layout is one rejection; a faulty row is left to validation, which quarantines it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ecgmon.errors import DataFormatError, SourceNotFoundError
from ecgmon.records import RawBatch, Rejection, RowNumbers, StreamPosition
from ecgmon.sources.beat_layout import beat_columns, beat_matrix, beat_rows, sample_type_problem

DATE_IN_PATH = re.compile(r"(\d{4}-\d{2}-\d{2})")
READ_BUFFER_BYTES = 1 << 20


class ParquetSource:
    """A Parquet file or a folder of files, possibly partitioned by date (``date=YYYY-MM-DD``)."""

    def __init__(self, path: Path, until: date | None = None) -> None:
        self.path = path
        self.key = source_key(path)
        self.until = until  # partitions dated after this day are left for a later run

    def new_batches(self, watermarks: dict[str, dict], batch_size: int) -> Iterator[RawBatch]:
        """Raw batches of every file not read to its end ({stream: watermark row})."""
        for file, start in self._unread(watermarks):
            yield from read_file_batches(self.path, file, batch_size, start)

    def pending_rows(self, watermarks: dict[str, dict]) -> int:
        """Rows :meth:`new_batches` will read, from the files' footers (for progress); a file
        that cannot be read counts 0 (it becomes one rejection)."""
        total = 0
        for file, start in self._unread(watermarks):
            try:
                total += max(pq.ParquetFile(file).metadata.num_rows - start, 0)
            except (pa.ArrowException, OSError, ValueError):
                continue  # unreadable: one rejection when read
        return total

    def _unread(self, watermarks: dict[str, dict]) -> Iterator[tuple[Path, int]]:
        """(file, first unread row) of every file in the window not read to its end."""
        for file in list_files(self.path):
            day = partition_date(file)
            if self.until is not None and day is not None and day > self.until:
                continue
            mark = watermarks.get(stream_name(self.path, file))
            same_file = mark is not None and mark["fingerprint"] == file_fingerprint(file)
            if same_file and mark["complete"]:
                continue
            yield file, int(mark["position_offset"]) if same_file else 0

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
        # iter_batches, so memory grows with the file; a 1 MiB read buffer instead of whole
        # column chunks: fewer page faults and faster (measured in docs/performance.md)
        handle = pq.ParquetFile(file, pre_buffer=False, buffer_size=READ_BUFFER_BYTES)
        schema = handle.schema_arrow
    except (pa.ArrowException, OSError, ValueError) as err:
        yield _file_rejection(source, stream, fp, "unreadable_file", f"{file.name}: {err}")
        return
    try:
        columns = _beat_columns(schema, file.name)
    except DataFormatError as err:
        yield _file_rejection(source, stream, fp, "schema_mismatch", str(err))
        return
    problem = sample_type_problem(schema, columns)
    total = handle.metadata.num_rows
    offset = 0
    try:
        # use_threads: Arrow decodes each batch's columns on its own pool. Not only faster: it
        # takes about half the CPU of decoding in this thread (docs/performance.md)
        for batch in handle.iter_batches(batch_size=batch_size, use_threads=True):
            end = offset + batch.num_rows
            if end > start_row:
                batch = batch.slice(max(0, start_row - offset))
                first = max(start_row, offset)
                position = StreamPosition(stream, end, fp, complete=end >= total)
                yield _raw_batch(source, stream, batch, columns, problem, first, position)
            offset = end
    except (pa.ArrowException, OSError) as err:
        detail = f"{file.name}: unreadable after row {offset}: {err}"
        yield _file_rejection(source, stream, fp, "truncated_file", detail, offset)
        return
    if total == 0 or start_row >= total:
        yield RawBatch(source, *_empty(), [], StreamPosition(stream, total, fp, complete=True))


def _beat_columns(schema: pa.Schema, name: str) -> list[str]:
    """The columns holding the beat; raises DataFormatError naming the file when the record
    columns are missing or no beat layout fits."""
    missing = [c for c in ("record_id", "recorded_at") if c not in schema.names]
    if missing:
        raise DataFormatError(f"{name}: missing column(s) {', '.join(missing)}")
    return beat_columns(schema.names, name)


def _raw_batch(
    source: str,
    stream: str,
    batch: pa.RecordBatch,
    columns: list[str],
    problem: str | None,
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
        signals=_signals(batch, columns, problem),
        row_keys=RowNumbers(f"{stream}#row=", first, n),
        position=position,
        signal_problem=problem,
    )


def _ids(column: pa.Array) -> pa.Array | np.ndarray:
    """A text column as it is (Arrow strings: no Python object per row on the hot path); any
    other type as a numpy object array, for validation to judge row by row."""
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind):
        return column
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=object)


def _signals(batch: pa.RecordBatch, columns: list[str], problem: str | None) -> np.ndarray | list:
    """A float array (n, length) when the beats allow one, else each row's beat as written."""
    signals = None if problem is not None else beat_matrix(batch, columns)
    return signals if signals is not None else beat_rows(batch, columns)


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


def beats_by_id(path: Path, record_ids: list[str]) -> dict[str, np.ndarray]:
    """{record_id: beat (length,) float64} of the given ids found in the source's files, read
    with the same layout rules as scoring (for pictures of flagged beats); ids not found (a file
    since removed) are left out."""
    wanted, found = set(record_ids), {}
    for file in list_files(path):
        handle = pq.ParquetFile(file)
        columns = _beat_columns(handle.schema_arrow, file.name)
        data = pq.read_table(
            file, columns=["record_id", *columns], filters=[("record_id", "in", sorted(wanted))]
        )
        if data.num_rows == 0:
            continue
        ids = [str(v) for v in data.column("record_id").to_pylist()]
        matrix = beat_matrix(data, columns)
        rows = matrix if matrix is not None else beat_rows(data, columns)
        for record_id, beat in zip(ids, rows, strict=True):
            found[record_id] = np.asarray(beat, dtype=np.float64)
        wanted -= set(ids)
        if not wanted:
            break
    return found
