"""Labelled beats cut from annotated MIT-BIH recordings (records/ and annotations/ folders).

Protocol (``ecgmon evaluate --split mitbih``): every record of the folder is read (lead 0), its
expert-annotated beats are cut around the annotated R peak (0.25 s before to 0.45 s after, 252
samples at 360 Hz: no resampling) and z-normalised per beat, as ECG5000's beats are. Labels
follow the AAMI grouping: ``N L R e j`` are normal, every other beat symbol (supraventricular,
ventricular, fusion, paced, unclassifiable) is abnormal. The beats of each record's first
``TRAIN_MINUTES`` minutes form the training split, the rest of the record the test split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ecgmon import recordings as rec
from ecgmon.errors import SourceNotFoundError
from ecgmon.sources.datasets import LabelledBeats

AAMI_NORMAL = ("N", "L", "R", "e", "j")
TRAIN_MINUTES = 5.0
NORMAL_LABEL, ABNORMAL_LABEL = 1.0, 0.0


def annotated_beats(header: Path, annotations: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One record's beats (n, L) float32 at its own rate, labels (n,) and R-peak samples (n,)."""
    recording = rec.read_recording(header)
    marks = rec.read_annotations(annotations).beats()
    keep = rec.complete_mask(marks.samples, recording.signal.size, recording.fs)
    peaks, symbols = marks.samples[keep], marks.symbols[keep]
    pre, post = rec.beat_window(recording.fs)
    cleaned = rec.clean_signal(recording.signal, recording.fs)
    signals = rec.normalise_beats(rec.cut_beats(cleaned, peaks, recording.fs, pre + post))
    labels = np.where(np.isin(symbols, AAMI_NORMAL), NORMAL_LABEL, ABNORMAL_LABEL)
    return signals, labels, peaks / recording.fs


def read_mitbih_split(
    data: Path, train_minutes: float = TRAIN_MINUTES
) -> tuple[LabelledBeats, LabelledBeats]:
    """(train, test) beats of every record of ``data``: each record's first minutes train."""
    headers = rec.list_records(Path(data) / "records")
    if not headers:
        raise SourceNotFoundError(f"no WFDB records (*.hea) in {Path(data) / 'records'}")
    parts: dict[str, list[LabelledBeats]] = {"train": [], "test": []}
    for header in headers:
        notes = Path(data) / "annotations" / f"{header.stem}annotations.txt"
        signals, labels, seconds = annotated_beats(header, notes)
        early = seconds < train_minutes * 60.0
        parts["train"].append(LabelledBeats(signals[early], labels[early], header.stem))
        parts["test"].append(LabelledBeats(signals[~early], labels[~early], header.stem))
    train, test = (_concat(parts[name], f"{data} ({name})") for name in ("train", "test"))
    return train, test


def _concat(items: list[LabelledBeats], source: str) -> LabelledBeats:
    return LabelledBeats(
        np.concatenate([b.signals for b in items]),
        np.concatenate([b.labels for b in items]),
        source,
    )
