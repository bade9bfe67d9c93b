"""The model registry: versions in ``model_versions``, thresholds in ``thresholds``."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ecgmon.clock import utcnow
from ecgmon.errors import ConfigurationError, ModelNotFoundError, NoChampionError
from ecgmon.models.autoencoder.detector import AutoencoderDetector
from ecgmon.models.registry.store import (
    ARTIFACT_FILES,
    confine_to_store,
    load_from_files,
    read_verified_files,
    save_artifacts,
)
from ecgmon.models.thresholds import Threshold
from ecgmon.storage.engine import table
from ecgmon.storage.locks import source_lock

#: The lock name registrations take (``ecgmon.storage.locks.source_lock`` takes any stable name).
REGISTRY_LOCK = "registry:model_versions"


@dataclass(frozen=True)
class ThresholdRecord:
    """One row of ``thresholds``."""

    threshold_version: int
    model_version: int
    method: str
    params: dict
    value: float
    loss_stats: dict
    active: bool
    patient_id: str | None = None


def register_model(
    engine: Engine,
    detector: AutoencoderDetector,
    store: str,
    *,
    metrics: dict | None = None,
    patient_id: str | None = None,
    parent_version: int | None = None,
) -> int:
    """Save the artifacts and add a ``candidate`` row; returns the new version number."""
    row = _version_row(detector) | {
        "metrics": metrics,
        "patient_id": patient_id,
        "parent_version": parent_version,
    }
    return register_version(engine, row, lambda: save_artifacts(detector, store))


def register_version(
    engine: Engine,
    row: dict,
    save: Callable[[], tuple[str, str]],
    then: Callable[[Connection, int], None] | None = None,
) -> int:
    """``save()`` the artifacts (once, at their content address; returns their URI and sha256),
    allocate the next version and insert ``row`` (every ``model_versions`` column but version,
    artifact_uri and artifact_sha256); ``then(conn, version)`` runs in the same transaction.
    Returns the new version number.

    The artifacts' place depends on their content only, never on the version number: another
    database sharing the model store cannot write over them (``ecgmon.models.registry.store``).
    Registrations are serialised by the registry lock (across processes), so two concurrent
    ones never pick the same version number."""
    versions = table(engine, "model_versions")
    uri, sha = save()  # files left by a registration that died before its insert are harmless
    with source_lock(engine, REGISTRY_LOCK), engine.begin() as conn:
        version = (conn.execute(sa.select(sa.func.max(versions.c.version))).scalar() or 0) + 1
        conn.execute(
            versions.insert().values(**row, version=version, artifact_uri=uri, artifact_sha256=sha)
        )
        if then is not None:
            then(conn, version)
        return version


def _version_row(detector: AutoencoderDetector) -> dict:
    losses = detector.calibration_losses
    return {
        "architecture": detector.architecture,
        "hyperparameters": detector.hyperparameters,
        "input_length": detector.input_length,
        "preprocessing": detector.scaler.to_dict(),
        "train_fingerprint": detector.train_fingerprint,
        "train_size": detector.train_size,
        "calibration_size": int(losses.size),
        "loss_mean": float(losses.mean()),
        "loss_std": float(losses.std()),
        "normal_losses": [float(v) for v in losses],
        "calibration": detector.calibration,
        "epochs": detector.epochs,
        "seed": detector.seed,
        "training_seconds": detector.training_seconds,
        "status": "candidate",
        "created_at": utcnow(),
    }


def add_threshold(
    engine: Engine,
    model_version: int,
    threshold: Threshold,
    origin: str,
    *,
    patient_id: str | None = None,
) -> int:
    """Store a new threshold version and make it the active one of its model (and patient)."""
    with engine.begin() as conn:
        _require_version(conn, model_version)
        return insert_threshold(conn, model_version, threshold, origin, patient_id=patient_id)


def insert_threshold(
    conn: Connection,
    model_version: int,
    threshold: Threshold,
    origin: str,
    *,
    patient_id: str | None = None,
) -> int:
    """``add_threshold`` inside the caller's transaction; returns the threshold version."""
    thresholds = table(conn.engine, "thresholds")
    same_scope = (thresholds.c.model_version == model_version) & (
        thresholds.c.patient_id.is_(None)
        if patient_id is None
        else thresholds.c.patient_id == patient_id
    )
    conn.execute(thresholds.update().where(same_scope).values(active=False))
    result = conn.execute(
        thresholds.insert().values(
            model_version=model_version,
            patient_id=patient_id,
            method=threshold.method,
            params=threshold.params,
            value=threshold.value,
            loss_stats=threshold.loss_stats,
            origin=origin,
            active=True,
            created_at=utcnow(),
        )
    )
    return int(result.inserted_primary_key[0])


def promote(engine: Engine, version: int) -> None:
    """Make ``version`` the one champion; the previous champion is archived."""
    versions = table(engine, "model_versions")
    now = utcnow()
    with engine.begin() as conn:
        _refuse_patient_model(_require_version(conn, version))
        conn.execute(
            versions.update()
            .where((versions.c.status == "champion") & (versions.c.version != version))
            .values(status="archived", archived_at=now)
        )
        conn.execute(
            versions.update()
            .where(versions.c.version == version)
            .values(status="champion", promoted_at=now, archived_at=None)
        )


