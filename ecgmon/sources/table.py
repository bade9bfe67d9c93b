"""Database source: new rows of one table in any SQLAlchemy database, read in keyset pages.

The table holds ``record_id``, ``recorded_at``, optional ``patient_id`` and the beat, either as
numbered numeric columns sharing one prefix (``s000``, ``s001``, ...) or one array/JSON column
``signal``. Progress is a watermark on (``recorded_at``, ``record_id``): each page is

    WHERE recorded_at > :t OR (recorded_at = :t AND record_id > :k)
    ORDER BY recorded_at, record_id LIMIT :batch

(the OR form, portable where row-value comparison is not), so the table is never read whole.
Each page's last row becomes the watermark committed with the page's scores.

Late rows: with ``lookback_seconds`` > 0 a read starts ``lookback_seconds`` before the watermark
and re-reads that window. Re-read rows are upserted (same rows, same values), and they count once
in the run that re-read them, in both ``n_read`` and ``n_scored``: every run still conserves
``n_read = n_scored + n_rejected``, but the sum of ``n_scored`` over runs can exceed the number of
distinct scores by the re-read overlap. Flags of re-read beats keep their alert state, so no beat
is alerted twice. The watermark never moves backwards.

The source key names the database with its password masked
(:func:`ecgmon.storage.engine.redact_url`); the URL itself never leaves this object.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ecgmon.clock import as_utc
from ecgmon.errors import DataFormatError, SourceNotFoundError
from ecgmon.records import RawBatch, StreamPosition
from ecgmon.sources.beat_layout import beat_columns
from ecgmon.storage.engine import redact_url


def db_source_key(url: str, table_name: str) -> str:
    """The stable name of a table source: the URL without its password, and the table."""
    return f"{redact_url(url)}#table={table_name}"


class DatabaseSource:
    """New rows of one table, past a (recorded_at, record_id) watermark; see the module doc."""

    def __init__(self, url: str, table_name: str, lookback_seconds: float = 0.0) -> None:
        self.key = db_source_key(url, table_name)
        self.stream = table_name
        self.lookback = timedelta(seconds=lookback_seconds)
        self._engine = _engine(url)
        self._table = _reflect(self._engine, table_name, self.key)
        self._signal_columns = _signal_columns(self._table, self.key)

    def new_batches(self, watermarks: dict[str, dict], batch_size: int) -> Iterator[RawBatch]:
        """Pages after the watermark (minus the look-back), until a page comes back short."""
        mark = watermarks.get(self.stream)
        floor = _mark_of(mark)
        start: tuple[datetime, str | None] | None = floor
        if floor is not None and self.lookback:
            start = (floor[0] - self.lookback, None)
        yield from self._pages(start, floor, batch_size)

    def partitions(self) -> dict[date, list[str]]:
        """A table is one stream; backfills by day are not offered for tables."""
        return {}

    def stream_batches(self, stream: str, batch_size: int) -> Iterator[RawBatch]:
        """Every row of the table from its start, page by page."""
        yield from self._pages(None, None, batch_size)

    def _pages(
        self,
        start: tuple[datetime, str | None] | None,
        floor: tuple[datetime, str] | None,
        size: int,
    ) -> Iterator[RawBatch]:
        after = start
        while True:
            frame = self._read_page(after, size)
            if frame.empty:
                return
            last = _last_position(frame)
            if last is None:  # only rows without a time: rejected, and keyset cannot page past
                yield self._raw_batch(frame, floor, complete=True)
                return
            after = last
            mark = last if floor is None or last > floor else floor
            yield self._raw_batch(frame, mark, complete=len(frame) < size)
            if len(frame) < size:
                return

    def _read_page(self, after: tuple[datetime, str | None] | None, size: int) -> pd.DataFrame:
        """One page after ``after`` (time, key); a key of None means from that time inclusive."""
        t = self._table
        query = sa.select(t).order_by(t.c.recorded_at, t.c.record_id).limit(size)
        if after is not None:
            at = _bind_time(t.c.recorded_at, after[0])
            if after[1] is None:
                query = query.where(t.c.recorded_at >= at)
            else:
                key = _bind_key(t.c.record_id, after[1])
                query = query.where(
                    sa.or_(
                        t.c.recorded_at > at,
                        sa.and_(t.c.recorded_at == at, t.c.record_id > key),
                    )
                )
        try:
            with self._engine.connect() as conn:
                rows = conn.execute(query)
                return pd.DataFrame(rows.fetchall(), columns=list(rows.keys()))
        except sa.exc.SQLAlchemyError as err:
            raise SourceNotFoundError(
                f"cannot read {self.key}: {type(err).__name__}: {_first_line(err)}"
            ) from None

    def _raw_batch(
        self, frame: pd.DataFrame, mark: tuple[datetime, str] | None, complete: bool
    ) -> RawBatch:
        n = len(frame)
        ids = frame["record_id"].to_numpy(dtype=object)
        patient = (
            frame["patient_id"].to_numpy(dtype=object)
            if "patient_id" in frame
            else np.full(n, None, dtype=object)
        )
        return RawBatch(
            source=self.key,
            record_id=ids,
            recorded_at=frame["recorded_at"].reset_index(drop=True),
            patient_id=patient,
            signals=_signals(frame, self._signal_columns),
            row_keys=[f"{self.stream}#record_id={value}" for value in ids],
            position=StreamPosition(
                self.stream,
                0,
                None,
                complete=complete,
                time=None if mark is None else mark[0],
                key=None if mark is None else mark[1],
            ),
        )


def _engine(url: str) -> Engine:
    try:
        return sa.create_engine(url, pool_pre_ping=True)
    except (sa.exc.ArgumentError, ImportError, sa.exc.NoSuchModuleError) as err:
        raise SourceNotFoundError(
            f"cannot open source database {redact_url(url)}: {type(err).__name__}"
        ) from None


def _reflect(engine: Engine, table_name: str, key: str) -> sa.Table:
    """The table by name (``schema.table`` allowed), quoted by SQLAlchemy, never pasted."""
    schema, _, name = table_name.rpartition(".")
    try:
        table = sa.Table(name, sa.MetaData(), schema=schema or None, autoload_with=engine)
    except sa.exc.NoSuchTableError:
        raise SourceNotFoundError(f"source {key}: no table {table_name!r}") from None
    except sa.exc.SQLAlchemyError as err:
        raise SourceNotFoundError(
            f"cannot read {key}: {type(err).__name__}: {_first_line(err)}"
        ) from None
    missing = [c for c in ("record_id", "recorded_at") if c not in table.c]
    if missing:
        raise SourceNotFoundError(f"source {key}: missing column(s) {', '.join(missing)}")
    return table


def _signal_columns(table: sa.Table, key: str) -> list[str]:
    """['signal'] for an array/JSON column, else the numbered sample columns in order (the
    column rules of Parquet files, :func:`~ecgmon.sources.beat_layout.beat_columns`)."""
    try:
        return beat_columns([c.name for c in table.c], key)
    except DataFormatError as err:
        raise SourceNotFoundError(str(err)) from None


def _mark_of(mark: dict | None) -> tuple[datetime, str] | None:
    if mark is None or mark.get("position_time") is None:
        return None
    return as_utc(mark["position_time"]), mark.get("position_key") or ""


def _bind_time(column: sa.Column, value: datetime) -> datetime:
    """A UTC time as the column compares it: aware for zone-aware columns, else naive UTC."""
    if getattr(column.type, "timezone", False):
        return value
    return value.replace(tzinfo=None)


def _bind_key(column: sa.Column, key: str) -> object:
    """The watermark key (stored as text) in the column's type, for integer record ids."""
    try:
        return int(key) if column.type.python_type is int else key
    except (NotImplementedError, ValueError):
        return key


def _last_position(frame: pd.DataFrame) -> tuple[datetime, str] | None:
    """(recorded_at as aware UTC, record_id as text) of the page's last row with a time."""
    times = pd.to_datetime(frame["recorded_at"], utc=True, errors="coerce", format="mixed")
    valid = np.flatnonzero(times.notna().to_numpy())
    if not valid.size:
        return None
    i = int(valid[-1])
    return as_utc(times.iloc[i].to_pydatetime()), str(frame["record_id"].iloc[i])


def _signals(frame: pd.DataFrame, columns: list[str]) -> np.ndarray | list:
    """(n, length) float32 from wide columns when all numeric, else per-row values."""
    if columns != ["signal"]:
        try:
            return frame[columns].to_numpy(dtype=np.float32, na_value=np.nan)
        except (TypeError, ValueError):
            return [list(row) for row in frame[columns].itertuples(index=False)]
    return [_one_signal(value) for value in frame["signal"]]


def _one_signal(value: object) -> object:
    """An array/JSON cell as a list; text that is not JSON stays text (rejected later)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, (str, bytes)):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _first_line(err: Exception) -> str:
    text = str(getattr(err, "orig", None) or err)
    return text.splitlines()[0][:200] if text else ""
