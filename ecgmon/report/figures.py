"""The report's pictures, drawn with matplotlib's object API (no global pyplot state) as PNG bytes.

Every function takes plain figures (lists, numpy arrays) and returns the PNG; nothing here reads
storage.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date

import numpy as np
from matplotlib.figure import Figure

DPI = 96
PSI_LARGE = 0.25  # rule of thumb: above it the loss distribution moved a lot (ecgmon.drift)


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def daily_figure(
    days: Sequence[date], beats: Sequence[int], flagged: Sequence[int], changes: dict[int, str]
) -> bytes:
    """Beats scored per day (bars) and the anomaly rate (line, right axis); ``changes``: {day
    index: what changed that day (model or threshold version)} drawn as labelled dashed lines."""
    fig = Figure(figsize=(9, 3.6))
    ax = fig.add_subplot()
    x = np.arange(len(days))
    ax.bar(x, beats, color="tab:blue", alpha=0.6, label="beats scored")
    ax.set(ylabel="beats scored", xticks=x, title="Beats scored and anomaly rate per day (UTC)")
    ax.set_xticklabels([d.isoformat() for d in days], rotation=30, ha="right", fontsize=8)
    rate = ax.twinx()
    share = [f / b if b else np.nan for f, b in zip(flagged, beats, strict=True)]
    rate.plot(x, np.asarray(share) * 100, color="tab:red", marker="o", label="anomaly rate")
    rate.set(ylabel="anomaly rate (%)", ylim=(0, max(5.0, np.nanmax([*share, 0]) * 120)))
    for index, text in changes.items():
        ax.axvline(index - 0.5, color="black", linestyle="--", linewidth=1)
        ax.annotate(text, (index - 0.45, ax.get_ylim()[1] * 0.92), fontsize=8)
    lines = ax.get_legend_handles_labels()[0] + rate.get_legend_handles_labels()[0]
    ax.legend(lines, ["beats scored", "anomaly rate"], loc="upper left", fontsize=8)
    return png(fig)


def loss_histogram(losses: np.ndarray, thresholds: dict[str, float], title: str) -> bytes:
    """Histogram of losses (n,) with each threshold ({label: value}) as a vertical line."""
    fig = Figure(figsize=(9, 3.4))
    ax = fig.add_subplot()
    values = np.asarray(losses, dtype=np.float64)
    values = values[np.isfinite(values)]
    top = max([float(np.quantile(values, 0.995)) if values.size else 1.0, *thresholds.values()])
    ax.hist(np.clip(values, None, top * 1.05), bins=60, color="tab:blue", alpha=0.7)
    colours = iter(["tab:red", "tab:orange", "tab:purple", "tab:green"])
    for label, value in thresholds.items():
        ax.axvline(value, color=next(colours, "black"), linewidth=2, label=label)
    ax.set(xlabel="reconstruction loss", ylabel="beats", title=title)
    if thresholds:
        ax.legend(fontsize=8)
    return png(fig)


def drift_figure(
    days: Sequence[date], psi: Sequence[float], ks: Sequence[float], patients: dict[str, list]
) -> bytes:
    """PSI and KS of the loss per day against the model's normal reference (top) and, when
    patients are known, each patient's PSI per day (bottom; NaN: no beats that day)."""
    rows = 2 if patients else 1
    fig = Figure(figsize=(9, 3.2 * rows))
    x, labels = np.arange(len(days)), [d.isoformat() for d in days]
    ax = fig.add_subplot(rows, 1, 1)
    ax.plot(x, psi, marker="o", label="PSI")
    ax.plot(x, ks, marker="s", label="KS")
    ax.axhline(PSI_LARGE, color="tab:red", linestyle=":", label=f"PSI {PSI_LARGE} (large shift)")
    ax.set(title="Drift of the loss against the normal reference", xticks=x)
    ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
    ax.legend(fontsize=8)
    if patients:
        per = fig.add_subplot(rows, 1, 2)
        for patient, values in sorted(patients.items()):
            per.plot(x, values, marker=".", label=patient)
        per.axhline(PSI_LARGE, color="tab:red", linestyle=":")
        per.set(title="PSI per patient", xticks=x)
        per.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
        if len(patients) <= 12:
            per.legend(fontsize=7, ncol=4)
    return png(fig)


def beat_figure(
    beat: np.ndarray, reconstruction: np.ndarray | None, title: str, label: str
) -> bytes:
    """A beat (length,) as the model saw it with its reconstruction (length,; None: not drawn)."""
    fig = Figure(figsize=(6, 2.8))
    ax = fig.add_subplot()
    ax.plot(beat, color="black", label="beat")
    if reconstruction is not None:
        ax.plot(reconstruction, color="tab:red", label=label)
    ax.set(xlabel="sample", title=title)
    ax.title.set_fontsize(9)
    ax.legend(fontsize=8)
    return png(fig)


def rejections_figure(reasons: dict[str, int]) -> bytes:
    """Quarantined rows per reason (horizontal bars)."""
    fig = Figure(figsize=(9, 0.6 + 0.4 * max(len(reasons), 1)))
    ax = fig.add_subplot()
    names = list(reasons)
    ax.barh(names, [reasons[n] for n in names], color="tab:orange")
    ax.set(xlabel="rows quarantined", title="Quarantined rows by reason")
    return png(fig)


def learning_curve(history: dict[str, list[float]]) -> bytes:
    """Loss per epoch of each curve in a Keras history ({"loss": [...], "val_loss": [...]})."""
    fig = Figure(figsize=(7, 3.2))
    ax = fig.add_subplot()
    for name, values in history.items():
        if values:
            ax.plot(np.arange(1, len(values) + 1), values, marker=".", label=name)
    ax.set(xlabel="epoch", ylabel="loss (scaled beats)", title="Learning curves", yscale="log")
    ax.legend(fontsize=8)
    return png(fig)
