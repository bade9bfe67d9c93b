"""Owner of ``pipeline_runs``: one row per flow run, its counts, drift counts and alert state.

Every flow records itself here (:func:`start_run`, :func:`finish_run`). A score batch adds its
counts in the batch's own transaction (:func:`add_batch_counts`, called by
:func:`ecgmon.storage.batches.commit_batch`), so a run's counts always match its committed rows.
A run's alert is claimed with one conditional UPDATE (:func:`claim_alert`), so at most one
process alerts for it.

A run whose process died stays ``running`` until the next run of its flow finds it dead (its run
lock is free, :func:`ecgmon.storage.locks.run_is_alive`) and marks it ``crashed``
(:func:`mark_dead_runs`); that run's alert then carries the crashed runs' flagged beats
(:func:`claim_crashed_alerts`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ecgmon.clock import utcnow
from ecgmon.drift import add_states
from ecgmon.storage.engine import dialect_insert, table

#: alert states a run's alert may be claimed from: never tried, failed, no channel configured,
#: or only its failure told (a retry of the same run that completes may still flag beats)
CLAIMABLE_ALERT_STATES = (None, "failed", "unconfigured", "failure_sent")
ALERT_DETAIL_CHARS = 2000  # of alert_detail kept
CRASHED = "crashed"


@dataclass(frozen=True)
class BatchCounts:
    """What one committed batch adds to its run: beats read, scored, rejected, flagged, and the
    sum of the scored losses."""

    n_read: int
    n_scored: int
    n_rejected: int
    n_flagged: int
    loss_sum: float


def start_run(engine: Engine, run_id: str, flow: str, parameters: dict, source: str | None) -> None:
    """Record a run as ``running``; a retried run keeps the counts its committed batches added."""
    runs = table(engine, "pipeline_runs")
    with engine.begin() as conn:
        insert = dialect_insert(conn)(runs)
        values = {
            "run_id": run_id,
            "flow": flow,
            "parameters": json.loads(json.dumps(parameters, default=str)),
            "source": source,
            "status": "running",
            "started_at": utcnow(),
            "n_read": 0,
            "n_scored": 0,
            "n_rejected": 0,
            "n_flagged": 0,
            "loss_sum": 0.0,
        }
        conn.execute(
            insert.values(**values).on_conflict_do_update(
                index_elements=["run_id"], set_={"status": "running", "finished_at": None}
            )
        )


def finish_run(engine: Engine, run_id: str, status: str, **values: object) -> dict:
    """Close a run with its status and any extra columns; returns the run row.

    A completed run has no error, also when a racing check had taken it for dead."""
    if status == "completed":
        values.setdefault("error", None)
    runs = table(engine, "pipeline_runs")
    with engine.begin() as conn:
        conn.execute(
            runs.update()
            .where(runs.c.run_id == run_id)
            .values(status=status, finished_at=utcnow(), **values)
        )
        return _run_row(conn, run_id)


def read_run(engine: Engine, run_id: str) -> dict:
    """The ``pipeline_runs`` row of a run."""
    with engine.connect() as conn:
        return _run_row(conn, run_id)


def _run_row(conn: Connection, run_id: str) -> dict:
    runs = table(conn.engine, "pipeline_runs")
    return dict(conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).one()._mapping)


def add_batch_counts(
    conn: Connection,
    run_id: str,
    counts: BatchCounts,
    drift: dict | None = None,
    batch_key: str | None = None,
) -> bool:
    """Add a batch's counts (and its drift state, ``DriftAccumulator.state`` with the model
    version) to its run, inside the batch's transaction; returns whether they were added.

    ``batch_key`` is the batch's idempotency key: a retry of the batch that last added its
    counts (a commit whose outcome the client never heard) adds nothing. Batches of a run add
    their counts in batch order, one after the other, so the last key is enough."""
    runs = table(conn.engine, "pipeline_runs")
    where = runs.c.run_id == run_id
    update = runs.update().where(where)
    if batch_key is not None:
        last = runs.c.last_batch_key
        update = update.where(sa.or_(last.is_(None), last != batch_key))
    added = conn.execute(
        update.values(
            n_read=runs.c.n_read + counts.n_read,
            n_scored=runs.c.n_scored + counts.n_scored,
            n_rejected=runs.c.n_rejected + counts.n_rejected,
            n_flagged=runs.c.n_flagged + counts.n_flagged,
            loss_sum=runs.c.loss_sum + counts.loss_sum,
            **({"last_batch_key": batch_key} if batch_key is not None else {}),
        )
    )
    if added.rowcount == 0:
        return False
    if drift is not None:  # the row is locked by the update above
        stored = conn.execute(sa.select(runs.c.drift_counts).where(where)).scalar_one_or_none()
        merged = add_states(_decoded(stored), drift)
        conn.execute(runs.update().where(where).values(drift_counts=merged))
    return True


def read_drift_counts(engine: Engine, run_id: str) -> dict | None:
    """The loss counts a run's batches added up (``DriftAccumulator.state``), None if none."""
    runs = table(engine, "pipeline_runs")
    with engine.connect() as conn:
        stored = conn.execute(
            sa.select(runs.c.drift_counts).where(runs.c.run_id == run_id)
        ).scalar_one_or_none()
    return _decoded(stored)


