"""Evaluation report: PNG pictures and a markdown summary that embeds them.

Drawn with matplotlib's object API (``Figure`` + Agg canvas), never pyplot, so it holds no global
state and needs no display. Input is what ``ecgmon.models.evaluation.labelled.evaluate`` returns:
the summary dict (means over seeds) and the list of per-seed runs (test losses, truth, threshold,
history, example reconstructions). Pictures are drawn from the first run; the ROC shows every run.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

log = logging.getLogger(__name__)

NORMAL_COLOUR, ANOMALY_COLOUR, THRESHOLD_COLOUR = "tab:blue", "tab:red", "black"
SUMMARY_KEYS = ("auroc", "f1", "precision", "recall", "accuracy", "false_alarm_rate", "threshold")


def write_report(out_dir: Path, summary: dict, runs: Sequence[Any]) -> Path:
    """Draw the pictures of an evaluation into ``out_dir``; returns the path of ``summary.md``.

    summary: metric means (and ``std`` when several seeds ran), ``architecture``, ``split``.
    runs: objects with ``test_losses`` (n,), ``is_anomaly`` (n,) bool, ``threshold``,
    ``threshold_method``, ``history`` (name -> per-epoch losses), ``examples`` (``input`` and
    ``reconstruction`` (k, length) in scaled units, ``kind`` (k,) "normal"/"flagged", ``loss``).
    """
    if not runs:
        raise ValueError("a report needs at least one evaluation run")
    out_dir.mkdir(parents=True, exist_ok=True)
    title = f"{summary.get('architecture', runs[0].architecture)} autoencoder, " + (
        f"{summary.get('split', runs[0].split)} split"
    )
    pictures = {
        "Training curves": _save(training_curves(runs[0], title), out_dir / "training_curves.png"),
        "Loss histogram": _save(loss_histogram(runs[0], title), out_dir / "loss_histogram.png"),
        "ROC curve": _save(roc_figure(runs, title), out_dir / "roc_curve.png"),
        "Reconstructions": _save(reconstructions(runs[0], title), out_dir / "reconstructions.png"),
    }
    path = out_dir / "summary.md"
    path.write_text(summary_markdown(title, summary, runs, pictures))
    log.info("report with %d pictures written to %s", len(pictures), out_dir)
    return path


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=110, format="png")
    return path


def training_curves(run: Any, title: str) -> Figure:
    """Training (and validation) loss per epoch of one run."""
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    for key, label in (("loss", "training"), ("val_loss", "validation")):
        values = run.history.get(key, [])
        if values:
            ax.plot(np.arange(1, len(values) + 1), values, marker=".", label=f"{label} loss")
    ax.set(xlabel="epoch", ylabel="reconstruction loss (scaled units)")
    ax.set_title(f"Training curves: {title}, seed {run.seed}")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def loss_histogram(run: Any, title: str) -> Figure:
    """Histograms of the test losses of normal and abnormal beats with the threshold line."""
    losses, truth = np.asarray(run.test_losses), np.asarray(run.is_anomaly, dtype=bool)
    upper = float(np.quantile(losses, 0.995))
    bins = np.linspace(float(losses.min()), max(upper, run.threshold * 1.2), 60)
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    ax.hist(losses[~truth], bins=bins, alpha=0.6, color=NORMAL_COLOUR,
            label=f"normal test beats (n={int((~truth).sum())})")  # fmt: skip
    ax.hist(losses[truth], bins=bins, alpha=0.6, color=ANOMALY_COLOUR,
            label=f"abnormal test beats (n={int(truth.sum())})")  # fmt: skip
    ax.axvline(run.threshold, color=THRESHOLD_COLOUR, linestyle="--",
               label=f"threshold {run.threshold:.4f} ({run.threshold_method})")  # fmt: skip
    ax.set(xlabel="anomaly score (per-beat reconstruction loss)", ylabel="number of beats")
    ax.set_title(f"Test losses: {title}, seed {run.seed}")
    ax.legend()
    return fig


def roc_figure(runs: Sequence[Any], title: str) -> Figure:
    """ROC curve of every run (anomaly = positive class) with its AUROC in the legend."""
    fig = Figure(figsize=(5.5, 5), layout="constrained")
    ax = fig.subplots()
    for run in runs:
        truth = np.asarray(run.is_anomaly, dtype=bool)
        fpr, tpr, _ = roc_curve(truth, np.asarray(run.test_losses))
        ax.plot(fpr, tpr, label=f"seed {run.seed}: AUROC {run.metrics['auroc']:.4f}")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    ax.set(xlabel="false-alarm rate (normal beats flagged)",
           ylabel="recall (abnormal beats flagged)", xlim=(0, 1), ylim=(0, 1.01))  # fmt: skip
    ax.set_title(f"ROC: {title}")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    return fig


def reconstructions(run: Any, title: str) -> Figure:
    """Example test beats (scaled) with their reconstructions: normal ones and flagged ones."""
    ex = run.examples
    count = len(ex.get("kind", []))
    fig = Figure(figsize=(3.2 * max(count, 1), 3), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, max(count, 1), sharey=True))
    for i, ax in enumerate(axes[:count]):
        colour = NORMAL_COLOUR if ex["kind"][i] == "normal" else ANOMALY_COLOUR
        ax.plot(ex["input"][i], color=colour, label="beat")
        ax.plot(ex["reconstruction"][i], color="black", linestyle="--", label="reconstruction")
        ax.set_title(f"{ex['kind'][i]}, loss {float(ex['loss'][i]):.4f}", fontsize="medium")
        ax.set_xlabel("sample")
    axes[0].set_ylabel("scaled amplitude")
    axes[0].legend(fontsize="small")
    fig.suptitle(f"Example reconstructions: {title}, seed {run.seed}")
    return fig


def summary_markdown(
    title: str, summary: dict, runs: Sequence[Any], pictures: dict[str, Path]
) -> str:
    """A short markdown page: the metrics table (mean ± std over seeds) and the pictures."""
    std = summary.get("std", {})
    rows = [f"| {k} | {_fmt(summary.get(k))} | {_fmt(std.get(k))} |" for k in SUMMARY_KEYS]
    lines = [
        f"# Evaluation: {title}",
        "",
        f"{len(runs)} seed(s); anomaly is the positive class; threshold "
        f"`{runs[0].threshold_method}` on out-of-fold losses of the normal training beats "
        "(no test labels).",
        "",
        "| metric | mean | std |",
        "|---|---|---|",
        *rows,
        "",
    ]
    for caption, path in pictures.items():
        lines += [f"## {caption}", "", f"![{caption}]({path.name})", ""]
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "–"
