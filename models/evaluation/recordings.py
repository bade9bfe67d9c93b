"""Evaluation of per-patient baselines on annotated continuous recordings (MIT-BIH layout).

Label-free at decision time: beats come from the pipeline's own R-peak detector; the baseline is
the first N minutes of detected beats, either ``labelled`` (those the annotations mark ``N``,
normal sinus beats, standing for a strip a clinician confirmed) or ``unlabelled`` (all of them,
as a clinic receives them, fitted with the 10 % most atypical trimmed). A labelled window with
fewer than MIN_BASELINE_BEATS ``N`` beats falls back to the window's dominant beats (the
unlabelled fit). Everything after the window is scored against the baseline.

Annotations (``NNN.atr`` beside the record, or an rdann text dump) are used afterwards only to
measure: a detected beat matches the nearest annotated beat within 150 ms. For AUROC and F1,
normal = ``N`` and abnormal = any other beat symbol (as since the first per-patient figures); the
false-alarm rate is the flagged share of the AAMI normal class (N L R e j). Unmatched detections
carry no label. AAMI EC57
VEB/SVEB statistics (models/evaluation/aami.py) compare each flagged beat's call (V or S) with its
annotation, gross over the records with a baseline, paced records excluded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score, roc_auc_score

from ecgmon import recordings as rec
from ecgmon.errors import SourceNotFoundError
from ecgmon.models.evaluation import aami
from ecgmon.models.patient.baseline import MIN_BASELINE_BEATS, PatientBaseline, fit_patient_baseline
from ecgmon.models.patient.pictures import plot_beat_in_context

log = logging.getLogger(__name__)

BEAT_LENGTH = 140
MIN_ABNORMAL = 5
BASELINE_KINDS = ("labelled", "unlabelled")


def evaluate_folder(
    data_dir: Path,
    baseline_minutes: float,
    seed: int = 0,
    k: float = 3.0,
    report_dir: Path | None = None,
    detector: str = "vote",
    baseline: str = "labelled",
) -> dict:
    """Evaluate every record of ``data_dir`` (records/ with NNN.atr or annotations/); JSON-ready.

    With ``report_dir``, the highest-scoring flagged beats of each record are drawn there (PNG).
    ``detector`` is a method of ``ecgmon.recordings.detect_r_peaks`` (vote, xqrs, neurokit);
    ``baseline`` one of BASELINE_KINDS; ``k`` the mean + k std rule's k, used only by it.
    """
    data_dir = Path(data_dir)
    headers = rec.list_records(data_dir / "records")
    if not headers:
        raise SourceNotFoundError(f"no WFDB records (*.hea) in {data_dir / 'records'}")
    per_record = {}
    for header in headers:
        scored = score_record(data_dir, header.stem, baseline_minutes, seed, k, detector, baseline)
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
    fars = {
        n: r["false_alarm_rate"]
        for n, r in per_record.items()
        if r.get("false_alarm_rate") is not None
    }
    return {
        "baseline_minutes": baseline_minutes,
        "baseline": baseline,
        "seed": seed,
        "detector": detector,
        "threshold_rule": _rule_text(per_record),
        "per_record": per_record,
        "aami": aami_summary(per_record),
        "false_alarm_mean": float(np.mean(list(fars.values()))) if fars else None,
        "false_alarm_worst": _worst(fars),
        "records_in_mean": included,
        "mean_auroc": float(np.mean([per_record[n]["auroc"] for n in included]))
        if included
        else None,
        "sensitivity": totals["n_matched"] / max(totals["n_annotated"], 1),
        "ppv": totals["n_matched"] / max(totals["n_detected"], 1),
    }


def _worst(fars: dict[str, float]) -> dict | None:
    if not fars:
        return None
    name = max(fars, key=lambda n: fars[n])
    return {"record": name, "rate": fars[name]}


def aami_summary(per_record: dict[str, dict]) -> dict:
    """Gross AAMI VEB/SVEB figures over the records with a baseline, paced records excluded."""
    used = {n: r["aami"] for n, r in per_record.items() if r.get("aami") and not r["paced"]}
    excluded = {
        n: "paced record" if r["paced"] else r["reason"]
        for n, r in per_record.items()
        if n not in used
    }
    return aami.gross(used) | {"records": sorted(used), "excluded": excluded}


def _rule_text(per_record: dict[str, dict]) -> str:
    rules = {json_rule(r["baseline"]["threshold"]) for r in per_record.values() if "baseline" in r}
    return "; ".join(sorted(rules)) + " (per patient, on cross-fitted baseline scores)"


def json_rule(threshold: dict) -> str:
    """``tail alpha=0.01``-style text of a stored threshold's method and parameters."""
    params = " ".join(f"{k}={v:g}" for k, v in threshold["params"].items())
    return f"{threshold['method']} {params}".strip()


