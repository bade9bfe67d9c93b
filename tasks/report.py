"""``ecgmon report`` and the ``report`` flow: the period's page written to ``DIR/index.html``
(self-contained) and, inside a flow run, the same content as the markdown artifact
``daily-report``.

    build_report(settings, report_period(None, 3, utcnow()), Path("out"))
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from sqlalchemy.engine import Engine

from ecgmon.report.page import Section, Table, render_html, render_markdown
from ecgmon.report.period import Period
from ecgmon.settings import Settings
from ecgmon.storage.batches import score_counts
from ecgmon.storage.engine import create_db_engine, redact_url
from ecgmon.storage.quarantine import rejection_counts
from ecgmon.storage.runs import runs_between
from ecgmon.tasks.daily_report import (
    beats_section,
    daily_section,
    day_drift,
    drift_section,
    loss_section,
    operations_section,
    patient_section,
)

ARTIFACT_KEY = "daily-report"
PAGE = "index.html"


@dataclass(frozen=True)
class BuiltReport:
    """Where the page is, its markdown, and the period's headline figures."""

    path: Path
    markdown: str
    figures: dict


def summary_section(engine: Engine, period: Period, database: str) -> tuple[Section, dict]:
    """The period's headline figures (a table) and the same as a dict."""
    groups = score_counts(engine, period.start, period.end, ("model_version", "threshold_version"))
    beats = sum(g["beats"] for g in groups)
    flagged = sum(int(g["flagged"] or 0) for g in groups)
    rejected = sum(
        int(r["rows"]) for r in rejection_counts(engine, period.start, period.operations_end)
    )
    runs = runs_between(engine, period.start, period.operations_end)
    figures = {
        "beats_scored": beats,
        "beats_flagged": flagged,
        "anomaly_rate": round(flagged / beats, 6) if beats else None,
        "rows_quarantined": rejected,
        "runs": len(runs),
        "runs_not_completed": sum(r["status"] != "completed" for r in runs),
    }
    rate = f"{flagged / beats:.2%}" if beats else "-"
    rows = [
        ["period (UTC days)", str(period)],
        ["beats scored", beats],
        ["beats flagged", flagged],
        ["anomaly rate", rate],
        ["rows quarantined (since the first day)", rejected],
        [
            "runs started / not completed (since the first day)",
            f"{len(runs)} / {figures['runs_not_completed']}",
        ],
        ["database", database],
    ]
    return Section("Summary", tables=[Table(["figure", "value"], rows)]), figures


def build_sections(settings: Settings, period: Period, out_dir: Path) -> tuple[list, dict]:
    """Every section of the report, in reading order, and the headline figures."""
    engine = create_db_engine(settings.database_url_plain)
    references: dict[int, np.ndarray] = {}
    drifts, losses = [], np.empty(0)
    for day in period.days:
        drift, day_losses = day_drift(engine, period, day, references)
        drifts.append(drift)
        losses = day_losses
    summary, figures = summary_section(engine, period, redact_url(settings.database_url_plain))
    sections = [
        summary,
        daily_section(engine, period, drifts),
        loss_section(engine, period, losses),
        drift_section(period, drifts),
        patient_section(engine, period),
        beats_section(engine, period, out_dir / "beats", settings.model_store),
        operations_section(engine, period),
    ]
    return sections, figures


def build_report(settings: Settings, period: Period, out_dir: Path) -> BuiltReport:
    """Write ``out_dir/index.html`` for the period; returns it with its markdown."""
    out_dir.mkdir(parents=True, exist_ok=True)
    sections, figures = build_sections(settings, period, out_dir)
    title = f"ecgmon report: {period}"
    path = out_dir / PAGE
    path.write_text(render_html(title, sections), encoding="utf-8")
    return BuiltReport(path, render_markdown(title, sections), figures)


@task(name="build-report", cache_policy=NO_CACHE)
def build_report_task(settings: Settings, period: Period, out_dir: str) -> dict:
    """Write the page; publish it as the markdown artifact ``daily-report``."""
    built = build_report(settings, period, Path(out_dir))
    try:
        create_markdown_artifact(built.markdown, key=ARTIFACT_KEY, description=f"report {period}")
    except Exception as err:  # noqa: BLE001 - the page is written; the artifact is a courtesy
        _logger().error("report artifact of %s not published: %s", period, err)
    return {"path": str(built.path), "period": str(period), **built.figures}


def _logger() -> logging.Logger | logging.LoggerAdapter:
    try:
        return get_run_logger()
    except Exception:  # noqa: BLE001 - MissingContextError outside a run
        return logging.getLogger(__name__)
