"""A model version's detector whose Keras model loads only when a beat needs it.

A WFDB run whose patients all have their own (numpy) models judges no beat by the population
autoencoder, yet the judge carries the champion: its input length cuts the beats and its
out-of-fold losses are the drift reference. :class:`DeferredDetector` gives both from the
artifact's metadata and imports TensorFlow and Keras (about 7 CPU seconds, docs/performance.md)
only on the first ``losses`` call. The artifact is read, confined to the store and checked
against its sha256 when the judge is made, as an eager load would: a changed model is refused
before any beat is scored, and the bytes loaded later are the bytes checked.
"""

from __future__ import annotations

import json
import threading

import numpy as np
from sqlalchemy.engine import Engine

from ecgmon.models.autoencoder.detector import METADATA_FILE, AutoencoderDetector
from ecgmon.models.registry.store import load_from_files
from ecgmon.models.registry.versions import verified_artifact_files


class DeferredDetector:
    """Stands in for a version's ``AutoencoderDetector`` until its model is needed.

    ``input_length`` and ``calibration_losses`` (n,) float64 are read from the verified
    metadata; ``losses`` loads the detector once (thread-safe) and delegates to it.
    """

    def __init__(self, files: dict[str, bytes]) -> None:
        meta = json.loads(files[METADATA_FILE])
        self.input_length = int(meta["input_length"])
        self.calibration_losses = np.asarray(meta["calibration_losses"], dtype=np.float64)
        self._files = files
        self._lock = threading.Lock()
        self._detector: AutoencoderDetector | None = None

    @property
    def loaded(self) -> bool:
        """Whether the Keras model has been loaded."""
        return self._detector is not None

    def load(self) -> AutoencoderDetector:
        """The detector, loaded from the verified files on the first call."""
        with self._lock:
            if self._detector is None:
                self._detector = load_from_files(AutoencoderDetector.load, self._files)
                self._files = {}
            return self._detector

    def losses(self, signals: np.ndarray) -> np.ndarray:
        """Per-beat anomaly score (n,) float64 of beats (n, input_length): the detector's."""
        return self.load().losses(signals)


def deferred_detector(engine: Engine, version: int, store: str) -> DeferredDetector:
    """A version's detector, its artifact confined to ``store`` and checked against its sha256
    now, its model loaded on first use."""
    return DeferredDetector(verified_artifact_files(engine, version, store))
