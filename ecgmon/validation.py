"""Validation of raw records: every bad row becomes a Rejection with a reason, none is dropped."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ecgmon.records import RawBatch, Rejection, ValidBeats, as_objects

MAX_ABS_AMPLITUDE = 1e4
MAX_ID_LENGTH = 256  # characters of scores.record_id
MAX_PATIENT_ID_LENGTH = 128  # characters of scores.patient_id
#: Bytes an id may take in UTF-8 and still be compared with earlier ones (4 per character);
#: a longer id is rejected as too long anyway and takes no part in the repeat check.
MAX_ID_BYTES = 4 * MAX_ID_LENGTH
#: Samples of a rejected row's signal kept in its raw payload; a longer signal is cut there and
#: its payload says how long it was (``signal_samples``), so one row cannot flood the quarantine.
MAX_PAYLOAD_SAMPLES = 4_096
#: A NUL character: PostgreSQL text cannot hold it (SQLite can), so an id with one is rejected.
NUL = "\x00"


def validate_batch(
    raw: RawBatch, input_length: int, max_abs_amplitude: float = MAX_ABS_AMPLITUDE
) -> tuple[ValidBeats, list[Rejection]]:
    """Split a raw batch into valid beats of ``input_length`` samples and rejections.

    Reasons: missing_record_id, record_id_too_long, nul_in_id, patient_id_too_long,
    missing_recorded_at, duplicate_record_id, missing_signal, empty_signal, wrong_length,
    non_numeric_signal, non_finite, implausible_amplitude.
    Conservation: ``len(valid) + len(rejections) == len(raw) + len(raw.rejections)``.
    A row's first failing check (in that order of checks) is its reason. Checks are vectorised:
    Python runs per row only for rejected rows and for signals that are not one float array.
    """
    n = len(raw)
    reasons = np.full(n, None, dtype=object)
    ids, distinct = _ids(raw.record_id, reasons)
    patients = _patients(raw.patient_id)
    _check_patients(patients, reasons)
    times = _times(raw.recorded_at, reasons)
    if raw.signal_problem is not None:
        _not_numbers(raw.signals, raw.signal_problem, reasons)
    signals = _signals(raw.signals, n, input_length, max_abs_amplitude, reasons)
    if not distinct:
        _duplicates(ids.to_numpy(zero_copy_only=False), reasons)
    ok = np.equal(reasons, None)
    rejections = list(raw.rejections)
    for i in np.flatnonzero(~ok):
        reason, detail = reasons[i]
        rejections.append(Rejection(_key(raw, ids[i].as_py(), i), reason, detail, _payload(raw, i)))
    everything = bool(ok.all())
    keep = None if everything else pa.array(ok)
    valid = ValidBeats(
        record_id=ids if everything else ids.filter(keep),
        recorded_at=times if everything else times[ok],
        patient_id=patients if everything else patients.filter(keep),
        signals=signals if everything else signals[ok],
        extra={name: values[ok] for name, values in raw.extra.items()},
    )
    return valid, rejections


def _strings(values: np.ndarray | pa.Array) -> pa.Array | None:
    """``values`` as an Arrow string array (None/NaN -> null), or None if any is not a string."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
            return values.cast(pa.string())
        values = values.to_numpy(zero_copy_only=False)
    try:
        return pa.array(values, type=pa.string(), from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError):
        return None


def _ids(values: np.ndarray | pa.Array, reasons: np.ndarray) -> tuple[pa.Array, bool]:
    """Stripped ids (n,) as Arrow strings, null where unusable; and whether they are known to be
    distinct (then no row can repeat an earlier one: the per-row duplicate search is skipped)."""
    strings = _strings(values)
    if strings is None:  # not all strings: the per-row path
        return pa.array(_ids_per_row(as_objects(values), reasons), pa.string()), False
    text = pc.utf8_trim_whitespace(strings)
    distinct = text.null_count == 0 and pc.count_distinct(text).as_py() == len(text)
    lengths = pc.utf8_length(text).fill_null(0).to_numpy(zero_copy_only=False)
    missing = lengths == 0
    if missing.any():
        _set_where(reasons, missing, "missing_record_id", "record_id is missing or empty")
        text = pc.if_else(pa.array(missing), pa.scalar(None, pa.string()), text)
    for i in np.flatnonzero(lengths > MAX_ID_LENGTH):
        _set(reasons, i, "record_id_too_long", f"record_id has {lengths[i]} characters")
    nul = pc.match_substring(text, NUL).fill_null(False).to_numpy(zero_copy_only=False)
    _set_where(reasons, nul, "nul_in_id", "record_id holds a NUL character")
    return text, distinct


