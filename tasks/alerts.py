"""Alerts after a score run commits: one per run, deduplicated, never failing the data writes.

A run is alerted when it flagged beats not alerted before, when its anomaly rate exceeds
``Settings.anomaly_rate_bound`` (more likely drift or a broken feed than sick patients) or when
its drift PSI exceeds ``Settings.drift_bound``. Delivery goes to every Apprise URL of
``ECGMON_ALERT_URLS`` and/or the Prefect notification block ``Settings.alert_block``
(``block-type/name``, e.g. ``slack-webhook/ops``).

At most once per run, even across retries and concurrent runs: the run is claimed with one
conditional UPDATE of ``pipeline_runs.alert_state`` (only from NULL, ``failed`` or
``unconfigured``). The outcome is then recorded on the run (``sent``, ``partial``, ``failed``,
``unconfigured`` or ``none``, with the reason in ``alert_detail``) and on the run's beats
(``anomalies.alert_state``). A run's alert also carries the beats of the crashed runs of its flow
that no alert reached (claimed the same way), and says so; ``resend_pending`` in
:mod:`~ecgmon.tasks.alert_resend` sends what is still pending by hand. Channel URLs hold
tokens: they are never logged or stored; channels are named by position and scheme only
(``#1 json``).

Each alert has an Apprise notification type: ``warning`` when the anomaly rate or the drift
exceeds its bound, ``info`` for newly flagged beats alone, and ``failure`` for a run that failed
(:func:`alert_failed_run`: the flow, the run, its secret-free error and a link to the run in the
Prefect UI, from Prefect's ``PREFECT_UI_URL`` setting).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy.engine import Engine

from ecgmon.settings import Settings
from ecgmon.storage.batches import new_flag_count, record_alert_outcome
from ecgmon.storage.engine import create_db_engine
from ecgmon.storage.quarantine import whole_file_rejections
from ecgmon.storage.runs import claim_alert, claim_crashed_alerts, read_run
from ecgmon.tasks.reporting import flagged_query, top_flagged

EVENT = "ecg.anomalies.flagged"
INFO, WARNING, FAILURE = "info", "warning", "failure"  # Apprise notification types
FAILURE_SENT = "failure_sent"  # a failed run's alert reached a channel (storage/runs.py)


@dataclass
class AlertOutcome:
    """What the alert step did for one run."""

    state: str
    detail: str
    n_new: int = 0
    channels: int = 0
    delivered: int = 0


def alert_reasons(
    run: dict, n_new: int, settings: Settings, carried: dict[str, int] | None = None
) -> list[str]:
    """Why a run deserves an alert (empty: it does not); ``carried``: beats not alerted yet of
    crashed runs, by run id, that this alert carries."""
    reasons = []
    scored, flagged = int(run["n_scored"] or 0), int(run["n_flagged"] or 0)
    n_carried = {run_id: n for run_id, n in (carried or {}).items() if n}
    if n_new or n_carried:
        reasons.append(f"{n_new + sum(n_carried.values())} newly flagged beats")
    if n_carried:
        reasons[-1] += ", including " + " and ".join(
            f"{n} beats flagged by crashed run {run_id}" for run_id, n in n_carried.items()
        )
    if scored and flagged / scored > settings.anomaly_rate_bound:
        reasons.append(
            f"ANOMALY RATE {flagged / scored:.1%} exceeds the bound "
            f"{settings.anomaly_rate_bound:.1%}: more likely drift or a broken feed than sick "
            "patients; check the source before acting on single beats"
        )
    psi = run.get("drift_psi")
    if psi is not None and psi > settings.drift_bound:
        reasons.append(
            f"DRIFT: loss distribution PSI {psi:.3f} exceeds {settings.drift_bound:.3f} "
            "against the model's normal reference"
        )
    return reasons


def alert_type(reasons: list[str]) -> str:
    """``warning`` when the rate or drift bound is exceeded, else ``info`` (new flags alone)."""
    return WARNING if any(r.startswith(("ANOMALY RATE", "DRIFT")) for r in reasons) else INFO


def run_link(run_id: str) -> str | None:
    """The run's page in the Prefect UI (``PREFECT_UI_URL``), None when no UI URL is set."""
    from prefect.utilities.urls import url_for

    try:
        return url_for("flow-run", obj_id=run_id, url_type="ui")
    except Exception:  # noqa: BLE001 - a link is a courtesy; an odd setting must not stop the alert
        return None


def failure_message(run: dict, link: str | None) -> tuple[str, str]:
    """(title, body) of a failed run's alert: the flow, the run, the error and where to look."""
    title = f"ecgmon: {run['flow']} run {run['run_id']} {run['status']}"
    lines = [
        f"flow {run['flow']}, run {run['run_id']}: {run['status']}",
        f"error: {run.get('error') or 'not recorded'}",
        f"source: {run.get('source') or '-'}",
        f"started {run['started_at']}, ended {run.get('finished_at') or '-'}; read "
        f"{run['n_read']}, scored {run['n_scored']}, rejected {run['n_rejected']} (committed "
        "batches are kept; the run is safe to re-run)",
        f"run in the Prefect UI: {link}" if link else "Prefect UI link: set PREFECT_UI_URL",
    ]
    return title, "\n".join(lines)


