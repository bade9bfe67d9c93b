"""A flagged beat in context, as a Prefect artifact, after a score run over a WFDB folder or
Parquet beats.

For the run's top flagged beats (by score / threshold): for a recording, a few seconds of the raw
strip around the R peak with the annotation symbols when the folder has annotations; for every
beat, the beat as the model saw it with the reconstruction of what judged it (the patient's own
model, or the population autoencoder). A Parquet beat is read back from its file by record id.
Each picture is saved as a PNG under ``settings.artifact_dir/<run_id>/`` and embedded in the
markdown artifact ``score-flagged-beats`` as a ``data:image/png`` URI: both Prefect UIs render
such images inline (docs/recordings.md), so the team sees the beat without access to the
worker's disk; the PNG path is listed for reports and archiving.

Best effort: anything that fails here is logged, never raised (the scores are committed).
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from sqlalchemy.engine import Engine

from ecgmon import recordings as rec
from ecgmon.models.patient.pictures import cut_beat, plot_beat_in_context
from ecgmon.models.registry.patients import load_patient_artifacts
from ecgmon.models.registry.versions import get_version, load_detector
from ecgmon.settings import Settings
from ecgmon.sources.parquet import beats_by_id
from ecgmon.storage.batches import top_flagged_beats
from ecgmon.storage.engine import create_db_engine

TOP_PICTURES = 3
ARTIFACT_KEY = "score-flagged-beats"


@dataclass(frozen=True)
class BeatPicture:
    """One drawn beat: its anomalies row (``beat``), annotation symbol ("" when none) and PNG."""

    beat: dict
    annotation: str
    path: Path


WFDB_KEY, PARQUET_KEY = "wfdb:", "parquet:"


def wants_pictures(source: str, n_flagged: int) -> bool:
    """Pictures are drawn for runs that flagged beats of a WFDB folder or of Parquet files."""
    path = Path(source)
    parquet = path.suffix == ".parquet" or (path.is_dir() and any(path.rglob("*.parquet")))
    return n_flagged > 0 and (rec.is_wfdb_folder(path) or parquet)


def draw_beats(engine: Engine, beats: list[dict], out_dir: Path, store: str) -> list[BeatPicture]:
    """A PNG per flagged beat (``anomalies`` rows), WFDB or Parquet by the beat's source key,
    with the reconstruction of the model (in the model ``store``) that judged it; beats of other
    sources (database tables) or no longer found are left out."""
    pictures: list[BeatPicture] = []
    by_key: dict[str, list[dict]] = {}
    for beat in beats:
        by_key.setdefault(str(beat["source"]), []).append(beat)
    for key, group in by_key.items():
        if key.startswith(WFDB_KEY):
            folder = Path(key[len(WFDB_KEY) :])
            pictures += draw_flagged_beats(engine, folder, group, out_dir, store)
        elif key.startswith(PARQUET_KEY):
            path = Path(key[len(PARQUET_KEY) :])
            pictures += draw_parquet_beats(engine, path, group, out_dir, store)
    order = {id(beat): i for i, beat in enumerate(beats)}
    return sorted(pictures, key=lambda p: order[id(p.beat)])


def draw_parquet_beats(
    engine: Engine, path: Path, beats: list[dict], out_dir: Path, store: str
) -> list[BeatPicture]:
    """A PNG per flagged beat of a Parquet source: the beat read back from its file by record id
    and the reconstruction of what judged it."""
    # matplotlib loads when a picture is drawn, not with the score flow: most runs draw none
    from ecgmon.report.figures import beat_figure

    signals = beats_by_id(path, [str(b["record_id"]) for b in beats])
    models: dict[str, object] = {}
    pictures = []
    for beat in beats:
        signal = signals.get(str(beat["record_id"]))
        if signal is None:
            continue
        reconstruction, label = _reconstruction(engine, store, beat, signal, models)
        title = (
            f"{beat['record_id']}: score {beat['loss']:.3g} > threshold {beat['threshold']:.3g} "
            f"({beat['baseline']})"
        )
        name = "".join(c if c.isalnum() or c in "-_" else "_" for c in str(beat["record_id"]))
        path_png = out_dir / f"{name}.png"
        path_png.parent.mkdir(parents=True, exist_ok=True)
        path_png.write_bytes(beat_figure(signal, reconstruction, title, label))
        pictures.append(BeatPicture(beat, "", path_png))
    return pictures


def draw_flagged_beats(
    engine: Engine, folder: Path, beats: list[dict], out_dir: Path, store: str
) -> list[BeatPicture]:
    """A PNG per flagged beat (``anomalies`` rows of beats from the WFDB ``folder``)."""
    models: dict[str, object] = {}
    pictures = []
    for beat in beats:
        record, lead, sample = _provenance(beat["record_id"])
        recording = rec.read_recording(folder / f"{record}.hea", lead)
        marks = annotation_marks(folder, record)
        length = int(get_version(engine, beat["model_version"])["input_length"])
        shape = cut_beat(recording, sample, length)
        reconstruction, label = _reconstruction(engine, store, beat, shape, models)
        symbol = _symbol_at(marks, sample, recording.fs)
        title = (
            f"{beat['record_id']} ({sample / recording.fs:.1f} s): score {beat['loss']:.3g} > "
            f"threshold {beat['threshold']:.3g} ({beat['baseline']}); "
            f"annotation {symbol or 'none'}"
        )
        path = plot_beat_in_context(
            recording,
            sample,
            shape,
            reconstruction,
            out_dir / f"{record}_{lead}_{sample}.png",
            marks=marks,
            title=title,
            reconstruction_label=label,
        )
        pictures.append(BeatPicture(beat, symbol, path))
    return pictures


def flagged_beats_markdown(run_id: str, folder: Path, pictures: list[BeatPicture]) -> str:
    """The artifact: per beat a line of figures, the picture inline and its PNG path."""
    lines = [
        f"# Flagged beats in context: run `{run_id}`",
        "",
        f"Top {len(pictures)} flagged beats by score / threshold, source `{folder}`. For a "
        "recording, the strip: 4 s of the raw lead centred on the R peak (scored window shaded, "
        "annotation symbols above the R peaks when the folder has annotations); for every beat: "
        "the beat as the model saw it and the reconstruction of what judged it.",
    ]
    for number, picture in enumerate(pictures, start=1):
        beat, data = picture.beat, base64.b64encode(picture.path.read_bytes()).decode()
        lines += [
            "",
            f"## {number}. `{beat['record_id']}` at {beat['recorded_at']}",
            "",
            "| patient | judged by | threshold version | score | threshold | ratio | annotation |",
            "|---|---|---|---|---|---|---|",
            f"| {beat['patient_id']} | {beat['baseline']} | {beat['threshold_version']} "
            f"| {beat['loss']:.4g} | {beat['threshold']:.4g} | {beat['score_ratio']:.2f} "
            f"| {picture.annotation or 'none'} |",
            "",
            f"![{beat['record_id']} in context](data:image/png;base64,{data})",
            "",
            f"PNG: `{picture.path}`",
        ]
    return "\n".join(lines)


def publish_flagged_beats(settings: Settings, run_id: str, source: str) -> str | None:
    """Draw the run's top flagged beats and publish the markdown artifact; returns the markdown,
    None when there was nothing to draw or it failed (logged, never raised)."""
    logger = _logger()
    try:
        engine = create_db_engine(settings.database_url_plain)
        beats = top_flagged_beats(engine, run_id, TOP_PICTURES)
        if not beats:
            return None
        out_dir = Path(settings.artifact_dir).expanduser() / run_id
        pictures = draw_beats(engine, beats, out_dir, settings.model_store)
        if not pictures:
            return None
        markdown = flagged_beats_markdown(run_id, Path(source).resolve(), pictures)
        create_markdown_artifact(
            markdown, key=ARTIFACT_KEY, description="top flagged beats in context"
        )
    except Exception as err:  # noqa: BLE001 - the scores are committed; pictures are a courtesy
        logger.error("flagged-beat pictures of run %s not published: %s", run_id, err)
        return None
    logger.info("flagged-beat pictures of run %s in %s", run_id, out_dir)
    return markdown


@task(name="picture-flagged-beats", cache_policy=NO_CACHE)
def publish_flagged_beats_task(settings: Settings, run_id: str, source: str) -> str | None:
    """Publish the run's top flagged beats in context (markdown artifact with pictures)."""
    return publish_flagged_beats(settings, run_id, source)


