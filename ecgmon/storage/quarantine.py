"""Quarantined input rows (``rejected_records``): listing them, and marking rows replayed."""

from __future__ import annotations

import sqlalchemy as sa

from ecgmon.clock import utcnow
from ecgmon.storage.engine import table


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


def pending_rejections(
    engine: sa.Engine, source: str | None = None, reason: str | None = None
) -> list[dict]:
    """Rows a replay can score again: not yet replayed and with their raw payload kept (a
    whole-file rejection has none), oldest first."""
    rows = rejected_rows(engine, reason=reason, source=source)
    return [row for row in rows if row["raw_payload"] is not None]


def mark_replayed(engine: sa.Engine, ids: list[int]) -> None:
    """Set ``replayed_at`` (now, UTC) on the quarantined rows with these ids."""
    if not ids:
        return
    rejected = table(engine, "rejected_records")
    with engine.begin() as conn:
        conn.execute(rejected.update().where(rejected.c.id.in_(ids)).values(replayed_at=utcnow()))
