"""`ecgmon evaluate` works unchanged on UCR-format data of another length (here 96 samples)."""

import json

import numpy as np
import pytest

from ecgmon.cli.main import main
from ecgmon.sources.datasets import LabelledBeats
from ecgmon.synthetic import synthetic_beats, write_ucr


@pytest.fixture(scope="module")
def ucr_96(tmp_path_factory):
    folder = tmp_path_factory.mktemp("SYN96")
    beats = synthetic_beats(500, 96, 0.3, seed=11)
    train = LabelledBeats(beats.signals[:200], beats.labels[:200], "train")
    test = LabelledBeats(beats.signals[200:], beats.labels[200:], "test")
    write_ucr(train, folder / "SYN96_TRAIN.tsv")
    write_ucr(test, folder / "SYN96_TEST.tsv")
    return folder


@pytest.mark.parametrize("split", ["tf", "ucr"])
def test_evaluate_on_length_96_prints_metrics_json_last(ucr_96, split, capsys):
    code = main(
        [
            "evaluate",
            "--data",
            str(ucr_96),
            "--split",
            split,
            "--architecture",
            "dense",
            "--epochs",
            "60",
            "--json",
        ]
    )
    assert code == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    result = json.loads(last)
    for key in ("auroc", "f1", "precision", "recall", "accuracy", "false_alarm_rate", "threshold"):
        assert np.isfinite(result[key]), key
    assert result["input_length"] == 96
    assert result["n_test"] == (100 if split == "tf" else 300)
    # synthetic anomalies (PVC-like, ST changes, artefacts) separate after a short training
    assert result["auroc"] > 0.7
