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
(``anomalies.alert_state``). Channel URLs hold tokens: they are never logged or stored; channels
are named by position and scheme only (``#1 json``).
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
from ecgmon.storage.runs import claim_alert, read_run
from ecgmon.tasks.reporting import flagged_query, top_flagged

EVENT = "ecg.anomalies.flagged"


@dataclass
class AlertOutcome:
    """What the alert step did for one run."""

    state: str
    detail: str
    n_new: int = 0
    channels: int = 0
    delivered: int = 0


def alert_reasons(run: dict, n_new: int, settings: Settings) -> list[str]:
    """Why a run deserves an alert (empty: it does not)."""
    reasons = []
    scored, flagged = int(run["n_scored"] or 0), int(run["n_flagged"] or 0)
    if n_new:
        reasons.append(f"{n_new} newly flagged beats")
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


def send_apprise(urls: list[str], title: str, body: str) -> list[tuple[str, bool, str]]:
    """Deliver to each Apprise URL; [(channel name, delivered, reason)] without any secret."""
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
                ok = bool(plugin.notify(body=body, title=title))
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


def deliver(settings: Settings, title: str, body: str) -> AlertOutcome:
    """Send to every configured channel; the outcome says which failed and why."""
    results = send_apprise(settings.alert_url_list(), title, body)
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
    n_new = new_flag_count(engine, run_id)
    reasons = alert_reasons(run, n_new, settings)
    reasons += whole_file_reasons(whole_file_rejections(engine, run_id))
    if not reasons:
        outcome = AlertOutcome("none", "nothing new to alert")
    else:
        beats = top_flagged(engine, run_id)
        outcome = deliver(settings, *alert_message(run, reasons, beats))
        outcome.detail = f"{'; '.join(r.split(':')[0] for r in reasons)} | {outcome.detail}"
    outcome.n_new = n_new
    record_outcome(engine, run_id, outcome)
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
