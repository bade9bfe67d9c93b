"""Per-patient baselines from a strip of a patient's WFDB recording: a model and thresholds.

The strip is a time range of the record (by default its first minutes) or a list of beats a
clinician confirmed (R-peak sample indices, ecgmon.sources.beat_lists). Its beats are found and cut
exactly as the score path does. Two things are stored:

- the patient's own model (ecgmon.models.patient.baseline: principal subspace of the beat
  shapes + RR context, its threshold by cross-fitting), registered in the model registry linked to
  its patient and to the population champion (ecgmon.models.registry.patients); it judges that
  patient's beats from then on;
- the population autoencoder's threshold recalibrated on the strip's losses
  (ecgmon.models.patient.thresholds), which judges the patient when no patient model applies (a
  strip of fewer than 100 beats, or beats without RR context).

A time range is trimmed of outliers unless ``trim=False`` (the strip was confirmed); a list of
beats is used whole.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy.engine import Engine

from ecgmon.errors import EcgmonError, SourceNotFoundError
from ecgmon.models.autoencoder.detector import fingerprint
from ecgmon.models.patient.baseline import (
    MIN_BASELINE_BEATS,
    POST_RR_WEIGHT,
    RR_SCALE_FLOOR,
    fit_patient_baseline,
)
from ecgmon.models.patient.thresholds import patient_threshold
from ecgmon.models.registry.patients import (
    active_patient_models,
    active_patient_thresholds,
    patient_baseline_name,
    patient_model_name,
    register_patient_model,
)
from ecgmon.models.registry.versions import (
    active_threshold,
    add_threshold,
    champion_version,
    get_version,
    load_detector,
)
from ecgmon.recordings import (
    OVERLAP_S,
    POST_S,
    PRE_S,
    Recording,
    list_records,
    read_recording,
    record_size,
    recording_beats,
)
from ecgmon.settings import Settings
from ecgmon.sources.beat_lists import match_listed_beats, read_beat_list
from ecgmon.storage.engine import create_db_engine

log = logging.getLogger(__name__)
PATIENT_MODEL_PARAMS = {"variance": 0.99, "rule": "tail", "alpha": 0.01, "trim_quantile": 0.9}
"""Fitting parameters of a patient model (those evaluate-recordings measured)."""


@dataclass(frozen=True)
class Strip:
    """The baseline strip: a time range [start, end) (seconds from the record's start or UTC
    datetimes), or ``beats_file`` listing confirmed beats (ecgmon.sources.beat_lists)."""

    start: float | datetime = 0.0
    end: float | datetime = 600.0
    beats_file: Path | None = None


@dataclass(frozen=True)
class PatientBaselineResult:
    """What ``calibrate_patient`` stored, and what judges the patient's beats from now on."""

    patient_id: str
    model_version: int
    threshold_version: int
    threshold: float
    population_threshold: float
    baseline: str
    strip: str
    start_s: float
    end_s: float
    n_beats: int
    n_kept: int
    n_unmatched: int
    patient_model_version: int | None
    patient_threshold_version: int | None
    patient_threshold: float | None
    patient_model_beats: int | None
    note: str

    def as_dict(self) -> dict:
        """Plain values for printing as JSON."""
        return asdict(self)


@dataclass(frozen=True)
class StripBeats:
    """The strip's beats as the score path cuts them: ``signals`` (n, length) z-normalised,
    ``rr`` (n, 2), how many listed beats matched none, a label and the span in seconds."""

    recording: Recording
    signals: np.ndarray
    rr: np.ndarray
    n_unmatched: int
    label: str
    span: tuple[float, float]

    @property
    def origin(self) -> str:
        """What ``thresholds.origin`` says about this strip."""
        return f"patient baseline {self.recording.name}:{self.recording.lead} {self.label}"


