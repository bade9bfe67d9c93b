"""The run-level repeat check: Arrow string hashes and the SeenIds set built on them."""

import numpy as np
import pyarrow as pa
import pytest

from ecgmon.validation import SeenIds, hash_strings


def test_equal_strings_hash_equal_wherever_they_sit_in_the_buffer():
    values = pa.array(["x", "beat-1", "beat-22", "ü-ß", "", "beat-1"])
    whole = hash_strings(values)
    assert whole[1] == whole[5]
    np.testing.assert_array_equal(hash_strings(values.slice(1, 3)), whole[1:4])
    np.testing.assert_array_equal(hash_strings(values.cast(pa.large_string())), whole)


def test_distinct_ids_get_distinct_hashes():
    ids = [f"beat-{i}" for i in range(200_000)] + [f"{i:016d}" for i in range(100_000)]
    ids += ["a", "a\x00", "a\x00\x00", "", " a", "a "]  # zero bytes and padding do not collide
    hashes = hash_strings(pa.array(ids))
    assert len(np.unique(hashes)) == len(ids)


def test_long_and_empty_arrays():
    long = "x" * 300
    pair = hash_strings(pa.array([long, long + "y"]))
    assert pair[0] != pair[1] and pair[1] == hash_strings(pa.array([long + "y"]))[0]
    assert hash_strings(pa.array([], pa.string())).shape == (0,)
    assert hash_strings(pa.array(["", ""])).tolist()[0] == hash_strings(pa.array([""]))[0]
    with pytest.raises(ValueError, match="no nulls"):
        hash_strings(pa.array(["a", None]))


def test_seen_ids_finds_ids_of_earlier_calls_only():
    seen = SeenIds()
    first = seen.check_and_add(pa.array(["a", "b", None, "c"]))
    assert first.tolist() == [False, False, False, False]
    second = seen.check_and_add(pa.array(["c", None, "d", "a"]))
    assert second.tolist() == [True, False, False, True]
    assert len(seen) == 4  # a, b, c, d; nulls are never remembered


def test_seen_ids_merges_runs_without_losing_any():
    seen = SeenIds()
    for start in range(0, 50_000, 1_000):
        found = seen.check_and_add(pa.array([f"id{i}" for i in range(start, start + 1_000)]))
        assert not found.any()
    again = seen.check_and_add(pa.array([f"id{i}" for i in range(0, 50_000, 7)]))
    assert again.all() and len(seen) == 50_000
