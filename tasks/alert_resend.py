"""Send by hand what no alert has reached yet: ``ecgmon alerts resend [--run-id RUN]``.

A run's flagged beats stay ``pending`` (or ``failed``) in ``anomalies.alert_state`` when its alert
could not be delivered, no channel was configured, or its process died before alerting. Resending
claims the run's alert like the run itself would (at most one process sends), tells the channels
how many beats no alert reached, and records the outcome on the run and its beats. A run that is
still running is left alone: it alerts itself.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlalchemy.exc import NoResultFound

from ecgmon.errors import EcgmonError
from ecgmon.settings import Settings
from ecgmon.storage.batches import new_flag_count, runs_with_unalerted_flags
from ecgmon.storage.engine import create_db_engine
from ecgmon.storage.locks import run_is_alive
from ecgmon.storage.runs import claim_alert, read_run
from ecgmon.tasks.alerts import AlertOutcome, alert_message, deliver, record_outcome
from ecgmon.tasks.reporting import top_flagged


class UnknownRunError(EcgmonError):
    """No such run in ``pipeline_runs``."""


def resend_pending(settings: Settings, run_id: str | None = None) -> dict[str, AlertOutcome]:
    """Alert the beats no alert reached: of run ``run_id``, or of every score run; returns each
    run's outcome (``sent``, ``partial``, ``failed``, ``unconfigured``, ``none``, ``skipped``)."""
    engine = create_db_engine(settings.database_url_plain)
    if run_id is not None:
        return {run_id: resend_run(settings, engine, _known_run(engine, run_id))}
    runs = [read_run(engine, pending) for pending in runs_with_unalerted_flags(engine)]
    return {r["run_id"]: resend_run(settings, engine, r) for r in runs if r["flow"] == "score"}


def resend_run(settings: Settings, engine: Engine, run: dict) -> AlertOutcome:
    """Alert one run's beats no alert reached yet, if any, and record the outcome."""
    run_id = run["run_id"]
    if run["status"] == "running" and run_is_alive(engine, run_id):
        return AlertOutcome("skipped", "the run is still running; it alerts itself")
    n_new = new_flag_count(engine, run_id)
    if not n_new:
        return AlertOutcome("none", "no flagged beat is waiting for an alert")
    if not claim_alert(engine, run_id, resend=True):
        return AlertOutcome("skipped", "another process is sending this run's alert")
    reason = f"{n_new} flagged beats no alert reached yet (run {run['status']}; resent)"
    outcome = deliver(settings, *alert_message(run, [reason], top_flagged(engine, run_id)))
    outcome.detail = f"resent {n_new} beats | {outcome.detail}"
    outcome.n_new = n_new
    record_outcome(engine, run_id, outcome)
    return outcome


def _known_run(engine: Engine, run_id: str) -> dict:
    try:
        return read_run(engine, run_id)
    except NoResultFound as err:
        raise UnknownRunError(f"no run {run_id} in pipeline_runs") from err
