"""WFDB source: a folder of continuous recordings (``NNN.hea`` + ``NNN.dat``) scored beat by beat.

Each record is one stream. Its beats come from ecgmon.recordings (voted R-peak detection, a
window of 0.25 s before to 0.45 s after each R peak, resampled to the model's input length and
z-normalised per beat). Provenance stays with every beat:

- ``record_id`` is ``"{record}:{lead}:{sample}"`` (``"223:MLII:10452"``): the record name, the lead
  and the R peak's sample index in that record, so ``wfdb.rdrecord(record, sampfrom=sample - fs,
  sampto=sample + fs)`` brings back the strip around it;
- ``recorded_at`` is the R peak's time (header base date/time + sample / fs; 2000-01-01 when the
  header has none); ``patient_id`` is the record name;
- ``RawBatch.extra`` holds ``lead``, ``sample`` and the RR context ``rr_before``/``rr_after``
  (relative to the running median RR) for code that wants them without parsing the id.

The watermark of a record is the sample index of its last emitted R peak, committed with the
batch's scores: a re-run yields nothing, a grown recording yields only its new beats, and only
its new signal (plus 30 s of overlap for the detector) is read, 30 minutes at a time. Peaks in
the last second of a recording are held back until more signal arrives (the detector may still
move them), so a recording that never grows keeps its final beat or two unscored.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from ecgmon.errors import EcgmonError, SourceNotFoundError
from ecgmon.recordings import RecordingBeats, list_records, new_recording_beats
from ecgmon.records import RawBatch, Rejection, StreamPosition

log = logging.getLogger(__name__)


def wfdb_source_key(path: Path) -> str:
    """The stable name of a WFDB folder in watermarks and rejections."""
    return f"wfdb:{Path(path).resolve()}"


class WfdbSource:
    """A folder of WFDB records; ``input_length`` is the model's (samples per beat)."""

    def __init__(self, path: Path, input_length: int | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise SourceNotFoundError(f"WFDB folder {self.path} does not exist")
        self.key = wfdb_source_key(self.path)
        self.input_length = input_length

    def new_batches(self, watermarks: dict[str, dict], batch_size: int) -> Iterator[RawBatch]:
        """Batches of each record's beats after its watermark ({record: watermark row})."""
        length = self._length()
        for header in list_records(self.path):
            row = watermarks.get(header.stem)
            mark = int(row["position_offset"]) if row is not None else -1
            yield from record_batches(self.key, header, length, mark, batch_size)

    def partitions(self) -> dict[date, list[str]]:
        """Not offered: a recording is one continuous stream, not a set of daily partitions."""
        raise EcgmonError(
            "backfill by date is not supported for WFDB sources; use 'ecgmon score --source' "
            "(each record resumes after its last scored beat)"
        )

    def stream_batches(self, stream: str, batch_size: int) -> Iterator[RawBatch]:
        """Every beat of one record from its start (ignoring its watermark)."""
        yield from record_batches(
            self.key, self.path / f"{stream}.hea", self._length(), -1, batch_size
        )

    def _length(self) -> int:
        if self.input_length is None:
            raise EcgmonError(
                f"the WFDB source {self.path} needs the model's input length to cut beats"
            )
        return self.input_length


def record_batches(
    source: str, header: Path, length: int, watermark: int, batch_size: int
) -> Iterator[RawBatch]:
    """Raw batches (up to ``batch_size`` beats) of one record's beats after ``watermark``.

    Each batch's position is the R-peak sample of its last beat. A record that cannot be read is
    one rejection (reason ``unreadable_record``) and keeps its watermark. Nothing is yielded when
    no beat is new.
    """
    record = header.stem
    chunks = new_recording_beats(header, length, watermark)
    while True:
        try:
            beats = next(chunks, None)
        except EcgmonError as err:
            rejection = Rejection(record, "unreadable_record", str(err), None)
            position = StreamPosition(record, max(watermark, 0), complete=False)
            yield _raw_batch(
                source,
                record,
                [],
                pd.Series([], dtype="datetime64[ns, UTC]"),
                [],
                np.zeros((0, length), np.float32),
                {},
                position,
                [rejection],
            )
            return
        if beats is None:
            return
        log.info("record %s: %d new beats up to sample %d", record, len(beats), beats.watermark)
        watermark = beats.watermark
        yield from _beat_batches(source, record, beats, batch_size)


def _beat_batches(
    source: str, record: str, beats: RecordingBeats, batch_size: int
) -> Iterator[RawBatch]:
    times = pd.Series(pd.to_datetime(beats.recorded_at, utc=True))
    for start in range(0, len(beats), batch_size):
        part = slice(start, start + batch_size)
        samples = beats.samples[part]
        extra = {
            "lead": np.full(samples.size, beats.lead, dtype=object),
            "sample": samples.astype(np.int64),
            "rr_before": beats.rr[part, 0],
            "rr_after": beats.rr[part, 1],
        }
        position = StreamPosition(
            record, int(samples[-1]), key=beats.lead, time=times.iloc[part].iloc[-1]
        )
        yield _raw_batch(
            source,
            record,
            beats.record_ids[part],
            times.iloc[part],
            [record] * samples.size,
            beats.signals[part],
            extra,
            position,
            [],
        )


def _raw_batch(
    source: str,
    record: str,
    ids: list[str],
    times: pd.Series,
    patients: list[str],
    signals: np.ndarray,
    extra: dict[str, np.ndarray],
    position: StreamPosition,
    rejections: list[Rejection],
) -> RawBatch:
    return RawBatch(
        source=source,
        record_id=np.asarray(ids, dtype=object),
        recorded_at=times.reset_index(drop=True),
        patient_id=np.asarray(patients, dtype=object),
        signals=np.ascontiguousarray(signals, dtype=np.float32),
        row_keys=list(ids),
        position=position,
        rejections=rejections,
        extra=extra,
    )
