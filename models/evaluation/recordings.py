"""Evaluation of per-patient baselines on annotated continuous recordings (MIT-BIH layout).

Label-free at decision time: beats come from the pipeline's own R-peak detector; the baseline is
the detected beats of the first N minutes that the annotations mark ``N`` (standing for a strip a
clinician confirmed); everything after the window is scored against it. Annotations are used
afterwards only to measure: a detected beat matches the nearest annotated beat within 150 ms;
normal = ``N``, abnormal = any other beat symbol, unmatched detections carry no label.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score, roc_auc_score

from ecgmon import recordings as rec
from ecgmon.errors import SourceNotFoundError
from ecgmon.models.patient.baseline import MIN_BASELINE_BEATS, PatientBaseline, fit_patient_baseline
from ecgmon.models.patient.pictures import plot_beat_in_context

log = logging.getLogger(__name__)

BEAT_LENGTH = 140
MIN_ABNORMAL = 5


def evaluate_folder(
    data_dir: Path,
    baseline_minutes: float,
    seed: int = 0,
    k: float = 3.0,
    report_dir: Path | None = None,
    detector: str = "vote",
) -> dict:
    """Evaluate every record of ``data_dir`` (records/, annotations/); JSON-ready dict.

    With ``report_dir``, the highest-scoring flagged beats of each record are drawn there (PNG).
    ``detector`` is a method of ``ecgmon.recordings.detect_r_peaks`` (vote, xqrs, neurokit).
    """
    data_dir = Path(data_dir)
    headers = rec.list_records(data_dir / "records")
    if not headers:
        raise SourceNotFoundError(f"no WFDB records (*.hea) in {data_dir / 'records'}")
    per_record = {}
    for header in headers:
        scored = score_record(data_dir, header.stem, baseline_minutes, seed, k, detector)
        per_record[header.stem] = measure(scored)
        if report_dir is not None and scored.baseline is not None:
            per_record[header.stem]["pictures"] = [
                str(p) for p in write_flagged_beats(scored, Path(report_dir))
            ]
        log.info("record %s: %s", header.stem, per_record[header.stem])
    included = [name for name, row in per_record.items() if row["included"]]
    totals = {
        key: sum(row[key] for row in per_record.values())
        for key in ("n_detected", "n_annotated", "n_matched")
    }
    return {
        "baseline_minutes": baseline_minutes,
        "seed": seed,
        "detector": detector,
        "threshold_rule": f"mean + {k:g} std of log(1 + baseline score), per patient",
        "per_record": per_record,
        "records_in_mean": included,
        "mean_auroc": float(np.mean([per_record[n]["auroc"] for n in included]))
        if included
        else None,
        "sensitivity": totals["n_matched"] / max(totals["n_annotated"], 1),
        "ppv": totals["n_matched"] / max(totals["n_detected"], 1),
    }


@dataclass(frozen=True)
class ScoredRecord:
    """One record as the pipeline saw it: detected beats (n,), their labels for measuring only
    (0 normal, 1 abnormal, -1 unmatched), symbols ("" when unmatched), baseline and after-window
    masks, the patient's baseline (None when too few beats) and scores (n,) (NaN in the window)."""

    recording: rec.Recording
    peaks: np.ndarray
    beats: np.ndarray
    rr: np.ndarray
    labels: np.ndarray
    symbols: np.ndarray
    in_baseline: np.ndarray
    after: np.ndarray
    baseline: PatientBaseline | None
    scores: np.ndarray
    detection: dict


def score_record(
    data_dir: Path, name: str, minutes: float, seed: int, k: float, detector: str = "vote"
) -> ScoredRecord:
    """Detect beats, fit the baseline on the first ``minutes``, score every later beat."""
    recording = rec.read_recording(data_dir / "records" / name)
    fs = recording.fs
    peaks = rec.detect_r_peaks(recording.signal, fs, detector)
    rr = rec.rr_features(peaks)
    keep = rec.complete_mask(peaks, recording.signal.size, fs)
    peaks, rr = peaks[keep], rr[keep]
    cleaned = rec.clean_signal(recording.signal, fs)
    beats = rec.normalise_beats(rec.cut_beats(cleaned, peaks, fs, BEAT_LENGTH))
    labels, symbols, detection = _labels(data_dir, name, peaks, fs)
    window = minutes * 60.0 * fs
    in_baseline, after = (peaks < window) & (labels == 0), peaks >= window
    baseline, scores = None, np.full(peaks.size, np.nan)
    if in_baseline.sum() >= MIN_BASELINE_BEATS:
        source = f"{name}: annotated N beats, first {minutes:g} min"
        baseline = fit_patient_baseline(
            name, beats[in_baseline], rr[in_baseline], seed=seed, k=k, source=source
        )
        scores[after] = baseline.score(beats[after], rr[after])
    return ScoredRecord(
        recording,
        peaks,
        beats,
        rr,
        labels,
        symbols,
        in_baseline,
        after,
        baseline,
        scores,
        detection,
    )


