"""Owner of ``rejected_records``: the rows validation refused, with the reason and raw payload.

Rejections are written in the transaction of the batch they came in
(:func:`ecgmon.storage.batches.commit_batch`), keyed on (source, record key, reason), so a
re-read batch updates its rejections instead of adding them twice (and they then belong to the
run that last saw them). Replay lists the pending rows and marks those it scored.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ecgmon.clock import utcnow
from ecgmon.records import WHOLE_FILE_REASONS, Rejection
from ecgmon.storage.engine import dialect_insert, table

RECORD_KEY_CHARS = 512  # the width of rejected_records.record_key
_DIGEST_CHARS = 16  # hex digits of sha256 that end a shortened key


def record_key(key: str) -> str:
    """A rejection's key as stored: NUL characters (PostgreSQL text cannot hold them) written
    as ``\\x00``; a key longer than the column is cut and ended with ``#`` and a digest of the
    whole key, so two long keys that share their start stay two rows."""
    key = key.replace("\x00", "\\x00")
    if len(key) <= RECORD_KEY_CHARS:
        return key
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:_DIGEST_CHARS]
    return f"{key[: RECORD_KEY_CHARS - _DIGEST_CHARS - 1]}#{digest}"


def upsert_rejections(
    conn: Connection, source: str, run_id: str, rejections: list[Rejection]
) -> None:
    """Upsert a batch's rejections, inside the caller's transaction."""
    rejected = table(conn.engine, "rejected_records")
    insert = dialect_insert(conn)(rejected)
    now = utcnow()
    values = [
        {
            "source": source,
            "record_key": record_key(r.record_key),
            "reason": r.reason,
            "detail": r.detail.replace("\x00", "\\x00"),
            "raw_payload": r.raw_payload,
            "run_id": run_id,
            "rejected_at": now,
        }
        for r in rejections
    ]
    # a row rejected again is pending again (a replay that marked it is stale), under this run
    statement = insert.on_conflict_do_update(
        index_elements=["source", "record_key", "reason"],
        set_={
            "detail": insert.excluded.detail,
            "raw_payload": insert.excluded.raw_payload,
            "run_id": insert.excluded.run_id,
            "rejected_at": insert.excluded.rejected_at,
            "replayed_at": None,
        },
    )
    conn.execute(statement, values)


def rejected_rows(
    engine: sa.Engine,
    run_id: str | None = None,
    reason: str | None = None,
    source: str | None = None,
    pending_only: bool = True,
    limit: int | None = None,
) -> list[dict]:
    """Quarantined rows, oldest first, filtered by run, reason and source; ``pending_only``:
    only rows not yet replayed."""
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


#: Reasons a replay never scores: a repeated id's payload would overwrite the original beat.
NOT_REPLAYABLE = ("duplicate_record_id",)


def whole_file_rejections(engine: sa.Engine, run_id: str) -> list[dict]:
    """The files (or recordings) a run rejected whole (:data:`WHOLE_FILE_REASONS`), oldest
    first: {record_key (the file), reason, detail, source}."""
    rejected = table(engine, "rejected_records")
    query = (
        sa.select(rejected.c.record_key, rejected.c.reason, rejected.c.detail, rejected.c.source)
        .where((rejected.c.run_id == run_id) & rejected.c.reason.in_(WHOLE_FILE_REASONS))
        .order_by(rejected.c.id)
    )
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def pending_rejections(
    engine: sa.Engine,
    source: str | None = None,
    reason: str | None = None,
    after_id: int = 0,
    limit: int | None = None,
) -> list[dict]:
    """Rows a replay can score again, oldest first, at most ``limit`` of them with an id above
    ``after_id`` (a replay reads them a page at a time): not yet replayed, with their raw payload
    kept (a whole-file rejection has none), and not a repeat of an id already scored."""
    rejected = table(engine, "rejected_records")
    query = (
        sa.select(rejected)
        .where(
            rejected.c.id > after_id,
            rejected.c.replayed_at.is_(None),
            rejected.c.raw_payload.is_not(None),
            rejected.c.reason.not_in(NOT_REPLAYABLE),
        )
        .order_by(rejected.c.id)
    )
    for column, value in (("reason", reason), ("source", source)):
        if value is not None:
            query = query.where(rejected.c[column] == value)
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def mark_replayed(engine: sa.Engine, ids: list[int]) -> None:
    """Set ``replayed_at`` (now, UTC) on the quarantined rows with these ids."""
    if not ids:
        return
    rejected = table(engine, "rejected_records")
    with engine.begin() as conn:
        conn.execute(rejected.update().where(rejected.c.id.in_(ids)).values(replayed_at=utcnow()))


def rejection_counts(engine: sa.Engine, start: datetime, end: datetime) -> list[dict]:
    """Rows quarantined in [start, end) (UTC-aware) by reason and source: {reason, source, rows,
    pending (not yet replayed)}, most rows first."""
    rejected = table(engine, "rejected_records")
    pending = sa.func.sum(sa.case((rejected.c.replayed_at.is_(None), 1), else_=0))
    query = (
        sa.select(
            rejected.c.reason,
            rejected.c.source,
            sa.func.count().label("rows"),
            pending.label("pending"),
        )
        .where(rejected.c.rejected_at >= start, rejected.c.rejected_at < end)
        .group_by(rejected.c.reason, rejected.c.source)
        .order_by(sa.func.count().desc(), rejected.c.reason, rejected.c.source)
    )
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]
