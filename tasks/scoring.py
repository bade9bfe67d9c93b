"""Score path tasks: resolve the judging model and threshold, stream a source through scoring."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy.engine import Engine

from ecgmon.drift import DriftAccumulator
from ecgmon.errors import SourceNotFoundError
from ecgmon.memory import release_freed_buffers
from ecgmon.models.registry.deferred import DeferredDetector, deferred_detector
from ecgmon.models.registry.patients import active_patient_models, active_patient_thresholds
from ecgmon.models.registry.versions import active_threshold, champion_version, get_version
from ecgmon.models.scoring import Judge, autoencoder_losses, score_beats
from ecgmon.pipeline import StageTimes, run_pipeline
from ecgmon.progress import step
from ecgmon.recordings import is_wfdb_folder, list_records
from ecgmon.records import WHOLE_FILE_REASONS, RawBatch, ScoredBeats, as_objects
from ecgmon.settings import Settings
from ecgmon.sources import Source, bound_window, empty_source_hint, open_source
from ecgmon.storage.batches import BatchWrite, commit_batch, scored_record_ids
from ecgmon.storage.engine import create_db_engine
from ecgmon.storage.locks import retry_transient, source_lock
from ecgmon.storage.watermarks import read_watermarks
from ecgmon.validation import SeenIds, split_repeats, take_rows, validate_batch

log = logging.getLogger(__name__)
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
    #: files (or recordings) rejected whole: [{"file", "reason", "detail"}]
    files_rejected: list[dict] = field(default_factory=list)
    #: seconds each stage was busy (stages overlap, so they do not add up to the wall time)
    stage_seconds: dict[str, float] = field(default_factory=dict)


def resolve_judge(settings: Settings, model_version: int | None = None) -> JudgeRef:
    """The champion (or the given version) and its active threshold."""
    engine = create_db_engine(settings.database_url_plain)
    version = model_version if model_version is not None else champion_version(engine)
    threshold = active_threshold(engine, version)
    return JudgeRef(version, threshold.threshold_version, threshold.value)


def check_score_inputs(
    settings: Settings, source_spec: str, table: str | None, model_version: int | None = None
) -> JudgeRef:
    """Raise the errors a user can cause before a score run starts: the source does not open, is
    a folder with nothing to read (empty or mistyped), or no model version and threshold can
    judge it; returns the judge that would."""
    open_source(source_spec, table)
    judge = resolve_judge(settings, model_version)  # no champion, no schema: said first
    hint = empty_source_hint(source_spec)
    if hint is not None:
        raise SourceNotFoundError(hint)
    return judge


def load_judge(settings: Settings, ref: JudgeRef) -> Judge:
    """The judge of a reference: its detector (artifact checked against its sha256 now, Keras
    loaded when a beat first needs it: ``DeferredDetector``), the active per-patient thresholds
    of its model version and every patient's active model for its input length (each artifact
    checked against its sha256 too)."""
    engine = create_db_engine(settings.database_url_plain)
    detector = deferred_detector(engine, ref.model_version, settings.model_store)
    patients = active_patient_thresholds(engine, ref.model_version)
    models = active_patient_models(engine, detector.input_length, settings.model_store)
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
    lock_held: Callable[[], None] | None = None,
) -> ScoreCounts:
    """Validate, score and commit each raw batch in its own transaction; returns the counts.

    The batches flow through the pipeline engine (:func:`ecgmon.pipeline.run_pipeline`): read
    ahead in a reader thread, judged here, committed in order by writer threads. ``judge`` may
    still be loading (a Future): the reader starts first and reads ahead meanwhile.
    """
    release_freed_buffers()  # memory bounded by the batch size over long runs (ecgmon.memory)
    engine = create_db_engine(settings.database_url_plain)
    counts, busy = ScoreCounts(), StageTimes()

    def judging(judge: Judge) -> BatchScorer:
        return BatchScorer(judge, source.key, run_id, busy)

    def commit(write: BatchWrite, in_turn: Callable[[], None]) -> None:
        def in_turn_and_locked() -> None:
            in_turn()
            if lock_held is not None:  # checked in turn: after every earlier batch committed
                lock_held()  # no watermark moves once the source's run lock is lost

        retry_transient(lambda: commit_batch(engine, write, in_turn_and_locked), what="commit")
        before = counts.n_read
        _count(counts, write)  # in turn: the next batch waits until this one is done
        step("records", advance=counts.n_read - before)

    writers = PARALLEL_WRITERS.get(engine.dialect.name, 1)
    run_pipeline(batches, _when_loaded(judge, judging), commit, writers, busy)
    log.info("busy seconds per stage (stages overlap): %s", busy)
    counts.stage_seconds.update(busy)
    return counts


class BatchScorer:
    """The score callable of the pipeline: a raw batch -> the ``BatchWrite`` that commits it.

    Repeats of ids seen in earlier batches are rejected (not overwritten), the rest validated,
    scored by the judge and counted for drift; the busy seconds of ``validate`` and ``infer`` go
    to ``busy``.
    """

    def __init__(self, judge: Judge, source_key: str, run_id: str, busy: StageTimes) -> None:
        self.judge, self.source_key, self.run_id, self.busy = judge, source_key, run_id, busy
        self.seen = SeenIds()  # ids of earlier batches: a repeat is rejected, not overwritten
        self.drift = DriftAccumulator(judge.detector.calibration_losses)  # per batch, see 0002

    def __call__(self, raw: RawBatch) -> BatchWrite:
        """The write of one raw batch: scores, rejections (repeats too), position, drift."""
        judge = self.judge
        started = time.perf_counter()
        n_read = len(raw) + len(raw.rejections)
        raw, repeats = split_repeats(raw, self.seen)
        valid, rejections = validate_batch(raw, judge.detector.input_length)
        self.busy.add("validate", started)
        started = time.perf_counter()
        scored = score_beats(judge, valid)
        self.busy.add("infer", started)
        valid.signals = np.empty((len(valid), 0), np.float32)  # the writer needs none
        return BatchWrite(
            self.run_id,
            self.source_key,
            judge.model_version,
            scored,
            rejections + repeats,
            raw.position,
            n_read,
            drift=_drift_counts(self.drift, judge, scored),
        )


def _when_loaded(
    judge: Judge | Future[Judge], build: Callable[[Judge], BatchScorer]
) -> BatchScorer | Future[BatchScorer]:
    """The scorer of a judge; of a judge still loading, a Future of it (or of its load error)."""
    if not isinstance(judge, Future):
        return build(judge)
    scorer: Future[BatchScorer] = Future()

    def built(loaded: Future[Judge]) -> None:
        try:
            scorer.set_result(build(loaded.result()))
        except BaseException as err:  # noqa: BLE001 - the pipeline raises it in the scoring thread
            scorer.set_exception(err)

    judge.add_done_callback(built)
    return scorer


def _drift_counts(drift: DriftAccumulator, judge: Judge, scored: ScoredBeats) -> dict | None:
    """A batch's drift counts over the beats the population autoencoder judged (their losses are
    on the scale of its reference losses; a patient model's scores are not); None when no beat."""
    return drift.count(autoencoder_losses(judge, scored)) if len(scored.beats) else None


