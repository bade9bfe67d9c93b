"""Registry, recalibration and the retrain gate use the out-of-fold losses of cross-fitting."""

from __future__ import annotations

import numpy as np
import pytest

from ecgmon.storage.engine import create_db_engine

pytestmark = pytest.mark.flow


@pytest.fixture
def training_file(tmp_path, synthetic_set):
    """The very beats the ``champion`` fixture's model was trained on (its normals), as UCR text."""
    from ecgmon.synthetic import write_ucr

    return write_ucr(synthetic_set, tmp_path / "train.tsv")


def test_the_registry_stores_the_calibration_losses_and_how_they_were_made(
    ecgmon_env, champion, synthetic_set
):
    from ecgmon.models.registry.versions import get_version, normal_reference_losses

    engine = create_db_engine(ecgmon_env.database_url_plain)
    row = get_version(engine, champion)
    n_normal = int(synthetic_set.normal_mask().sum())
    assert row["calibration"]["procedure"] == "cross_fit"
    assert row["calibration"]["n"] == n_normal == row["calibration_size"] == row["train_size"]
    assert normal_reference_losses(engine, champion).shape == (n_normal,)


def test_recalibrating_on_the_training_beats_uses_their_out_of_fold_losses(
    ecgmon_env, champion, training_file
):
    """The final model trained on these beats: its own losses of them would be optimistic."""
    from ecgmon.models.registry.versions import get_version
    from ecgmon.models.thresholds import compute_threshold
    from ecgmon.tasks.recalibration import recalibrate

    engine = create_db_engine(ecgmon_env.database_url_plain)
    result = recalibrate(ecgmon_env, method="mean_std", param=2.5, data=str(training_file))
    expected = compute_threshold(
        np.asarray(get_version(engine, champion)["normal_losses"]), "mean_std", 2.5
    )
    assert result["value"] == pytest.approx(expected.value, rel=1e-12)


def test_the_gate_judges_a_champion_trained_on_the_same_beats_by_its_out_of_fold_losses(
    ecgmon_env, champion, training_file, synthetic_set
):
    from ecgmon.models.registry.gate import GatePolicy, model_figures
    from ecgmon.models.registry.versions import active_threshold, get_version, load_detector
    from ecgmon.tasks.gate import gate_split, retrain

    engine = create_db_engine(ecgmon_env.database_url_plain)
    row = get_version(engine, champion)
    lax = GatePolicy(far_tolerance=1.0, auroc_tolerance=1.0)
    record = retrain(ecgmon_env, str(training_file), "dense", 1, 0, policy=lax)
    assert "out-of-fold" in record["gate_set"]

    normal = synthetic_set.signals[synthetic_set.normal_mask()]
    abnormal = synthetic_set.signals[~synthetic_set.normal_mask()]
    _, gate_idx, _ = gate_split(normal, row, 0)
    expected = model_figures(
        np.asarray(row["normal_losses"])[gate_idx],
        load_detector(engine, champion, ecgmon_env.model_store).losses(abnormal),
        active_threshold(engine, champion).value,
    )
    assert record["champion"]["false_alarm_rate"] == pytest.approx(expected.false_alarm_rate)
    assert record["champion"]["loss_mean"] == pytest.approx(expected.loss_mean, rel=1e-9)
    assert record["champion"]["auroc"] == pytest.approx(expected.auroc)