def _item(values: np.ndarray | pa.Array, i: int) -> object:
    """Entry i as a Python value, from a numpy or an Arrow array."""
    return values[i].as_py() if isinstance(values, pa.Array | pa.ChunkedArray) else values[i]


def _take(values: np.ndarray | pa.Array, rows: np.ndarray) -> np.ndarray | pa.Array:
    """The entries at ``rows`` (k,) int, from a numpy or an Arrow array."""
    arrow = isinstance(values, pa.Array | pa.ChunkedArray)
    return values.take(pa.array(rows)) if arrow else values[rows]


def _ids_per_row(values: np.ndarray, reasons: np.ndarray) -> np.ndarray:
    ids = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        text = (
            None if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
        )
        text = text.strip() if text is not None else None
        if not text:
            _set(reasons, i, "missing_record_id", "record_id is missing or empty")
            text = None
        elif len(text) > MAX_ID_LENGTH:
            _set(reasons, i, "record_id_too_long", f"record_id has {len(text)} characters")
        elif NUL in text:
            _set(reasons, i, "nul_in_id", "record_id holds a NUL character")
        ids[i] = text
    return ids


#: Magnitudes above which an epoch number is in ms, µs, ns (below 1e11: seconds, until 5138).
_EPOCH_UNITS = ((1e17, "ns"), (1e14, "us"), (1e11, "ms"), (0.0, "s"))


def _times(values: pd.Series, reasons: np.ndarray) -> pd.DatetimeIndex:
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        parsed = _epoch_times(values)
    else:
        parsed = pd.to_datetime(values, utc=True, errors="coerce", format="mixed")
    missing = parsed.isna().to_numpy()
    _set_where(reasons, missing, "missing_recorded_at", "recorded_at is missing or not a timestamp")
    return pd.DatetimeIndex(parsed)  # not .to_numpy(): that boxes every tz-aware time


def _epoch_times(values: pd.Series) -> pd.Series:
    """Numbers as Unix epoch times, UTC: seconds unless their magnitude says ms, µs or ns (a
    plain ``to_datetime`` would read 1790000000 as nanoseconds, i.e. 1970)."""
    numbers = values.astype("float64")
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    magnitude = numbers.abs()
    done = numbers.isna()
    for bound, unit in _EPOCH_UNITS:
        rows = ~done & (magnitude >= bound)
        if rows.any():
            out[rows] = pd.to_datetime(numbers[rows], unit=unit, utc=True, errors="coerce")
        done |= rows
    return out


def _signals(
    signals: np.ndarray | list, n: int, length: int, bound: float, reasons: np.ndarray
) -> np.ndarray:
    if isinstance(signals, np.ndarray) and signals.ndim == 2 and signals.dtype.kind == "f":
        out = signals.astype(np.float32, copy=False)
        if out.shape[1] != length:
            detail = f"beat has {out.shape[1]} samples, model expects {length}"
            _set_where(reasons, np.ones(n, dtype=bool), "wrong_length", detail)
            return np.zeros((n, length), dtype=np.float32)
    else:
        out = np.zeros((n, length), dtype=np.float32)
        for i, beat in enumerate(signals):
            out[i] = _one_signal(beat, i, length, reasons)
    # |x| peak without a temporary array; NaN or inf when a sample is, so it also finds those
    peak = np.maximum(out.max(axis=1, initial=0), -out.min(axis=1, initial=0))
    finite = np.isfinite(peak)
    _set_where(reasons, ~finite, "non_finite", "beat holds NaN or infinite samples")
    if not finite.all():
        peak = _finite_peak(out)
    detail = f"beat has samples beyond ±{bound:g}"
    _set_where(reasons, peak > bound, "implausible_amplitude", detail)
    return out


