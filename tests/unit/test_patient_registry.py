"""A patient model's artifact in the model store: saved with its sha256, refused when changed."""

import numpy as np
import pytest

from ecgmon.errors import ArtifactIntegrityError, ModelNotFoundError
from ecgmon.models.patient.baseline import fit_patient_baseline
from ecgmon.models.registry.patients import (
    load_patient_artifacts,
    patient_artifact_uri,
    save_patient_artifacts,
)


def test_patient_artifact_round_trip_and_integrity(tmp_path) -> None:
    rng = np.random.default_rng(0)
    beats = np.sin(np.linspace(0, 6, 140)) + rng.normal(0, 0.05, (150, 140))
    rr = 1.0 + rng.normal(0, 0.02, (150, 2))
    baseline = fit_patient_baseline("223", beats, rr, source="first 10 min", curated=False)
    uri = patient_artifact_uri(str(tmp_path), 12, "223")
    assert uri.endswith("/v0012-patient-223")

    sha = save_patient_artifacts(baseline, uri)
    loaded = load_patient_artifacts(uri, sha)
    np.testing.assert_array_equal(loaded.score(beats, rr), baseline.score(beats, rr))
    np.testing.assert_array_equal(loaded.baseline_scores, baseline.baseline_scores)
    assert loaded.baseline_scores.size == baseline.n_beats == 135  # 10 % trimmed

    (tmp_path / "v0012-patient-223" / "baseline.json").write_text("{}")
    with pytest.raises(ArtifactIntegrityError, match="refusing to load a changed model"):
        load_patient_artifacts(uri, sha)
    with pytest.raises(ModelNotFoundError, match="missing"):
        load_patient_artifacts(patient_artifact_uri(str(tmp_path), 13, "223"), sha)
