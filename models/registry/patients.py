"""Per-patient models in the registry: a patient's ``PatientBaseline`` versioned like any model.

A patient model is a ``model_versions`` row with ``patient_id`` set, architecture
``PATIENT_ARCHITECTURE``, ``parent_version`` the population model that was champion when it was
fitted (its input length cuts the beats), and its artifact (``baseline.npz`` + ``baseline.json``)
in the model store with its sha256. Its threshold is a ``thresholds`` row with the same
``patient_id`` and ``model_version`` = the patient model.

Which patient model judges: the patient's newest model whose threshold is active. Registering a
new one archives the patient's older models (status ``archived``, thresholds inactive) in the same
transaction. A patient model never becomes ``champion``: that status (one row, unique index
``ux_model_versions_one_champion``) names the population model; a patient model stays
``candidate`` while it is its patient's active model.

A patient may also have a threshold of the population model recalibrated on their baseline
(ecgmon.models.patient.thresholds): a ``thresholds`` row with ``patient_id`` set and
``model_version`` the population model. It judges the patient's beats when no patient model
applies; the beats then say ``patient:{patient_id}:t{threshold_version}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ecgmon.clock import utcnow
from ecgmon.models.patient.baseline import PatientBaseline
from ecgmon.models.registry.store import (
    confine_to_store,
    load_through_folder,
    save_through_folder,
)
from ecgmon.models.registry.versions import insert_threshold, register_version
from ecgmon.storage.engine import table

PATIENT_ARCHITECTURE = "patient_subspace_rr"
"""``model_versions.architecture`` of a per-patient model (principal subspace + RR context)."""
BASELINE_FILES = ("baseline.npz", "baseline.json")


@dataclass(frozen=True)
class PatientModel:
    """A patient's active model as the score path uses it; ``lead`` the lead it was fitted on."""

    patient_id: str
    model_version: int
    threshold_version: int
    threshold: float
    lead: str | None
    baseline: PatientBaseline

    @property
    def name(self) -> str:
        """What the ``baseline`` column of scores/anomalies says for beats it judged."""
        return patient_model_name(self.patient_id, self.model_version)


def patient_model_name(patient_id: str, model_version: int) -> str:
    """``patient:{patient_id}:v{model_version}``."""
    return f"patient:{patient_id}:v{model_version}"


def patient_baseline_name(patient_id: str, threshold_version: int) -> str:
    """What the ``baseline`` column of scores/anomalies says for a per-patient threshold."""
    return f"patient:{patient_id}:t{threshold_version}"


def save_patient_artifacts(baseline: PatientBaseline, store: str) -> tuple[str, str]:
    """Write a patient baseline's files once in ``store``; returns (their URI, their sha256)."""
    return save_through_folder(baseline.save, store, BASELINE_FILES)


def load_patient_artifacts(uri: str, expected_sha256: str, store: str) -> PatientBaseline:
    """Read a patient baseline, refused unless it lies inside the model ``store`` and its files
    match the recorded sha256."""
    confine_to_store(uri, store)
    return load_through_folder(PatientBaseline.load, uri, BASELINE_FILES, expected_sha256)