def whole_file_reasons(rejected: list[dict]) -> list[str]:
    """One alert reason per file a run rejected whole (schema change, unreadable, truncated):
    none of its beats were scored, whether or not anything was flagged."""
    return [
        f"FILE REJECTED ({r['reason']}): {r['record_key']}: {r['detail']}; none of its beats "
        "were scored; fixed in place, it is read again by the next run"
        for r in rejected
    ]


def alert_message(run: dict, reasons: list[str], beats: list[dict]) -> tuple[str, str]:
    """(title, body) of an alert: counts, rate, worst beats and the query that shows them."""
    scored, flagged = int(run["n_scored"] or 0), int(run["n_flagged"] or 0)
    rate = f"{flagged / scored:.2%}" if scored else "n/a"
    title = f"ecgmon: {flagged} of {scored} beats flagged ({rate}) in run {run['run_id']}"
    lines = [
        *(f"- {reason}" for reason in reasons),
        f"run {run['run_id']} ({run['flow']}): read {run['n_read']}, scored {scored}, "
        f"rejected {run['n_rejected']}, flagged {flagged}, anomaly rate {rate}",
        f"model version {run['model_version']}, threshold version {run['threshold_version']}, "
        f"drift PSI {run['drift_psi'] if run['drift_psi'] is not None else 'n/a'}",
    ]
    if beats:
        lines.append("worst beats (record, patient, recorded at, loss/threshold):")
        lines += [
            f"  {b['record_id']}  {b['patient_id']}  {b['recorded_at']}  {b['score_ratio']}"
            for b in beats
        ]
    lines.append(f"query: {flagged_query(run['run_id'])}")
    return title, "\n".join(lines)


def record_outcome(engine: Engine, run_id: str, outcome: AlertOutcome) -> None:
    """Store the outcome on the run and its not-yet-alerted beats, in one transaction."""
    beat_state = {"sent": "sent", "partial": "sent", "failed": "failed"}.get(outcome.state)
    record_alert_outcome(engine, run_id, outcome.state, outcome.detail, beat_state)


