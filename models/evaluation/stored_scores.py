"""What the production score path gave on annotated WFDB recordings, read back from ``scores``.

After ``ecgmon baseline`` and ``ecgmon score --source DIR`` on annotated records (MIT-BIH layout:
``records/`` + ``annotations/NNNannotations.txt``), each scored beat (``record_id`` =
``record:lead:sample``) is matched to the nearest annotated beat within 150 ms, as
``evaluate-recordings`` does (normal = ``N``, abnormal = any other beat symbol), and the stored
``loss`` and ``is_anomaly`` are measured per record for the beats after the baseline window.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from ecgmon import recordings as rec
from ecgmon.models.evaluation.recordings import MIN_ABNORMAL, flag_metrics
from ecgmon.storage.batches import source_scores

if TYPE_CHECKING:
    import wfdb


def read_scores(engine: Engine, source: str | None = None) -> pd.DataFrame:
    """Scored beats of WFDB sources (``source``: one source key), one row per beat, with
    columns record, sample, loss, is_anomaly, threshold, baseline."""
    frame = source_scores(engine, "wfdb:", source)
    parts = frame["record_id"].str.rsplit(":", n=2, expand=True)
    return frame.assign(record=parts[0], sample=parts[2].astype(np.int64))


def evaluate_scores(frame: pd.DataFrame, data_dir: Path, after_minutes: float) -> dict:
    """Per-record AUROC, F1, false-alarm rate and recall of the stored scores and flags for the
    beats after the first ``after_minutes``; JSON-ready. ``frame`` as ``read_scores`` returns."""
    per_record = {}
    for record, rows in sorted(frame.groupby("record")):
        fs = float(_header(data_dir, record).fs)
        notes = rec.read_annotations(data_dir / "annotations" / f"{record}annotations.txt").beats()
        rows = rows.sort_values("sample")
        samples = rows["sample"].to_numpy()
        matched = rec.match_beats(samples, notes.samples, int(round(rec.MATCH_TOLERANCE_S * fs)))
        after = (samples >= after_minutes * 60 * fs) & (matched >= 0)
        labels = (notes.symbols[matched[after]] != "N").astype(int)
        per_record[record] = {
            "judged_by": sorted(rows["baseline"].unique().tolist()),
            "n_scored": int(len(rows)),
        } | measure_flags(
            labels, rows["loss"].to_numpy()[after], rows["is_anomaly"].to_numpy()[after]
        )
    included = [r for r, row in per_record.items() if row["included"]]
    return {
        "after_minutes": after_minutes,
        "per_record": per_record,
        "records_in_mean": included,
        "mean_auroc": float(np.mean([per_record[r]["auroc"] for r in included]))
        if included
        else None,
        "mean_false_alarm_rate": float(
            np.mean([per_record[r]["false_alarm_rate"] for r in included])
        )
        if included
        else None,
    }


def measure_flags(labels: np.ndarray, scores: np.ndarray, flags: np.ndarray) -> dict:
    """AUROC of scores (n,), F1/recall/false-alarm rate of the boolean flags (n,) against labels
    (n,) 0 normal, 1 abnormal; a record enters the mean with >= MIN_ABNORMAL abnormal beats."""
    normal, abnormal = labels == 0, labels == 1
    return {
        "n_normal": int(normal.sum()),
        "n_abnormal": int(abnormal.sum()),
        **flag_metrics(labels, scores, flags),
        "included": bool(normal.any() and abnormal.sum() >= MIN_ABNORMAL),
    }


def _header(data_dir: Path, record: str) -> wfdb.Record | wfdb.MultiRecord:
    import wfdb

    return wfdb.rdheader(str(data_dir / "records" / record))
