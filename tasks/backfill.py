"""Backfill tasks: re-score past days of a source, one day (partition) per task, resumably.

A finished day is recorded as a watermark row ``(source="backfill:<source key>", stream=<day>,
fingerprint="m<model version>-t<threshold version>")`` right after all of its batches
committed; a later backfill with the same model and threshold versions skips it. The scores
themselves are upserts, so a day interrupted half-way is simply scored again.
"""

from __future__ import annotations

import threading
from datetime import date
from itertools import chain

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from ecgmon.errors import ConfigurationError
from ecgmon.models.scoring import Judge
from ecgmon.progress import step
from ecgmon.records import StreamPosition
from ecgmon.settings import Settings
from ecgmon.sources import Source, open_source
from ecgmon.storage.engine import create_db_engine
from ecgmon.storage.watermarks import advance_watermark, complete_streams
from ecgmon.tasks.scoring import JudgeRef, load_judge, score_batches

MARK_PREFIX = "backfill:"
_judges: dict[tuple[str, int, int], Judge] = {}
_judges_lock = threading.Lock()


def marker_source(source_key: str) -> str:
    """The watermark ``source`` under which finished backfill days of a source are recorded."""
    return f"{MARK_PREFIX}{source_key}"


def marker_fingerprint(ref: JudgeRef) -> str:
    """What a finished day was judged with: ``m<model version>-t<threshold version>``."""
    return f"m{ref.model_version}-t{ref.threshold_version}"


def days_in_range(source: Source, start: date, end: date) -> list[date]:
    """Days between ``start`` and ``end`` (inclusive) for which the source has partitions."""
    if end < start:
        raise ConfigurationError(f"the backfill end {end} is before its start {start}")
    return sorted(day for day in source.partitions() if start <= day <= end)


def done_days(settings: Settings, source_key: str, ref: JudgeRef) -> set[date]:
    """Days already backfilled with the same model and threshold versions."""
    engine = create_db_engine(settings.database_url_plain)
    streams = complete_streams(engine, marker_source(source_key), marker_fingerprint(ref))
    return {date.fromisoformat(s) for s in streams}


def mark_day_done(
    settings: Settings, source_key: str, day: date, ref: JudgeRef, n_read: int, run_id: str
) -> None:
    """Record (upsert) that every batch of ``day`` committed with this model and threshold."""
    engine = create_db_engine(settings.database_url_plain)
    position = StreamPosition(day.isoformat(), n_read, marker_fingerprint(ref), complete=True)
    with engine.begin() as conn:
        advance_watermark(conn, marker_source(source_key), position, run_id)


def cached_judge(settings: Settings, ref: JudgeRef) -> Judge:
    """The detector of a reference, loaded once per process (threads and Dask workers share it)."""
    key = (settings.database_url_plain, ref.model_version, ref.threshold_version)
    with _judges_lock:
        if key not in _judges:
            _judges[key] = load_judge(settings, ref)
        return _judges[key]


def backfill_day(
    settings: Settings,
    source_spec: str,
    table_name: str | None,
    day: date,
    ref: JudgeRef,
    run_id: str,
) -> dict[str, int]:
    """Re-score every stream of one day's partition and mark the day done; returns counts."""
    source = open_source(source_spec, table_name)
    if day in done_days(settings, source.key, ref):
        return {"day": day.isoformat(), "skipped": 1, "n_read": 0, "n_scored": 0, "n_flagged": 0}
    streams = source.partitions().get(day, [])
    batches = chain.from_iterable(source.stream_batches(s, settings.batch_size) for s in streams)
    counts = score_batches(settings, source, cached_judge(settings, ref), run_id, batches)
    mark_day_done(settings, source.key, day, ref, counts.n_read, run_id)
    return {
        "day": day.isoformat(),
        "skipped": 0,
        "n_read": counts.n_read,
        "n_scored": counts.n_scored,
        "n_flagged": counts.n_flagged,
    }


@task(name="backfill-day", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5)
def backfill_day_task(
    settings: Settings, source: str, table_name: str | None, day: date, ref: JudgeRef, run_id: str
) -> dict[str, int]:
    """One day's partition re-scored (upserts: a retry is safe)."""
    counts = backfill_day(settings, source, table_name, day, ref, run_id)
    get_run_logger().info("backfill %s: %s", day, counts)
    step("days", advance=1)
    return counts
