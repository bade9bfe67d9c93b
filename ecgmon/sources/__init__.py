"""Sources of new records: each knows its stable key and yields raw batches past its watermarks.

One module per kind: :mod:`~ecgmon.sources.parquet` (files), :mod:`~ecgmon.sources.table`
(a database table), :mod:`~ecgmon.sources.wfdb_folder` (WFDB recordings). The rules of the
Parquet beat layout live in :mod:`~ecgmon.sources.beat_layout`, read by the Parquet source and by
the training readers (:mod:`~ecgmon.sources.datasets`) alike.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Protocol

from ecgmon.errors import ConfigurationError, SourceNotFoundError
from ecgmon.recordings import is_wfdb_folder
from ecgmon.records import RawBatch
from ecgmon.sources.parquet import ParquetSource, source_key
from ecgmon.storage.engine import redact_url, url_has_secret


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


def shown_source(spec: str) -> str:
    """A source as it may be stored or logged: a database URL (also behind ``env:NAME``) with
    its password and query secrets masked; anything else as it is."""
    if spec.startswith("env:"):
        spec = os.environ.get(spec[4:], spec)
    if "://" not in spec:
        return spec
    url, mark, table_part = spec.partition("#")  # a source key's "#table=NAME" stays as it is
    return redact_url(url) + mark + table_part


def refuse_secret_source(spec: str) -> None:
    """Raise if a flow parameter ``source`` is a database URL holding a password: Prefect stores
    flow-run parameters in its database, so the URL must stay in an environment variable, passed
    as ``env:NAME``."""
    if "://" in spec and url_has_secret(spec):
        raise ConfigurationError(
            f"source {redact_url(spec)} holds a password, and flow parameters are stored by "
            "Prefect: put the URL in an environment variable and pass source=env:NAME"
        )


def source_key_of(spec: str, table: str | None = None) -> str:
    """The key watermarks and rejections name a source by (``parquet:/abs/path``,
    ``wfdb:/abs/path``, or the URL without its password and ``#table=NAME``), without opening it;
    ``pipeline_runs.source`` holds the same, so runs join with their watermarks."""
    if table is not None or "://" in spec or spec.startswith("env:"):
        from ecgmon.sources.table import db_source_key

        url = os.environ.get(spec[4:], spec) if spec.startswith("env:") else spec
        return db_source_key(url, table or "")
    path = Path(spec).expanduser()
    if path.exists() and is_wfdb_folder(path):
        from ecgmon.sources.wfdb_folder import wfdb_source_key

        return wfdb_source_key(path)
    return source_key(path)


def empty_source_hint(spec: str) -> str | None:
    """A hint when a source folder holds nothing to read (no Parquet file, no WFDB header): an
    empty folder, or most likely the wrong one; None when it holds something (or is a file or a
    database)."""
    path = Path(spec).expanduser()
    if "://" in spec or spec.startswith("env:") or not path.is_dir() or is_wfdb_folder(path):
        return None
    if any(path.rglob("*.parquet")):
        return None
    others = sorted(p.relative_to(path) for p in path.rglob("*") if p.is_file())
    found = (
        f"it holds {len(others)} other file(s), e.g. {', '.join(map(str, others[:3]))}"
        if others
        else "it is empty"
    )
    return (
        f"source {path} holds no Parquet file (*.parquet, in it or its sub-folders) and no WFDB "
        f"header (*.hea): {found}. Is it the right folder?"
    )


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
