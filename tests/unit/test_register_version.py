"""Concurrent registrations get distinct versions, each with its own artifacts."""

import hashlib
import threading
import time
from pathlib import Path

import sqlalchemy as sa

from ecgmon.clock import utcnow
from ecgmon.models.registry.versions import register_version
from ecgmon.storage.engine import create_db_engine, table, upgrade_schema


def test_concurrent_registrations_keep_their_own_artifacts(db_url: str, tmp_path: Path) -> None:
    engine = create_db_engine(db_url)
    upgrade_schema(engine)
    row = {"architecture": "dense", "hyperparameters": {}, "input_length": 4, "preprocessing": {},
           "train_fingerprint": "f", "train_size": 1, "calibration_size": 1, "loss_mean": 0.1,
           "loss_std": 0.0, "normal_losses": [0.1], "status": "candidate",
           "created_at": utcnow()}  # fmt: skip

    def register(name: str) -> None:
        def save() -> tuple[str, str]:
            content = name.encode()
            sha = hashlib.sha256(content).hexdigest()
            time.sleep(0.3)  # both would pick the same version in this window without the lock
            (tmp_path / sha).write_bytes(content)
            return str(tmp_path / sha), sha

        register_version(engine, row, save)

    threads = [threading.Thread(target=register, args=(f"model-{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    versions = table(engine, "model_versions")
    with engine.connect() as conn:
        rows = conn.execute(sa.select(versions.c.version, versions.c.artifact_uri,
                                      versions.c.artifact_sha256)).all()  # fmt: skip
    assert sorted(r.version for r in rows) == [1, 2, 3]
    for r in rows:  # every row's checksum matches the file at its own URI
        assert hashlib.sha256(Path(r.artifact_uri).read_bytes()).hexdigest() == r.artifact_sha256
