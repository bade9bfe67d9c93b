"""Scoring valid beats against a model version and its active threshold (pure compute)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ecgmon.records import ScoredBeats, ValidBeats
from models.detector import AutoencoderDetector
from models.patient_thresholds import patient_baseline_name


@dataclass(frozen=True)
class Judge:
    """What judges a beat: a model version's detector and one threshold version.

    ``patients`` maps a patient id to its own active threshold (threshold_version, value); that
    patient's beats are judged by it instead of the population threshold.
    """

    model_version: int
    detector: AutoencoderDetector
    threshold_version: int
    threshold: float
    baseline: str = "population"
    patients: Mapping[str, tuple[int, float]] = field(default_factory=dict)


def score_beats(judge: Judge, beats: ValidBeats) -> ScoredBeats:
    """Per-beat loss (n,) and flag (loss > threshold) for valid beats (n, input_length)."""
    n = len(beats)
    loss = judge.detector.losses(beats.signals) if n else np.empty(0)
    threshold = np.full(n, judge.threshold, dtype=np.float64)
    version = np.full(n, judge.threshold_version, dtype=np.int64)
    baseline = np.full(n, judge.baseline, dtype=object)
    if judge.patients and n:
        for patient in pd.unique(beats.patient_id):
            if patient in judge.patients:
                mine = beats.patient_id == patient
                version[mine], threshold[mine] = judge.patients[patient]
                baseline[mine] = patient_baseline_name(patient, judge.patients[patient][0])
    return ScoredBeats(
        beats=beats,
        loss=loss,
        is_anomaly=loss > threshold,
        threshold=threshold,
        threshold_version=version,
        baseline=baseline,
    )
