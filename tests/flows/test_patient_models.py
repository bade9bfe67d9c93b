"""Per-patient models in production: ``ecgmon baseline`` registers the patient's own model, the
score flow judges that patient's beats with it, other patients fall back to the population
autoencoder, a clinician's beat list is a baseline strip, and the top flagged beats of a WFDB run
are published as a picture in context."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from ecgmon.storage.engine import create_db_engine
from tests.wfdb_records import write_record

pytestmark = pytest.mark.flow
FS = 360.0
N_BEATS = 185  # 0.8 s apart from 0.5 s: 148.5 s
PREMATURE = (130, 150, 170)  # beats moved 0.3 s early (after the 90 s baseline strip)


def peaks_of(premature: tuple[int, ...] = ()) -> np.ndarray:
    """R-peak samples: one beat every 0.8 s, the ``premature`` ones 0.3 s early."""
    seconds = 0.5 + 0.8 * np.arange(N_BEATS) - 0.3 * np.isin(np.arange(N_BEATS), premature)
    return np.round(seconds * FS).astype(np.int64)


def write_patient(folder, name: str, premature: tuple[int, ...], seed: int) -> np.ndarray:
    """A 150 s record of identical narrow 'QRS' spikes with noise, and its annotations (N, A)."""
    import wfdb

    peaks = peaks_of(premature)
    t = np.arange(int(FS * 150))
    spikes = sum(np.exp(-0.5 * ((t - p) / 3.0) ** 2) for p in peaks)
    write_record(folder, name, spikes + np.random.default_rng(seed).normal(0, 0.02, t.size))
    symbols = ["A" if i in premature else "N" for i in range(N_BEATS)]
    wfdb.wrann(name, "atr", sample=peaks, symbol=symbols, write_dir=str(folder))
    return peaks


def cli(*argv: str) -> tuple[int, str, str]:
    """Run ``ecgmon ARGV``; (exit code, stdout, stderr). Not capsys: a Prefect flow run under
    capsys binds Prefect's console logging to a stream capsys closes after the test."""
    from ecgmon.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def cli_json(*argv: str) -> dict:
    code, out, err = cli(*argv)
    assert code == 0, err
    return json.loads(out.strip().splitlines()[-1])


def baseline_of_rec1(folder: Path) -> dict:
    """``ecgmon baseline`` of patient rec1 on the first 1.5 minutes of ``folder``."""
    return cli_json(
        "baseline", "--source", str(folder), "--patient", "rec1", "--minutes", "1.5", "--json"
    )


def cli_error(*argv: str) -> str:
    code, out, err = cli(*argv)
    assert code == 2, out
    return err


def query(settings, sql: str, **params) -> list[tuple]:
    engine = create_db_engine(settings.database_url_plain)
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.text(sql), params)]


def test_patient_model_judges_its_patient_and_others_fall_back(
    prefect_harness, ecgmon_env, champion, tmp_path
):
    from prefect.artifacts import Artifact

    from ecgmon.flows.score import score_flow
    from ecgmon.models.registry.patients import load_patient_artifacts
    from ecgmon.models.registry.versions import get_version
    from ecgmon.tasks.scoring import load_judge, resolve_judge

    folder = tmp_path / "recordings"
    peaks = write_patient(folder, "rec1", PREMATURE, seed=1)
    write_patient(folder, "rec2", (), seed=2)
    made = baseline_of_rec1(folder)
    version, threshold_version = made["patient_model_version"], made["patient_threshold_version"]
    assert made["baseline"] == f"patient:rec1:v{version}" and made["n_beats"] == 112

    engine = create_db_engine(ecgmon_env.database_url_plain)
    row = get_version(engine, version)
    assert (row["patient_id"], row["parent_version"], row["status"]) == (
        "rec1",
        champion,
        "candidate",
    )
    assert row["architecture"] == "patient_subspace_rr" and row["hyperparameters"]["lead"] == "MLII"
    store = ecgmon_env.model_store
    stored = load_patient_artifacts(row["artifact_uri"], row["artifact_sha256"], store)
    assert (
        stored.n_beats == row["train_size"] and stored.threshold.value == made["patient_threshold"]
    )
    assert query(
        ecgmon_env,
        "select model_version, patient_id, active from thresholds where threshold_version = :t",
        t=threshold_version,
    ) == [(version, "rec1", True)]
    refused = cli_error("models", "promote", str(version))
    assert f"model version {version} is patient rec1's own model" in refused

    result = score_flow(source=str(folder))
    rows = query(
        ecgmon_env,
        "select patient_id, baseline, threshold_version, count(*) from scores group by 1, 2, 3",
    )
    population = result["threshold_version"]
    assert sorted(rows) == [
        ("rec1", f"patient:rec1:v{version}", threshold_version, N_BEATS),
        ("rec2", "population:provisional", population, N_BEATS),
    ]
    flagged = [
        int(r[0].split(":")[2])
        for r in query(ecgmon_env, "select record_id from anomalies where patient_id = 'rec1'")
    ]
    for i in PREMATURE:  # every premature beat flagged (R peaks refined by a sample or two)
        assert min(abs(s - peaks[i]) for s in flagged) <= 3
    drift = query(
        ecgmon_env, "select drift_counts from pipeline_runs where run_id = :r", r=result["run_id"]
    )[0][0]
    drift = json.loads(drift) if isinstance(drift, str) else drift
    assert drift["n"] == N_BEATS  # only the autoencoder's losses (rec2) count for drift

    artifact = Artifact.get("score-flagged-beats")
    assert artifact is not None and result["run_id"] in artifact.data
    assert artifact.data.count("data:image/png;base64,") == 3
    assert "| rec1 | patient:rec1:v" in artifact.data and "| A |" in artifact.data
    pictures = sorted((tmp_path / "artifacts" / result["run_id"]).glob("*.png"))
    assert len(pictures) == 3 and all(p.read_bytes()[:4] == b"\x89PNG" for p in pictures)

    again = baseline_of_rec1(folder)
    assert again["patient_model_version"] > version
    assert get_version(engine, version)["status"] == "archived"
    assert query(
        ecgmon_env,
        "select active from thresholds where threshold_version = :t",
        t=threshold_version,
    ) == [(False,)]
    judge = load_judge(ecgmon_env, resolve_judge(ecgmon_env))
    assert judge.patient_models["rec1"].model_version == again["patient_model_version"]
    assert "rec2" not in judge.patient_models


