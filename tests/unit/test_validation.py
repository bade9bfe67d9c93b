"""validate_batch on three-row hand-made batches: every bad row becomes a reasoned rejection."""

import numpy as np
import pandas as pd

from ecgmon.records import RawBatch, StreamPosition
from ecgmon.validation import validate_batch


def raw(ids, times, signals, patients=None) -> RawBatch:
    n = len(ids)
    return RawBatch(
        source="test",
        record_id=np.asarray(ids, dtype=object),
        recorded_at=pd.Series(times, dtype=object),
        patient_id=np.asarray(patients or [None] * n, dtype=object),
        signals=signals,
        row_keys=[f"f#row={i}" for i in range(n)],
        position=StreamPosition("f", n),
    )


def test_good_rows_pass_unchanged():
    sig = np.arange(12, dtype=np.float32).reshape(3, 4)
    valid, rejected = validate_batch(raw(["a", "b", "c"], ["2026-01-01T00:00:00Z"] * 3, sig), 4)
    assert rejected == [] and valid.record_id.to_pylist() == ["a", "b", "c"]
    np.testing.assert_array_equal(valid.signals, sig)
    assert str(valid.recorded_at.tz) == "UTC"


def test_each_fault_has_its_reason():
    signals = [
        [1.0, 2.0, 3.0],
        [1.0, np.nan, 3.0],
        [1.0, 2.0],
        None,
        [1.0, 2.0, 3.0],
        [9e9, 0, 0],
        [],
    ]
    ids = ["ok", "nan", "short", "none", None, "loud", "empty"]
    times = ["2026-01-01 00:00"] * 7
    valid, rejected = validate_batch(raw(ids, times, signals), 3)
    reasons = {
        r.record_key.split(":")[-1] if ":" in r.record_key else r.record_key: r.reason
        for r in rejected
    }
    assert valid.record_id.to_pylist() == ["ok"]
    assert reasons == {
        "nan": "non_finite",
        "short": "wrong_length",
        "none": "missing_signal",
        "f#row=4": "missing_record_id",
        "loud": "implausible_amplitude",
        "empty": "empty_signal",
    }
    assert len(valid) + len(rejected) == len(ids)
    assert all(r.raw_payload for r in rejected)


def test_duplicates_and_bad_times_are_rejected_and_timezones_normalised():
    sig = np.zeros((4, 2), dtype=np.float32)
    times = ["2026-01-01T01:00:00+01:00", "not a time", "2026-01-01T00:00:00", None]
    valid, rejected = validate_batch(raw(["a", "b", "a", "c"], times, sig), 2)
    assert sorted(r.reason for r in rejected) == [
        "duplicate_record_id",
        "missing_recorded_at",
        "missing_recorded_at",
    ]
    assert valid.record_id.to_pylist() == ["a"]
    assert valid.recorded_at[0] == pd.Timestamp("2026-01-01T00:00:00Z")


def test_signals_read_from_columns_without_numbers_are_each_rejected():
    batch = raw(["a", "b", None], ["2026-01-01 00:00"] * 3, [["1", "2"], None, ["3", "4"]])
    batch.signal_problem = "column 'signal' must hold lists of numbers, not list<item: string>"
    valid, rejected = validate_batch(batch, 2)
    assert len(valid) == 0
    assert [(r.reason, r.detail) for r in rejected] == [
        ("non_numeric_signal", batch.signal_problem),
        ("missing_signal", "signal is missing"),
        ("missing_record_id", "record_id is missing or empty"),
    ]
    assert '"signal": ["1", "2"]' in rejected[0].raw_payload  # the row as written, for replay


def test_a_driver_connection_error_is_retried():
    """psycopg's own OperationalError (a COPY runs on the driver's connection, unwrapped by
    SQLAlchemy) is retried like SQLAlchemy's; a full disk is not."""
    import psycopg

    from ecgmon.storage.locks import is_transient, retry_transient

    attempts = []

    def connect_once_refused() -> int:
        attempts.append(1)
        if len(attempts) == 1:
            psycopg.connect("host=127.0.0.1 port=9 connect_timeout=2")  # nobody listens
        return 42

    assert retry_transient(connect_once_refused, base_delay=0.0) == 42 and len(attempts) == 2
    full = psycopg.errors.DiskFull("could not extend file: No space left on device")
    assert not is_transient(full)


def test_numbers_written_as_text_are_not_numbers():
    from ecgmon.records import RawBatch, StreamPosition

    raw = RawBatch(
        source="f",
        record_id=np.array(["a", "b"], dtype=object),
        recorded_at=pd.Series(["2026-11-01T00:00:00Z"] * 2),
        patient_id=np.array([None, None], dtype=object),
        signals=[["0.1", "0.2", "0.3"], [0.1, None, 0.3]],
        row_keys=["f#row=0", "f#row=1"],
        position=StreamPosition("f"),
    )
    _, rejected = validate_batch(raw, 3)
    assert [(r.record_key, r.reason) for r in rejected] == [
        ("f#row=0:a", "non_numeric_signal"),
        ("f#row=1:b", "non_finite"),
    ]
