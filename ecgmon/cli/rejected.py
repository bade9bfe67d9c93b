"""``ecgmon rejected list|replay``: look at quarantined rows, and score them again after a fix.

``list`` shows rejected rows (source, key, reason, detail) not yet replayed. ``replay`` parses the
raw payload each rejected row kept, validates it again with today's code and model, and commits
the rows that now pass (scores and flags, in one transaction per batch, under the source's run
lock); their quarantine rows are marked ``replayed_at``. Rows that still fail stay quarantined.
Whole-file rejections (no payload) are re-read by the next score run of a fixed or rewritten file.
"""

from __future__ import annotations

import argparse
import json
import uuid

import numpy as np
import pandas as pd
import sqlalchemy as sa

from ecgmon.clock import utcnow
from ecgmon.records import RawBatch, StreamPosition
from ecgmon.settings import get_settings
from ecgmon.storage.engine import create_db_engine, table

REPLAY_STREAM = "replay"


def rejected_rows(
    engine: sa.Engine,
    run_id: str | None = None,
    reason: str | None = None,
    source: str | None = None,
    pending_only: bool = True,
    limit: int | None = None,
) -> list[dict]:
    """Quarantined rows, oldest first, filtered by run, reason and source."""
    rejected = table(engine, "rejected_records")
    query = sa.select(rejected).order_by(rejected.c.id)
    for column, value in (("run_id", run_id), ("reason", reason), ("source", source)):
        if value is not None:
            query = query.where(rejected.c[column] == value)
    if pending_only:
        query = query.where(rejected.c.replayed_at.is_(None))
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


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


def _numbers(values: list | None) -> list | None:
    """JSON samples back to floats ("nan" strings included); anything else stays as it is."""
    if values is None:
        return None
    out = []
    for value in values:
        try:
            out.append(float(value))
        except (TypeError, ValueError):
            out.append(value)
    return out


def replay(settings, source: str | None = None, reason: str | None = None) -> dict:  # noqa: ANN001
    """Re-validate and score pending quarantined rows; returns counts per outcome."""
    from ecgmon.models.scoring import score_beats
    from ecgmon.storage.batches import BatchWrite, commit_batch
    from ecgmon.storage.locks import source_lock
    from ecgmon.storage.runs import finish_run, start_run
    from ecgmon.tasks.scoring import load_judge, resolve_judge
    from ecgmon.validation import validate_batch

    engine = create_db_engine(settings.database_url_plain)
    rows = [
        r
        for r in rejected_rows(engine, reason=reason, source=source)
        if r["raw_payload"] is not None
    ]
    judge = load_judge(settings, resolve_judge(settings))
    run_id = f"replay-{uuid.uuid4().hex[:12]}"
    start_run(engine, run_id, "replay", {"source": source, "reason": reason}, source)
    totals = {"run_id": run_id, "n_replayed": len(rows), "n_scored": 0, "n_still_rejected": 0}
    by_source: dict[str, list[dict]] = {}
    for row in rows:
        by_source.setdefault(row["source"], []).append(row)
    for key, group in by_source.items():
        with source_lock(engine, key):
            valid, still = validate_batch(payload_batch(key, group), judge.detector.input_length)
            scored = score_beats(judge, valid)
            passed = set(valid.record_id.to_pylist())
            position = StreamPosition(REPLAY_STREAM, len(passed), complete=True)
            commit_batch(
                engine,
                BatchWrite(run_id, key, judge.model_version, scored, [], position, len(passed)),
            )
            _mark_replayed(engine, [r["id"] for r in group if _row_id(r) in passed])
        totals["n_scored"] += len(valid)
        totals["n_still_rejected"] += len(still)
    finish_run(engine, run_id, "completed")
    return totals


def _row_id(row: dict) -> str | None:
    value = json.loads(row["raw_payload"]).get("record_id")
    return None if value is None else str(value).strip()


def _mark_replayed(engine: sa.Engine, ids: list[int]) -> None:
    if not ids:
        return
    rejected = table(engine, "rejected_records")
    with engine.begin() as conn:
        conn.execute(rejected.update().where(rejected.c.id.in_(ids)).values(replayed_at=utcnow()))


def cmd_list(args: argparse.Namespace) -> int:
    engine = create_db_engine(get_settings().database_url_plain)
    rows = rejected_rows(
        engine, args.run_id, args.reason, args.source, not args.all, limit=args.limit
    )
    if args.json:
        keep = ("id", "source", "record_key", "reason", "detail", "run_id", "rejected_at")
        print(json.dumps({"rejected": [{k: r[k] for k in keep} for r in rows]}, default=str))
        return 0
    for r in rows:
        print(f"{r['id']:>6}  {r['reason']:<22} {r['record_key'][:60]:<60} {r['detail'][:60]}")
    print(f"{len(rows)} quarantined row(s)")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    totals = replay(get_settings(), args.source, args.reason)
    print(
        f"replayed {totals['n_replayed']}: scored {totals['n_scored']}, still rejected "
        f"{totals['n_still_rejected']} (run {totals['run_id']})"
    )
    if args.json:
        print(json.dumps(totals, sort_keys=True))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``ecgmon rejected list`` and ``ecgmon rejected replay``."""
    rejected = subparsers.add_parser("rejected", help="quarantined input rows")
    sub = rejected.add_subparsers(dest="rejected_command", required=True)
    listing = sub.add_parser("list", help="list quarantined rows not yet replayed")
    listing.add_argument("--run-id")
    listing.add_argument("--reason", help="e.g. non_finite, wrong_length, unreadable_file")
    listing.add_argument("--source", help="source key, e.g. parquet:/data/incoming")
    listing.add_argument("--all", action="store_true", help="include rows already replayed")
    listing.add_argument("--limit", type=int, default=1000)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_list)
    again = sub.add_parser("replay", help="validate and score quarantined rows again")
    again.add_argument("--source", help="only this source key")
    again.add_argument("--reason", help="only rows rejected for this reason")
    again.add_argument("--json", action="store_true")
    again.set_defaults(func=cmd_replay)
