"""Sources of new records: each knows its stable key and yields raw batches past its watermarks."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Protocol

from ecgmon.errors import SourceNotFoundError
from ecgmon.recordings import is_wfdb_folder
from ecgmon.records import RawBatch
from ecgmon.sources.parquet import (
    file_fingerprint,
    list_files,
    partition_date,
    read_file_batches,
    source_key,
    stream_name,
)


class Source(Protocol):
    """What the score and backfill paths need of a source."""

    key: str

    def new_batches(self, watermarks: dict[str, dict], batch_size: int) -> Iterator[RawBatch]:
        """Raw batches not yet committed according to ``watermarks`` ({stream: row})."""
        ...

    def partitions(self) -> dict[date, list[str]]:
        """Streams by the day they hold (for backfills)."""
        ...

    def stream_batches(self, stream: str, batch_size: int) -> Iterator[RawBatch]:
        """Every raw batch of one stream, from its start."""
        ...


class ParquetSource:
    """A Parquet file or a folder of files, possibly partitioned by date (``date=YYYY-MM-DD``)."""

    def __init__(self, path: Path, until: date | None = None) -> None:
        self.path = path
        self.key = source_key(path)
        self.until = until  # partitions dated after this day are left for a later run

    def new_batches(self, watermarks: dict[str, dict], batch_size: int) -> Iterator[RawBatch]:
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
        out: dict[date, list[str]] = {}
        for file in list_files(self.path):
            day = partition_date(file)
            if day is not None:
                out.setdefault(day, []).append(stream_name(self.path, file))
        return out

    def stream_batches(self, stream: str, batch_size: int) -> Iterator[RawBatch]:
        file = self.path if self.path.is_file() else self.path / stream
        yield from read_file_batches(self.path, file, batch_size, 0)


def open_source(spec: str, table: str | None = None, input_length: int | None = None) -> Source:
    """The source a user named: a Parquet file or folder, a WFDB folder, or a database table.

    A folder holding WFDB headers (``*.hea``) is a folder of continuous recordings; reading beats
    from it needs the model's ``input_length`` (the score path passes it).

    A database is a SQLAlchemy URL, or ``env:NAME`` naming an environment variable that holds
    the URL (so a password stays out of flow-run parameters).
    """
    if table is not None or "://" in spec or spec.startswith("env:"):
        return _database_source(spec, table)
    path = Path(spec).expanduser()
    if not path.exists():
        raise SourceNotFoundError(f"source {path} does not exist")
    if is_wfdb_folder(path):
        from ecgmon.sources.wfdb_folder import WfdbSource

        return WfdbSource(path, input_length)
    return ParquetSource(path)


def _database_source(spec: str, table: str | None) -> Source:
    from ecgmon.settings import get_settings
    from ecgmon.sources.table import DatabaseSource

    url = os.environ.get(spec[4:], "") if spec.startswith("env:") else spec
    if not url:
        raise SourceNotFoundError(f"source {spec}: the environment variable is not set")
    if table is None:
        raise SourceNotFoundError("a database source needs a table (--table NAME)")
    return DatabaseSource(url, table, get_settings().db_lookback_seconds)


def bound_window(source: Source, as_of: datetime | None) -> Source:
    """Bound what ``source`` reads to the window ending at ``as_of`` (a scheduled start time).

    Sources with an ``until`` attribute (a day) leave partitions dated after ``as_of``'s UTC
    day for a later run; ``as_of=None`` reads everything.
    """
    if as_of is not None and hasattr(source, "until"):
        moment = as_of if as_of.tzinfo is not None else as_of.replace(tzinfo=UTC)
        source.until = moment.astimezone(UTC).date()
    return source