def _count(counts: ScoreCounts, write: BatchWrite) -> None:
    scored = write.scored
    counts.n_read += write.n_read
    counts.n_scored += len(scored.beats) if scored is not None else 0
    counts.n_rejected += len(write.rejections)
    counts.n_flagged += int(scored.is_anomaly.sum()) if scored is not None else 0
    counts.batches += 1
    counts.files_rejected += [
        {"file": r.record_key, "reason": r.reason, "detail": r.detail}
        for r in write.rejections
        if r.reason in WHOLE_FILE_REASONS
    ]


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
        if isinstance(judge.detector, DeferredDetector) and needs_autoencoder(judge, source_spec):
            judge.detector.load()  # here, while the first batches are read
        loaded.append(time.perf_counter() - started)
        return judge

    # the model loads in its own thread while the source opens and its first batches are read
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ecgmon-load-model") as loader:
        judge = loader.submit(load)
        length = get_version(engine, ref.model_version)["input_length"]  # beats are cut to it
        source = bound_window(open_source(source_spec, table, length), as_of)
        with source_lock(engine, source.key) as held:  # a concurrent run waits, then sees
            marks = read_watermarks(engine, source.key)  # our watermark
            pending = getattr(source, "pending_rows", None)  # sources that can count ahead
            step("records", total=pending(marks) if callable(pending) else None)
            batches = source.new_batches(marks, settings.batch_size)
            batches = skip_scored_rows(engine, batches, marks, ref.model_version)
            counts = score_batches(settings, source, judge, run_id, batches, held)
    counts.stage_seconds["load_model"] = loaded[0] if loaded else 0.0
    return counts


def needs_autoencoder(judge: Judge, source_spec: str) -> bool:
    """Whether a run over ``source_spec`` is expected to need the population autoencoder: always,
    except for a WFDB folder whose every record (patient) has its own model. Only when the model
    loads depends on it: a beat the autoencoder judges after all loads it then."""
    folder = Path(source_spec)
    if not is_wfdb_folder(folder):
        return True
    return not {header.stem for header in list_records(folder)} <= set(judge.patient_models)


def skip_scored_rows(
    engine: Engine, batches: Iterable[RawBatch], marks: dict[str, dict], model_version: int
) -> Iterator[RawBatch]:
    """The batches without the beats already scored, for files changed in place after part of
    them was committed (a truncated file completed, rows appended): only their new beats are
    scored. A changed file is read from its start (its rows may have moved); the rows it still
    holds from before are left out like rows behind a watermark (not counted as read). Other
    batches pass untouched, without a query."""
    for raw in batches:
        mark = marks.get(raw.position.stream)
        changed = mark is not None and mark["fingerprint"] != raw.position.fingerprint
        if not changed or not mark["position_offset"] or not len(raw):
            yield raw
            continue
        ids = [None if i is None else str(i).strip() for i in as_objects(raw.record_id)]
        known = scored_record_ids(engine, model_version, raw.source, [i for i in ids if i])
        keep = np.array([i not in known for i in ids], dtype=bool)
        if not keep.all():
            log.info("%s: %d beats already scored, skipped", raw.position.stream, (~keep).sum())
        yield raw if keep.all() else take_rows(raw, np.flatnonzero(keep))


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
) -> dict:
    """Score the new records of a source up to ``as_of``; each batch commits with its watermark.
    Each file rejected whole is logged as a WARNING."""
    counts = score_new_records(settings, source, table, ref, run_id, as_of)
    logger = get_run_logger()
    logger.info(
        "read %d, scored %d, rejected %d, flagged %d",
        counts.n_read,
        counts.n_scored,
        counts.n_rejected,
        counts.n_flagged,
    )
    for rejected in counts.files_rejected:
        logger.warning("%s", whole_file_warning(rejected))
    hint = empty_source_hint(source) if not counts.n_read else None
    if hint is not None:
        logger.warning("%s", hint)
    return asdict(counts)


def whole_file_warning(rejected: dict) -> str:
    """The sentence a run logs (and the CLI prints) for one file it rejected whole."""
    return (
        f"file {rejected['file']} rejected whole ({rejected['reason']}): {rejected['detail']}; "
        "none of its beats were scored. Fix the file in place (same path): the next run reads it "
        "again"
    )
