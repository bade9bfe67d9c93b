"""`ecgmon evaluate-recordings --report`: per-patient baselines on an annotated recording, and the
pictures of its top flagged beats (a synthetic record, so the answer is known)."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np

from ecgmon.cli.main import main
from tests.wfdb_records import FS, write_record

N_BEATS = 185  # one every 0.8 s from 0.5 s; the record ends 0.8 s after the last (148.5 s)
PREMATURE = (125, 135, 145, 155, 165, 175)  # 0.3 s early, all after the 90 s baseline


def write_annotated_record(data: Path, name: str) -> np.ndarray:
    """records/NAME (narrow 'QRS' spikes with noise) and annotations/NAMEannotations.txt (N, A)
    in the MIT-BIH layout; returns the R-peak samples of the premature beats."""
    is_early = np.isin(np.arange(N_BEATS), PREMATURE)
    peaks = np.round((0.5 + 0.8 * np.arange(N_BEATS) - 0.3 * is_early) * FS).astype(np.int64)
    t = np.arange(int(FS * (0.5 + 0.8 * N_BEATS)))
    spikes = sum(np.exp(-0.5 * ((t - p) / 3.0) ** 2) for p in peaks)
    write_record(data / "records", name, spikes + np.random.default_rng(3).normal(0, 0.02, t.size))
    lines = ["      Time   Sample #  Type  Sub Chan  Num\tAux"]
    for peak, early in zip(peaks, is_early, strict=True):
        lines.append(f"    0:00.000 {peak:8d}     {'A' if early else 'N'}    0    0    0")
    (data / "annotations").mkdir()
    (data / "annotations" / f"{name}annotations.txt").write_text("\n".join(lines) + "\n")
    return peaks[is_early]


def test_premature_beats_are_found_and_drawn(tmp_path: Path) -> None:
    data, report = tmp_path / "data", tmp_path / "report"
    premature = write_annotated_record(data, "rec1")
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(
            ["evaluate-recordings", "--data", str(data), "--baseline-minutes", "1.5"]
            + ["--report", str(report), "--json"]
        )
    assert code == 0
    result = json.loads(out.getvalue().strip().splitlines()[-1])
    row = result["per_record"]["rec1"]
    assert result["records_in_mean"] == ["rec1"]
    n_baseline = 112  # R peaks before 90 s
    assert (row["n_baseline"], row["n_abnormal"]) == (n_baseline, len(PREMATURE))
    assert row["n_normal"] == N_BEATS - n_baseline - len(PREMATURE)
    assert (row["auroc"], row["f1"], row["false_alarm_rate"]) == (1.0, 1.0, 0.0)
    pictures = [Path(p) for p in row["pictures"]]
    assert len(pictures) == 2 and all(p.parent == report and p.is_file() for p in pictures)
    drawn = [int(p.stem.split("_")[1]) for p in pictures]
    assert all(np.abs(premature - sample).min() <= 0.15 * FS for sample in drawn)
