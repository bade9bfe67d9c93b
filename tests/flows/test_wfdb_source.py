"""The score flow over a WFDB folder: every detected beat once, with its provenance, per record."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa

from ecgmon import recordings as rec
from ecgmon.errors import EcgmonError
from ecgmon.sources import open_source
from ecgmon.sources.wfdb_folder import WfdbSource
from ecgmon.storage.engine import create_db_engine
from tests.shared_data import copy_record_start, missing_reason, shared_dataset
from tests.wfdb_records import write_record

pytestmark = pytest.mark.flow
FS = 360.0
PEAKS = [int(FS * (0.5 + 0.8 * i)) for i in range(40)]  # 0.8 s apart, first at 0.5 s


def spike_train(peaks: list[int], n: int) -> np.ndarray:
    """Narrow Gaussian 'QRS' spikes (1 mV, sd 3 samples) at ``peaks`` on a flat line, (n,)."""
    t = np.arange(n)
    return sum(np.exp(-0.5 * ((t - p) / 3.0) ** 2) for p in peaks).astype(np.float64)


def expected_peaks(n_samples: int) -> list[int]:
    """Peaks whose beat window is whole and that are clear of the held-back last second."""
    pre, post = rec.beat_window(FS)
    limit = n_samples - rec.TAIL_GUARD_S * FS
    return [p for p in PEAKS if p >= pre and p + post <= n_samples and p < limit]


def scored(settings) -> list[tuple]:
    engine = create_db_engine(settings.database_url_plain)
    with engine.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                sa.text("select record_id, patient_id, baseline from scores order by recorded_at")
            )
        ]


def watermark(settings, stream: str) -> int:
    engine = create_db_engine(settings.database_url_plain)
    with engine.connect() as conn:
        query = sa.text("select position_offset from ingest_watermarks where stream = :s")
        return conn.execute(query, {"s": stream}).scalar_one()


def test_wfdb_folder_scores_each_beat_once_and_a_grown_record_only_its_new_beats(
    prefect_harness, ecgmon_env, champion, tmp_path
):
    from ecgmon.flows.score import score_flow

    folder = tmp_path / "recordings"
    full = spike_train(PEAKS, int(FS * 32.5))
    write_record(folder, "rec1", full[: int(FS * 15)])
    first_peaks = expected_peaks(int(FS * 15))
    assert len(first_peaks) == 17  # 0.5 s + 0.8 s * i < 14 s

    first = score_flow(source=str(folder))
    assert (first["n_read"], first["n_scored"], first["n_rejected"]) == (17, 17, 0)
    rows = scored(ecgmon_env)
    assert rows == [(f"rec1:MLII:{p}", "rec1", "population:provisional") for p in first_peaks]
    assert watermark(ecgmon_env, "rec1") == first_peaks[-1]

    again = score_flow(source=str(folder))
    assert again["n_read"] == 0 and len(scored(ecgmon_env)) == 17

    write_record(folder, "rec1", full)  # the recording grew to 32.5 s
    grown = score_flow(source=str(folder))
    all_peaks = expected_peaks(full.size)
    assert len(all_peaks) == 39 and grown["n_scored"] == 39 - 17
    assert [r[0] for r in scored(ecgmon_env)] == [f"rec1:MLII:{p}" for p in all_peaks]
    assert watermark(ecgmon_env, "rec1") == all_peaks[-1]


def test_wfdb_source_carries_provenance_and_refuses_backfills(tmp_path) -> None:
    write_record(tmp_path, "rec1", spike_train(PEAKS, int(FS * 10)))
    source = open_source(str(tmp_path), None, 140)
    assert isinstance(source, WfdbSource) and source.key == f"wfdb:{tmp_path.resolve()}"
    batches = list(source.new_batches({}, batch_size=8))
    peaks = expected_peaks(int(FS * 10))
    assert len(peaks) == 11 and [len(b) for b in batches] == [8, 3]
    assert [b.position.offset for b in batches] == [peaks[7], peaks[-1]]
    first = batches[0]
    assert first.signals.shape == (8, 140) and first.patient_id.tolist() == ["rec1"] * 8
    assert first.extra["sample"].tolist() == peaks[:8]
    assert first.extra["lead"].tolist() == ["MLII"] * 8
    assert first.recorded_at.iloc[0] == rec.EPOCH + np.timedelta64(peaks[0] * 10**6 // 360, "us")
    with pytest.raises(EcgmonError, match="not supported for WFDB"):
        source.partitions()
    with pytest.raises(EcgmonError, match="input length"):
        next(WfdbSource(tmp_path).new_batches({}, 5))


def test_real_record_beats_match_the_expert_annotations(
    prefect_harness, ecgmon_env, champion, tmp_path
):
    """The first 5 minutes of MIT-BIH record 100: every scored beat is an annotated beat."""
    from ecgmon.flows.score import score_flow

    data = shared_dataset("mitbih")
    if data is None:
        pytest.skip(missing_reason("mitbih"))
    n = int(FS * 300)
    copy_record_start(data / "records", "100", 300, tmp_path)
    result = score_flow(source=str(tmp_path))
    ids = [r[0] for r in scored(ecgmon_env)]
    samples = np.array([int(i.split(":")[2]) for i in ids])
    assert all(i.startswith("100:MLII:") for i in ids) and result["n_scored"] == len(ids)
    notes = rec.read_annotations(data / "annotations" / "100annotations.txt").beats()
    pre, post = rec.beat_window(FS)
    window = notes.samples[(notes.samples >= pre) & (notes.samples < n - FS * rec.TAIL_GUARD_S)]
    matched = rec.match_beats(samples, window, tolerance=int(0.15 * FS))
    assert (matched >= 0).all()  # no false beat
    assert len(ids) >= len(window) - 1  # at most one annotated beat missed


def test_a_patient_baseline_threshold_judges_only_that_patients_beats(
    prefect_harness, ecgmon_env, champion, tmp_path
):
    from ecgmon.cli.main import main
    from ecgmon.flows.score import score_flow

    folder = tmp_path / "recordings"
    rng = np.random.default_rng(0)
    for name in ("rec1", "rec2"):
        peaks = [int(FS * (0.5 + 0.8 * i)) for i in range(75)]
        noise = rng.normal(0, 0.02, int(FS * 61))
        write_record(folder, name, spike_train(peaks, noise.size) + noise)
    assert main(["baseline", "--source", str(folder), "--patient", "rec1", "--minutes", "0.5"]) == 0
    engine = create_db_engine(ecgmon_env.database_url_plain)
    with engine.connect() as conn:
        version, value = conn.execute(
            sa.text("select threshold_version, value from thresholds where patient_id = 'rec1'")
        ).one()

    score_flow(source=str(folder))
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("select patient_id, baseline, threshold_version, threshold from scores")
        ).all()
    mine = [r for r in rows if r[0] == "rec1"]
    assert {(r[1], r[2]) for r in mine} == {(f"patient:rec1:t{version}", version)}
    assert max(abs(r[3] - value) for r in mine) < 1e-12
    assert {r[1] for r in rows if r[0] == "rec2"} == {"population:provisional"}
    assert len(rows) == 2 * 75  # every beat of both records, clear of the held-back last second
