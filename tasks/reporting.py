"""What a run did, for people: its drift measurement and a summary artifact in the Prefect UI.

For any flow that records itself in ``pipeline_runs`` (score, backfill, retrain, recalibrate),
inside the flow run, after ``finish_run``:

    row = finish_run_task(settings, run_id, "completed", ...)
    publish_run_summary(row | {"extra": {"decision": "promoted"}},
                        top_flagged(create_db_engine(settings.database_url_plain), run_id))

publishes a markdown artifact ``<flow>-run-summary`` (counts, anomaly rate, model and threshold
version, drift, alert state, any ``extra`` figures, the top flagged beats and the SQL that lists
them all) and, when beats were flagged, a table artifact ``<flow>-top-flagged``. Keys stay stable
across runs so the UI shows their history. A failure to publish is logged, never raised: the
run's data is already committed.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re

import sqlalchemy as sa
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from sqlalchemy.engine import Engine

from ecgmon.drift import DriftAccumulator
from ecgmon.models.registry.versions import normal_reference_losses
from ecgmon.settings import Settings
from ecgmon.storage.batches import top_flagged_beats
from ecgmon.storage.engine import create_db_engine
from ecgmon.storage.runs import read_drift_counts

TOP_BEATS = 5
_BEAT_COLUMNS = ("record_id", "patient_id", "recorded_at", "score_ratio", "loss", "severity")


def top_flagged(engine: Engine, run_id: str, limit: int = TOP_BEATS) -> list[dict]:
    """The run's worst flagged beats by score_ratio, times as ISO text (JSON and artifact safe)."""
    return [beat_summary(row) for row in top_flagged_beats(engine, run_id, limit)]


def beat_summary(beat: dict) -> dict:
    """The figures of an ``anomalies`` row people read: ids, time as text, rounded ratio, loss."""
    row = {name: beat[name] for name in _BEAT_COLUMNS}
    row["recorded_at"] = str(row["recorded_at"])
    row["score_ratio"] = round(float(row["score_ratio"]), 4)
    row["loss"] = round(float(row["loss"]), 6)
    return row


def flagged_query(run_id: str) -> str:
    """The SQL an analyst runs to see every beat a run flagged."""
    return (
        "SELECT * FROM v_flagged_beats "
        f"WHERE run_id = '{run_id.replace(chr(39), '')}' ORDER BY score_ratio DESC"
    )


def measure_drift(engine: Engine, run_id: str, model_version: int) -> dict:
    """PSI and KS of the run's scored losses against the model's normal reference losses.

    The losses were counted batch by batch as they were committed (``pipeline_runs.drift_counts``),
    so this reads two rows, whatever the size of the run. Returns the report of
    :meth:`ecgmon.drift.DriftAccumulator.report` with NaN as None.
    """
    acc = DriftAccumulator(normal_reference_losses(engine, model_version))
    counts = read_drift_counts(engine, run_id)
    if counts:
        if counts.get("model_version") != model_version:
            raise ValueError(f"run {run_id} was scored by model {counts.get('model_version')}")
        acc.merge(counts)
    return {key: _finite_or_none(value) for key, value in acc.report().items()}


#: flows whose runs read beats: their summary opens with the beat counts
READS_BEATS = ("score", "backfill", "replay")


def run_summary_markdown(
    run: dict, top_beats: list[dict], pictures: dict[str, bytes] | None = None
) -> str:
    """A short markdown summary of a run row, its top flagged beats and ``pictures`` ({title:
    PNG}, inline as ``data:image/png``). Runs that read no beats (training, recalibration) show
    their own figures instead of beat counts."""
    lines = [f"# {run.get('flow', 'run')} run `{run['run_id']}`: {run.get('status')}", ""]
    if run.get("flow") in READS_BEATS or int(run.get("n_read") or 0):
        lines += _counts_lines(run)
    else:
        lines.append(
            f"Model version {run.get('model_version')}, threshold version "
            f"{run.get('threshold_version')}."
        )
    extra = run.get("extra") or {}
    if extra:
        lines += ["", "| figure | value |", "|---|---|"]
        lines += [f"| {name} | {value} |" for name, value in extra.items()]
    for title, data in (pictures or {}).items():
        encoded = base64.b64encode(data).decode("ascii")
        lines += ["", f"## {title}", "", f"![{title}](data:image/png;base64,{encoded})"]
    if top_beats:
        lines += ["", "## Top flagged beats", "", "| record | patient | recorded at | ratio |"]
        lines += ["|---|---|---|---|"]
        lines += [
            f"| {b['record_id']} | {b['patient_id']} | {b['recorded_at']} | {b['score_ratio']} |"
            for b in top_beats
        ]
        lines += ["", f"All of them: `{flagged_query(run['run_id'])}`"]
    return "\n".join(lines)