def _not_numbers(signals: np.ndarray | list, problem: str, reasons: np.ndarray) -> None:
    """Every signal read from columns that hold no numbers: missing if null, else non-numeric."""
    for i, beat in enumerate(signals):
        if beat is None:
            _set(reasons, i, "missing_signal", "signal is missing")
        else:
            _set(reasons, i, "non_numeric_signal", problem)


def _finite_peak(out: np.ndarray) -> np.ndarray:
    return np.abs(np.where(np.isfinite(out), out, 0)).max(axis=1, initial=0)


def _one_signal(beat: object, i: int, length: int, reasons: np.ndarray) -> np.ndarray:
    if beat is None:
        _set(reasons, i, "missing_signal", "signal is missing")
        return np.zeros(length, dtype=np.float32)
    try:
        if not _all_numbers(beat):  # numpy would parse the text "0.5" as a number
            raise TypeError
        values = np.asarray(beat, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        _set(reasons, i, "non_numeric_signal", "signal holds values that are not numbers")
        return np.zeros(length, dtype=np.float32)
    if values.size == 0:
        _set(reasons, i, "empty_signal", "signal has no samples")
    elif values.size != length:
        _set(reasons, i, "wrong_length", f"beat has {values.size} samples, model expects {length}")
    else:
        return values.astype(np.float32)
    return np.zeros(length, dtype=np.float32)


def _all_numbers(beat: object) -> bool:
    """Whether a beat holds only numbers (a missing sample, None, counts as one: it is NaN)."""
    kind = getattr(beat, "dtype", None)
    if kind is not None and kind.kind != "O":
        return kind.kind in "iuf"
    return all(
        v is None or (isinstance(v, int | float | np.number) and not isinstance(v, bool))
        for v in beat  # type: ignore[union-attr]
    )


def _duplicates(ids: np.ndarray, reasons: np.ndarray) -> None:
    """Later rows repeating an earlier row's id (rows without a usable id take no part)."""
    usable = np.array(
        [r is None or r[0] not in ("missing_record_id", "record_id_too_long") for r in reasons]
        if any(r is not None for r in reasons)
        else np.ones(len(ids), dtype=bool),
        dtype=bool,
    )
    repeated = pd.Series(ids, dtype=object).where(usable).duplicated().to_numpy() & usable
    for i in np.flatnonzero(repeated):
        detail = f"record_id {ids[i]!r} appears earlier in the batch"
        _set(reasons, i, "duplicate_record_id", detail)


def _patients(values: np.ndarray | pa.Array) -> pa.Array:
    """Patient ids (n,) as Arrow strings, null where missing; other values as their text."""
    strings = _strings(values)
    if strings is not None:
        return strings
    text = [
        None if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
        for value in as_objects(values)
    ]
    return pa.array(text, pa.string())


def _check_patients(patients: pa.Array, reasons: np.ndarray) -> None:
    """Reject patient ids longer than their column or holding a NUL character (either would
    make every PostgreSQL write of the batch fail)."""
    lengths = pc.utf8_length(patients).fill_null(0).to_numpy(zero_copy_only=False)
    for i in np.flatnonzero(lengths > MAX_PATIENT_ID_LENGTH):
        _set(reasons, i, "patient_id_too_long", f"patient_id has {lengths[i]} characters")
    nul = pc.match_substring(patients, NUL).fill_null(False).to_numpy(zero_copy_only=False)
    _set_where(reasons, nul, "nul_in_id", "patient_id holds a NUL character")


def _set_where(reasons: np.ndarray, mask: np.ndarray, reason: str, detail: str) -> None:
    """Give rows in ``mask`` that have no reason yet this one."""
    rows = np.flatnonzero(mask)
    for i in rows[np.equal(reasons[rows], None)]:  # rejected rows only
        reasons[i] = (reason, detail)


def _set(reasons: np.ndarray, i: int, reason: str, detail: str) -> None:
    if reasons[i] is None:
        reasons[i] = (reason, detail)


def _key(raw: RawBatch, record_id: str | None, i: int) -> str:
    return f"{raw.row_keys[i]}:{record_id}" if record_id else raw.row_keys[i]


def _payload(raw: RawBatch, i: int) -> str:
    """The raw row as JSON, so a fixed row can be replayed; non-JSON values become strings.

    At most ``MAX_PAYLOAD_SAMPLES`` samples are kept; a longer signal is cut and its length
    kept as ``signal_samples`` (a replay rejects it again as ``wrong_length``)."""
    beat = raw.signals[i]
    extra: dict[str, int] = {}
    signal = None
    if beat is not None:
        values = np.asarray(beat, dtype=object).ravel()
        if values.size > MAX_PAYLOAD_SAMPLES:
            extra["signal_samples"] = int(values.size)
            values = values[:MAX_PAYLOAD_SAMPLES]
        signal = values.tolist()
    row = {
        "record_id": _item(raw.record_id, i),
        "recorded_at": raw.recorded_at.iloc[i],
        "patient_id": _item(raw.patient_id, i),
        "signal": signal,
        **extra,
    }
    return json.dumps(row, default=str, allow_nan=True)


class SeenIds:
    """The record ids of a run's earlier batches, kept as a sorted array of 64-bit hashes.

    8 bytes per id instead of a Python set entry (~100 bytes), so a run of 10 million beats
    stays flat in memory. Two different ids share a hash with probability ~n²/2⁶⁵ (about 3e-6
    for 10 million ids); such a beat is rejected as a repeat (quarantined, not lost). The hash
    (:func:`hash_strings`) is computed from the Arrow buffers: no Python object per id.
    """

    #: Sorted runs are merged until they reach this many hashes (8 MB), then kept as they are:
    #: adding a batch never copies the whole set (a copy of 80 MB per batch at 10 million ids).
    MERGE_UP_TO = 1 << 20

    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []  # sorted uint64 hash arrays, larger ones first

    def __len__(self) -> int:
        return sum(len(run) for run in self._runs)

    def check_and_add(self, ids: pa.Array) -> np.ndarray:
        """Which of ``ids`` (n,) Arrow strings (null: no id) an earlier call saw; then remember
        them. Returns (n,) bool."""
        present = ids.is_valid().to_numpy(zero_copy_only=False)
        hashes = hash_strings(ids.drop_null())
        order = np.argsort(hashes)
        ordered = hashes[order]  # sorted probes: searchsorted walks each run in order
        hit = np.zeros(len(ordered), dtype=bool)
        for run in self._runs:
            where = np.minimum(np.searchsorted(run, ordered), len(run) - 1)
            hit |= run[where] == ordered
        found = np.zeros(len(ids), dtype=bool)
        found[np.flatnonzero(present)[order]] = hit
        new = ordered[~hit]
        new = new[np.r_[True, new[1:] != new[:-1]]] if len(new) else new  # unique, sorted
        if len(new):
            self._runs.append(new)
        while len(self._runs) > 1 and len(self._runs[-2]) <= len(self._runs[-1]) < self.MERGE_UP_TO:
            last = self._runs.pop()  # disjoint sorted runs: a stable (radix) sort merges them
            self._runs[-1] = np.sort(np.concatenate([self._runs[-1], last]), kind="stable")
        return found


_M1, _M2 = np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53)  # MurmurHash3 fmix64
_SEED = np.uint64(0x9E3779B97F4A7C15)
HASH_CHUNK_BYTES = 1 << 20  # padded id bytes hashed at a time (their index array is 8x that)


