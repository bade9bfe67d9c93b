"""``ecgmon demo``: the whole pipeline once, on ECG5000 when found, else on synthetic beats."""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from ecgmon.errors import DataFormatError, NoChampionError
from ecgmon.settings import Settings, default_var_dir, get_settings
from ecgmon.sources.datasets import LabelledBeats, read_beats, read_ucr_pair
from ecgmon.storage.engine import create_db_engine, redact_url, run_query, upgrade_schema
from ecgmon.synthetic import synthetic_beats

log = logging.getLogger(__name__)
PUBLIC_ECG_CSV = "http://storage.googleapis.com/download.tensorflow.org/data/ecg.csv"
SHARED_ECG5000 = Path(__file__).resolve().parents[2] / "shared" / "data" / "ecg5000"


def find_data(explicit: Path | None) -> tuple[LabelledBeats, str]:
    """ECG5000 from a given path, the shared folder, the public download; else synthetic beats."""
    if explicit is not None:
        beats = _read(explicit)
        return beats, f"ECG5000-format data from {explicit}"
    if SHARED_ECG5000.is_dir():
        return _read(SHARED_ECG5000), f"ECG5000 from {SHARED_ECG5000}"
    cached = default_var_dir() / "data" / "ecg.csv"
    try:
        if not cached.exists():
            cached.parent.mkdir(parents=True, exist_ok=True)
            with urllib.request.urlopen(PUBLIC_ECG_CSV, timeout=10) as response:
                cached.write_bytes(response.read())
        return read_beats(cached), f"ECG5000 (TensorFlow tutorial CSV) downloaded to {cached}"
    except (OSError, DataFormatError) as err:
        log.info("public ECG5000 unavailable (%s); using synthetic beats", err)
        cached.unlink(missing_ok=True)
    return synthetic_beats(3000, 140, 0.4, seed=0), "synthetic heartbeats (offline fallback)"


def _read(path: Path) -> LabelledBeats:
    if path.is_dir():
        train, test = read_ucr_pair(path)
        return train.concat(test)
    return read_beats(path)


def write_partitions(beats: np.ndarray, folder: Path, days: list[str]) -> list[Path]:
    """Split beats (n, length) over daily Parquet partitions, plus two bad rows to quarantine."""
    files = []
    for day_index, day in enumerate(days):
        chunk = beats[day_index :: len(days)]
        start = pd.Timestamp(day, tz="UTC")
        frame = pd.DataFrame(
            {
                "record_id": [f"demo-{day}-{i:05d}" for i in range(len(chunk))],
                "recorded_at": start + pd.to_timedelta(np.arange(len(chunk)) * 7, unit="s"),
                "patient_id": [f"patient-{i % 5}" for i in range(len(chunk))],
                "signal": [row.astype(np.float32) for row in chunk],
            }
        )
        if day_index == 0:
            bad = frame.iloc[:2].copy()
            bad["record_id"] = [f"demo-{day}-bad-nan", f"demo-{day}-bad-short"]
            bad["signal"] = [np.full(chunk.shape[1], np.nan, np.float32), chunk[0][:10]]
            frame = pd.concat([frame, bad], ignore_index=True)
        path = folder / f"date={day}" / "part-0.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(path, index=False)
        files.append(path)
    return files


def run_demo(
    data: Path | None, beats_per_day: int, epochs: int, say: Callable[[str], None]
) -> dict:
    """Initialise, train and promote v1, write three days of new beats, score them; each step
    and the summary are told to ``say`` (the command line prints them). Returns the score run."""
    from sklearn.model_selection import train_test_split

    from ecgmon.flows.score import score_flow
    from ecgmon.flows.train import train_flow

    settings = get_settings()
    beats, origin = find_data(data)
    say(f"data: {origin} ({len(beats)} beats of {beats.input_length} samples)")
    engine = create_db_engine(settings.database_url_plain)
    upgrade_schema(engine)
    train_idx, new_idx = train_test_split(np.arange(len(beats)), test_size=0.2, random_state=21)
    work = default_var_dir() / "demo"
    train_file = _write_training(beats, train_idx, work)
    _reuse_or_train(settings, train_file, epochs, train_flow, say)
    days = [(datetime.now(UTC).date() - timedelta(days=d)).isoformat() for d in (3, 2, 1)]
    new = beats.signals[new_idx[: beats_per_day * len(days)]]
    incoming = work / "incoming"
    write_partitions(new, incoming, days)
    result = score_flow(source=str(incoming))
    _summarise(settings, result, incoming, say)
    return result


def _write_training(beats: LabelledBeats, idx: np.ndarray, work: Path) -> Path:
    from ecgmon.synthetic import write_ucr

    return write_ucr(
        LabelledBeats(
            beats.signals[idx],
            beats.labels[idx] if beats.labels is not None else None,
            beats.source,
        ),
        work / "train" / "DEMO_TRAIN.tsv",
    )


def _reuse_or_train(
    settings: Settings,
    train_file: Path,
    epochs: int,
    train_flow: Callable[..., dict],
    say: Callable[[str], None],
) -> int:
    from ecgmon.models.registry.versions import champion_version

    engine = create_db_engine(settings.database_url_plain)
    try:
        version = champion_version(engine)
        say(f"model: reusing champion model version {version}")
        return version
    except NoChampionError:
        pass  # a fresh database: train the first model
    except Exception as err:  # noqa: BLE001 - the demo goes on and trains, as it always did
        log.warning("champion not read (%s: %s); training a new model", type(err).__name__, err)
    result = train_flow(data=str(train_file), architecture="dense", epochs=epochs, promote=True)
    version = int(result["model_version"])
    say(f"model: trained dense autoencoder, registered and promoted as version {version}")
    return version


def _summarise(
    settings: Settings, result: dict, incoming: Path, say: Callable[[str], None]
) -> None:
    engine = create_db_engine(settings.database_url_plain)
    say(f"source: {incoming}")
    say(
        f"beats read {result['n_read']}, scored {result['n_scored']}, rejected "
        f"{result['n_rejected']}, flagged {result['n_flagged']}"
    )
    say(
        f"model version {result['model_version']}, threshold version "
        f"{result['threshold_version']} = {result['threshold']:.5f}"
    )
    say(f"database: {redact_url(settings.database_url_plain)}")
    say(f"model store: {settings.model_store}")
    query = "daily_anomaly_rate.sql"
    say(f"\nanalyst query ({query}):")
    say(run_query(engine, query).to_string(index=False))
