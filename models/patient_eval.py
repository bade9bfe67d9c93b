"""Evaluation of per-patient baselines on annotated continuous recordings (MIT-BIH layout).

Label-free at decision time: beats come from the pipeline's own R-peak detector; the baseline is
the detected beats of the first N minutes that the annotations mark ``N`` (standing for a strip a
clinician confirmed); everything after the window is scored against it. Annotations are used
afterwards only to measure: a detected beat matches the nearest annotated beat within 150 ms;
normal = ``N``, abnormal = any other beat symbol, unmatched detections carry no label.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score, roc_auc_score

from ecgmon import recordings as rec
from ecgmon.errors import SourceNotFoundError
from models.patient import MIN_BASELINE_BEATS, fit_patient_baseline

log = logging.getLogger(__name__)

BEAT_LENGTH = 140
MATCH_TOLERANCE_S = 0.15
MIN_ABNORMAL = 5


def evaluate_folder(data_dir: Path, baseline_minutes: float, seed: int = 0, k: float = 3.0) -> dict:
    """Evaluate every record of ``data_dir`` (records/, annotations/); JSON-ready dict."""
    data_dir = Path(data_dir)
    headers = rec.list_records(data_dir / "records")
    if not headers:
        raise SourceNotFoundError(f"no WFDB records (*.hea) in {data_dir / 'records'}")
    per_record = {}
    for header in headers:
        per_record[header.stem] = evaluate_record(data_dir, header.stem, baseline_minutes, seed, k)
        log.info("record %s: %s", header.stem, per_record[header.stem])
    included = [name for name, row in per_record.items() if row["included"]]
    totals = {
        key: sum(row[key] for row in per_record.values())
        for key in ("n_detected", "n_annotated", "n_matched")
    }
    return {
        "baseline_minutes": baseline_minutes,
        "seed": seed,
        "detector": "vote",
        "threshold_rule": f"mean + {k:g} std of log(1 + baseline score), per patient",
        "per_record": per_record,
        "records_in_mean": included,
        "mean_auroc": float(np.mean([per_record[n]["auroc"] for n in included]))
        if included
        else float("nan"),
        "sensitivity": totals["n_matched"] / max(totals["n_annotated"], 1),
        "ppv": totals["n_matched"] / max(totals["n_detected"], 1),
    }


def evaluate_record(data_dir: Path, name: str, minutes: float, seed: int, k: float) -> dict:
    """Detect, build the baseline from the first ``minutes``, score the rest, measure."""
    recording = rec.read_recording(data_dir / "records" / name)
    fs = recording.fs
    peaks = rec.detect_r_peaks(recording.signal, fs)
    rr = rec.rr_features(peaks)
    keep = rec.complete_mask(peaks, recording.signal.size, fs)
    peaks, rr = peaks[keep], rr[keep]
    beats = rec.normalise_beats(
        rec.cut_beats(rec.clean_signal(recording.signal, fs), peaks, fs, BEAT_LENGTH)
    )
    labels, detection = _labels(data_dir, name, peaks, fs)
    window = minutes * 60.0 * fs
    in_baseline = (peaks < window) & (labels == 0)
    row = detection | {"lead": recording.lead, "n_baseline": int(in_baseline.sum())}
    after = (peaks >= window) & (labels >= 0)
    row |= {
        "n_normal": int((labels[after] == 0).sum()),
        "n_abnormal": int((labels[after] == 1).sum()),
    }
    if in_baseline.sum() < MIN_BASELINE_BEATS:
        return row | {
            "eligible": False,
            "included": False,
            "reason": f"{int(in_baseline.sum())} baseline beats < {MIN_BASELINE_BEATS}",
        }
    baseline = fit_patient_baseline(
        name,
        beats[in_baseline],
        rr[in_baseline],
        seed=seed,
        k=k,
        source=f"{name}: annotated N beats, first {minutes:g} min",
    )
    scores = baseline.score(beats[after], rr[after])
    metrics = _metrics(labels[after], scores, baseline.threshold.value)
    included = row["n_abnormal"] >= MIN_ABNORMAL
    reason = "" if included else f"{row['n_abnormal']} abnormal beats < {MIN_ABNORMAL}"
    return (
        row
        | metrics
        | {"eligible": True, "included": included, "reason": reason, "baseline": baseline.summary()}
    )


def _labels(data_dir: Path, name: str, peaks: np.ndarray, fs: float) -> tuple[np.ndarray, dict]:
    """Per detected peak: 0 normal, 1 abnormal, -1 unmatched; and detection figures."""
    notes = rec.read_annotations(data_dir / "annotations" / f"{name}annotations.txt").beats()
    matched = rec.match_beats(peaks, notes.samples, int(round(MATCH_TOLERANCE_S * fs)))
    labels = np.where(matched >= 0, (notes.symbols[np.maximum(matched, 0)] != "N").astype(int), -1)
    n_matched = int((matched >= 0).sum())
    return labels, {
        "n_detected": int(peaks.size),
        "n_annotated": int(notes.samples.size),
        "n_matched": n_matched,
        "sensitivity": n_matched / max(notes.samples.size, 1),
        "ppv": n_matched / max(peaks.size, 1),
    }


def _metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """AUROC, F1 (abnormal positive) and false-alarm rate (flagged share of normal beats)."""
    flags = scores > threshold
    normal = labels == 0
    both = 0 < labels.sum() < labels.size
    return {
        "auroc": float(roc_auc_score(labels, scores)) if both else None,
        "f1": float(f1_score(labels, flags, zero_division=0)),
        "false_alarm_rate": float(flags[normal].mean()) if normal.any() else None,
        "recall": float(flags[labels == 1].mean()) if (labels == 1).any() else None,
        "threshold": float(threshold),
    }
