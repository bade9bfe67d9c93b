"""Score path tasks: resolve the judging model and threshold, stream a source through scoring."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from ecgmon.db import create_db_engine
from ecgmon.persistence import BatchWrite, commit_batch, read_watermarks
from ecgmon.settings import Settings
from ecgmon.sources import Source, bound_window, open_source
from ecgmon.validation import validate_batch
from models.registry import active_threshold, champion_version, load_detector
from models.scoring import Judge, score_beats


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


def resolve_judge(settings: Settings, model_version: int | None = None) -> JudgeRef:
    """The champion (or the given version) and its active threshold."""
    engine = create_db_engine(settings.database_url_plain)
    version = model_version if model_version is not None else champion_version(engine)
    threshold = active_threshold(engine, version)
    return JudgeRef(version, threshold.threshold_version, threshold.value)


def load_judge(settings: Settings, ref: JudgeRef) -> Judge:
    """Load the detector of a reference (checking its artifact sha256)."""
    engine = create_db_engine(settings.database_url_plain)
    detector = load_detector(engine, ref.model_version)
    return Judge(ref.model_version, detector, ref.threshold_version, ref.threshold)


def score_batches(
    settings: Settings, source: Source, judge: Judge, run_id: str, batches
) -> ScoreCounts:  # noqa: ANN001
    """Validate, score and commit each raw batch in its own transaction; returns the counts."""
    engine = create_db_engine(settings.database_url_plain)
    counts = ScoreCounts()
    for raw in batches:
        valid, rejections = validate_batch(raw, judge.detector.input_length)
        scored = score_beats(judge, valid)
        n_read = len(raw) + len(raw.rejections)
        commit_batch(
            engine,
            BatchWrite(
                run_id, source.key, judge.model_version, scored, rejections, raw.position, n_read
            ),
        )
        counts.n_read += n_read
        counts.n_scored += len(valid)
        counts.n_rejected += len(rejections)
        counts.n_flagged += int(scored.is_anomaly.sum())
        counts.batches += 1
    return counts


def score_new_records(
    settings: Settings,
    source_spec: str,
    table: str | None,
    ref: JudgeRef,
    run_id: str,
    as_of: datetime | None = None,
) -> ScoreCounts:
    """Read what is new in a source (past its watermarks, up to ``as_of``), score, commit."""
    engine = create_db_engine(settings.database_url_plain)
    source = bound_window(open_source(source_spec, table), as_of)
    judge = load_judge(settings, ref)
    marks = read_watermarks(engine, source.key)
    return score_batches(
        settings, source, judge, run_id, source.new_batches(marks, settings.batch_size)
    )


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
