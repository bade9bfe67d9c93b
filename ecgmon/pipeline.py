"""The batch pipeline engine: read ahead, score, and commit batches in order, in three overlapping
stages.

A reader thread pulls batches (Arrow releases the GIL), the calling thread scores them (TensorFlow
releases it), writer threads commit them (the database works in its own process). Queues hold at
most ``PIPELINE_DEPTH`` batches each, so memory is bounded by the batch size. What a batch is, how
it is scored and how it is written are the caller's: the engine takes a score callable and a commit
callable and imports no model or storage code.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")  # a batch as read
W = TypeVar("W")  # what scoring a batch gives, to be committed
#: Batches each pipeline queue holds (read-ahead, and scored-but-uncommitted).
PIPELINE_DEPTH = 2
#: Seconds a stopped pipeline waits for its reader thread to end its current read.
READER_JOIN_SECONDS = 30.0
#: ``commit(write, in_turn)``: writes one batch in one transaction and calls ``in_turn()`` inside
#: it before anything that must stay in batch order (a watermark); ``in_turn`` blocks until every
#: earlier batch is done and raises if one of them failed, so the transaction rolls back.
Commit = Callable[[W, Callable[[], None]], object]


class StageTimes(dict):
    """Seconds each pipeline stage was busy: {stage: seconds}."""

    def add(self, stage: str, started: float) -> None:
        """Add the time since ``started`` (a ``time.perf_counter()`` value) to ``stage``."""
        self[stage] = self.get(stage, 0.0) + time.perf_counter() - started

    def timed(self, stage: str, items: Iterable[T]) -> Iterator[T]:
        """Iterate ``items``, adding the time each ``next`` takes to ``stage``."""
        iterator = iter(items)
        while True:
            started = time.perf_counter()
            try:
                item = next(iterator)
            except StopIteration:
                return
            finally:
                self.add(stage, started)
            yield item

    def __str__(self) -> str:
        return ", ".join(f"{k} {v:.2f}" for k, v in self.items())


def run_pipeline(
    batches: Iterable[R],
    score: Callable[[R], W] | Future[Callable[[R], W]],
    commit: Commit[W],
    writers: int = 1,
    busy: StageTimes | None = None,
) -> StageTimes:
    """Score every batch and commit each result in batch order; returns the busy seconds of the
    stages ``read`` and ``commit`` (added to ``busy``, where ``score`` may add its own).

    ``score`` may still be being built (a Future, e.g. while a model loads in another thread): the
    reader starts first and reads ahead meanwhile. ``writers`` batches are committed at the same
    time, each waiting for its predecessor before it moves what must stay in order. If reading or
    scoring fails, batches already scored are still committed before the error is raised; if a
    commit fails, nothing after it is. The reader thread is closed when scoring ends early.
    """
    busy = StageTimes() if busy is None else busy
    reader = prefetch(busy.timed("read", batches), PIPELINE_DEPTH)
    try:
        first = list(itertools.islice(reader, 1))  # starts the reader thread ...
        score = score.result() if isinstance(score, Future) else score  # ... as score is built
        with _Committer(commit, writers, busy) as committer:
            for batch in itertools.chain(first, reader):
                committer.put(score(batch))
    finally:
        reader.close()  # stops the reader thread when scoring ended early
    return busy


class _Committer:
    """Writer threads committing the scored batches, each in its own transaction.

    ``writers`` batches are written at the same time (on PostgreSQL the server inserts one batch
    while the next is formatted and sent); every batch waits for its predecessor to commit before
    it moves the watermark, so commits stay in batch order and the first error stops the run:
    nothing after a failed batch is committed.
    """

    def __init__(self, commit: Commit, writers: int, busy: StageTimes) -> None:
        self.commit, self.busy = commit, busy
        self.queue: queue.Queue[tuple[int, object] | None] = queue.Queue(PIPELINE_DEPTH)
        self.error: BaseException | None = None
        self.failed: int | None = None  # the earliest batch whose commit failed
        self.sent = 0  # batches queued so far
        self.turn = 0  # the batch whose commit is next in order
        self.order = threading.Condition()
        self.threads = [
            threading.Thread(target=self._run, name=f"ecgmon-commit-{i}", daemon=True)
            for i in range(writers)
        ]

    def __enter__(self) -> _Committer:
        for thread in self.threads:
            thread.start()
        return self

    def put(self, write: object) -> None:
        """Queue a batch (blocks while the queue is full); raises the writers' error, if any."""
        item = (self.sent, write)
        self.sent += 1
        while True:
            self._raise()
            try:
                self.queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def __exit__(self, *exc: object) -> None:
        for _ in self.threads:  # the writers drain what is queued, then stop
            self.queue.put(None)
        for thread in self.threads:
            thread.join()
        if exc[0] is None:
            self._raise()

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            number, write = item
            started = time.perf_counter()
            try:
                if not self._failed_before(number):  # nothing after a failed commit is committed
                    self.commit(write, lambda number=number: self._wait_turn(number))
                    self.busy.add("commit", started)  # in turn: one writer at a time here
            except BaseException as err:  # noqa: BLE001 - re-raised in the scoring thread
                with self.order:
                    if self.failed is None or number < self.failed:  # the earliest error wins
                        self.error, self.failed = err, number
            finally:
                self._done(number)

    def _failed_before(self, number: int) -> bool:
        """Whether a batch before ``number`` failed (a later one's failure does not count)."""
        with self.order:
            return self.failed is not None and self.failed < number

    def _wait_turn(self, number: int) -> None:
        """Block until every earlier batch is done; raise if one of them failed (a later batch
        that failed first does not stop this one: it is still committed, in order)."""
        with self.order:
            self.order.wait_for(lambda: self.turn == number)
            if self.failed is not None and self.failed < number:
                raise EarlierBatchError(f"batch {number} not committed: an earlier batch failed")

    def _done(self, number: int) -> None:
        with self.order:
            self.order.wait_for(lambda: self.turn == number)
            self.turn += 1
            self.order.notify_all()


class EarlierBatchError(RuntimeError):
    """A batch rolled back because an earlier batch of the run could not be committed."""


def prefetch(items: Iterable[T], depth: int) -> Iterator[T]:
    """Iterate ``items`` in a reader thread, at most ``depth`` ahead; re-raises its errors.

    Every hand-over of the reader (items, the end marker, an error) gives up once the consumer
    has stopped, so a consumer that stops early never leaves the reader blocked on a full queue;
    the reader is joined for at most ``READER_JOIN_SECONDS`` (it may be inside a slow read).
    """
    slots: queue.Queue[tuple[str, object]] = queue.Queue(depth)
    stop = threading.Event()

    def hand_on(kind: str, value: object) -> bool:
        """Put one slot, waiting while the queue is full; False once the consumer stopped."""
        while not stop.is_set():
            try:
                slots.put((kind, value), timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for item in items:
                if not hand_on("item", item):
                    return
            hand_on("end", None)
        except BaseException as err:  # noqa: BLE001 - re-raised in the consuming thread
            hand_on("error", err)

    reader = threading.Thread(target=read, name="ecgmon-read", daemon=True)
    reader.start()
    try:
        while True:
            kind, value = slots.get()
            if kind == "end":
                return
            if kind == "error":
                raise value  # type: ignore[misc]
            yield value  # type: ignore[misc]
    finally:
        stop.set()
        reader.join(READER_JOIN_SECONDS)
        if reader.is_alive():  # a daemon thread: it ends with its read, or with the process
            log.warning("the reader thread is still reading; not waiting for it")