def calibrate_patient(
    settings: Settings,
    folder: Path,
    patient_id: str,
    strip: Strip,
    model_version: int | None = None,
    trim: bool = True,
    patient_model: bool = True,
) -> PatientBaselineResult:
    """Fit and store ``patient_id``'s baseline (a record of the WFDB ``folder``) from ``strip``.

    ``trim=False`` when a clinician confirmed a time range (a beat list is never trimmed);
    ``patient_model=False`` stores only the autoencoder's per-patient threshold.
    """
    engine = create_db_engine(settings.database_url_plain)
    version = model_version if model_version is not None else champion_version(engine)
    population = active_threshold(engine, version)
    recording = _read(folder, patient_id, strip)
    listed = (  # a bad list fails before the model loads and the beats are detected
        read_beat_list(strip.beats_file, recording.name, recording.lead)
        if strip.beats_file is not None
        else None
    )
    detector = load_detector(engine, version, settings.model_store)
    beats = strip_beats(recording, detector.input_length, strip, listed)
    trim = trim and listed is None
    try:
        threshold = patient_threshold(
            detector.losses(beats.signals), population.method, population.params, trim
        )
    except ValueError as err:
        raise EcgmonError(f"patient {patient_id}, {beats.label}: {err}") from err
    threshold_version = add_threshold(
        engine, version, threshold, beats.origin, patient_id=patient_id
    )
    log.info("patient %s: AE threshold %.5f (model %d)", patient_id, threshold.value, version)
    own, note = None, "patient model not requested"
    if patient_model:
        own, note = _patient_model(engine, settings, beats, version, trim)
    return PatientBaselineResult(
        patient_id,
        version,
        threshold_version,
        threshold.value,
        population.value,
        patient_model_name(patient_id, own[0])
        if own
        else patient_baseline_name(patient_id, threshold_version),
        beats.label,
        *beats.span,
        int(beats.signals.shape[0]),
        int(threshold.loss_stats["n_kept"]),
        beats.n_unmatched,
        *(own if own else (None, None, None, None)),
        note,
    )


def strip_beats(
    recording: Recording, length: int, strip: Strip, listed: np.ndarray | None
) -> StripBeats:
    """The beats of the strip: the ``listed`` R peaks (m,) matched to the detected beats, or
    the detected beats of the strip's time range."""
    beats = recording_beats(recording, length, growing=False)
    chosen, n_unmatched, label, span = _choose(recording, beats.samples, strip, listed)
    return StripBeats(recording, beats.signals[chosen], beats.rr[chosen], n_unmatched, label, span)


def _patient_model(
    engine: Engine, settings: Settings, beats: StripBeats, parent: int, trim: bool
) -> tuple[tuple[int, int, float, int] | None, str]:
    """Fit and register the patient's model when the strip is long enough; (what was
    registered, or None, and a note saying why not)."""
    n = beats.signals.shape[0]
    if n < MIN_BASELINE_BEATS:
        return None, f"no patient model: {n} strip beats < {MIN_BASELINE_BEATS}"
    return _fit_and_register(engine, settings, beats, parent, trim), ""


def _fit_and_register(
    engine: Engine, settings: Settings, beats: StripBeats, parent: int, trim: bool
) -> tuple[int, int, float, int]:
    """Fit the patient's model on the strip and register it; (version, threshold version,
    threshold, beats it was fitted on)."""
    started = time.perf_counter()
    recording, signals = beats.recording, beats.signals
    params = PATIENT_MODEL_PARAMS | {"seed": settings.seed}
    baseline = fit_patient_baseline(
        recording.name, signals, beats.rr, source=beats.origin, curated=not trim, **params
    )
    hyperparameters = params | {
        "lead": recording.lead,
        "curated": not trim,
        "components": int(baseline.shape.basis.shape[0]),
        "post_rr_weight": POST_RR_WEIGHT,
        "rr_scale_floor": RR_SCALE_FLOOR,
    }
    preprocessing = {
        "kind": "beat_znorm",
        "window_s": [PRE_S, POST_S],
        "fs": recording.fs,
        "cleaning": "neurokit",
    }
    version, threshold_version = register_patient_model(
        engine,
        baseline,
        settings.model_store,
        parent_version=parent,
        input_length=signals.shape[1],
        hyperparameters=hyperparameters,
        preprocessing=preprocessing,
        train_fingerprint=fingerprint(signals),
        origin=beats.origin,
        seconds=time.perf_counter() - started,
    )
    log.info("patient %s: model version %d", recording.name, version)
    return version, threshold_version, baseline.threshold.value, baseline.n_beats


