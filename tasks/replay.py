"""Replay of quarantined rows: score them again after a fix.

Each rejected row that kept its raw payload is parsed back into a raw batch, validated again with
today's code and judged by today's champion; the rows that now pass are committed (scores and
flags, in one transaction per source, under the source's run lock) and their quarantine rows are
marked ``replayed_at``. Rows that still fail stay quarantined. Whole-file rejections (no payload)
are re-read by the next score run of a fixed or rewritten file.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy.engine import Engine

from ecgmon.models.scoring import Judge, score_beats
from ecgmon.records import RawBatch, StreamPosition
from ecgmon.settings import Settings
from ecgmon.storage.batches import BatchWrite, commit_batch
from ecgmon.storage.engine import create_db_engine
from ecgmon.storage.locks import source_lock
from ecgmon.storage.quarantine import mark_replayed, pending_rejections
from ecgmon.tasks.runs import current_run_id
from ecgmon.tasks.scoring import load_judge, resolve_judge
from ecgmon.validation import validate_batch

#: The stream under which a source's replayed rows move its watermarks.
REPLAY_STREAM = "replay"
#: Quarantined rows replayed per page.
REPLAY_PAGE = 5_000


def payload_batch(source: str, rows: list[dict]) -> RawBatch:
    """A raw batch rebuilt from the JSON payloads of quarantined rows (row keys kept)."""
    parsed = [json.loads(r["raw_payload"]) for r in rows]
    n = len(parsed)
    return RawBatch(
        source=source,
        record_id=np.array([p.get("record_id") for p in parsed] + [None], dtype=object)[:n],
        recorded_at=pd.Series([p.get("recorded_at") for p in parsed], dtype=object),
        patient_id=np.array([p.get("patient_id") for p in parsed] + [None], dtype=object)[:n],
        signals=[_numbers(p.get("signal")) for p in parsed],
        row_keys=[r["record_key"] for r in rows],
        position=StreamPosition(REPLAY_STREAM, 0, complete=True),
    )


#: Texts of non-finite floats a payload may hold as strings; every other string stays text.
_NON_FINITE = frozenset({"nan", "inf", "-inf", "infinity", "-infinity"})


def _numbers(values: list | None) -> list | None:
    """JSON samples back to floats: numbers, and the strings of NaN or infinity; any other value
    (text such as "0.5", true/false) stays as it is, so a row refused for its types is refused
    again by an unchanged validation."""
    if values is None:
        return None
    return [_number(value) for value in values]


def _number(value: object) -> object:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and value.strip().lower() in _NON_FINITE:
        return float(value)
    return value


def _row_id(row: dict) -> str | None:
    """The record id a quarantined row's payload names, as validation strips it."""
    value = json.loads(row["raw_payload"]).get("record_id")
    return None if value is None else str(value).strip()


def replay(
    settings: Settings,
    source: str | None = None,
    reason: str | None = None,
    run_id: str | None = None,
) -> dict:
    """Re-validate and score pending quarantined rows (of one source or reason, if given) under
    ``run_id`` (default: the current flow run's); returns counts per outcome."""
    engine = create_db_engine(settings.database_url_plain)
    judge = load_judge(settings, resolve_judge(settings))
    run_id = run_id or current_run_id()
    totals = {"run_id": run_id, "n_replayed": 0, "n_scored": 0, "n_still_rejected": 0}
    after = 0
    while rows := pending_rejections(engine, source, reason, after_id=after, limit=REPLAY_PAGE):
        after = rows[-1]["id"]  # a page at a time: memory bounded by the page, not the backlog
        totals["n_replayed"] += len(rows)
        by_source: dict[str, list[dict]] = {}
        for row in rows:
            by_source.setdefault(row["source"], []).append(row)
        for key, group in by_source.items():
            n_scored, n_still_rejected = replay_source(engine, judge, run_id, key, group)
            totals["n_scored"] += n_scored
            totals["n_still_rejected"] += n_still_rejected
    return totals


def replay_source(
    engine: Engine, judge: Judge, run_id: str, source: str, rows: list[dict]
) -> tuple[int, int]:
    """Replay one source's quarantined rows under its run lock: the rows that pass are committed
    and marked replayed; returns (scored, still rejected)."""
    with source_lock(engine, source):
        valid, still = validate_batch(payload_batch(source, rows), judge.detector.input_length)
        scored = score_beats(judge, valid)
        passed = set(valid.record_id.to_pylist())
        position = StreamPosition(REPLAY_STREAM, len(passed), complete=True)
        commit_batch(
            engine,
            BatchWrite(run_id, source, judge.model_version, scored, [], position, len(passed)),
        )
        mark_replayed(engine, [r["id"] for r in rows if _row_id(r) in passed])
    return len(valid), len(still)


@task(name="replay-rejected", cache_policy=NO_CACHE)
def replay_task(settings: Settings, source: str | None, reason: str | None, run_id: str) -> dict:
    """Score the replayable quarantined rows again; the ones that pass leave quarantine."""
    totals = replay(settings, source, reason, run_id)
    get_run_logger().info(
        "replayed %d: scored %d, still rejected %d",
        totals["n_replayed"],
        totals["n_scored"],
        totals["n_still_rejected"],
    )
    return totals
