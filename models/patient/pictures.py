"""A flagged beat in context: a few seconds of strip, the beat and its reconstruction (PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ecgmon import recordings as rec


def plot_beat_in_context(
    recording: rec.Recording,
    sample: int,
    beat: np.ndarray,
    reconstruction: np.ndarray | None,
    path: Path,
    *,
    marks: dict[int, str] | None = None,
    title: str = "",
    seconds: float = 4.0,
    reconstruction_label: str = "reconstruction from the patient's baseline",
) -> Path:
    """Draw ``seconds`` of raw strip centred on R peak ``sample`` with the beat window shaded and
    ``marks`` (sample -> annotation symbol) over the R peaks, and below it the model input ``beat``
    (length,) with its ``reconstruction`` (length,; None: not drawn). Writes a PNG at ``path``;
    returns it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fs, half = recording.fs, int(seconds * recording.fs / 2)
    lo, hi = max(0, sample - half), min(recording.signal.size, sample + half)
    fig, (strip, shape) = plt.subplots(2, 1, figsize=(9, 5.5), height_ratios=[1.2, 1])
    t = (np.arange(lo, hi) - sample) / fs
    strip.plot(t, recording.signal[lo:hi], color="black", linewidth=0.8)
    pre, post = rec.beat_window(fs)
    strip.axvspan(-pre / fs, post / fs, color="tab:red", alpha=0.12, label="scored beat")
    top = float(recording.signal[lo:hi].max())
    for at, symbol in (marks or {}).items():
        if lo <= at < hi and symbol:
            colour = "tab:red" if at == sample else "tab:blue"
            strip.annotate(symbol, ((at - sample) / fs, top), color=colour, ha="center")
    strip.set(xlabel="seconds from the R peak", ylabel=f"{recording.lead} (mV)", title=title)
    strip.legend(loc="lower right", fontsize=8)
    shape.plot(beat, label="beat (model input)", color="black")
    if reconstruction is not None:
        shape.plot(reconstruction, label=reconstruction_label, color="tab:red")
    shape.set(xlabel="sample (resampled)", ylabel="z-normalised")
    shape.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def cut_beat(recording: rec.Recording, sample: int, length: int) -> np.ndarray:
    """The beat at R peak ``sample`` as the score path cuts it: cleaned, resampled to ``length``
    and z-normalised, (length,) float32."""
    cleaned = rec.clean_signal(recording.signal, recording.fs)
    peaks = np.array([sample], dtype=np.int64)
    return rec.normalise_beats(rec.cut_beats(cleaned, peaks, recording.fs, length))[0]
