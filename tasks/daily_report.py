"""The daily report: what the period's tables hold, as one self-contained HTML page and a Prefect
markdown artifact.

Counts are SQL aggregates (:func:`ecgmon.storage.batches.score_counts`); drift is exact PSI and KS
of each UTC day's losses against the judging model's normal reference, streamed from the
database in chunks (:class:`ecgmon.drift.DriftAccumulator`), overall and per patient. The loss
histogram of the last day draws at most :data:`HISTOGRAM_BEATS` losses.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
from sqlalchemy.engine import Engine

from ecgmon.drift import DriftAccumulator
from ecgmon.models.registry.history import version_events
from ecgmon.models.registry.versions import normal_reference_losses
from ecgmon.report import figures
from ecgmon.report.page import Picture, Section, Table
from ecgmon.report.period import Period
from ecgmon.storage.batches import period_losses, score_counts, worst_flagged_beats
from ecgmon.storage.quarantine import rejection_counts
from ecgmon.storage.runs import runs_between
from ecgmon.tasks.flagged_beats import draw_beats

HISTOGRAM_BEATS = 200_000
TOP_BEATS = 6
PATIENT_LINES = 12  # patients drawn in the per-patient drift picture (highest PSI first)


@dataclass
class DayDrift:
    """One UTC day's losses counted against the reference of each judging model version."""

    overall: dict[int, DriftAccumulator] = field(default_factory=dict)
    patients: dict[tuple[str, int], DriftAccumulator] = field(default_factory=dict)


def _accumulator(store: dict, key: object, reference: np.ndarray) -> DriftAccumulator:
    if key not in store:
        store[key] = DriftAccumulator(reference)
    return store[key]


def day_drift(
    engine: Engine, period: Period, day: date, references: dict[int, np.ndarray]
) -> tuple[DayDrift, np.ndarray]:
    """The day's drift counts and its losses (n,), at most HISTOGRAM_BEATS of them;
    ``references`` caches each model version's normal reference losses."""
    drift, kept, n_kept = DayDrift(), [], 0
    for frame in period_losses(engine, *period.bounds(day)):
        for version, part in frame.groupby("model_version"):
            if int(version) not in references:
                references[int(version)] = normal_reference_losses(engine, int(version))
            ref = references[int(version)]
            _accumulator(drift.overall, int(version), ref).add(part["loss"].to_numpy())
            for patient, rows in part.dropna(subset=["patient_id"]).groupby("patient_id"):
                key = (str(patient), int(version))
                _accumulator(drift.patients, key, ref).add(rows["loss"].to_numpy())
        if n_kept < HISTOGRAM_BEATS:
            kept.append(frame["loss"].to_numpy()[: HISTOGRAM_BEATS - n_kept])
            n_kept += kept[-1].size
    return drift, np.concatenate(kept) if kept else np.empty(0)


def _main(accumulators: dict) -> DriftAccumulator | None:
    """The accumulator that counted the most losses (the day's main judge)."""
    return max(accumulators.values(), key=lambda a: a.n, default=None)


def _psi_ks(acc: DriftAccumulator | None) -> tuple[float, float]:
    if acc is None or acc.n == 0:
        return float("nan"), float("nan")
    report = acc.report()
    return float(report["psi"]), float(report["ks"])


def judge_changes(days: list[date], per_day: list[dict], events: list[dict]) -> dict[int, str]:
    """{day index: text} where the main population judge (model, threshold) changed from the day
    before, or the registry promoted a model or made a threshold version that day."""
    changes: dict[int, list[str]] = {}
    previous = None
    for index, judge in enumerate(per_day):
        if judge and previous and judge != previous:
            changes.setdefault(index, []).append(f"m{judge[0]} t{judge[1]}")
        previous = judge or previous
    for event in events:
        day = date.fromisoformat(str(event["at"])[:10])
        if day in days:
            changes.setdefault(days.index(day), []).append(event["label"])
    return {index: ", ".join(dict.fromkeys(texts)) for index, texts in changes.items()}


