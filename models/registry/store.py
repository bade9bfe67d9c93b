"""The model store: a folder or fsspec URL holding artifacts, written once, never overwritten.

Artifacts are content-addressed: a version's files go to ``<store>/sha256/<digest>``, the digest
being the sha256 the registry records (:func:`artifact_sha256`). Several databases (or test
runs) may share one store: a folder's name is its content, so no registry can claim another's
folder, and two registries that trained the very same files share them harmlessly. A file is
never replaced: writing where a different file already lies is refused
(:class:`~ecgmon.errors.ArtifactOverwriteError`), and each file appears whole or not at all (it
is written under a temporary name, then renamed).
"""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import fsspec

from ecgmon.errors import ArtifactIntegrityError, ArtifactOverwriteError, ModelNotFoundError
from ecgmon.models.autoencoder.detector import METADATA_FILE, MODEL_FILE, AutoencoderDetector

ARTIFACT_FILES = (MODEL_FILE, METADATA_FILE)
T = TypeVar("T")


def artifact_uri(store: str, sha256: str) -> str:
    """Where artifacts with this sha256 live: ``<store>/sha256/<digest>``."""
    return f"{store.rstrip('/')}/sha256/{sha256}"


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


def write_files(files: dict[str, bytes], store: str, names: Sequence[str]) -> tuple[str, str]:
    """Write artifact files ({name: bytes}) once, at their content address in ``store``;
    returns (their URI, their sha256). Files already there with the same bytes are kept;
    different bytes there are refused, never overwritten."""
    sha = artifact_sha256(files, names)
    uri = artifact_uri(store, sha)
    fs, root = fsspec.core.url_to_fs(uri)
    fs.makedirs(root, exist_ok=True)
    for name, data in files.items():
        _write_once(fs, f"{root}/{name}", data, uri)
    return uri, sha


def _write_once(fs: fsspec.AbstractFileSystem, path: str, data: bytes, uri: str) -> None:
    """Write ``data`` at ``path`` unless that file exists; refuse if it holds other bytes."""
    if fs.exists(path):
        if fs.cat_file(path) != data:
            raise ArtifactOverwriteError(
                f"the model store already holds a different {path.rsplit('/', 1)[-1]} at {uri}; "
                "refusing to overwrite a stored artifact"
            )
        return
    staging = f"{path}.{uuid.uuid4().hex}.partial"
    with fs.open(staging, "wb") as handle:
        handle.write(data)
    fs.mv(staging, path)


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


def save_through_folder(
    save: Callable[[Path], None], store: str, names: Sequence[str]
) -> tuple[str, str]:
    """Let ``save`` write the files ``names`` into a local folder, then store them once in
    ``store`` (any fsspec URL); returns (their URI, their sha256)."""
    with tempfile.TemporaryDirectory() as tmp:
        save(Path(tmp))
        files = {name: (Path(tmp) / name).read_bytes() for name in names}
    return write_files(files, store, names)


def load_through_folder(
    load: Callable[[Path], T], uri: str, names: Sequence[str], expected_sha256: str
) -> T:
    """Read the files ``names`` under ``uri``, refused unless their sha256 matches, into a local
    folder and ``load`` from it."""
    return load_from_files(load, read_verified_files(uri, names, expected_sha256))


def load_from_files(load: Callable[[Path], T], files: dict[str, bytes]) -> T:
    """``load`` from a local folder holding ``files`` ({name: bytes}, already verified)."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in files.items():
            (Path(tmp) / name).write_bytes(data)
        return load(Path(tmp))


def save_artifacts(detector: AutoencoderDetector, store: str) -> tuple[str, str]:
    """Write a detector's artifacts once in ``store``; returns (their URI, their sha256)."""
    return save_through_folder(detector.save, store, ARTIFACT_FILES)
