"""Validation of raw records: every bad row becomes a Rejection with a reason, none is dropped."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from ecgmon.records import RawBatch, Rejection, ValidBeats

MAX_ABS_AMPLITUDE = 1e4
MAX_ID_LENGTH = 256


def validate_batch(
    raw: RawBatch, input_length: int, max_abs_amplitude: float = MAX_ABS_AMPLITUDE
) -> tuple[ValidBeats, list[Rejection]]:
    """Split a raw batch into valid beats of ``input_length`` samples and rejections.

    Reasons: missing_record_id, record_id_too_long, missing_recorded_at, duplicate_record_id,
    missing_signal, empty_signal, wrong_length, non_numeric_signal, non_finite, implausible_amplitude.
    Conservation: ``len(valid) + len(rejections) == len(raw) + len(raw.rejections)``.
    """
    n = len(raw)
    reasons: list[tuple[str, str] | None] = [None] * n
    ids = _ids(raw.record_id, reasons)
    times = _times(raw.recorded_at, reasons)
    signals = _signals(raw.signals, n, input_length, max_abs_amplitude, reasons)
    _duplicates(ids, reasons)
    ok = np.array([r is None for r in reasons], dtype=bool)
    rejections = list(raw.rejections)
    for i in np.flatnonzero(~ok):
        reason, detail = reasons[i]  # type: ignore[misc]
        rejections.append(Rejection(_key(raw, ids, i), reason, detail, _payload(raw, i)))
    valid = ValidBeats(
        record_id=ids[ok].astype(str),
        recorded_at=pd.DatetimeIndex(times[ok]),
        patient_id=_patients(raw.patient_id[ok]),
        signals=signals[ok],
        extra={name: values[ok] for name, values in raw.extra.items()},
    )
    return valid, rejections


def _ids(values: np.ndarray, reasons: list) -> np.ndarray:
    ids = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        text = (
            None if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
        )
        text = text.strip() if text is not None else None
        if not text:
            _set(reasons, i, "missing_record_id", "record_id is missing or empty")
        elif len(text) > MAX_ID_LENGTH:
            _set(reasons, i, "record_id_too_long", f"record_id has {len(text)} characters")
        ids[i] = text
    return ids


def _times(values: pd.Series, reasons: list) -> np.ndarray:
    parsed = pd.to_datetime(values, utc=True, errors="coerce", format="mixed")
    for i in np.flatnonzero(parsed.isna().to_numpy()):
        _set(reasons, i, "missing_recorded_at", "recorded_at is missing or not a timestamp")
    return parsed.to_numpy()


def _signals(
    signals: np.ndarray | list, n: int, length: int, bound: float, reasons: list
) -> np.ndarray:
    if isinstance(signals, np.ndarray) and signals.ndim == 2 and signals.dtype.kind == "f":
        out = signals.astype(np.float32, copy=False)
        if out.shape[1] != length:
            for i in range(n):
                _set(
                    reasons,
                    i,
                    "wrong_length",
                    f"beat has {out.shape[1]} samples, model expects {length}",
                )
            return np.zeros((n, length), dtype=np.float32)
    else:
        out = np.zeros((n, length), dtype=np.float32)
        for i, beat in enumerate(signals):
            out[i] = _one_signal(beat, i, length, reasons)
    finite = np.isfinite(out).all(axis=1)
    for i in np.flatnonzero(~finite):
        _set(reasons, i, "non_finite", "beat holds NaN or infinite samples")
    loud = np.abs(np.where(np.isfinite(out), out, 0)).max(axis=1, initial=0) > bound
    for i in np.flatnonzero(loud):
        _set(reasons, i, "implausible_amplitude", f"beat has samples beyond ±{bound:g}")
    return out


def _one_signal(beat: object, i: int, length: int, reasons: list) -> np.ndarray:
    if beat is None:
        _set(reasons, i, "missing_signal", "signal is missing")
        return np.zeros(length, dtype=np.float32)
    try:
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


def _duplicates(ids: np.ndarray, reasons: list) -> None:
    seen: set[str] = set()
    for i, value in enumerate(ids):
        if reasons[i] is not None and reasons[i][0] in ("missing_record_id", "record_id_too_long"):
            continue
        if value in seen:
            _set(
                reasons,
                i,
                "duplicate_record_id",
                f"record_id {value!r} appears earlier in the batch",
            )
        seen.add(value)


def _patients(values: np.ndarray) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        missing = value is None or (isinstance(value, float) and np.isnan(value))
        out[i] = None if missing else str(value)
    return out


def _set(reasons: list, i: int, reason: str, detail: str) -> None:
    if reasons[i] is None:
        reasons[i] = (reason, detail)


def _key(raw: RawBatch, ids: np.ndarray, i: int) -> str:
    return f"{raw.row_keys[i]}:{ids[i]}" if ids[i] else raw.row_keys[i]


def _payload(raw: RawBatch, i: int) -> str:
    """The raw row as JSON, so a fixed row can be replayed; non-JSON values become strings."""
    beat = raw.signals[i]
    signal = None if beat is None else np.asarray(beat, dtype=object).ravel().tolist()
    row = {
        "record_id": raw.record_id[i],
        "recorded_at": raw.recorded_at.iloc[i],
        "patient_id": raw.patient_id[i],
        "signal": signal,
    }
    return json.dumps(row, default=str, allow_nan=True)
