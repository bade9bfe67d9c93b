"""The champion's Keras model loads only when a beat needs it: a WFDB run whose patients all have
their own models imports no TensorFlow, and the scores are those of an eagerly loaded judge."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from ecgmon.storage.engine import create_db_engine
from tests.shared_data import REPO_ROOT
from tests.wfdb_records import FS, write_record

N_BEATS = 185  # one every 0.8 s from 0.5 s: 148.5 s


def write_patient(folder: Path, name: str, seed: int) -> None:
    """A 150 s record of narrow 'QRS' spikes 0.8 s apart, with noise."""
    peaks = np.round((0.5 + 0.8 * np.arange(N_BEATS)) * FS)
    t = np.arange(int(FS * 150))
    spikes = sum(np.exp(-0.5 * ((t - p) / 3.0) ** 2) for p in peaks)
    write_record(folder, name, spikes + np.random.default_rng(seed).normal(0, 0.02, t.size))


def baseline(settings, folder: Path, patient: str) -> None:
    """``patient``'s own model from the first 90 s (112 beats: enough for a patient model)."""
    from ecgmon.tasks.baseline import Strip, calibrate_patient

    made = calibrate_patient(settings, folder, patient, Strip(0.0, 90.0))
    assert made.patient_model_version is not None


SCORE_IN_A_FRESH_PROCESS = """
import json, sys
from ecgmon.settings import get_settings
from ecgmon.tasks.scoring import resolve_judge, score_new_records
settings = get_settings()
counts = score_new_records(settings, sys.argv[1], None, resolve_judge(settings), "run-1")
loaded = sorted(m for m in ("tensorflow", "keras") if m in sys.modules)
print(json.dumps({"scored": counts.n_scored, "loaded": loaded}))
"""


def score_in_a_fresh_process(folder: Path) -> dict:
    """``score_new_records`` over ``folder`` in a new interpreter (the ECGMON_* environment of
    the test): its counts and which of TensorFlow and Keras it imported."""
    done = subprocess.run(
        [sys.executable, "-c", SCORE_IN_A_FRESH_PROCESS, str(folder)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def scores(settings) -> list[tuple]:
    import sqlalchemy as sa

    engine = create_db_engine(settings.database_url_plain)
    with engine.connect() as conn:
        query = "select patient_id, baseline, count(*) from scores group by 1, 2"
        return sorted(tuple(row) for row in conn.execute(sa.text(query)))


def test_a_wfdb_run_whose_patients_have_models_imports_no_tensorflow(
    ecgmon_env, champion, tmp_path
):
    folder = tmp_path / "recordings"
    write_patient(folder, "rec1", seed=1)
    baseline(ecgmon_env, folder, "rec1")

    run = score_in_a_fresh_process(folder)

    assert run["loaded"] == [] and run["scored"] > 170
    [(patient, judge, _)] = scores(ecgmon_env)
    assert patient == "rec1" and judge.startswith("patient:rec1:v")


def test_a_patient_without_a_model_loads_the_autoencoder_in_the_same_run(
    ecgmon_env, champion, tmp_path
):
    folder = tmp_path / "recordings"
    write_patient(folder, "rec1", seed=1)
    write_patient(folder, "rec2", seed=2)
    baseline(ecgmon_env, folder, "rec1")

    run = score_in_a_fresh_process(folder)

    assert run["loaded"] == ["keras", "tensorflow"]
    judged = {p: b for p, b, _ in scores(ecgmon_env)}
    assert judged["rec1"].startswith("patient:rec1:v")
    assert judged["rec2"] == "population:provisional"


def test_a_deferred_judge_scores_as_a_loaded_one(ecgmon_env, champion, tiny_detector, tmp_path):
    """Beats of a patient with a model, of one without and an empty batch: the same losses,
    flags, thresholds and judges; the model loads for the autoencoder's beats only."""
    from ecgmon.models.registry.deferred import deferred_detector
    from ecgmon.models.scoring import Judge, score_beats
    from ecgmon.recordings import iter_recording_beats
    from ecgmon.tasks.scoring import load_judge, resolve_judge

    folder = tmp_path / "recordings"
    write_patient(folder, "rec1", seed=1)
    write_patient(folder, "rec2", seed=2)
    baseline(ecgmon_env, folder, "rec1")
    deferred = load_judge(ecgmon_env, resolve_judge(ecgmon_env))
    eager = Judge(**{**vars(deferred), "detector": tiny_detector})
    rec1, rec2 = iter_recording_beats(folder, tiny_detector.input_length, {})

    for beats in (valid_beats(rec1), valid_beats(rec1, limit=0)):
        assert_same(score_beats(deferred, beats), score_beats(eager, beats))
    assert not deferred.detector.loaded
    both = valid_beats(rec1, rec2)
    assert_same(score_beats(deferred, both), score_beats(eager, both))
    assert deferred.detector.loaded

    engine = create_db_engine(ecgmon_env.database_url_plain)
    fresh = deferred_detector(engine, champion, ecgmon_env.model_store)
    assert fresh.input_length == tiny_detector.input_length
    np.testing.assert_array_equal(fresh.calibration_losses, tiny_detector.calibration_losses)


def valid_beats(*records, limit: int | None = None):
    """The ValidBeats the score path makes of ``RecordingBeats`` (the first ``limit`` of each)."""
    from tests.unit.test_patient_scoring import beats_of

    parts = records
    take = slice(None) if limit is None else slice(0, limit)
    return beats_of(
        np.concatenate([r.signals[take] for r in parts]),
        [r.record for r in parts for _ in r.samples[take]],
        [r.lead for r in parts for _ in r.samples[take]],
        np.concatenate([r.rr[take] for r in parts]),
    )


def assert_same(a, b) -> None:
    for name in ("loss", "is_anomaly", "threshold", "threshold_version", "baseline"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert (a.by_autoencoder is None) == (b.by_autoencoder is None)
    if a.by_autoencoder is not None:
        np.testing.assert_array_equal(a.by_autoencoder, b.by_autoencoder)
