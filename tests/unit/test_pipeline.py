"""The pipeline engine with a plain score callable and no model: three-row batches of numbers,
a fake scorer that doubles them, and a commit that appends to a list."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future

import pytest

from ecgmon.pipeline import EarlierBatchError, run_pipeline

BATCHES = [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]]


def double(batch: list[int]) -> list[int]:
    """The fake scorer: each value times two."""
    return [2 * x for x in batch]


class FakeStore:
    """A commit callable: in turn, a batch is appended to ``committed`` (its transaction)."""

    def __init__(self, fail_on: int | None = None, slow_first: float = 0.0) -> None:
        self.committed: list[list[int]] = []
        self.refused: list[BaseException] = []
        self.fail_on, self.slow_first, self.calls = fail_on, slow_first, 0

    def __call__(self, write: list[int], in_turn: Callable[[], None]) -> None:
        number, self.calls = self.calls, self.calls + 1
        if number == 0:
            time.sleep(self.slow_first)  # a later batch reaches its turn first, and waits
        if write[0] == self.fail_on:
            raise OSError(f"cannot commit {write}")
        try:
            in_turn()
        except EarlierBatchError as err:  # the transaction rolls back
            self.refused.append(err)
            raise
        self.committed.append(write)


def no_reader_left() -> bool:
    return not [t for t in threading.enumerate() if t.name == "ecgmon-read"]


def test_every_batch_is_scored_and_committed_in_order_by_parallel_writers() -> None:
    store = FakeStore(slow_first=0.1)
    busy = run_pipeline(BATCHES, double, store, writers=2)
    assert store.committed == [[2, 4, 6], [8, 10, 12], [14, 16, 18], [20, 22, 24]]
    assert set(busy) == {"read", "commit"} and all(v >= 0 for v in busy.values())


def test_no_batches_commit_nothing() -> None:
    store = FakeStore()
    run_pipeline([], double, store)
    assert store.committed == [] and no_reader_left()


def test_the_reader_reads_ahead_while_the_scorer_is_still_being_built() -> None:
    read: list[list[int]] = []

    def batches() -> Iterator[list[int]]:
        for batch in BATCHES:
            read.append(batch)
            yield batch

    scorer: Future[Callable[[list[int]], list[int]]] = Future()

    def build() -> None:  # like a model loading in another thread
        deadline = time.monotonic() + 5
        while len(read) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        scorer.set_result(double)

    loader = threading.Thread(target=build)
    loader.start()
    store = FakeStore()
    run_pipeline(batches(), scorer, store)
    loader.join()
    assert len(store.committed) == 4
    assert len(read) == 4 and store.committed[0] == [2, 4, 6]


def test_a_scorer_that_fails_to_build_commits_nothing_and_stops_the_reader() -> None:
    scorer: Future[Callable[[list[int]], list[int]]] = Future()
    scorer.set_exception(ValueError("tampered model"))
    store = FakeStore()
    with pytest.raises(ValueError, match="tampered"):
        run_pipeline(iter(BATCHES * 10), scorer, store)
    assert store.committed == [] and no_reader_left()


def test_a_scoring_error_still_commits_the_batches_scored_before_it() -> None:
    def score(batch: list[int]) -> list[int]:
        if batch[0] == 7:
            raise ValueError("bad batch")
        return double(batch)

    store = FakeStore()
    with pytest.raises(ValueError, match="bad batch"):
        run_pipeline(BATCHES, score, store, writers=2)
    assert store.committed == [[2, 4, 6], [8, 10, 12]] and no_reader_left()


def test_a_reading_error_still_commits_the_batches_read_before_it() -> None:
    def batches() -> Iterator[list[int]]:
        yield BATCHES[0]
        raise OSError("truncated file")

    store = FakeStore()
    with pytest.raises(OSError, match="truncated"):
        run_pipeline(batches(), double, store)
    assert store.committed == [[2, 4, 6]] and no_reader_left()


def test_after_a_failed_commit_no_later_batch_is_committed() -> None:
    store = FakeStore(fail_on=8)  # the second batch, [8, 10, 12], fails
    with pytest.raises(OSError, match="cannot commit"):
        run_pipeline(BATCHES, double, store)
    assert store.committed == [[2, 4, 6]] and no_reader_left()


def test_a_batch_written_in_parallel_after_a_failed_one_rolls_back() -> None:
    store = FakeStore(fail_on=2, slow_first=0.2)  # the first batch fails, after a while
    with pytest.raises(OSError, match="cannot commit"):
        run_pipeline(BATCHES, double, store, writers=2)
    assert store.committed == [] and no_reader_left()
    assert all(isinstance(err, EarlierBatchError) for err in store.refused)


def test_a_later_batch_failing_first_does_not_roll_back_an_earlier_one() -> None:
    """Batch 2 fails while batch 1 (slow) is still being written: batch 1 still commits."""
    store = FakeStore(fail_on=8, slow_first=0.3)
    with pytest.raises(OSError, match="cannot commit"):
        run_pipeline(BATCHES, double, store, writers=2)
    assert store.committed == [[2, 4, 6]] and store.refused == [] and no_reader_left()


def test_a_consumer_stopping_while_the_reader_waits_on_its_end_marker_does_not_hang() -> None:
    """The reader has filled the queue and waits to hand on its end marker when the consumer
    stops: closing the iterator returns at once."""
    from ecgmon.pipeline import prefetch

    reader = prefetch(iter([1, 2, 3]), depth=2)
    assert next(reader) == 1
    time.sleep(0.5)  # the reader puts 2 and 3, then waits to put its end marker
    closer = threading.Thread(target=reader.close, daemon=True)
    closer.start()
    closer.join(10)
    assert not closer.is_alive(), "closing the reader hangs"
    assert no_reader_left()