def annotation_marks(folder: Path, record: str) -> dict[int, str]:
    """{sample: beat symbol} of a record's annotations, {} when the folder has none: a WFDB
    ``<record>.atr``, or an rdann text dump ``<record>annotations.txt`` in the folder or in an
    ``annotations`` folder beside it (the MIT-BIH layout of ../shared/data/mitbih)."""
    notes = rec.find_annotations(folder / f"{record}.hea")
    if notes is None:
        return {}
    samples, symbols = notes.samples, notes.symbols
    keep = np.isin(symbols, list(rec.BEAT_SYMBOLS))
    return {int(s): str(y) for s, y in zip(samples[keep], symbols[keep], strict=True)}


def _symbol_at(marks: dict[int, str], sample: int, fs: float) -> str:
    """The annotation symbol of the annotated beat nearest ``sample`` within 150 ms, else ""."""
    near = [s for s in marks if abs(s - sample) <= rec.MATCH_TOLERANCE_S * fs]
    return marks[min(near, key=lambda s: abs(s - sample))] if near else ""


def _provenance(record_id: str) -> tuple[str, str, int]:
    """``"223:MLII:10452"`` -> ("223", "MLII", 10452)."""
    record, lead, sample = record_id.rsplit(":", 2)
    return record, lead, int(sample)


def _reconstruction(
    engine: Engine, store: str, beat: dict, shape: np.ndarray, cache: dict[str, object]
) -> tuple[np.ndarray | None, str]:
    """The reconstruction (length,) of ``shape`` by what judged the beat, and its label."""
    judge = str(beat["baseline"])
    last = judge.rsplit(":", 1)[-1]  # patient:{id}:v{model version} names a patient model
    if judge.startswith("patient:") and last[:1] == "v" and last[1:].isdigit():
        version = int(last[1:])
        if judge not in cache:
            row = get_version(engine, version)
            cache[judge] = load_patient_artifacts(
                row["artifact_uri"], row["artifact_sha256"], store
            )
        model = cache[judge]
        return model.shape.reconstruct(shape[None])[0], f"reconstruction: patient model v{version}"
    key = f"ae:{beat['model_version']}"
    if key not in cache:
        cache[key] = load_detector(engine, int(beat["model_version"]), store)
    detector = cache[key]
    scaled = np.asarray(detector.reconstruct(shape[None]))
    if scaled.shape != (1, shape.size):
        return None, ""
    scaler = detector.scaler
    unscaled = scaled[0] * (scaler.maximum - scaler.minimum) + scaler.minimum
    return unscaled, f"reconstruction: autoencoder v{beat['model_version']}"


def _logger() -> logging.Logger | logging.LoggerAdapter:
    """The run logger inside a flow or task run, else this module's logger."""
    try:
        return get_run_logger()
    except Exception:  # noqa: BLE001 - MissingContextError outside a run; never fail a courtesy
        return logging.getLogger(__name__)
