"""One model store shared by two databases: artifacts are written once and never overwritten."""

from pathlib import Path

import pytest

from ecgmon.models.registry.versions import load_detector, register_model
from ecgmon.storage.engine import create_db_engine, upgrade_schema

NAMES = ("a.bin", "b.json")


def test_two_databases_sharing_a_store_keep_their_own_artifacts(
    tmp_path: Path, tiny_detector, synthetic_set
) -> None:
    """Version 1 of the second database must not replace version 1 of the first."""
    from ecgmon.models.autoencoder.detector import AutoencoderDetector

    store = str(tmp_path / "shared-models")
    first, second = (create_db_engine(f"sqlite:///{tmp_path / n}.db") for n in ("a", "b"))
    for engine in (first, second):
        upgrade_schema(engine)
    normal = synthetic_set.signals[synthetic_set.normal_mask()]
    other = AutoencoderDetector.fit(normal, architecture="dense", epochs=1, seed=1)
    assert register_model(first, tiny_detector, store) == 1
    assert register_model(second, other, store) == 1
    assert load_detector(first, 1, store).seed == tiny_detector.seed  # sha256 checked on load
    assert load_detector(second, 1, store).seed == other.seed


def test_an_artifact_is_written_once_and_never_overwritten(tmp_path: Path) -> None:
    from ecgmon.errors import ArtifactOverwriteError
    from ecgmon.models.registry.store import write_files

    files = {"a.bin": b"weights", "b.json": b"{}"}
    uri, sha = write_files(files, str(tmp_path), NAMES)
    assert uri == f"{tmp_path}/sha256/{sha}"
    assert write_files(files, str(tmp_path), NAMES) == (uri, sha)  # same bytes: kept, no error
    (Path(uri) / "a.bin").write_bytes(b"tampered")
    with pytest.raises(ArtifactOverwriteError, match="refusing to overwrite"):
        write_files(files, str(tmp_path), NAMES)
    assert (Path(uri) / "a.bin").read_bytes() == b"tampered"  # left for a person to look at
    assert not list(Path(uri).glob("*.partial"))
