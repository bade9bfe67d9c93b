"""Take the README's screenshots again: the daily report, and the Prefect UI pages of a score
run's artifacts (the run's artifacts tab, its flagged-beat pictures, the daily-report artifact).

    .venv/bin/python docs/tools/screenshots.py [--port 4351] [--data ../shared/data/ecg5000]

Everything runs in a scratch folder: a Prefect server on ``--port`` with its own PREFECT_HOME,
``ecgmon demo`` (a score run) and the ``report`` flow against it, ``ecgmon report --days 3``, and
headless Chromium (Debian's ``chromium``) for the pictures, written to docs/images/. The server
is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
IMAGES = ROOT / "docs" / "images"


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        sys.exit("screenshots: install chromium (apt-get install -y chromium)")
    return found


def shoot(url: str, out: Path, width: int = 1300, height: int = 2000, wait_ms: int = 15000) -> None:
    """A headless Chromium screenshot of ``url`` after ``wait_ms`` of (virtual) page time."""
    subprocess.run(
        [chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
        + [f"--window-size={width},{height}", f"--virtual-time-budget={wait_ms}"]
        + [f"--screenshot={out}", url],
        check=True,
        capture_output=True,
        timeout=300,
    )
    print(f"wrote {out.relative_to(ROOT)}")


def api(base: str, path: str, body: dict) -> list[dict]:
    request = urllib.request.Request(
        f"{base}/api/{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def wait_for_server(base: str, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/api/health", timeout=5):
                return
        except OSError:
            time.sleep(2)
    sys.exit(f"screenshots: the Prefect server at {base} did not answer")


def run(env: dict, *args: str, cwd: Path) -> None:
    subprocess.run([str(BIN / "ecgmon"), *args], env=env, cwd=cwd, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=4351)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "ecg5000")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="ecgmon-screenshots-"))
    base = f"http://127.0.0.1:{args.port}"
    env = os.environ | {
        "PREFECT_HOME": str(scratch / "prefect"),
        "PREFECT_API_URL": f"{base}/api",
        "PREFECT_UI_URL": base,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "ECGMON_DATABASE_URL": f"sqlite:///{scratch / 'ecgmon.db'}",
        "ECGMON_MODEL_STORE": str(scratch / "models"),
        "ECGMON_ARTIFACT_DIR": str(scratch / "artifacts"),
    }
    server = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(args.port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_server(base)
        take_all(env, base, scratch, args.data)
    finally:
        server.terminate()
        server.wait(timeout=60)
        shutil.rmtree(scratch, ignore_errors=True)


def take_all(env: dict, base: str, scratch: Path, data: Path) -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    demo = [*("demo", "--data", str(data))] if data.exists() else ["demo"]
    run(env, *demo, cwd=scratch)
    run(env, "report", "--days", "3", "--out", str(scratch / "report"), cwd=scratch)
    shoot((scratch / "report" / "index.html").as_uri(), IMAGES / "report.png", height=3000)
    report_flow = "from ecgmon.flows.report import report_flow; report_flow(days=3)"
    subprocess.run([str(BIN / "python"), "-c", report_flow], env=env, cwd=scratch, check=True)
    runs = api(base, "flow_runs/filter", {"sort": "START_TIME_DESC"})
    flows = {f["id"]: f["name"] for f in api(base, "flows/filter", {})}
    score = next(r for r in runs if flows.get(r["flow_id"]) == "score")
    shoot(f"{base}/runs/flow-run/{score['id']}?tab=Artifacts", IMAGES / "prefect-score-run.png")
    artifacts = api(base, "artifacts/filter", {"sort": "CREATED_DESC"})
    for key, name in (("score-flagged-beats", "flagged-beats"), ("daily-report", "daily-report")):
        artifact = next(a for a in artifacts if a["key"] == key)
        shoot(f"{base}/artifacts/artifact/{artifact['id']}", IMAGES / f"prefect-{name}.png")


if __name__ == "__main__":
    main()
