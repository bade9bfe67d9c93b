"""When the judge changed: model promotions and population threshold versions, in time order."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ecgmon.storage.engine import table


def version_events(engine: Engine, start: datetime, end: datetime) -> list[dict]:
    """Population model promotions and threshold versions created in [start, end) (UTC-aware):
    [{at, kind ("model" | "threshold"), version, model_version, label}], oldest first."""
    versions, thresholds = table(engine, "model_versions"), table(engine, "thresholds")
    promoted = sa.select(versions.c.version, versions.c.promoted_at).where(
        versions.c.patient_id.is_(None),
        versions.c.promoted_at >= start,
        versions.c.promoted_at < end,
    )
    created = sa.select(
        thresholds.c.threshold_version, thresholds.c.model_version, thresholds.c.created_at
    ).where(
        thresholds.c.patient_id.is_(None),
        thresholds.c.created_at >= start,
        thresholds.c.created_at < end,
    )
    with engine.connect() as conn:
        events = [
            {"at": at, "kind": "model", "version": v, "model_version": v, "label": f"model v{v}"}
            for v, at in conn.execute(promoted)
        ]
        events += [
            {"at": at, "kind": "threshold", "version": t, "model_version": m, "label": f"thr t{t}"}
            for t, m, at in conn.execute(created)
        ]
    return sorted(events, key=lambda e: (str(e["at"]), e["kind"]))
