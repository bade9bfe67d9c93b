"""Scoring valid beats against a model version and its active threshold (pure compute).

Three judges, from the most specific: a patient's own model (``PatientModel``: shape subspace +
RR context, its own threshold) for beats of that patient that carry RR context from the lead it
was fitted on; else the population autoencoder with the patient's own threshold; else the
population autoencoder with the population threshold. ``ScoredBeats.baseline`` names the judge.
A recording's beat (RR context) of a patient with no baseline at all is judged provisionally
(``PROVISIONAL``): its loss is stored, it is not flagged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

from ecgmon.models.registry.patients import PatientModel, patient_baseline_name
from ecgmon.records import ScoredBeats, ValidBeats

RR_COLUMNS = ("rr_before", "rr_after")
"""``ValidBeats.extra`` columns a patient model needs (WFDB sources carry them)."""
PROVISIONAL = "population:provisional"
"""``scores.baseline`` of a recording's beat judged by the population autoencoder because its
patient has no baseline yet: the verdict is kept (loss, threshold) but not flagged, so it pages
no one (an autoencoder trained on other patients flags most beats of a new patient)."""


class PopulationDetector(Protocol):
    """What a judge uses of the population autoencoder: an ``AutoencoderDetector``, or a
    ``DeferredDetector`` (ecgmon.models.registry.deferred) that loads Keras on its first
    ``losses`` call."""

    input_length: int
    calibration_losses: np.ndarray

    def losses(self, signals: np.ndarray) -> np.ndarray:
        """Per-beat loss (n,) float64 of beats (n, input_length)."""
        ...


@dataclass(frozen=True)
class Judge:
    """What judges a beat: a model version's detector and one threshold version.

    ``patients`` maps a patient id to its own active threshold of this model (threshold_version,
    value); ``patient_models`` maps a patient id to its own active model. The most specific one
    judges that patient's beats (see the module docstring).
    """

    model_version: int
    detector: PopulationDetector
    threshold_version: int
    threshold: float
    baseline: str = "population"
    patients: Mapping[str, tuple[int, float]] = field(default_factory=dict)
    patient_models: Mapping[str, PatientModel] = field(default_factory=dict)


def score_beats(judge: Judge, beats: ValidBeats) -> ScoredBeats:
    """Per-beat loss (n,) and flag (loss > threshold) for valid beats (n, input_length).

    ``loss`` is the autoencoder's loss, or a patient model's combined score for the beats it
    judged; ``threshold``, ``threshold_version`` and ``baseline`` (n,) say what judged each beat.
    The autoencoder sees only the beats it judges: a batch of none leaves a deferred one unloaded.
    """
    n = len(beats)
    own = patient_model_masks(judge, beats)
    by_autoencoder = ~np.logical_or.reduce([*own.values(), np.zeros(n, dtype=bool)])
    loss = np.zeros(n, dtype=np.float64)
    if n and by_autoencoder.all():  # the usual case: no batch-sized copy of the samples
        loss = judge.detector.losses(beats.signals)
    elif by_autoencoder.any():
        loss[by_autoencoder] = judge.detector.losses(beats.signals[by_autoencoder])
    threshold = np.full(n, judge.threshold, dtype=np.float64)
    version = np.full(n, judge.threshold_version, dtype=np.int64)
    baseline = np.full(n, judge.baseline, dtype=object)
    if judge.patients and n:
        patients = beats.patient_ids()
        for patient in pd.unique(patients):
            if patient in judge.patients:
                mine = (patients == patient) & by_autoencoder
                version[mine], threshold[mine] = judge.patients[patient]
                baseline[mine] = patient_baseline_name(patient, judge.patients[patient][0])
    if n and all(c in beats.extra for c in RR_COLUMNS):  # a recording: provisional verdicts
        known = [*judge.patient_models, *judge.patients]
        baseline[by_autoencoder & ~np.isin(beats.patient_ids(), known)] = PROVISIONAL
    rr = rr_context(beats) if own else None
    for patient, mine in own.items():
        model = judge.patient_models[patient]
        loss[mine] = model.baseline.score(beats.signals[mine], rr[mine])
        version[mine], threshold[mine], baseline[mine] = (
            model.threshold_version,
            model.threshold,
            model.name,
        )
    return ScoredBeats(
        beats=beats,
        loss=loss,
        is_anomaly=(loss > threshold) & (baseline != PROVISIONAL),
        threshold=threshold,
        threshold_version=version,
        baseline=baseline,
        by_autoencoder=None if by_autoencoder.all() else by_autoencoder,
    )


def patient_model_masks(judge: Judge, beats: ValidBeats) -> dict[str, np.ndarray]:
    """{patient_id: boolean mask (n,)} of the beats each patient model judges: the patient's
    beats with RR context, from the lead the model was fitted on (any lead when unrecorded)."""
    if not judge.patient_models or not len(beats) or not all(c in beats.extra for c in RR_COLUMNS):
        return {}
    lead = beats.extra.get("lead")
    masks = {}
    patients = beats.patient_ids()
    for patient in pd.unique(patients):
        model = judge.patient_models.get(patient)
        if model is None:
            continue
        mine = patients == patient
        if model.lead is not None and lead is not None:
            mine &= lead == model.lead
        if mine.any():
            masks[patient] = mine
    return masks


def autoencoder_losses(judge: Judge, scored: ScoredBeats) -> np.ndarray:
    """Losses (m,) of the beats the population autoencoder judged: the only ones on the scale of
    the model's reference losses (drift); patient-model scores are left out."""
    mask = scored.by_autoencoder  # kept by score_beats: no second pass over the patients
    return scored.loss if mask is None else scored.loss[mask]


def rr_context(beats: ValidBeats) -> np.ndarray:
    """RR before/after each beat relative to the running median RR, (n, 2) float64."""
    return np.column_stack([np.asarray(beats.extra[c], dtype=np.float64) for c in RR_COLUMNS])
