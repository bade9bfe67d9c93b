"""Size attacks: one huge id, one huge signal or list row costs memory in proportion to itself,
not to itself times the batch (docs/guarantees.md)."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa

from ecgmon import validation
from ecgmon.records import RawBatch, StreamPosition
from ecgmon.sources.beat_layout import beat_rows
from ecgmon.validation import SeenIds, hash_strings, split_repeats, validate_batch

MB = 1 << 20


def peak_bytes(action: Callable[[], object]) -> int:
    """Peak of the memory Python and numpy allocate while ``action`` runs."""
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def raw_batch(ids: list[str], signals: list | np.ndarray) -> RawBatch:
    n = len(ids)
    return RawBatch(
        source="f",
        record_id=pa.array(ids),
        recorded_at=pd.Series(["2026-11-01T00:00:00Z"] * n),
        patient_id=pa.array(["p1"] * n),
        signals=signals,
        row_keys=[f"f#row={i}" for i in range(n)],
        position=StreamPosition("f"),
    )


def test_one_huge_id_does_not_blow_up_the_repeat_check() -> None:
    """200 rows and one 100 kB id: the padded-bytes matrix was rows x longest id (160 MB of
    indices here, ~40 GB for 50,000 rows); the overlong id now takes no part."""
    ids = [f"id-{i}" for i in range(199)] + ["x" * 100_000]
    raw = raw_batch(ids, np.zeros((200, 5), np.float32))
    seen = SeenIds()
    assert peak_bytes(lambda: split_repeats(raw, seen)) < 8 * MB
    valid, rejected = validate_batch(raw, 5)
    assert [r.reason for r in rejected] == ["record_id_too_long"] and len(valid) == 199


def test_hashing_long_ids_works_a_chunk_at_a_time() -> None:
    ids = pa.array([f"{i:08d}" + "y" * 1000 for i in range(20_000)])
    assert peak_bytes(lambda: hash_strings(ids)) < 40 * MB  # was 160 MB of indices
    assert len(np.unique(hash_strings(ids))) == 20_000


def test_a_rejected_huge_signal_keeps_a_bounded_payload() -> None:
    raw = raw_batch(["a", "b"], [np.ones(1_000_000), np.ones(5)])
    _, rejected = validate_batch(raw, 5)
    (rejection,) = rejected
    assert rejection.reason == "wrong_length" and "1000000 samples" in rejection.detail
    payload = json.loads(rejection.raw_payload)
    assert payload.get("signal_samples") == 1_000_000
    assert len(payload["signal"]) == validation.MAX_PAYLOAD_SAMPLES
    assert len(rejection.raw_payload) < 64 * 1024


def test_a_long_list_row_decodes_without_a_python_object_per_sample() -> None:
    column = pa.array([np.ones(1_000_000), np.ones(3)], pa.list_(pa.float32()))
    data = pa.record_batch([column], names=["signal"])
    assert peak_bytes(lambda: beat_rows(data, ["signal"])) < 16 * MB  # a Python list: 32+ MB
    rows = beat_rows(data, ["signal"])
    assert [len(r) for r in rows] == [1_000_000, 3]