def _counts_lines(run: dict) -> list[str]:
    """The beat counts, rate, versions, drift and alert of a run that read beats."""
    scored, flagged = int(run.get("n_scored") or 0), int(run.get("n_flagged") or 0)
    rate = f"{flagged / scored:.2%}" if scored else "n/a"
    drift = run.get("drift") or {}
    psi, ks = _fmt(run.get("drift_psi")), _fmt(_json(drift).get("ks") if drift else None)
    return [
        "| read | scored | rejected | flagged | anomaly rate | model | threshold | PSI | KS |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {run.get('n_read', 0)} | {scored} | {run.get('n_rejected', 0)} | {flagged} | {rate} "
        f"| {run.get('model_version')} | {run.get('threshold_version')} | {psi} | {ks} |",
        "",
        f"Alert: {run.get('alert_state') or 'none'}"
        + (f" ({run['alert_detail']})" if run.get("alert_detail") else ""),
    ]


def publish_run_summary(
    run: dict, top_beats: list[dict] | None = None, pictures: dict[str, bytes] | None = None
) -> str | None:
    """Publish a run row's summary artifacts (inside a flow run); returns the markdown.

    ``run``: a ``pipeline_runs`` row (as ``finish_run`` returns it), optionally with ``extra``
    ({name: figure}) for flow-specific results. ``top_beats``: rows of :func:`top_flagged`.
    ``pictures``: {title: PNG bytes} shown inline.
    """
    beats = top_beats or []
    try:
        markdown = run_summary_markdown(run, beats, pictures)
        flow = artifact_key(str(run.get("flow") or "run"))
        create_markdown_artifact(markdown, key=f"{flow}-run-summary", description="run summary")
        if beats:
            create_table_artifact(beats, key=f"{flow}-top-flagged", description="worst beats")
    except Exception as err:  # noqa: BLE001 - the data is committed; the summary is a courtesy
        _logger().error("run summary of %s not published: %s", run.get("run_id"), err)
        return None
    return markdown


def artifact_key(text: str) -> str:
    """Lowercase letters, digits and dashes only (Prefect's rule for artifact keys)."""
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-") or "run"


@task(name="measure-drift", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def measure_drift_task(settings: Settings, run_id: str, model_version: int) -> dict | None:
    """Drift of this run's losses; None (logged) when it cannot be measured."""
    logger = get_run_logger()
    try:
        report = measure_drift(create_db_engine(settings.database_url_plain), run_id, model_version)
    except (sa.exc.SQLAlchemyError, ValueError) as err:
        logger.error("drift of run %s not measured: %s", run_id, type(err).__name__)
        return None
    if report["n_observed"]:
        logger.info("drift: PSI %.3f, KS %.3f", report["psi"], report["ks"])
    return report


def _logger() -> logging.Logger | logging.LoggerAdapter:
    """The run logger inside a flow or task run, else this module's logger."""
    try:
        return get_run_logger()
    except Exception:  # noqa: BLE001 - MissingContextError outside a run; never fail a courtesy
        return logging.getLogger(__name__)


def _json(value: object) -> object:
    return json.loads(value) if isinstance(value, str) else value


def _finite_or_none(value: object) -> object:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _fmt(value: object) -> str:
    return "n/a" if value is None else f"{float(value):.3f}"