def test_baseline_from_a_clinicians_list_of_beats(ecgmon_env, champion, tmp_path):
    folder = tmp_path / "recordings"
    peaks = write_patient(folder, "rec1", PREMATURE, seed=1)
    listed = tmp_path / "confirmed.csv"
    lines = ["sample,comment", "# strip confirmed as sinus rhythm"]
    lines += [f"{p},ok" for p in peaks[10:60]] + [f"rec1:MLII:{p}" for p in peaks[60:120]]
    listed.write_text("\n".join(lines) + "\n")

    made = cli_json(
        "baseline",
        "--source",
        str(folder),
        "--patient",
        "rec1",
        "--beats",
        str(listed),
        "--json",
    )
    assert made["n_beats"] == 110 and made["n_unmatched"] == 0
    assert made["n_kept"] == 110 and made["patient_model_beats"] == 110  # a list is not trimmed
    assert made["strip"] == "110 listed beats (confirmed.csv)"
    assert (
        abs(made["start_s"] - peaks[10] / FS) < 0.02 and abs(made["end_s"] - peaks[119] / FS) < 0.02
    )
    hyper = query(
        ecgmon_env,
        "select hyperparameters from model_versions where version = :v",
        v=made["patient_model_version"],
    )[0][0]
    assert (json.loads(hyper) if isinstance(hyper, str) else hyper)["curated"] is True

    args = ("baseline", "--source", str(folder), "--patient", "rec1", "--beats")
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing confirmed yet\n")
    assert "lists no beats" in cli_error(*args, str(empty))
    in_seconds = tmp_path / "seconds.txt"
    in_seconds.write_text("\n".join(str(s) for s in range(2, 60)) + "\n")
    assert "none of the 58 listed beats" in cli_error(*args, str(in_seconds))
    assert "no beat list" in cli_error(*args, str(tmp_path / "absent.txt"))
    assert "give --beats or a time range" in cli_error(*args, str(listed), "--minutes", "5")


def test_real_record_judged_by_its_own_model(prefect_harness, ecgmon_env, champion, tmp_path):
    """MIT-BIH record 223, first 15 minutes: a 10-minute baseline, then the score flow; the
    patient model ranks the annotated abnormal beats of minutes 10-15 (118 of 450) above the
    normal ones."""

    from ecgmon.flows.score import score_flow
    from ecgmon.models.evaluation.stored_scores import evaluate_scores, read_scores
    from tests.shared_data import copy_record_start, missing_reason, shared_dataset

    data = shared_dataset("mitbih")
    if data is None:
        pytest.skip(missing_reason("mitbih"))
    folder = copy_record_start(data / "records", "223", 900, tmp_path / "recordings")
    made = cli_json("baseline", "--source", str(folder), "--patient", "223", "--json")
    score_flow(source=str(folder))
    engine = create_db_engine(ecgmon_env.database_url_plain)
    result = evaluate_scores(read_scores(engine), data, after_minutes=10)["per_record"]["223"]
    assert result["judged_by"] == [f"patient:223:v{made['patient_model_version']}"]
    assert result["n_abnormal"] >= 110 and result["auroc"] >= 0.9


def test_a_new_patient_gets_its_first_minutes_as_baseline_and_no_page_before(
    prefect_harness, ecgmon_env, champion, tmp_path, monkeypatch
):
    from ecgmon.flows.score import score_flow

    folder = tmp_path / "recordings"
    write_patient(folder, "rec1", PREMATURE, seed=1)  # 150 s
    monkeypatch.setenv("ECGMON_AUTO_BASELINE_MINUTES", "3")  # longer than the record: none yet
    first = score_flow(source=str(folder))
    rows = query(ecgmon_env, "select distinct baseline, is_anomaly from scores")
    assert rows == [("population:provisional", False)] and first["n_flagged"] == 0

    write_patient(tmp_path / "grown", "rec2", PREMATURE, seed=3)
    monkeypatch.setenv("ECGMON_AUTO_BASELINE_MINUTES", "1.5")
    second = score_flow(source=str(tmp_path / "grown"))
    judged = query(ecgmon_env, "select distinct baseline from scores where patient_id = 'rec2'")
    assert len(judged) == 1 and judged[0][0].startswith("patient:rec2:v")
    origin = query(ecgmon_env, "select origin from thresholds where patient_id = 'rec2'")
    assert origin and all("0..90 s" in o for (o,) in origin)
    assert second["n_flagged"] >= len(PREMATURE)
