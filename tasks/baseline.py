"""Per-patient baseline thresholds from a strip of a patient's WFDB recording.

The strip is a time range of the record (by default its first minutes): its beats are found and
cut exactly as the score path does, scored by the model, and the model's population threshold
rule is applied to those losses alone (models.patient_thresholds). The new threshold becomes the
patient's active one; later score runs judge that patient's beats by it.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from ecgmon.db import create_db_engine
from ecgmon.errors import EcgmonError, SourceNotFoundError
from ecgmon.recordings import read_recording, recording_beats
from ecgmon.settings import Settings
from models.patient_thresholds import patient_baseline_name, patient_threshold
from models.registry import active_threshold, add_threshold, champion_version, load_detector

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PatientBaselineResult:
    """What ``calibrate_patient`` stored: the threshold and the strip it came from."""

    patient_id: str
    model_version: int
    threshold_version: int
    threshold: float
    population_threshold: float
    baseline: str
    start_s: float
    end_s: float
    n_beats: int
    n_kept: int

    def as_dict(self) -> dict:
        """Plain values for printing as JSON."""
        return asdict(self)


def calibrate_patient(
    settings: Settings,
    folder: Path,
    patient_id: str,
    start: float | datetime,
    end: float | datetime,
    model_version: int | None = None,
    trim: bool = True,
) -> PatientBaselineResult:
    """Store a threshold for ``patient_id`` (a record of the WFDB ``folder``) from the beats whose
    R peak lies in [``start``, ``end``): seconds from the record's start, or UTC datetimes.
    ``trim=False`` when a clinician confirmed the strip (no outlier trimming)."""
    engine = create_db_engine(settings.database_url_plain)
    version = model_version if model_version is not None else champion_version(engine)
    population = active_threshold(engine, version)
    detector = load_detector(engine, version)
    header = Path(folder) / f"{patient_id}.hea"
    if not header.is_file():
        raise SourceNotFoundError(f"no record {patient_id} in {folder} (no {header.name})")
    recording = read_recording(header)
    start_s, end_s = _offset(start, recording.start), _offset(end, recording.start)
    if not end_s > start_s >= 0:
        raise EcgmonError(f"the baseline strip {start_s:g}..{end_s:g} s is empty or negative")
    beats = recording_beats(recording, detector.input_length, growing=False)
    seconds = beats.samples / recording.fs
    strip = (seconds >= start_s) & (seconds < end_s)
    losses = detector.losses(beats.signals[strip])
    try:
        threshold = patient_threshold(losses, population.method, population.params, trim)
    except ValueError as err:
        raise EcgmonError(f"patient {patient_id}, strip {start_s:g}..{end_s:g} s: {err}") from err
    origin = f"patient baseline {recording.name}:{recording.lead} {start_s:g}..{end_s:g} s"
    threshold_version = add_threshold(engine, version, threshold, origin, patient_id=patient_id)
    log.info("patient %s: threshold %.5f (version %d)", patient_id, threshold.value, version)
    return PatientBaselineResult(
        patient_id,
        version,
        threshold_version,
        threshold.value,
        population.value,
        patient_baseline_name(patient_id, threshold_version),
        start_s,
        end_s,
        int(strip.sum()),
        int(threshold.loss_stats["n_kept"]),
    )


def _offset(moment: float | datetime, record_start: datetime) -> float:
    """Seconds from the record's start: ``moment`` itself, or a datetime (naive = UTC) minus it."""
    if isinstance(moment, datetime):
        aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
        return (aware - record_start).total_seconds()
    return float(moment)
