"""Score path tasks: resolve the judging model and threshold, stream a source through scoring."""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TypeVar

import numpy as np
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy.engine import Engine

from ecgmon.drift import DriftAccumulator
from ecgmon.memory import release_freed_buffers
from ecgmon.models.registry.patients import active_patient_models, active_patient_thresholds
from ecgmon.models.registry.versions import (
    active_threshold,
    champion_version,
    get_version,
    load_detector,
)
from ecgmon.models.scoring import Judge, autoencoder_losses, score_beats
from ecgmon.records import RawBatch, ScoredBeats
from ecgmon.settings import Settings
from ecgmon.sources import Source, bound_window, open_source
from ecgmon.storage.batches import BatchWrite, commit_batch
from ecgmon.storage.engine import create_db_engine
from ecgmon.storage.locks import retry_transient, source_lock
from ecgmon.storage.watermarks import read_watermarks
from ecgmon.validation import SeenIds, split_repeats, validate_batch

log = logging.getLogger(__name__)
T = TypeVar("T")
#: Batches each pipeline queue holds (read-ahead, and scored-but-uncommitted).
PIPELINE_DEPTH = 2
#: Batch transactions written at the same time, per database (default 1: SQLite has one writer).
PARALLEL_WRITERS = {"postgresql": 2}


@dataclass(frozen=True)
class JudgeRef:
    """References to what judges beats: passed between tasks instead of live models."""

    model_version: int
    threshold_version: int
    threshold: float


@dataclass
class ScoreCounts:
    """What one pass over a source did."""

    n_read: int = 0
    n_scored: int = 0
    n_rejected: int = 0
    n_flagged: int = 0
    batches: int = 0
    #: seconds each stage was busy (stages overlap, so they do not add up to the wall time)
    stage_seconds: dict[str, float] = field(default_factory=dict)


def resolve_judge(settings: Settings, model_version: int | None = None) -> JudgeRef:
    """The champion (or the given version) and its active threshold."""
    engine = create_db_engine(settings.database_url_plain)
    version = model_version if model_version is not None else champion_version(engine)
    threshold = active_threshold(engine, version)
    return JudgeRef(version, threshold.threshold_version, threshold.value)


def load_judge(settings: Settings, ref: JudgeRef) -> Judge:
    """Load the detector of a reference (checking its artifact sha256), the active per-patient
    thresholds of its model version and every patient's active model for its input length
    (each artifact checked against its sha256 too)."""
    engine = create_db_engine(settings.database_url_plain)
    detector = load_detector(engine, ref.model_version)
    patients = active_patient_thresholds(engine, ref.model_version)
    models = active_patient_models(engine, detector.input_length)
    if models:
        log.info("patient models: %s", ", ".join(m.name for m in models.values()))
    return Judge(
        ref.model_version,
        detector,
        ref.threshold_version,
        ref.threshold,
        patients=patients,
        patient_models=models,
    )


def score_batches(
    settings: Settings,
    source: Source,
    judge: Judge | Future[Judge],
    run_id: str,
    batches: Iterable[RawBatch],
) -> ScoreCounts:
    """Validate, score and commit each raw batch in its own transaction; returns the counts.

    Three stages overlap: a reader thread pulls raw batches (Arrow releases the GIL), this thread
    validates and scores (TensorFlow releases it), a writer thread commits batches in order
    (the database works in its own process). Queues hold at most ``PIPELINE_DEPTH`` batches each,
    so memory is bounded by the batch size. If reading or scoring fails, batches already scored
    are still committed before the error is raised; if a commit fails, nothing after it is.
    ``judge`` may still be loading (a Future): the reader starts first and reads ahead meanwhile.
    """
    release_freed_buffers()  # memory bounded by the batch size over long runs (ecgmon.memory)
    engine = create_db_engine(settings.database_url_plain)
    counts = ScoreCounts()
    seen = SeenIds()  # ids of earlier batches: a repeat is rejected, not overwritten
    busy = StageTimes()
    reader = _prefetch(busy.timed("read", batches), PIPELINE_DEPTH)
    try:
        first = list(itertools.islice(reader, 1))  # starts the reader thread ...
        judge = judge.result() if isinstance(judge, Future) else judge  # ... as the model loads
        drift = DriftAccumulator(judge.detector.calibration_losses)  # counted per batch, see 0002
        with _Committer(engine, counts, busy) as committer:
            for raw in itertools.chain(first, reader):
                started = time.perf_counter()
                n_read = len(raw) + len(raw.rejections)
                raw, repeats = split_repeats(raw, seen)
                valid, rejections = validate_batch(raw, judge.detector.input_length)
                busy.add("validate", started)
                started = time.perf_counter()
                scored = score_beats(judge, valid)
                busy.add("infer", started)
                valid.signals = np.empty((len(valid), 0), np.float32)  # the writer needs none
                write = BatchWrite(
                    run_id,
                    source.key,
                    judge.model_version,
                    scored,
                    rejections + repeats,
                    raw.position,
                    n_read,
                    drift=_drift_counts(drift, judge, scored),
                )
                committer.put(write)
    finally:
        reader.close()  # stops the reader thread when scoring ended early
    log.info("busy seconds per stage (stages overlap): %s", busy)
    counts.stage_seconds.update(busy)
    return counts


def _drift_counts(drift: DriftAccumulator, judge: Judge, scored: ScoredBeats) -> dict | None:
    """A batch's drift counts over the beats the population autoencoder judged (their losses are
    on the scale of its reference losses; a patient model's scores are not); None when no beat."""
    return drift.count(autoencoder_losses(judge, scored)) if len(scored.beats) else None


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


