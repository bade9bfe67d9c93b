"""Owner of ``rejected_records``: the beats validation refused, with the reason and raw payload.

Rejections are written in the transaction of the batch they came in
(:func:`ecgmon.storage.batches.commit_batch`), keyed on (source, record key, reason), so a
re-read batch updates its rejections instead of adding them twice.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from ecgmon.clock import utcnow
from ecgmon.records import Rejection
from ecgmon.storage.engine import dialect_insert, table

RECORD_KEY_CHARS = 512  # the width of rejected_records.record_key


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
            "record_key": r.record_key[:RECORD_KEY_CHARS],
            "reason": r.reason,
            "detail": r.detail,
            "raw_payload": r.raw_payload,
            "run_id": run_id,
            "rejected_at": now,
        }
        for r in rejections
    ]
    statement = insert.on_conflict_do_update(
        index_elements=["source", "record_key", "reason"],
        set_={"detail": insert.excluded.detail, "raw_payload": insert.excluded.raw_payload},
    )
    conn.execute(statement, values)
