"""The model store: a folder or fsspec URL holding one directory of artifacts per version."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import fsspec

from ecgmon.errors import ArtifactIntegrityError, ModelNotFoundError
from ecgmon.models.autoencoder.detector import METADATA_FILE, MODEL_FILE, AutoencoderDetector

ARTIFACT_FILES = (MODEL_FILE, METADATA_FILE)
T = TypeVar("T")


def artifact_uri(store: str, version: int) -> str:
    """Where a version's artifacts live: ``<store>/v0007``."""
    return f"{store.rstrip('/')}/v{version:04d}"


def confine_to_store(uri: str, store: str) -> None:
    """Raise ArtifactIntegrityError unless ``uri`` lies inside ``store`` (a folder or a URL)."""
    if "://" in store or "://" in uri:
        inside = uri.startswith(store.rstrip("/") + "/") and ".." not in uri.split("/")
    else:
        inside = Path(uri).resolve().is_relative_to(Path(store).resolve())
    if not inside:
        raise ArtifactIntegrityError(
            f"model artifacts at {uri} lie outside the model store {store}; refusing to load them"
        )


def artifact_sha256(files: dict[str, bytes], names: Sequence[str] = ARTIFACT_FILES) -> str:
    """One sha256 over the artifact files in a fixed order (by default weights, then metadata)."""
    digest = hashlib.sha256()
    for name in names:
        digest.update(name.encode())
        digest.update(files[name])
    return digest.hexdigest()


def write_files(files: dict[str, bytes], uri: str, names: Sequence[str]) -> str:
    """Write artifact files ({name: bytes}) under ``uri``; returns their sha256 (see above)."""
    fs, root = fsspec.core.url_to_fs(uri)
    fs.makedirs(root, exist_ok=True)
    for name, data in files.items():
        with fs.open(f"{root}/{name}", "wb") as handle:
            handle.write(data)
    return artifact_sha256(files, names)


def read_verified_files(uri: str, names: Sequence[str], expected_sha256: str) -> dict[str, bytes]:
    """The artifact files ``names`` under ``uri``; refused unless their sha256 matches."""
    fs, root = fsspec.core.url_to_fs(uri)
    try:
        files = {name: fs.cat_file(f"{root}/{name}") for name in names}
    except FileNotFoundError as err:
        raise ModelNotFoundError(f"model artifacts are missing at {uri}") from err
    actual = artifact_sha256(files, names)
    if actual != expected_sha256:
        raise ArtifactIntegrityError(
            f"model artifacts at {uri} have sha256 {actual[:12]}..., but the registry recorded "
            f"{expected_sha256[:12]}...; refusing to load a changed model"
        )
    return files


def save_through_folder(save: Callable[[Path], None], uri: str, names: Sequence[str]) -> str:
    """Let ``save`` write the files ``names`` into a local folder, then store them under ``uri``
    (any fsspec URL); returns their sha256."""
    with tempfile.TemporaryDirectory() as tmp:
        save(Path(tmp))
        files = {name: (Path(tmp) / name).read_bytes() for name in names}
    return write_files(files, uri, names)


def load_through_folder(
    load: Callable[[Path], T], uri: str, names: Sequence[str], expected_sha256: str
) -> T:
    """Read the files ``names`` under ``uri``, refused unless their sha256 matches, into a local
    folder and ``load`` from it."""
    files = read_verified_files(uri, names, expected_sha256)
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in files.items():
            (Path(tmp) / name).write_bytes(data)
        return load(Path(tmp))


def save_artifacts(detector: AutoencoderDetector, uri: str) -> str:
    """Write a detector's artifacts to ``uri``; returns their sha256."""
    return save_through_folder(detector.save, uri, ARTIFACT_FILES)


def load_artifacts(uri: str, expected_sha256: str) -> AutoencoderDetector:
    """Read a version's artifacts, refuse them unless their sha256 matches, load in safe mode."""
    return load_through_folder(AutoencoderDetector.load, uri, ARTIFACT_FILES, expected_sha256)