@contextmanager
def _quiet_apprise() -> Iterator[None]:
    """Apprise and urllib3 log the URLs they post to; those hold tokens: mute them meanwhile."""
    loggers = [logging.getLogger(name) for name in ("apprise", "urllib3", "requests", "httpx")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def send_apprise(
    urls: list[str], title: str, body: str, notify_type: str = INFO
) -> list[tuple[str, bool, str]]:
    """Deliver to each Apprise URL with the notification type (``info``, ``warning``,
    ``failure``); [(channel name, delivered, reason)] without any secret."""
    import apprise

    results = []
    for i, url in enumerate(urls, start=1):
        name = f"#{i} {url.split('://', 1)[0]}"
        try:
            with _quiet_apprise():
                plugin = apprise.Apprise.instantiate(url)
                if plugin is None:
                    results.append((name, False, "not a valid Apprise URL"))
                    continue
                ok = bool(plugin.notify(body=body, title=title, notify_type=notify_type))
            results.append((name, ok, "" if ok else "the endpoint did not accept the alert"))
        except Exception as err:  # noqa: BLE001 - a channel failing must not stop the others
            results.append((name, False, type(err).__name__))
    return results


def send_block(block_name: str, title: str, body: str) -> tuple[str, bool, str]:
    """Deliver through a Prefect notification block, with its failures raised, not swallowed."""
    from prefect.blocks.core import Block

    name = f"block {block_name}"
    try:
        block = Block.load(block_name)
        with _quiet_apprise(), block.raise_on_failure():
            block.notify(body, subject=title)
    except Exception as err:  # noqa: BLE001 - recorded as a failed channel
        return name, False, type(err).__name__
    return name, True, ""


def deliver(settings: Settings, title: str, body: str, notify_type: str = INFO) -> AlertOutcome:
    """Send to every configured channel; the outcome says which failed and why."""
    results = send_apprise(settings.alert_url_list(), title, body, notify_type)
    if settings.alert_block:
        results.append(send_block(settings.alert_block, title, body))
    if not results:
        return AlertOutcome("unconfigured", "no ECGMON_ALERT_URLS and no alert block configured")
    delivered = sum(ok for _, ok, _ in results)
    state = "sent" if delivered == len(results) else "partial" if delivered else "failed"
    failures = "; ".join(f"{name}: {why}" for name, ok, why in results if not ok)
    detail = f"{delivered} of {len(results)} channels" + (f"; {failures}" if failures else "")
    return AlertOutcome(state, detail, channels=len(results), delivered=delivered)


def alert_run(settings: Settings, run_id: str) -> AlertOutcome:
    """Alert once for a committed run, if it deserves one; records and returns the outcome."""
    engine = create_db_engine(settings.database_url_plain)
    if not claim_alert(engine, run_id):
        return AlertOutcome("skipped", "this run's alert was already handled")
    run = read_run(engine, run_id)
    carried = {crashed: new_flag_count(engine, crashed) for crashed in crashed_runs(engine, run)}
    n_new = new_flag_count(engine, run_id)
    reasons = alert_reasons(run, n_new, settings, carried)
    reasons += whole_file_reasons(whole_file_rejections(engine, run_id))
    if not reasons:
        outcome = AlertOutcome("none", "nothing new to alert")
    else:
        beats = top_flagged(engine, run_id)
        outcome = deliver(settings, *alert_message(run, reasons, beats), alert_type(reasons))
        outcome.detail = f"{'; '.join(r.split(':')[0] for r in reasons)} | {outcome.detail}"
    outcome.n_new = n_new + sum(carried.values())
    record_outcome(engine, run_id, outcome)
    for crashed, n in carried.items():
        record_outcome(engine, crashed, carried_outcome(outcome, run_id, n))
    return outcome


def crashed_runs(engine: Engine, run: dict) -> list[str]:
    """The crashed runs of the run's flow whose alerts this run claims (score runs only)."""
    return claim_crashed_alerts(engine, run["flow"]) if run["flow"] == "score" else []


def carried_outcome(outcome: AlertOutcome, by_run_id: str, n_new: int) -> AlertOutcome:
    """What a crashed run records when run ``by_run_id``'s alert carried its ``n_new`` beats."""
    if not n_new:
        return AlertOutcome("none", "crashed; nothing to alert")
    detail = f"crashed; {n_new} beats carried by the alert of run {by_run_id}: {outcome.detail}"
    return AlertOutcome(outcome.state, detail, n_new, outcome.channels, outcome.delivered)


def alert_failed_run(settings: Settings, run_id: str) -> AlertOutcome:
    """Alert once that a recorded run failed (type ``failure``); records the outcome on the run
    only (its beats were not reported)."""
    engine = create_db_engine(settings.database_url_plain)
    if not claim_alert(engine, run_id):
        return AlertOutcome("skipped", "this run's alert was already handled")
    run = read_run(engine, run_id)
    outcome = deliver(settings, *failure_message(run, run_link(run_id)), FAILURE)
    outcome.detail = f"run {run['status']} | {outcome.detail}"
    if outcome.state in ("sent", "partial"):  # claimable again: a retry may still flag beats
        outcome.state = FAILURE_SENT
    record_alert_outcome(engine, run_id, outcome.state, outcome.detail, None)
    return outcome


def emit_flagged_event(run: dict, beats: list[dict], settings: Settings) -> None:
    """Emit ``ecg.anomalies.flagged`` for Automations (see automations/anomalies-flagged.yaml)."""
    from prefect.events import emit_event

    scored, flagged = int(run["n_scored"] or 0), int(run["n_flagged"] or 0)
    rate = flagged / scored if scored else 0.0
    emit_event(
        event=EVENT,
        resource={"prefect.resource.id": f"ecgmon.run.{run['run_id']}", "ecgmon.flow": run["flow"]},
        payload={
            "run_id": run["run_id"],
            "n_scored": scored,
            "n_flagged": flagged,
            "anomaly_rate": round(rate, 6),
            "rate_exceeded": rate > settings.anomaly_rate_bound,
            "drift_psi": run["drift_psi"],
            "model_version": run["model_version"],
            "threshold_version": run["threshold_version"],
            "worst_beats": beats,
            "query": flagged_query(run["run_id"]),
        },
    )


@task(name="alert-run", cache_policy=NO_CACHE)
def alert_run_task(settings: Settings, run_id: str) -> dict:
    """Alert for a committed run; logs every failure and never raises (the data is written)."""
    logger = get_run_logger()
    try:
        outcome = alert_run(settings, run_id)
    except Exception as err:  # noqa: BLE001 - alerting must never fail the committed run
        logger.error("alert step of run %s failed: %s", run_id, type(err).__name__)
        return asdict(AlertOutcome("error", type(err).__name__))
    log = logger.warning if outcome.state in ("failed", "partial", "unconfigured") else logger.info
    log("alert %s: %s", outcome.state, outcome.detail)
    if outcome.n_new and outcome.state != "skipped":
        try:
            engine = create_db_engine(settings.database_url_plain)
            emit_flagged_event(read_run(engine, run_id), top_flagged(engine, run_id), settings)
        except Exception as err:  # noqa: BLE001 - the event is a courtesy; the run is committed
            logger.error("event %s not emitted: %s", EVENT, type(err).__name__)
    return asdict(outcome)
