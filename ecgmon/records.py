"""Record formats inside the pipeline: a raw batch from a source, valid beats, rejections."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa


def as_objects(values: np.ndarray | pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Values (n,) as a numpy object array of Python values (an Arrow null becomes None); a
    numpy array is returned as it is."""
    if isinstance(values, pa.Array | pa.ChunkedArray):
        out = np.empty(len(values), dtype=object)
        out[:] = values.to_pylist()
        return out
    return values


#: Reasons that reject a whole file (or recording) at once, not one row: each one makes its run
#: warn, count it in its summary and alert, and the file is read again once fixed in place.
WHOLE_FILE_REASONS = (
    "schema_mismatch",
    "unreadable_file",
    "truncated_file",
    "missing_file",
    "unreadable_record",
)


@dataclass(frozen=True)
class Rejection:
    """One quarantined input: a record, or a whole file, with a machine-readable reason."""

    record_key: str
    reason: str
    detail: str
    raw_payload: str | None = None


@dataclass(frozen=True)
class StreamPosition:
    """How far one stream of a source (a file, a recording, a table) is read once committed."""

    stream: str
    offset: int = 0
    fingerprint: str | None = None
    complete: bool = False
    time: pd.Timestamp | None = None
    key: str | None = None


@dataclass(frozen=True)
class RowNumbers(Sequence[str]):
    """Row keys ``{prefix}{first + i}`` (i < n), formatted only when one is asked for: a batch
    needs the key of its rejected rows alone, so a million rows cost no million strings."""

    prefix: str
    first: int
    n: int

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> str:  # type: ignore[override]
        i = int(i)
        if not -self.n <= i < self.n:
            raise IndexError(i)
        return f"{self.prefix}{self.first + i % self.n}"


@dataclass
class RawBatch:
    """Up to ``batch_size`` records as read, before validation.

    ``record_id`` and ``patient_id`` are numpy object arrays or Arrow arrays (a Parquet text
    column is passed on as it is). ``signals`` is either a float array (n, length) when every
    beat had the same length, or a list of n 1-D arrays (None for a missing beat). ``row_keys``
    name each row for rejections (``file.parquet#row=12``) even when its record_id is missing.
    ``signal_problem`` says why no signal of the batch holds numbers (the type of the columns
    they were read from, e.g. text), so that validation rejects each of them; None when they may.
    """

    source: str
    record_id: np.ndarray | pa.Array
    recorded_at: pd.Series
    patient_id: np.ndarray | pa.Array
    signals: np.ndarray | list
    row_keys: Sequence[str]
    position: StreamPosition
    rejections: list[Rejection] = field(default_factory=list)
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    signal_problem: str | None = None

    def __len__(self) -> int:
        return len(self.record_id)


@dataclass
class ValidBeats:
    """Beats that passed validation: ids, UTC times, patients (n,) and signals (n, length).

    ``validate_batch`` gives ids and patients as Arrow string arrays (null: no patient); numpy
    object arrays are accepted too (``patient_ids`` reads either)."""

    record_id: np.ndarray | pa.Array
    recorded_at: pd.DatetimeIndex
    patient_id: np.ndarray | pa.Array
    signals: np.ndarray
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.record_id)

    def patient_ids(self) -> np.ndarray:
        """Patient ids (n,) as a numpy object array (None: no patient)."""
        return as_objects(self.patient_id)


@dataclass
class ScoredBeats:
    """Valid beats with their per-beat loss (n,) and flag (n,) against one threshold."""

    beats: ValidBeats
    loss: np.ndarray
    is_anomaly: np.ndarray
    threshold: np.ndarray
    threshold_version: np.ndarray
    baseline: np.ndarray
    #: which beats the population autoencoder judged (n,) bool; None: all of them
    by_autoencoder: np.ndarray | None = None

    @property
    def score_ratio(self) -> np.ndarray:
        """Loss relative to the threshold: above 1 means flagged."""
        return self.loss / np.where(self.threshold > 0, self.threshold, np.finfo(float).tiny)
