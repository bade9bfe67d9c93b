"""Owner of ``ingest_watermarks``: how far each stream of a source has been committed.

A score batch moves its stream's watermark in the batch's own transaction
(:func:`ecgmon.storage.batches.commit_batch`), so the watermark is never ahead of the committed
rows. Backfill records each finished day as a complete watermark of ``backfill:<source key>``.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ecgmon.clock import utcnow
from ecgmon.records import StreamPosition
from ecgmon.storage.engine import dialect_insert, table


def advance_watermark(conn: Connection, source: str, position: StreamPosition, run_id: str) -> None:
    """Upsert the watermark of one stream of a source, inside the caller's transaction."""
    marks = table(conn.engine, "ingest_watermarks")
    insert = dialect_insert(conn)(marks)
    values = {
        "source": source,
        "stream": position.stream,
        "position_offset": position.offset,
        "position_time": position.time,
        "position_key": position.key,
        "fingerprint": position.fingerprint,
        "complete": position.complete,
        "run_id": run_id,
        "updated_at": utcnow(),
    }
    keep = ("source", "stream")
    conn.execute(
        insert.values(**values).on_conflict_do_update(
            index_elements=list(keep),
            set_={k: v for k, v in values.items() if k not in keep},
        )
    )


def read_watermarks(engine: Engine, source: str) -> dict[str, dict]:
    """Every stream's watermark of a source: {stream: row}."""
    marks = table(engine, "ingest_watermarks")
    with engine.connect() as conn:
        rows = conn.execute(sa.select(marks).where(marks.c.source == source))
        return {row.stream: dict(row._mapping) for row in rows}


def complete_streams(engine: Engine, source: str, fingerprint: str) -> list[str]:
    """The streams of a source whose watermark is complete and carries ``fingerprint``."""
    marks = table(engine, "ingest_watermarks")
    query = sa.select(marks.c.stream).where(
        (marks.c.source == source) & (marks.c.fingerprint == fingerprint) & marks.c.complete
    )
    with engine.connect() as conn:
        return list(conn.execute(query).scalars())
