"""The report flow: the period's self-contained HTML page and the ``daily-report`` artifact."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from prefect import flow

from ecgmon.clock import utcnow
from ecgmon.report.period import report_period
from ecgmon.settings import get_settings
from ecgmon.tasks.report import build_report_task


@flow(name="report", log_prints=False)
def report_flow(day: date | None = None, days: int | None = None, out: str | None = None) -> dict:
    """Report one UTC ``day``, or the ``days`` UTC days ending yesterday (default: yesterday),
    into ``out`` (default: ``<artifact_dir>/reports/<last day>``)."""
    settings = get_settings()
    period = report_period(day, days, utcnow())
    folder = out or str(Path(settings.artifact_dir).expanduser() / "reports" / str(period.last))
    return build_report_task(settings, period, folder)