def require_population_model(engine: Engine, version: int) -> None:
    """Raise unless ``version`` is a population model (a patient's own model cannot be champion)."""
    with engine.connect() as conn:
        _refuse_patient_model(_require_version(conn, version))


def _refuse_patient_model(row: dict) -> None:
    if row["patient_id"] is not None:
        raise ConfigurationError(
            f"model version {row['version']} is patient {row['patient_id']}'s own model; it "
            "judges that patient's beats and cannot be the population champion"
        )


def champion_version(engine: Engine) -> int:
    """The version number of the champion; NoChampionError when there is none."""
    versions = table(engine, "model_versions")
    with engine.connect() as conn:
        version = conn.execute(
            sa.select(versions.c.version).where(versions.c.status == "champion")
        ).scalar()
    if version is None:
        raise NoChampionError(
            "no model is promoted yet; run `ecgmon train --data PATH --promote` first"
        )
    return int(version)


def get_version(engine: Engine, version: int) -> dict:
    """The registry row of one version as a dict."""
    with engine.connect() as conn:
        return _require_version(conn, version)


def normal_reference_losses(engine: Engine, version: int) -> np.ndarray:
    """The out-of-fold normal losses (n,) a version was calibrated on: its drift reference.

    Raises sqlalchemy's NoResultFound when the version does not exist."""
    versions = table(engine, "model_versions")
    with engine.connect() as conn:
        stored = conn.execute(
            sa.select(versions.c.normal_losses).where(versions.c.version == version)
        ).scalar_one()
    return np.asarray(json.loads(stored) if isinstance(stored, str) else stored, np.float64)


def calibration_origin(row: dict) -> str:
    """Where a version's stored normal losses come from, for ``thresholds.origin``."""
    how = row.get("calibration") or {}
    if how.get("procedure") == "cross_fit":
        return f"out-of-fold losses of {how['folds']}-fold cross-fitting of v{row['version']}"
    return f"held-out normal losses of v{row['version']}"


def list_versions(engine: Engine) -> list[dict]:
    """Every registered version, newest first."""
    versions = table(engine, "model_versions")
    with engine.connect() as conn:
        rows = conn.execute(sa.select(versions).order_by(versions.c.version.desc()))
        return [dict(row._mapping) for row in rows]


def active_threshold(
    engine: Engine, model_version: int, patient_id: str | None = None
) -> ThresholdRecord:
    """The active threshold of a model version (population-wide unless ``patient_id``)."""
    thresholds = table(engine, "thresholds")
    scope = (
        thresholds.c.patient_id.is_(None)
        if patient_id is None
        else (thresholds.c.patient_id == patient_id)
    )
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(thresholds).where(
                (thresholds.c.model_version == model_version) & thresholds.c.active & scope
            )
        ).first()
        if row is None:
            _require_version(conn, model_version)  # no such version: recalibrating cannot help
    if row is None:
        raise ModelNotFoundError(
            f"model version {model_version} has no active threshold; run `ecgmon recalibrate "
            f"--model-version {model_version}`"
        )
    m = row._mapping
    return ThresholdRecord(
        m["threshold_version"],
        m["model_version"],
        m["method"],
        m["params"],
        m["value"],
        m["loss_stats"],
        bool(m["active"]),
        m["patient_id"],
    )


def verified_artifact_files(engine: Engine, version: int, store: str) -> dict[str, bytes]:
    """A version's artifact files ({name: bytes}) read from its recorded location, refused when
    that is outside the model ``store`` (a registry row is not trusted to point anywhere) or when
    their sha256 does not match the recorded one."""
    row = get_version(engine, version)
    confine_to_store(row["artifact_uri"], store)
    return read_verified_files(row["artifact_uri"], ARTIFACT_FILES, row["artifact_sha256"])


def load_detector(engine: Engine, version: int, store: str) -> AutoencoderDetector:
    """Load a version's detector from its verified artifact files (``verified_artifact_files``)."""
    return load_from_files(
        AutoencoderDetector.load, verified_artifact_files(engine, version, store)
    )


def _require_version(conn: Connection, version: int) -> dict:
    versions = table(conn.engine, "model_versions")
    row = conn.execute(sa.select(versions).where(versions.c.version == version)).first()
    if row is None:
        raise ModelNotFoundError(
            f"model version {version} is not registered; `ecgmon models list` shows the versions"
        )
    return dict(row._mapping)


def record_gate(engine: Engine, version: int, gate: dict, status: str | None = None) -> None:
    """Store a gate decision (JSON) with a version and, when given, its new status."""
    versions = table(engine, "model_versions")
    values: dict = {"gate": gate}
    if status is not None:
        values["status"] = status
    with engine.begin() as conn:
        _require_version(conn, version)
        conn.execute(versions.update().where(versions.c.version == version).values(**values))


def rollback(engine: Engine) -> int:
    """Re-promote the previously promoted version (the most recently archived); returns it."""
    versions = table(engine, "model_versions")
    with engine.connect() as conn:
        previous = conn.execute(
            sa.select(versions.c.version)
            .where((versions.c.status == "archived") & versions.c.promoted_at.is_not(None))
            .order_by(versions.c.archived_at.desc(), versions.c.version.desc())
            .limit(1)
        ).scalar()
    if previous is None:
        raise ModelNotFoundError("there is no previously promoted version to roll back to")
    promote(engine, int(previous))
    return int(previous)