def _fmix(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser (a bijection with full avalanche), in place on (n,)."""
    h ^= h >> np.uint64(33)
    h *= _M1
    h ^= h >> np.uint64(33)
    h *= _M2
    h ^= h >> np.uint64(33)
    return h


def hash_strings(values: pa.Array) -> np.ndarray:
    """A 64-bit hash (n,) uint64 of each string of an Arrow string array without nulls.

    Read from the array's buffers: each string is zero-padded to whole 8-byte words and the words
    are folded in with MurmurHash3's finaliser, seeded with the length. Not keyed: fine for ids
    the pipeline only compares with each other, not for input chosen to collide.
    """
    values = values.cast(pa.string())
    n = len(values)
    if values.null_count:
        raise ValueError("hash_strings takes no nulls")
    if n == 0:
        return np.empty(0, dtype=np.uint64)
    _, offsets_buffer, data_buffer = values.buffers()
    offsets = np.frombuffer(offsets_buffer, np.int32, n + 1, values.offset * 4).astype(np.int64)
    data = np.frombuffer(data_buffer or b"", np.uint8)
    lengths = np.diff(offsets)
    width = max(8, -(-int(lengths.max()) // 8) * 8)
    rows = max(1, HASH_CHUNK_BYTES // width)
    if n > rows:  # the padded bytes of a chunk of rows at a time: memory bounded
        return np.concatenate([hash_strings(values.slice(i, rows)) for i in range(0, n, rows)])
    columns = np.arange(width)
    index = offsets[:-1, None] + columns  # each string's bytes and those after it ...
    np.minimum(index, max(len(data) - 1, 0), out=index)
    padded = data.take(index) if len(data) else np.zeros((n, width), np.uint8)
    padded[columns >= lengths[:, None]] = 0  # ... zeroed past its end
    words = padded.view("<u8")
    h = _fmix(lengths.astype(np.uint64) ^ _SEED)
    for j in range(words.shape[1]):
        h ^= words[:, j]
        h = _fmix(h)
    return h


def split_repeats(raw: RawBatch, seen: SeenIds | set[str]) -> tuple[RawBatch, list[Rejection]]:
    """Rows whose record_id an earlier batch of the same run already had become rejections.

    ``seen`` (ids of earlier batches; a :class:`SeenIds`, or a set) is updated with this batch's
    ids. Returns the raw batch without the repeated rows and one ``duplicate_record_id``
    rejection per repeated row.
    """
    ids = _comparable(_trimmed_ids(raw.record_id))
    if isinstance(seen, SeenIds):
        repeat = seen.check_and_add(ids)
    else:
        listed = ids.to_pylist()
        repeat = np.array([i is not None and i in seen for i in listed], dtype=bool)
        seen.update(i for i in listed if i is not None)
    if not repeat.any():
        return raw, []
    rejections = [
        Rejection(
            f"{raw.row_keys[i]}:{ids[i].as_py()}",
            "duplicate_record_id",
            f"record_id {ids[i].as_py()!r} appears in an earlier batch of this run",
            _payload(raw, i),
        )
        for i in np.flatnonzero(repeat)
    ]
    return take_rows(raw, np.flatnonzero(~repeat)), rejections


def take_rows(raw: RawBatch, keep: np.ndarray) -> RawBatch:
    """The raw batch with only the rows at positions ``keep`` (its rejections kept whole)."""
    signals = raw.signals
    kept_signals = signals[keep] if isinstance(signals, np.ndarray) else [signals[i] for i in keep]
    return RawBatch(
        source=raw.source,
        record_id=_take(raw.record_id, keep),
        recorded_at=raw.recorded_at.iloc[keep].reset_index(drop=True),
        patient_id=_take(raw.patient_id, keep),
        signals=kept_signals,
        row_keys=[raw.row_keys[i] for i in keep],
        position=raw.position,
        rejections=raw.rejections,
        extra={name: values[keep] for name, values in raw.extra.items()},
        signal_problem=raw.signal_problem,
    )


def _comparable(ids: pa.Array) -> pa.Array:
    """Ids (n,) with those over ``MAX_ID_BYTES`` bytes nulled: validation rejects them as too
    long, and hashing them would cost memory in proportion to the longest id times the batch."""
    too_long = pc.greater(pc.binary_length(ids), MAX_ID_BYTES).fill_null(False)
    if not pc.any(too_long).as_py():
        return ids
    return pc.if_else(too_long, pa.scalar(None, pa.string()), ids)


def _trimmed_ids(values: np.ndarray | pa.Array) -> pa.Array:
    """Ids (n,) as Arrow strings: stripped text, null where missing or empty."""
    strings = _strings(values)
    if strings is None:
        ids = [None if v is None else str(v).strip() for v in as_objects(values)]
        return pa.array([i or None for i in ids], pa.string())
    text = pc.utf8_trim_whitespace(strings)
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
