"""Property tests of validate_batch: on arbitrary rows it never raises, conserves every row and
gives every rejection a known, machine-readable reason and a JSON payload."""

import json

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecgmon.records import RawBatch, StreamPosition
from ecgmon.validation import validate_batch

LENGTH = 5
REASONS = {
    "missing_record_id",
    "record_id_too_long",
    "nul_in_id",
    "patient_id_too_long",
    "missing_recorded_at",
    "duplicate_record_id",
    "missing_signal",
    "empty_signal",
    "wrong_length",
    "non_numeric_signal",
    "non_finite",
    "implausible_amplitude",
}

floats = st.floats(allow_nan=True, allow_infinity=True, width=32)
ids = st.one_of(
    st.none(),
    st.text(max_size=6),
    st.text(min_size=257, max_size=300),
    st.integers(-5, 5),
    st.floats(allow_nan=True),
    st.sampled_from(["a", "b", " a "]),
)
times = st.one_of(
    st.none(),
    st.text(max_size=8),
    st.sampled_from(["2026-11-01T00:00:00Z", "2026-11-01 00:00", "2026-11-01T01:00:00+05:30"]),
    st.datetimes(timezones=st.one_of(st.none(), st.timezones())).map(pd.Timestamp),
    st.integers(0, 2**40),
)
signals = st.one_of(
    st.none(),
    st.lists(floats, min_size=0, max_size=8),
    st.lists(floats, min_size=LENGTH, max_size=LENGTH),
    st.lists(st.one_of(floats, st.text(max_size=2), st.none()), min_size=LENGTH, max_size=LENGTH),
    st.text(max_size=4),
)
rows = st.lists(
    st.tuples(ids, times, signals, st.one_of(st.none(), st.text(max_size=3))), max_size=12
)


def batch(rows: list[tuple], as_array: bool) -> RawBatch:
    n = len(rows)
    sig = [r[2] for r in rows]
    if as_array:
        sig = np.array([[1.0] * LENGTH for _ in rows], dtype=np.float32).reshape(n, LENGTH)
    return RawBatch(
        source="prop",
        record_id=np.array([r[0] for r in rows] + [None], dtype=object)[:n],
        recorded_at=pd.Series([r[1] for r in rows], dtype=object),
        patient_id=np.array([r[3] for r in rows] + [None], dtype=object)[:n],
        signals=sig,
        row_keys=[f"f#row={i}" for i in range(n)],
        position=StreamPosition("f", n),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows, st.booleans())
def test_validate_batch_conserves_and_explains(rows, as_array):
    raw = batch(rows, as_array)
    valid, rejected = validate_batch(raw, LENGTH)
    assert len(valid) + len(rejected) == len(raw)
    assert valid.signals.shape == (len(valid), LENGTH)
    assert np.isfinite(valid.signals).all()
    assert len(set(valid.record_id.to_pylist())) == len(valid)  # no id twice among valid beats
    assert not len(valid) or str(valid.recorded_at.tz) == "UTC"
    for r in rejected:
        assert r.reason in REASONS and r.detail
        assert isinstance(json.loads(r.raw_payload), dict)
    assert len({r.record_key for r in rejected}) == len(rejected)  # keys name distinct rows