class _Committer:
    """Writer threads committing ``BatchWrite``s, each in its own transaction and connection.

    On PostgreSQL ``PARALLEL_WRITERS`` batches are written at the same time (the server inserts
    one batch while the next is formatted and sent); every batch waits for its predecessor to
    commit before it moves the watermark, so commits stay in batch order and the first error
    stops the run: nothing after a failed batch is committed.
    """

    def __init__(self, engine: Engine, counts: ScoreCounts, busy: StageTimes) -> None:
        self.engine, self.counts, self.busy = engine, counts, busy
        self.queue: queue.Queue[tuple[int, BatchWrite] | None] = queue.Queue(PIPELINE_DEPTH)
        self.error: BaseException | None = None
        self.sent = 0  # batches queued so far
        self.turn = 0  # the batch whose commit is next in order
        self.order = threading.Condition()
        n = PARALLEL_WRITERS.get(engine.dialect.name, 1)
        self.threads = [
            threading.Thread(target=self._run, name=f"ecgmon-commit-{i}", daemon=True)
            for i in range(n)
        ]

    def __enter__(self) -> _Committer:
        for thread in self.threads:
            thread.start()
        return self

    def put(self, write: BatchWrite) -> None:
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
                if self.error is None:  # after a failed commit nothing later is committed
                    retry_transient(
                        lambda write=write, number=number: commit_batch(
                            self.engine, write, lambda: self._wait_turn(number)
                        ),
                        what="commit",
                    )
                    self.busy.add("commit", started)  # in turn: one writer at a time here
                    _count(self.counts, write)
            except BaseException as err:  # noqa: BLE001  (re-raised in the scoring thread)
                with self.order:
                    self.error = self.error or err
            finally:
                self._done(number)

    def _wait_turn(self, number: int) -> None:
        """Block until every earlier batch is done; raise if one of them failed."""
        with self.order:
            self.order.wait_for(lambda: self.turn == number)
            if self.error is not None:
                raise _EarlierBatchError(f"batch {number} not committed: an earlier batch failed")

    def _done(self, number: int) -> None:
        with self.order:
            self.order.wait_for(lambda: self.turn == number)
            self.turn += 1
            self.order.notify_all()


class _EarlierBatchError(RuntimeError):
    """A batch rolled back because an earlier batch of the run could not be committed."""


def _count(counts: ScoreCounts, write: BatchWrite) -> None:
    scored = write.scored
    counts.n_read += write.n_read
    counts.n_scored += len(scored.beats) if scored is not None else 0
    counts.n_rejected += len(write.rejections)
    counts.n_flagged += int(scored.is_anomaly.sum()) if scored is not None else 0
    counts.batches += 1


def _prefetch(items: Iterable[T], depth: int) -> Iterator[T]:
    """Iterate ``items`` in a reader thread, at most ``depth`` ahead; re-raises its errors."""
    slots: queue.Queue[tuple[str, object]] = queue.Queue(depth)
    stop = threading.Event()

    def read() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        slots.put(("item", item), timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(("end", None))
        except BaseException as err:  # noqa: BLE001  (re-raised in the consuming thread)
            slots.put(("error", err))

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
        reader.join()


def score_new_records(
    settings: Settings,
    source_spec: str,
    table: str | None,
    ref: JudgeRef,
    run_id: str,
    as_of: datetime | None = None,
) -> ScoreCounts:
    """Read what is new in a source (past its watermarks, up to ``as_of``), score, commit."""
    release_freed_buffers()  # before the model loads: see ecgmon.memory
    engine = create_db_engine(settings.database_url_plain)
    loaded: list[float] = []

    def load() -> Judge:
        started = time.perf_counter()
        judge = load_judge(settings, ref)
        loaded.append(time.perf_counter() - started)
        return judge

    # the model loads in its own thread while the source opens and its first batches are read
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ecgmon-load-model") as loader:
        judge = loader.submit(load)
        length = get_version(engine, ref.model_version)["input_length"]  # beats are cut to it
        source = bound_window(open_source(source_spec, table, length), as_of)
        with source_lock(engine, source.key):  # a concurrent run waits, then sees our watermark
            marks = read_watermarks(engine, source.key)
            counts = score_batches(
                settings, source, judge, run_id, source.new_batches(marks, settings.batch_size)
            )
    counts.stage_seconds["load_model"] = loaded[0] if loaded else 0.0
    return counts


@task(name="resolve-judge", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def resolve_judge_task(settings: Settings, model_version: int | None = None) -> JudgeRef:
    """Find the model and threshold versions that will judge this run."""
    ref = resolve_judge(settings, model_version)
    get_run_logger().info(
        "judging with model version %d, threshold version %d (%.5f)",
        ref.model_version,
        ref.threshold_version,
        ref.threshold,
    )
    return ref


@task(name="score-new-records", cache_policy=NO_CACHE)
def score_new_records_task(
    settings: Settings,
    source: str,
    table: str | None,
    ref: JudgeRef,
    run_id: str,
    as_of: datetime | None = None,
) -> dict[str, int]:
    """Score the new records of a source up to ``as_of``; each batch commits with its watermark."""
    counts = score_new_records(settings, source, table, ref, run_id, as_of)
    get_run_logger().info(
        "read %d, scored %d, rejected %d, flagged %d",
        counts.n_read,
        counts.n_scored,
        counts.n_rejected,
        counts.n_flagged,
    )
    return asdict(counts)
