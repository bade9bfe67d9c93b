"""Curated normal beats: the file the retrain deployment trains on (``var/curated/normal_beats.
parquet``), exported from a labelled file or from beats already scored.

Two origins, each stated in the file's ``origin`` column:

- a labelled file (UCR text, CSV, Parquet with ``label``): the beats whose label is the normal
  class. Labels from people: the better origin.
- scored data: the beats of a Parquet source that a model version's autoencoder (default: the
  champion) judged normal with a margin: a loss at most the median of the model's own held-out
  normal losses (``quantile`` 0.5), read back from the source files (``scores`` keeps no
  signals). The margin is set by the model's normal beats, not by the data being exported: a beat
  kept looks like the better half of the beats the model was calibrated on. These are normal by
  the model's judgement, not a cardiologist's: borderline beats stay out, and the retrain gate
  still has to accept the candidate trained on them.

The output has the beat layout training reads: ``record_id``, ``signal`` (list of float32) and
``origin``; it is written whole or not at all (a temporary file, then renamed), so the Monday
retrain never reads half a file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy.engine import Engine

from ecgmon.errors import DataFormatError
from ecgmon.sources.beat_layout import beat_columns, beat_matrix
from ecgmon.sources.datasets import read_training_data
from ecgmon.sources.parquet import list_files, source_key
from ecgmon.storage.batches import judged_normal_ids

#: where ``prefect.yaml``'s retrain deployment reads curated normal beats (relative to the project)
CURATED_NORMAL_BEATS = Path("var/curated/normal_beats.parquet")
DEFAULT_QUANTILE = 0.5


def beats_table(record_ids: list[str], signals: np.ndarray, origin: str) -> pa.Table:
    """record_id, signal (list<float32>) and origin columns of beats (n, length)."""
    flat = pa.array(np.ascontiguousarray(signals, dtype=np.float32).ravel())
    offsets = pa.array(np.arange(0, signals.size + 1, signals.shape[1], dtype=np.int32))
    return pa.table(
        {
            "record_id": pa.array(record_ids, pa.string()),
            "signal": pa.ListArray.from_arrays(offsets, flat),
            "origin": pa.array([origin] * len(record_ids), pa.string()),
        }
    )


def normal_from_labelled(path: Path, normal_label: float = 1.0) -> pa.Table:
    """The beats of a labelled file (or UCR folder) whose label is ``normal_label``."""
    beats = read_training_data(path)
    if beats.labels is None:
        raise DataFormatError(f"{path} has no labels: cannot tell its normal beats")
    keep = np.flatnonzero(beats.normal_mask(normal_label))
    ids = [f"{Path(path).name}#row={i}" for i in keep]
    return beats_table(ids, beats.signals[keep], f"labelled:{Path(path).resolve()}")


def loss_margin(reference_losses: np.ndarray, quantile: float = DEFAULT_QUANTILE) -> float:
    """The highest loss a scored beat may have to be exported: the ``quantile`` of the model's
    held-out normal losses (n,)."""
    return float(np.quantile(reference_losses, quantile))


def normal_from_scores(
    engine: Engine, source: Path, model_version: int, max_loss: float
) -> pa.Table:
    """The beats of a Parquet source that ``model_version``'s autoencoder scored normal with a
    loss at most ``max_loss`` (see :func:`loss_margin`), read back from the source's files."""
    key = source_key(source)
    ids = judged_normal_ids(engine, key, model_version, max_loss)
    wanted = pa.array(sorted(ids), pa.string())
    parts = []
    for file in list_files(source) if ids else []:
        table = pq.read_table(file)
        if "record_id" not in table.column_names:
            continue
        table = table.filter(pc.is_in(table["record_id"].cast(pa.string()), value_set=wanted))
        if table.num_rows:
            signals = beat_matrix(table, beat_columns(table.column_names, file))
            if signals is None:
                raise DataFormatError(f"{file}: its beats are not all of one length")
            parts.append((table["record_id"].cast(pa.string()).to_pylist(), signals))
    origin = f"scored:{key}:model={model_version}:loss<={max_loss:.6g}"
    if not parts:
        return beats_table([], np.empty((0, 1), np.float32), origin)
    return beats_table(
        [i for part, _ in parts for i in part], np.concatenate([s for _, s in parts]), origin
    )


def write_curated(table: pa.Table, out: Path) -> Path:
    """Write the curated beats to ``out`` whole (a temporary file renamed over it)."""
    if table.num_rows == 0:
        raise DataFormatError("no normal beats to export: nothing written")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    pq.write_table(table, partial)
    partial.replace(out)
    return out