def claim_alert(engine: Engine, run_id: str, resend: bool = False) -> bool:
    """Take the run's alert for this process: True for exactly one caller.

    ``resend``: also from a finished alert (``sent``, ``none``, ...), never from ``sending``."""
    runs = table(engine, "pipeline_runs")
    state = runs.c.alert_state
    again = [s for s in CLAIMABLE_ALERT_STATES if s]
    claimable = state != "sending" if resend else state.in_(again)
    with engine.begin() as conn:
        claimed = conn.execute(
            runs.update()
            .where(runs.c.run_id == run_id)
            .where(sa.or_(state.is_(None), claimable))
            .values(alert_state="sending")
        )
        return claimed.rowcount == 1


def mark_dead_runs(
    engine: Engine, flow: str, by_run_id: str, is_alive: Callable[[str], bool]
) -> list[str]:
    """Mark ``crashed`` every other run of ``flow`` recorded ``running`` whose process is gone
    (``is_alive(run_id)`` False); a dead run's claimed alert (``sending``) becomes ``failed``, so
    it can be claimed again. Returns the run ids marked."""
    runs = table(engine, "pipeline_runs")
    working = sa.or_(runs.c.status == "running", runs.c.alert_state == "sending")
    with engine.connect() as conn:
        candidates = conn.execute(
            sa.select(runs.c.run_id).where(runs.c.flow == flow, runs.c.run_id != by_run_id, working)
        ).scalars()
        dead = [run_id for run_id in candidates if not is_alive(run_id)]
    marked = []
    for run_id in dead:
        this = runs.c.run_id == run_id
        with engine.begin() as conn:
            crashed = conn.execute(
                runs.update()
                .where(this, runs.c.status == "running")
                .values(
                    status=CRASHED,
                    finished_at=utcnow(),
                    error=f"its process died before the run ended (found by run {by_run_id})",
                )
            )
            conn.execute(
                runs.update()
                .where(this, runs.c.alert_state == "sending")
                .values(alert_state="failed", alert_detail="the run's process died while alerting")
            )
        if crashed.rowcount:
            marked.append(run_id)
    return marked


def claim_crashed_alerts(engine: Engine, flow: str) -> list[str]:
    """Claim the alerts of the crashed runs of ``flow`` no alert has handled (claimable states),
    oldest first: each is claimed by exactly one caller."""
    runs = table(engine, "pipeline_runs")
    state = runs.c.alert_state
    again = [s for s in CLAIMABLE_ALERT_STATES if s]
    with engine.connect() as conn:
        crashed = conn.execute(
            sa.select(runs.c.run_id)
            .where(runs.c.flow == flow, runs.c.status == CRASHED)
            .where(sa.or_(state.is_(None), state.in_(again)))
            .order_by(runs.c.started_at, runs.c.run_id)
        ).scalars()
        candidates = list(crashed)
    return [run_id for run_id in candidates if claim_alert(engine, run_id)]


def set_alert_outcome(conn: Connection, run_id: str, state: str, detail: str) -> None:
    """Record the outcome of the run's alert, inside the caller's transaction."""
    runs = table(conn.engine, "pipeline_runs")
    conn.execute(
        runs.update()
        .where(runs.c.run_id == run_id)
        .values(alert_state=state, alert_detail=detail[:ALERT_DETAIL_CHARS])
    )


def _decoded(stored: dict | str | None) -> dict | None:
    """A JSON column's value (SQLite may hand back text)."""
    return json.loads(stored) if isinstance(stored, str) else stored


def runs_between(engine: Engine, start: datetime, end: datetime) -> list[dict]:
    """The ``pipeline_runs`` rows of runs started in [start, end) (UTC-aware), oldest first."""
    runs = table(engine, "pipeline_runs")
    query = (
        sa.select(runs)
        .where(runs.c.started_at >= start, runs.c.started_at < end)
        .order_by(runs.c.started_at, runs.c.run_id)
    )
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]