def evaluate_record(data_dir: Path, name: str, minutes: float, seed: int, k: float) -> dict:
    """Per-record figures of one record (see ``measure``)."""
    return measure(score_record(data_dir, name, minutes, seed, k))


def measure(scored: ScoredRecord) -> dict:
    """Detection, baseline size, and AUROC/F1/false alarms of the beats after the window."""
    measured = scored.after & (scored.labels >= 0)
    labels = scored.labels[measured]
    row = scored.detection | {
        "lead": scored.recording.lead,
        "n_baseline": int(scored.in_baseline.sum()),
        "n_normal": int((labels == 0).sum()),
        "n_abnormal": int((labels == 1).sum()),
    }
    if scored.baseline is None:
        reason = f"{row['n_baseline']} baseline beats < {MIN_BASELINE_BEATS}"
        return row | {"eligible": False, "included": False, "reason": reason}
    metrics = _metrics(labels, scored.scores[measured], scored.baseline.threshold.value)
    included = row["n_abnormal"] >= MIN_ABNORMAL
    reason = "" if included else f"{row['n_abnormal']} abnormal beats < {MIN_ABNORMAL}"
    summary = scored.baseline.summary()
    return (
        row
        | metrics
        | {"eligible": True, "included": included, "reason": reason, "baseline": summary}
    )


def write_flagged_beats(scored: ScoredRecord, folder: Path, n: int = 2) -> list[Path]:
    """PNG pictures of the ``n`` highest-scoring flagged beats of a scored record."""
    if scored.baseline is None:
        return []
    threshold = scored.baseline.threshold.value
    flagged = np.flatnonzero(np.nan_to_num(scored.scores, nan=-np.inf) > threshold)
    top = flagged[np.argsort(scored.scores[flagged])[::-1][:n]]
    marks = {int(p): str(s) for p, s in zip(scored.peaks, scored.symbols, strict=True)}
    paths = []
    for i in top:
        sample, name = int(scored.peaks[i]), scored.recording.name
        title = (
            f"record {name}, R peak at sample {sample} ({sample / scored.recording.fs:.1f} s): "
            f"score {scored.scores[i]:.1f} > threshold {threshold:.1f}; "
            f"annotation {scored.symbols[i] or 'none'}"
        )
        reconstruction = scored.baseline.shape.reconstruct(scored.beats[i : i + 1])[0]
        paths.append(
            plot_beat_in_context(
                scored.recording,
                sample,
                scored.beats[i],
                reconstruction,
                Path(folder) / f"{name}_{sample}.png",
                marks=marks,
                title=title,
            )
        )
    log.info("record %s: %d flagged-beat pictures in %s", scored.recording.name, len(paths), folder)
    return paths


def _labels(
    data_dir: Path, name: str, peaks: np.ndarray, fs: float
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Per detected peak: 0 normal, 1 abnormal, -1 unmatched; its symbol; detection figures."""
    notes = rec.read_annotations(data_dir / "annotations" / f"{name}annotations.txt").beats()
    matched = rec.match_beats(peaks, notes.samples, int(round(rec.MATCH_TOLERANCE_S * fs)))
    labels = np.where(matched >= 0, (notes.symbols[np.maximum(matched, 0)] != "N").astype(int), -1)
    n_matched = int((matched >= 0).sum())
    symbols = np.where(matched >= 0, notes.symbols[np.maximum(matched, 0)], "")
    return (
        labels,
        symbols,
        {
            "n_detected": int(peaks.size),
            "n_annotated": int(notes.samples.size),
            "n_matched": n_matched,
            "sensitivity": n_matched / max(notes.samples.size, 1),
            "ppv": n_matched / max(peaks.size, 1),
        },
    )


def _metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """AUROC, F1 (abnormal positive) and false-alarm rate (flagged share of normal beats)."""
    return flag_metrics(labels, scores, scores > threshold) | {"threshold": float(threshold)}


def flag_metrics(labels: np.ndarray, scores: np.ndarray, flags: np.ndarray) -> dict:
    """AUROC of scores (n,); F1, false-alarm rate and recall of boolean flags (n,); labels (n,)
    0 normal, 1 abnormal. AUROC is None unless both classes occur."""
    flags = np.asarray(flags, dtype=bool)
    normal, abnormal = labels == 0, labels == 1
    return {
        "auroc": float(roc_auc_score(labels, scores)) if normal.any() and abnormal.any() else None,
        "f1": float(f1_score(labels, flags, zero_division=0)),
        "false_alarm_rate": float(flags[normal].mean()) if normal.any() else None,
        "recall": float(flags[abnormal].mean()) if abnormal.any() else None,
    }