def _read(folder: Path, patient_id: str, strip: Strip) -> Recording:
    """The record, only up to OVERLAP_S past the strip when it ends at a known offset (a day-long
    recording is not read whole for a 5-minute strip)."""
    header = Path(folder) / f"{patient_id}.hea"
    if not header.is_file():
        raise SourceNotFoundError(f"no record {patient_id} in {folder} (no {header.name})")
    if strip.beats_file is None and isinstance(strip.end, int | float):
        total, fs = record_size(header)
        return read_recording(header, sampto=min(total, int((strip.end + OVERLAP_S) * fs)))
    return read_recording(header)


def auto_baselines(settings: Settings, folder: Path, model_version: int) -> list[str]:
    """Give every record (patient) of a WFDB ``folder`` with no baseline yet (no own model, no
    own threshold) and at least ``settings.auto_baseline_minutes`` of signal an unlabelled
    baseline from those first minutes (trimmed); returns the patients that got one. A patient
    whose strip cannot make a baseline is logged and tried again on the next run."""
    minutes = settings.auto_baseline_minutes
    engine = create_db_engine(settings.database_url_plain)
    length = int(get_version(engine, model_version)["input_length"])
    have = set(active_patient_models(engine, length, settings.model_store)) | set(
        active_patient_thresholds(engine, model_version)
    )
    made = []
    for header in list_records(folder):
        total, fs = record_size(header)
        if not minutes or header.stem in have or total < minutes * 60.0 * fs:
            continue
        try:
            strip = Strip(0.0, minutes * 60.0)
            calibrate_patient(settings, folder, header.stem, strip, model_version, trim=True)
        except EcgmonError as err:
            log.warning("patient %s: no automatic baseline yet: %s", header.stem, err)
            continue
        made.append(header.stem)
    return made


@task(name="automatic-baselines", cache_policy=NO_CACHE)
def auto_baselines_task(settings: Settings, folder: Path, model_version: int) -> list[str]:
    """Baselines for the new patients of a WFDB folder from their first minutes (unlabelled)."""
    made = auto_baselines(settings, folder, model_version)
    if made:
        get_run_logger().info("automatic baselines for %s", ", ".join(made))
    return made


def _choose(
    recording: Recording, samples: np.ndarray, strip: Strip, listed: np.ndarray | None
) -> tuple[np.ndarray, int, str, tuple[float, float]]:
    """Indices into the detected beats ``samples`` (n,) of the strip (the ``listed`` R peaks
    (m,) of its beats file, or its time range), how many listed beats matched none, a label
    naming the strip, and its span in seconds from the record's start."""
    fs = recording.fs
    if listed is not None:
        where = f"beat list {strip.beats_file}"
        chosen, unmatched = match_listed_beats(samples, listed, fs, where)
        label = f"{chosen.size} listed beats ({Path(strip.beats_file).name})"
        return chosen, unmatched, label, (samples[chosen[0]] / fs, samples[chosen[-1]] / fs)
    start_s, end_s = _offset(strip.start, recording.start), _offset(strip.end, recording.start)
    if not end_s > start_s >= 0:
        raise EcgmonError(f"the baseline strip {start_s:g}..{end_s:g} s is empty or negative")
    seconds = samples / fs
    chosen = np.flatnonzero((seconds >= start_s) & (seconds < end_s))
    return chosen, 0, f"{start_s:g}..{end_s:g} s", (start_s, end_s)


def _offset(moment: float | datetime, record_start: datetime) -> float:
    """Seconds from the record's start: ``moment`` itself, or a datetime (naive = UTC) minus it."""
    if isinstance(moment, datetime):
        aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
        return (aware - record_start).total_seconds()
    return float(moment)
