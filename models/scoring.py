"""Scoring valid beats against a model version and its active threshold (pure compute)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecgmon.records import ScoredBeats, ValidBeats
from models.detector import AutoencoderDetector


@dataclass(frozen=True)
class Judge:
    """What judges a beat: a model version's detector and one threshold version."""

    model_version: int
    detector: AutoencoderDetector
    threshold_version: int
    threshold: float
    baseline: str = "population"


def score_beats(judge: Judge, beats: ValidBeats) -> ScoredBeats:
    """Per-beat loss (n,) and flag (loss > threshold) for valid beats (n, input_length)."""
    n = len(beats)
    loss = judge.detector.losses(beats.signals) if n else np.empty(0)
    threshold = np.full(n, judge.threshold, dtype=np.float64)
    return ScoredBeats(
        beats=beats,
        loss=loss,
        is_anomaly=loss > threshold,
        threshold=threshold,
        threshold_version=np.full(n, judge.threshold_version, dtype=np.int64),
        baseline=np.full(n, judge.baseline, dtype=object),
    )
