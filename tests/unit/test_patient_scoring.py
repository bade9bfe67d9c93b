"""The score path's judges (models/scoring.py): a patient's own model, else the autoencoder with
the patient's threshold, else the population threshold; drift sees only autoencoder losses."""

import numpy as np
import pandas as pd

from ecgmon.models.patient.baseline import fit_patient_baseline
from ecgmon.models.registry.patients import PatientModel
from ecgmon.models.scoring import PROVISIONAL, Judge, autoencoder_losses, score_beats
from ecgmon.records import ValidBeats


def beats_of(signals, patients, leads, rr) -> ValidBeats:
    n = len(patients)
    extra = {"lead": np.array(leads, dtype=object)}
    if rr is not None:
        extra |= {"rr_before": rr[:, 0], "rr_after": rr[:, 1]}
    return ValidBeats(
        record_id=np.array([f"b{i}" for i in range(n)], dtype=object),
        recorded_at=pd.date_range("2026-11-01", periods=n, freq="s", tz="UTC"),
        patient_id=np.array(patients, dtype=object),
        signals=signals,
        extra=extra,
    )


def test_each_beat_is_judged_by_the_most_specific_judge(synthetic_set, tiny_detector) -> None:
    normal = synthetic_set.signals[synthetic_set.normal_mask()]
    rng = np.random.default_rng(0)
    rr = 1.0 + rng.normal(0, 0.01, (200, 2))
    own = fit_patient_baseline("p1", normal[:200], rr, source="test strip", seed=0)
    model = PatientModel("p1", 7, 9, own.threshold.value, "MLII", own)
    judge = Judge(
        1, tiny_detector, 1, 0.5, patients={"p2": (5, 0.01)}, patient_models={"p1": model}
    )
    signals = normal[200:206]
    context = np.array([[1, 1], [0.6, 1.4], [1, 1], [1, 1], [1, 1], [0.6, 1.4]], dtype=np.float32)
    beats = beats_of(
        signals, ["p1", "p1", "p1", "p2", "p3", "p2"], ["MLII"] * 2 + ["V5"] + ["MLII"] * 3, context
    )

    scored = score_beats(judge, beats)

    assert scored.baseline.tolist() == [
        "patient:p1:v7",
        "patient:p1:v7",
        "population",  # p1 from another lead than its model's: the autoencoder judges it
        "patient:p2:t5",
        PROVISIONAL,  # p3 has no baseline at all: judged, not flagged
        "patient:p2:t5",
    ]
    assert not scored.is_anomaly[4] and scored.loss[4] > 0
    assert scored.threshold_version.tolist() == [9, 9, 1, 5, 1, 5]
    np.testing.assert_allclose(scored.loss[:2], own.score(signals[:2], context[:2]))
    ae = tiny_detector.losses(signals[2:])
    np.testing.assert_allclose(scored.loss[2:], ae, rtol=1e-6)
    assert scored.is_anomaly[1] and not scored.is_anomaly[0]  # premature beat, same shape
    np.testing.assert_allclose(autoencoder_losses(judge, scored), ae, rtol=1e-6)


def test_beats_without_rr_context_fall_back_to_the_autoencoder(synthetic_set, tiny_detector):
    normal = synthetic_set.signals[synthetic_set.normal_mask()]
    own = fit_patient_baseline("p1", normal[:200], np.ones((200, 2)), source="test", seed=0)
    model = PatientModel("p1", 7, 9, own.threshold.value, None, own)
    judge = Judge(1, tiny_detector, 1, 0.5, patient_models={"p1": model})
    scored = score_beats(judge, beats_of(normal[200:203], ["p1"] * 3, ["MLII"] * 3, None))
    assert scored.baseline.tolist() == ["population"] * 3  # a Parquet beat has no RR context
    assert autoencoder_losses(judge, scored).size == 3
