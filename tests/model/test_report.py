"""The evaluation report draws real PNG files and a markdown page that embeds them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ecgmon.models.evaluation.report import write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass
class FakeRun:
    """The fields of ecgmon.models.evaluation.labelled.EvaluationRun that the report reads."""

    architecture: str = "dense"
    split: str = "tf"
    seed: int = 0
    metrics: dict = field(default_factory=lambda: {"auroc": 0.9})
    test_losses: np.ndarray = field(default_factory=lambda: np.array([0.1, 0.2, 0.15, 0.6, 0.7]))
    is_anomaly: np.ndarray = field(default_factory=lambda: np.array([0, 0, 1, 1, 1], bool))
    threshold: float = 0.3
    threshold_method: str = "mean_std"
    history: dict = field(default_factory=lambda: {"loss": [0.3, 0.2], "val_loss": [0.35, 0.25]})
    examples: dict = field(
        default_factory=lambda: {
            "kind": np.array(["normal", "flagged"]),
            "input": np.linspace(0, 1, 20).reshape(2, 10),
            "reconstruction": np.linspace(0, 1, 20).reshape(2, 10) * 0.9,
            "loss": np.array([0.1, 0.6]),
        }
    )


def test_report_writes_pngs_and_summary(tmp_path: Path) -> None:
    summary = {"architecture": "dense", "split": "tf", "auroc": 0.9, "f1": 0.8, "std": {"f1": 0.01}}
    page = write_report(tmp_path / "report", summary, [FakeRun(), FakeRun(seed=1)])
    pngs = sorted((tmp_path / "report").glob("*.png"))
    names = {p.name for p in pngs}
    assert {"loss_histogram.png", "roc_curve.png", "reconstructions.png"} <= names
    assert all(p.read_bytes()[:8] == PNG_MAGIC for p in pngs)
    text = page.read_text()
    assert "dense autoencoder, tf split" in text
    assert all(f"]({name})" in text for name in names)