def register_patient_model(
    engine: Engine,
    baseline: PatientBaseline,
    store: str,
    *,
    parent_version: int,
    input_length: int,
    hyperparameters: dict,
    preprocessing: dict,
    train_fingerprint: str,
    origin: str,
    seconds: float = 0.0,
) -> tuple[int, int]:
    """Register ``baseline`` as its patient's active model; returns (model, threshold) versions."""
    scores = baseline.baseline_scores
    row = {
        "architecture": PATIENT_ARCHITECTURE,
        "hyperparameters": hyperparameters,
        "input_length": input_length,
        "preprocessing": preprocessing,
        "train_fingerprint": train_fingerprint,
        "train_size": baseline.n_beats,
        "calibration_size": int(scores.size),
        "loss_mean": float(scores.mean()) if scores.size else 0.0,
        "loss_std": float(scores.std()) if scores.size else 0.0,
        "normal_losses": [float(v) for v in scores],
        "seed": hyperparameters.get("seed"),
        "training_seconds": seconds,
        "metrics": baseline.summary() | {"origin": origin},
        "status": "candidate",
        "patient_id": baseline.patient_id,
        "parent_version": parent_version,
        "created_at": utcnow(),
    }
    threshold_versions: list[int] = []

    def activate(conn: Connection, version: int) -> None:
        _archive_older(conn, baseline.patient_id, version)
        threshold_versions.append(
            insert_threshold(
                conn, version, baseline.threshold, origin, patient_id=baseline.patient_id
            )
        )

    version = register_version(
        engine,
        row,
        lambda: save_patient_artifacts(baseline, store),
        activate,
    )
    return version, threshold_versions[-1]


def _archive_older(conn: Connection, patient_id: str, version: int) -> None:
    """Archive the patient's other models and deactivate their thresholds."""
    versions, thresholds = table(conn.engine, "model_versions"), table(conn.engine, "thresholds")
    older = sa.select(versions.c.version).where(
        (versions.c.patient_id == patient_id)
        & (versions.c.architecture == PATIENT_ARCHITECTURE)
        & (versions.c.version != version)
        & (versions.c.status != "archived")
    )
    conn.execute(
        thresholds.update()
        .where((thresholds.c.patient_id == patient_id) & thresholds.c.model_version.in_(older))
        .values(active=False)
    )
    conn.execute(
        versions.update()
        .where(versions.c.version.in_([int(v) for v in conn.execute(older).scalars()]))
        .values(status="archived", archived_at=utcnow())
    )


def active_patient_models(engine: Engine, input_length: int, store: str) -> dict[str, PatientModel]:
    """{patient_id: PatientModel} of every patient's newest model with an active threshold whose
    beats have ``input_length`` samples; each artifact is loaded from inside the model ``store``
    with its sha256 checked."""
    versions, thresholds = table(engine, "model_versions"), table(engine, "thresholds")
    query = (
        sa.select(
            versions.c.patient_id,
            versions.c.version,
            versions.c.artifact_uri,
            versions.c.artifact_sha256,
            versions.c.hyperparameters,
            thresholds.c.threshold_version,
            thresholds.c.value,
        )
        .join(thresholds, thresholds.c.model_version == versions.c.version)
        .where(
            (versions.c.architecture == PATIENT_ARCHITECTURE)
            & (versions.c.input_length == input_length)
            & (versions.c.status != "archived")
            & thresholds.c.active
            & (thresholds.c.patient_id == versions.c.patient_id)
        )
        .order_by(versions.c.version)
    )
    with engine.connect() as conn:
        rows = {row.patient_id: row for row in conn.execute(query)}  # the newest wins
    return {
        patient: PatientModel(
            patient,
            int(row.version),
            int(row.threshold_version),
            float(row.value),
            _as_dict(row.hyperparameters).get("lead"),
            load_patient_artifacts(row.artifact_uri, row.artifact_sha256, store),
        )
        for patient, row in rows.items()
    }


def active_patient_thresholds(engine: Engine, model_version: int) -> dict[str, tuple[int, float]]:
    """{patient_id: (threshold_version, value)} of every active per-patient threshold."""
    thresholds = table(engine, "thresholds")
    query = sa.select(
        thresholds.c.patient_id, thresholds.c.threshold_version, thresholds.c.value
    ).where(
        (thresholds.c.model_version == model_version)
        & thresholds.c.active
        & thresholds.c.patient_id.is_not(None)
    )
    with engine.connect() as conn:
        return {row[0]: (int(row[1]), float(row[2])) for row in conn.execute(query)}


def _as_dict(value: object) -> dict:
    """A JSON column's value as a dict (some drivers hand back text)."""
    return json.loads(value) if isinstance(value, str) else dict(value or {})
