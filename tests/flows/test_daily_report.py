"""The report on a real score run: figures equal the tables, every section present, the page
self-contained, rendered in a real headless Chromium with every picture loaded."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from ecgmon.report.period import Period
from ecgmon.storage.engine import create_db_engine
from tests.conftest import write_day

pytestmark = pytest.mark.flow
DAYS = ("2026-11-01", "2026-11-02")
IMG = re.compile(r'<img src="(data:image/png;base64,[A-Za-z0-9+/=]+)"')


@pytest.fixture
def scored(prefect_harness, ecgmon_env, champion, synthetic_set, tmp_path) -> dict:
    """Two days of beats scored (with two bad rows quarantined) and a crashed run recorded."""
    from ecgmon.flows.score import score_flow
    from ecgmon.storage.runs import finish_run, start_run

    folder = tmp_path / "incoming"
    write_day(folder, DAYS[0], synthetic_set.signals[:100], 0)
    path = write_day(folder, DAYS[1], synthetic_set.signals[100:180], 100)
    frame = pd.read_parquet(path)
    frame.loc[3, "signal"] = np.full(140, np.nan, dtype=np.float32)
    frame.loc[4, "signal"] = np.zeros(7, dtype=np.float32)
    frame.to_parquet(path, index=False)
    result = score_flow(source=str(folder), as_of=datetime(2026, 11, 3, tzinfo=UTC))
    engine = create_db_engine(ecgmon_env.database_url_plain)
    start_run(engine, "run-that-crashed", "score", {}, str(folder))
    finish_run(engine, "run-that-crashed", "crashed", error="process killed")
    return result


def _period() -> Period:
    return Period(date.fromisoformat(DAYS[0]), date.fromisoformat(DAYS[1]), datetime.now(UTC))


def test_report_figures_equal_the_tables(scored, ecgmon_env, tmp_path):
    from ecgmon.tasks.report import build_report

    built = build_report(ecgmon_env, _period(), tmp_path / "report")
    page = built.path.read_text()
    engine = create_db_engine(ecgmon_env.database_url_plain)
    with engine.connect() as conn:
        flagged = conn.execute(sa.text("select count(*) from anomalies")).scalar_one()
        quarantined = conn.execute(sa.text("select count(*) from rejected_records")).scalar_one()
    assert built.figures["beats_scored"] == scored["n_scored"] == 178
    assert built.figures["beats_flagged"] == flagged == scored["n_flagged"]
    assert built.figures["rows_quarantined"] == quarantined == 2
    assert built.figures["runs_not_completed"] == 1
    # per-day rows: day, beats, flagged
    assert re.search(rf"<td>{DAYS[0]}</td><td class=\"n\">100</td>", page)
    assert re.search(rf"<td>{DAYS[1]}</td><td class=\"n\">78</td>", page)
    for text in ("run-that-crashed", "crashed", "process killed", "p1", "population"):
        assert text in page, text
    pictures = IMG.findall(page)
    drawn_beats = min(flagged, 6)
    alts = re.findall(r'<img src="data:[^"]+" alt="([^"]+)"', page)
    assert len(pictures) == 4 + drawn_beats, alts  # daily, loss, drift, rejections + beats
    assert not re.search(r"(src|href)=.https?://|@import", page)
    assert "data:image/png;base64," in built.markdown


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PROBE = """<script>
window.addEventListener("load", () => {
  const imgs = [...document.images];
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0 && i.naturalHeight > 0).length;
  document.body.setAttribute("data-probe", ok + "/" + imgs.length);
});
</script></body>"""


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_chromium_renders_the_report_with_every_picture_loaded(scored, ecgmon_env, tmp_path):
    from ecgmon.tasks.report import build_report

    built = build_report(ecgmon_env, _period(), tmp_path / "report")
    probe = tmp_path / "probe.html"
    probe.write_text(built.path.read_text().replace("</body>", PROBE))
    out = subprocess.run(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000"]
        + ["--dump-dom", probe.as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    ).stdout
    loaded, total = map(int, re.search(r'data-probe="(\d+)/(\d+)"', out).groups())
    assert total == len(IMG.findall(built.path.read_text())) >= 4
    assert loaded == total


def test_report_flow_publishes_the_page_as_a_markdown_artifact(scored, ecgmon_env, tmp_path):
    from prefect.client.orchestration import get_client

    from ecgmon.flows.report import report_flow
    from ecgmon.tasks.report import ARTIFACT_KEY

    result = report_flow(day=date.fromisoformat(DAYS[1]), out=str(tmp_path / "flow-report"))
    assert Path(result["path"]).is_file()
    assert result["beats_scored"] == 78

    async def latest() -> str:
        async with get_client() as client:
            artifact = await client.read_latest_artifacts()
            return next(a.data for a in artifact if a.key == ARTIFACT_KEY)

    import asyncio

    markdown = asyncio.run(latest())
    assert markdown.count("](data:image/png;base64,") >= 4
    assert f"ecgmon report: {DAYS[1]}" in markdown
