"""A patient model's artifact in the model store: saved with its sha256, refused when changed."""

from pathlib import Path

import numpy as np
import pytest

from ecgmon.errors import ArtifactIntegrityError, ModelNotFoundError
from ecgmon.models.patient.baseline import fit_patient_baseline
from ecgmon.models.registry.patients import (
    load_patient_artifacts,
    save_patient_artifacts,
)


def test_patient_artifact_round_trip_and_integrity(tmp_path) -> None:
    rng = np.random.default_rng(0)
    beats = np.sin(np.linspace(0, 6, 140)) + rng.normal(0, 0.05, (150, 140))
    rr = 1.0 + rng.normal(0, 0.02, (150, 2))
    baseline = fit_patient_baseline("223", beats, rr, source="first 10 min", curated=False)
    uri, sha = save_patient_artifacts(baseline, str(tmp_path))
    assert uri == f"{tmp_path}/sha256/{sha}"  # content-addressed: no other registry claims it

    loaded = load_patient_artifacts(uri, sha, str(tmp_path))
    np.testing.assert_array_equal(loaded.score(beats, rr), baseline.score(beats, rr))
    np.testing.assert_array_equal(loaded.baseline_scores, baseline.baseline_scores)
    assert loaded.baseline_scores.size == baseline.n_beats == 135  # 10 % trimmed

    (Path(uri) / "baseline.json").write_text("{}")
    with pytest.raises(ArtifactIntegrityError, match="refusing to load a changed model"):
        load_patient_artifacts(uri, sha, str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="missing"):
        load_patient_artifacts(str(tmp_path / "elsewhere"), sha, str(tmp_path))
    with pytest.raises(ArtifactIntegrityError, match="outside the model store"):
        load_patient_artifacts(uri, sha, str(tmp_path / "another-store"))