def daily_section(engine: Engine, period: Period, drifts: list[DayDrift]) -> Section:
    """Beats and anomaly rate per day with the judge's changes; the per-day table."""
    rows, judges, beats, flagged = [], [], [], []
    for day, drift in zip(period.days, drifts, strict=True):
        groups = score_counts(engine, *period.bounds(day), ("model_version", "threshold_version"))
        n, f = sum(g["beats"] for g in groups), sum(int(g["flagged"] or 0) for g in groups)
        main = max(groups, key=lambda g: g["beats"], default=None)
        judges.append((main["model_version"], main["threshold_version"]) if main else None)
        psi, ks = _psi_ks(_main(drift.overall))
        versions = ", ".join(f"m{g['model_version']} t{g['threshold_version']}" for g in groups)
        rows.append([day.isoformat(), n, f, _rate(f, n), versions or "-", psi, ks])
        beats.append(n)
        flagged.append(f)
    changes = judge_changes(period.days, judges, version_events(engine, period.start, period.end))
    picture = Picture(
        figures.daily_figure(period.days, beats, flagged, changes),
        "beats scored and anomaly rate per day",
        "Dashed lines: the model (m) or threshold (t) version judging most beats changed, or the "
        "registry promoted a model or made a threshold version that day.",
    )
    columns = ["day (UTC)", "beats", "flagged", "rate", "judges (model, threshold)", "PSI", "KS"]
    return Section(
        "Beats scored and anomaly rate", pictures=[picture], tables=[Table(columns, rows)]
    )


def _rate(flagged: int, beats: int) -> str:
    return f"{flagged / beats:.2%}" if beats else "-"


def loss_section(engine: Engine, period: Period, losses: np.ndarray) -> Section:
    """The last day's loss distribution against its population thresholds."""
    day = period.last
    groups = score_counts(engine, *period.bounds(day), ("threshold_version", "baseline"))
    lines = {
        f"threshold t{g['threshold_version']} = {g['threshold']:.4g}": float(g["threshold"])
        for g in groups
        if g["baseline"] == "population"
    }
    title = f"Loss distribution on {day} ({losses.size} beats)"
    notes = []
    if losses.size >= HISTOGRAM_BEATS:
        notes.append(f"The first {HISTOGRAM_BEATS} beats of the day are drawn.")
    if any(g["baseline"] != "population" for g in groups):
        notes.append("Beats judged by a patient's own model have that patient's threshold.")
    picture = Picture(figures.loss_histogram(losses, lines, title), f"loss distribution {day}")
    return Section(f"Loss distribution on {day}", notes=notes, pictures=[picture])


def drift_section(period: Period, drifts: list[DayDrift]) -> Section:
    """PSI and KS per day, and per patient where the beats name patients."""
    overall = [_psi_ks(_main(d.overall)) for d in drifts]
    per_patient: dict[str, list[float]] = {}
    for index, drift in enumerate(drifts):
        for patient in {p for p, _ in drift.patients}:
            accs = {k: a for k, a in drift.patients.items() if k[0] == patient}
            series = per_patient.setdefault(patient, [float("nan")] * len(drifts))
            series[index] = _psi_ks(_main(accs))[0]
    top = sorted(per_patient, key=lambda p: -np.nan_to_num(np.nanmax(per_patient[p]), nan=-1.0))
    shown = {p: per_patient[p] for p in top[:PATIENT_LINES]}
    psi, ks = [o[0] for o in overall], [o[1] for o in overall]
    notes = [
        "Against the held-out normal losses of the model that judged the beats; PSI > 0.25 is a "
        "large shift, KS is the largest gap between the two distributions (0..1)."
    ]
    if len(per_patient) > PATIENT_LINES:
        notes.append(f"Per patient: the {PATIENT_LINES} of {len(per_patient)} with the top PSI.")
    picture = Picture(figures.drift_figure(period.days, psi, ks, shown), "drift over time")
    return Section("Drift of the loss", notes=notes, pictures=[picture])


