"""Shared fixtures: isolated Prefect home, SQLite and PostgreSQL databases, a tiny trained model."""

from __future__ import annotations

import gc
import logging
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

_PREFECT_HOME = tempfile.mkdtemp(prefix="ecgmon-test-prefect-")
os.environ.update(
    PREFECT_HOME=_PREFECT_HOME,
    PREFECT_LOCAL_STORAGE_PATH=str(Path(_PREFECT_HOME) / "storage"),
    PREFECT_SERVER_ANALYTICS_ENABLED="false",
    DO_NOT_TRACK="1",
    TF_CPP_MIN_LOG_LEVEL="2",
    PREFECT_LOGGING_LEVEL="WARNING",
)
# Unit tests must not start an engine by accident; the harness fixture turns the API on.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_ENABLED", "false")
POSTGRES_URL = os.environ.get("ECGMON_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(autouse=True)
def _restore_root_logging() -> Iterator[None]:
    """``ecgmon.cli.main.main`` runs ``logging.basicConfig`` on pytest's captured stderr: put the
    root logger's handlers back, so nothing writes to a closed capture later."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One Prefect test server for the whole session (start costs ~10 s)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with (
        prefect_test_harness(server_startup_timeout=120),
        temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        yield


def _postgres_schema_url(base: str) -> Iterator[str]:
    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        # Engines a test made and dropped can sit in reference cycles with their pooled
        # connections open until a full collection; over a long session they add up to the
        # server's max_connections. Collect them before the next test connects.
        gc.collect()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty results database: a SQLite file, and a fresh PostgreSQL schema when configured."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ecgmon.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("ECGMON_TEST_POSTGRES_URL is not set (PostgreSQL tests run in CI)")
    yield from _postgres_schema_url(POSTGRES_URL)


@pytest.fixture
def ecgmon_env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """ECGMON_* pointing at a migrated empty database and a temporary model store."""
    from ecgmon.settings import get_settings
    from ecgmon.storage.engine import create_db_engine, upgrade_schema

    monkeypatch.setenv("ECGMON_DATABASE_URL", db_url)
    monkeypatch.setenv("ECGMON_MODEL_STORE", str(tmp_path / "models"))
    monkeypatch.setenv("ECGMON_ARTIFACT_DIR", str(tmp_path / "artifacts"))
    monkeypatch.delenv("ECGMON_ALERT_URLS", raising=False)
    upgrade_schema(create_db_engine(db_url))
    return get_settings()


@pytest.fixture(scope="session")
def synthetic_set():
    """600 synthetic beats of 140 samples, a quarter of them abnormal (labels 1 = normal)."""
    from ecgmon.synthetic import synthetic_beats

    return synthetic_beats(600, 140, 0.25, seed=3)


@pytest.fixture(scope="session")
def tiny_detector(synthetic_set):
    """A dense detector trained for a few epochs on the normal synthetic beats."""
    from ecgmon.models.autoencoder.detector import AutoencoderDetector

    normal = synthetic_set.signals[synthetic_set.normal_mask()]
    return AutoencoderDetector.fit(normal, architecture="dense", epochs=8, seed=0)


@pytest.fixture
def champion(ecgmon_env, tiny_detector) -> int:
    """The tiny detector registered, calibrated and promoted in the test database."""
    from ecgmon.models.registry.versions import add_threshold, promote, register_model
    from ecgmon.storage.engine import create_db_engine

    engine = create_db_engine(ecgmon_env.database_url_plain)
    version = register_model(engine, tiny_detector, ecgmon_env.model_store)
    add_threshold(engine, version, tiny_detector.threshold(), origin="test")
    promote(engine, version)
    return version


def write_day(folder: Path, day: str, signals: np.ndarray, start: int = 0) -> Path:
    """One daily Parquet partition of beats (n, length) with ids beat-<start+i>."""
    import pandas as pd

    path = folder / f"date={day}" / "part-0.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "record_id": [f"beat-{start + i:06d}" for i in range(len(signals))],
            "recorded_at": pd.Timestamp(day, tz="UTC")
            + pd.to_timedelta(np.arange(len(signals)), unit="s"),
            "patient_id": "p1",
            "signal": list(signals.astype(np.float32)),
        }
    ).to_parquet(path, index=False)
    return path


#: Tests that start processes (the ecgmon CLI, a wheel build, a benchmark, SIGKILLed children),
#: train beyond the session's tiny model or evaluate on the shared data sets: ``make test-fast``
#: (``-m "not slow"``) leaves them out, as it leaves out every test on the Prefect test server.
SLOW_MODULES = (
    "tests/data/",
    "tests/model/",
    "tests/reliability/test_kills_and_locking.py",
    "tests/reliability/test_bad_input.py",
    "tests/unit/test_benchmark.py",
    "tests/unit/test_flow_imports.py",
)
SLOW_TESTS = (
    "test_the_wheel_holds_one_import_name_and_its_resources",
    "test_no_secret_in_logs_rows_artifacts_or_errors",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark as slow the tests above and every test that needs the Prefect test server."""
    root = Path(str(config.rootpath))
    for item in items:
        where = Path(str(item.path)).relative_to(root).as_posix()
        if (
            where.startswith(SLOW_MODULES)
            or item.originalname in SLOW_TESTS
            or "prefect_harness" in getattr(item, "fixturenames", ())
        ):
            item.add_marker(pytest.mark.slow)
