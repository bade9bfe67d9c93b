"""``ecgmon curate normal-beats`` writes the file the retrain deployment reads, from labels or from
scores, in the layout training reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from ecgmon.cli.main import main
from ecgmon.models.registry.versions import normal_reference_losses
from ecgmon.sources.datasets import read_training_data
from ecgmon.storage.engine import create_db_engine
from ecgmon.tasks.scoring import resolve_judge, score_new_records
from tests.conftest import write_day


def test_normal_beats_from_a_labelled_file(tmp_path: Path, synthetic_set, capsys) -> None:
    beats, labels = synthetic_set.signals[:40], synthetic_set.labels[:40]
    ucr = tmp_path / "labelled_TRAIN.tsv"
    np.savetxt(ucr, np.column_stack([labels, beats]), delimiter="\t")
    out = tmp_path / "var" / "curated" / "normal_beats.parquet"
    assert main(["curate", "normal-beats", "--labelled", str(ucr), "--out", str(out)]) == 0
    normal = labels == 1
    assert f"{int(normal.sum())} normal beats of 140 samples" in capsys.readouterr().out
    exported = read_training_data(out)  # what `ecgmon retrain --data` reads
    np.testing.assert_allclose(exported.signals, beats[normal], rtol=1e-6)
    assert set(pd.read_parquet(out)["origin"]) == {f"labelled:{ucr.resolve()}"}


def test_normal_beats_from_scored_data(
    ecgmon_env, champion, synthetic_set, tmp_path: Path, capsys
) -> None:
    folder = tmp_path / "in"
    write_day(folder, "2026-11-01", synthetic_set.signals[:120])
    settings = ecgmon_env
    score_new_records(settings, str(folder), None, resolve_judge(settings), "run-curate")
    engine = create_db_engine(settings.database_url_plain)
    median = float(np.median(normal_reference_losses(engine, champion)))
    with engine.connect() as conn:
        query = "select record_id from scores where not is_anomaly and loss <= :m"
        expected = set(conn.execute(sa.text(query), {"m": median}).scalars())
    assert 0 < len(expected) < 120  # the margin keeps some beats out
    out = tmp_path / "curated.parquet"
    assert main(["curate", "normal-beats", "--scored", str(folder), "--out", str(out)]) == 0
    exported = pd.read_parquet(out)
    assert set(exported["record_id"]) == expected
    source = pd.read_parquet(folder).set_index("record_id")
    for record_id, signal in zip(exported["record_id"], exported["signal"], strict=True):
        np.testing.assert_array_equal(signal, source.loc[record_id, "signal"])
    assert read_training_data(out).signals.shape == (len(expected), 140)


def test_nothing_to_export_writes_nothing(ecgmon_env, champion, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "never-scored"
    folder.mkdir()
    out = tmp_path / "curated.parquet"
    assert main(["curate", "normal-beats", "--scored", str(folder), "--out", str(out)]) == 2
    assert "no normal beats to export" in capsys.readouterr().err and not out.exists()