def patient_section(engine: Engine, period: Period) -> Section:
    """Beats, flagged and rate per patient and judge over the period."""
    groups = score_counts(engine, period.start, period.end, ("patient_id", "baseline"))
    rows = [
        [
            g["patient_id"] or "(unknown)",
            "population" if g["baseline"] == "population" else f"own model ({g['baseline']})",
            g["beats"],
            int(g["flagged"] or 0),
            _rate(int(g["flagged"] or 0), g["beats"]),
        ]
        for g in sorted(groups, key=lambda g: -(int(g["flagged"] or 0) / max(g["beats"], 1)))
    ]
    table = Table(["patient", "judge", "beats", "flagged", "rate"], rows)
    return Section("Patients", notes=[] if rows else ["No beats in the period."], tables=[table])


def beats_section(engine: Engine, period: Period, out_dir: Path, store: str) -> Section:
    """The period's worst flagged beats: figures, and pictures of beat and reconstruction (and
    the strip around it for recordings) by the models of the model ``store``."""
    beats = worst_flagged_beats(engine, period.start, period.end, TOP_BEATS)
    drawn = draw_beats(engine, beats, out_dir, store) if beats else []
    pictures = [
        Picture(p.path.read_bytes(), f"flagged beat {p.beat['record_id']}", _beat_caption(p.beat))
        for p in drawn
    ]
    rows = [
        [b["record_id"], b["patient_id"], str(b["recorded_at"])[:19], b["loss"], b["threshold"]]
        + [round(float(b["score_ratio"]), 3), b["severity"], b["baseline"]]
        for b in beats
    ]
    columns = ["record", "patient", "recorded at", "loss", "threshold", "ratio", "severity", "by"]
    notes = [] if beats else ["No beat was flagged in the period."]
    if beats and len(drawn) < len(beats):
        notes.append("Beats of database-table sources (or of files since removed) are not drawn.")
    return Section("Top flagged beats", notes, pictures, [Table(columns, rows)] if rows else [])


def _beat_caption(beat: dict) -> str:
    return (
        f"{beat['record_id']} (patient {beat['patient_id']}) at {str(beat['recorded_at'])[:19]}: "
        f"loss {beat['loss']:.4g} / threshold {beat['threshold']:.4g}"
    )


def operations_section(engine: Engine, period: Period) -> Section:
    """Quarantined rows by reason, and every run of the period that did not complete."""
    rejected = rejection_counts(engine, period.start, period.operations_end)
    runs = runs_between(engine, period.start, period.operations_end)
    statuses = Counter(str(r["status"]) for r in runs)
    since = f"since {period.start:%Y-%m-%d} 00:00 UTC until the report was made"
    notes = [
        f"Runs started and rows quarantined {since}. Runs by status: "
        + (", ".join(f"{s} {n}" for s, n in sorted(statuses.items())) or "none")
    ]
    pictures, tables = [], []
    if rejected:
        reasons = Counter()
        for row in rejected:
            reasons[row["reason"]] += int(row["rows"])
        pictures.append(Picture(figures.rejections_figure(dict(reasons)), "quarantined rows"))
        rows = [
            [r["reason"], r["source"], int(r["rows"]), int(r["pending"] or 0)] for r in rejected
        ]
        tables.append(Table(["reason", "source", "rows", "not replayed"], rows))
    else:
        notes.append("No row was quarantined.")
    bad = [r for r in runs if r["status"] != "completed"]
    if bad:
        rows = [
            [r["run_id"], r["flow"], r["status"], str(r["started_at"])[:19], r["error"] or ""]
            for r in bad
        ]
        tables.append(Table(["run", "flow", "status", "started (UTC)", "error"], rows))
    else:
        notes.append("Every run completed.")
    return Section("Quarantine and runs", notes, pictures, tables)
