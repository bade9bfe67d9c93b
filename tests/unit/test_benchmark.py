"""The throughput benchmark runs small in the suite, so it cannot rot."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_benchmark_runs_small_and_prints_one_json_line(tmp_path):
    url = f"sqlite:///{tmp_path / 'bench.db'}"
    env = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, str(ROOT / "benchmarks" / "score_throughput.py")]
    command += ["--rows", "20000", "--database-url", url, "--json", "--batch-size", "5000"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["rows"] == 20_000 and result["n_scored"] == 20_000 and result["n_rejected"] == 0
    assert result["database"] == "sqlite" and result["batch_size"] == 5000
    for key in ("pipeline_rows_per_s", "naive_rows_per_s", "limit_rows_per_s"):
        assert result[key] > 0, key
    assert result["speedup_vs_naive"] > 0 and result["fraction_of_limit"] > 0
    assert 100 < result["peak_rss_mb"] < 4000
    assert result["noop_run_seconds"] >= 0
