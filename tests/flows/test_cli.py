"""The command line: user errors are one clear sentence and a non-zero exit, never a traceback."""

import pytest

from ecgmon.cli.main import main

pytestmark = pytest.mark.flow


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_missing_file_is_one_sentence(capsys, prefect_harness, ecgmon_env, tmp_path):
    code, _out, err = run(capsys, "train", "--data", str(tmp_path / "nope.tsv"))
    assert code == 2
    assert err.strip().splitlines()[-1].startswith("ecgmon: error:") and "nope.tsv" in err
    assert "Traceback" not in err


def test_score_without_champion_says_what_to_do(capsys, prefect_harness, ecgmon_env, tmp_path):
    (tmp_path / "in").mkdir()
    code, _out, err = run(capsys, "score", "--source", str(tmp_path / "in"))
    assert code == 2
    assert "ecgmon train" in err and "Traceback" not in err


def test_score_without_schema_says_db_upgrade(capsys, prefect_harness, tmp_path, monkeypatch):
    monkeypatch.setenv("ECGMON_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    (tmp_path / "in").mkdir()
    code, _out, err = run(capsys, "score", "--source", str(tmp_path / "in"))
    assert code == 2 and "ecgmon db upgrade" in err


def test_train_promote_then_models_list(
    capsys, prefect_harness, ecgmon_env, synthetic_set, tmp_path
):
    from ecgmon.synthetic import write_ucr

    data = write_ucr(synthetic_set, tmp_path / "SYN_TRAIN.tsv")
    code, out, _err = run(capsys, "train", "--data", str(data), "--epochs", "3", "--promote")
    assert code == 0 and "model version 1 promoted" in out
    code, out, _err = run(capsys, "models", "list")
    assert code == 0
    line = [row for row in out.splitlines() if row.strip().startswith("1 ")][0]
    assert "dense" in line and "champion" in line

    from prefect.artifacts import Artifact

    from ecgmon.models.registry.versions import get_version
    from ecgmon.storage.engine import create_db_engine

    metrics = get_version(create_db_engine(ecgmon_env.database_url_plain), 1)["metrics"]
    assert 1 <= metrics["epochs_run"] == len(metrics["history"]["loss"]) <= 3
    summary = Artifact.get("train-run-summary")
    assert summary is not None and "calibration_loss_mean" in summary.data