@dataclass(frozen=True)
class ScoredRecord:
    """One record as the pipeline saw it: detected beats (n,), their labels for measuring only
    (0 normal, 1 abnormal, -1 unmatched), symbols ("" when unmatched), AAMI classes (``O`` when
    unmatched), the calls N/V/S, baseline and after-window masks, the patient's baseline (None
    when too few beats), scores (n,) (NaN in the window) and the annotated beats after the window
    the detector missed, per AAMI class."""

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
    classes: np.ndarray
    calls: np.ndarray
    missed: dict[str, int]
    baseline_kind: str


def score_record(
    data_dir: Path,
    name: str,
    minutes: float,
    seed: int,
    k: float,
    detector: str = "vote",
    kind: str = "labelled",
) -> ScoredRecord:
    """Detect beats, fit the baseline on the first ``minutes`` (``kind`` in BASELINE_KINDS),
    score and call every later beat."""
    recording = rec.read_recording(data_dir / "records" / name)
    fs = recording.fs
    cleaned = rec.clean_signal(recording.signal, fs)
    peaks = rec.detect_r_peaks(recording.signal, fs, detector, cleaned=cleaned)
    rr = rec.rr_features(peaks)
    keep = rec.complete_mask(peaks, recording.signal.size, fs)
    peaks, rr = peaks[keep], rr[keep]
    beats = rec.normalise_beats(rec.cut_beats(cleaned, peaks, fs, BEAT_LENGTH))
    window = minutes * 60.0 * fs
    labels, symbols, detection, missed = _labels(data_dir, name, peaks, fs, window)
    after = peaks >= window
    in_baseline, source, curated = _baseline_beats(peaks < window, labels, kind, name, minutes)
    baseline, scores = None, np.full(peaks.size, np.nan)
    calls = np.full(peaks.size, "N")
    if in_baseline.sum() >= MIN_BASELINE_BEATS:
        baseline = fit_patient_baseline(
            name,
            beats[in_baseline],
            rr[in_baseline],
            seed=seed,
            k=k,
            source=source,
            curated=curated,
        )
        scores[after] = baseline.score(beats[after], rr[after])
        calls[after] = baseline.classify(beats[after], rr[after])
    classes = aami.aami_classes(symbols)
    used = kind if curated or kind == "unlabelled" else "dominant"
    return ScoredRecord(
        recording, peaks, beats, rr, labels, symbols, in_baseline, after, baseline, scores,
        detection, classes, calls, missed, used,
    )  # fmt: skip


def _baseline_beats(
    window: np.ndarray, labels: np.ndarray, kind: str, name: str, minutes: float
) -> tuple[np.ndarray, str, bool]:
    """Which beats (n,) make the baseline, a description, and whether the strip is curated."""
    if kind not in BASELINE_KINDS:
        raise ValueError(f"unknown baseline {kind!r}; choose {' or '.join(BASELINE_KINDS)}")
    labelled = window & (labels == 0)
    if kind == "labelled" and labelled.sum() >= MIN_BASELINE_BEATS:
        return labelled, f"{name}: annotated N beats, first {minutes:g} min", True
    why = "" if kind == "unlabelled" else f" ({int(labelled.sum())} annotated N beats)"
    return window, f"{name}: dominant beats of the first {minutes:g} min{why}, trimmed", False


