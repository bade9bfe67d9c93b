"""Input scaling fitted on training beats and stored as JSON with the model version."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class MinMaxScaler:
    """Global min-max scaling, as the tutorial does: ``(x - min) / (max - min)``.

    One minimum and one maximum over all samples of all training beats, so the shape of a beat
    is kept. Beats outside the training range map outside [0, 1]; that is what makes them stand out.
    """

    minimum: float
    maximum: float
    kind: str = "global_minmax"

    @classmethod
    def fit(cls, signals: np.ndarray) -> MinMaxScaler:
        """Fit on training beats of shape (n, length), any amplitude unit."""
        if signals.size == 0:
            raise ValueError("cannot fit a scaler on zero beats")
        low, high = float(np.min(signals)), float(np.max(signals))
        if not high > low:
            high = low + 1.0
        return cls(minimum=low, maximum=high)

    def transform(self, signals: np.ndarray) -> np.ndarray:
        """Scaled copy, float32, same shape (n, length)."""
        return self.transform_into(signals, np.empty(np.shape(signals), dtype=np.float32))

    def transform_into(self, signals: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Scale ``signals`` into ``out`` (float32, same shape) without temporaries; returns out."""
        np.subtract(signals, np.float32(self.minimum), out=out, dtype=np.float32)
        out *= np.float32(1.0 / (self.maximum - self.minimum))
        return out

    def to_dict(self) -> dict[str, float | str]:
        """JSON-ready form stored in ``model_versions.preprocessing`` and the artifact metadata."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> MinMaxScaler:
        """Inverse of :meth:`to_dict`."""
        if data.get("kind", "global_minmax") != "global_minmax":
            raise ValueError(f"unknown preprocessing kind {data.get('kind')!r}")
        return cls(minimum=float(data["minimum"]), maximum=float(data["maximum"]))