def evaluate_record(
    data_dir: Path, name: str, minutes: float, seed: int, k: float, kind: str = "labelled"
) -> dict:
    """Per-record figures of one record (see ``measure``)."""
    return measure(score_record(data_dir, name, minutes, seed, k, kind=kind))


def measure(scored: ScoredRecord) -> dict:
    """Detection, baseline size, AUROC/F1/false alarms and AAMI counts of the beats after the
    window. A record enters the mean AUROC with a baseline of the kind asked for (not the
    dominant-beat fallback), at least MIN_ABNORMAL abnormal beats after it, and no paced beats."""
    measured = scored.after & (scored.labels >= 0)
    labels = scored.labels[measured]
    row = scored.detection | {
        "lead": scored.recording.lead,
        "paced": aami.is_paced(scored.recording.name),
        "n_baseline": int(scored.in_baseline.sum()),
        "n_normal": int((labels == 0).sum()),
        "n_abnormal": int((labels == 1).sum()),
    }
    if scored.baseline is None:
        reason = f"{row['n_baseline']} baseline beats < {MIN_BASELINE_BEATS}"
        return row | {"eligible": False, "included": False, "reason": reason}
    metrics = _metrics(labels, scored.scores[measured], scored.baseline.threshold.value)
    counts = aami.ectopic_counts(
        scored.classes[scored.after], scored.calls[scored.after], scored.missed
    )
    metrics["aami"] = aami.with_rates(counts)
    normal_class = scored.after & (scored.classes == "N")
    flagged = np.nan_to_num(scored.scores, nan=-np.inf) > scored.baseline.threshold.value
    metrics["false_alarm_rate"] = (
        float(flagged[normal_class].mean()) if normal_class.any() else None
    )
    metrics["n_normal_class"] = int(normal_class.sum())
    reasons = [
        "paced record" if row["paced"] else "",
        "dominant-beat baseline" if scored.baseline_kind == "dominant" else "",
        f"{row['n_abnormal']} abnormal beats < {MIN_ABNORMAL}"
        if row["n_abnormal"] < MIN_ABNORMAL
        else "",
        "no N beat after the window (AUROC undefined)" if metrics["auroc"] is None else "",
    ]
    reason = "; ".join(r for r in reasons if r)
    included = not reason
    summary = scored.baseline.summary() | {"kind": scored.baseline_kind}
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
    data_dir: Path, name: str, peaks: np.ndarray, fs: float, window: float
) -> tuple[np.ndarray, np.ndarray, dict, dict[str, int]]:
    """Per detected peak: 0 normal (``N``), 1 abnormal, -1 unmatched; its symbol; detection
    figures; annotated beats at or after ``window`` (samples) not detected, per AAMI class."""
    found = rec.find_annotations(data_dir / "records" / f"{name}.hea")
    if found is None:
        paths = ", ".join(str(p) for p in rec.annotation_paths(data_dir / "records" / name))
        raise SourceNotFoundError(f"record {name}: no annotations (looked for {paths})")
    notes = found.beats()
    matched = rec.match_beats(peaks, notes.samples, int(round(rec.MATCH_TOLERANCE_S * fs)))
    symbols = np.where(matched >= 0, notes.symbols[np.maximum(matched, 0)], "")
    labels = np.where(matched >= 0, (symbols != "N").astype(int), -1)
    n_matched = int((matched >= 0).sum())
    undetected = np.ones(notes.samples.size, dtype=bool)
    undetected[matched[matched >= 0]] = False
    missed_classes = aami.aami_classes(notes.symbols[undetected & (notes.samples >= window)])
    missed = {c: int((missed_classes == c).sum()) for c in "NSVFQ"}
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
        missed,
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
