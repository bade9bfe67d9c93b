"""Model artifacts are checked and loaded safely; secrets never reach logs, rows or messages."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from ecgmon.errors import ArtifactIntegrityError
from ecgmon.storage.engine import create_db_engine

ROOT = Path(__file__).resolve().parents[2]


def test_a_tampered_model_file_is_refused(ecgmon_env, champion):
    from ecgmon.models.autoencoder.detector import MODEL_FILE
    from ecgmon.models.registry.versions import get_version, load_detector

    engine = create_db_engine(ecgmon_env.database_url_plain)
    model_file = Path(get_version(engine, champion)["artifact_uri"]) / MODEL_FILE
    model_file.write_bytes(model_file.read_bytes() + b"\0evil")
    with pytest.raises(ArtifactIntegrityError, match="refusing to load"):
        load_detector(engine, champion, ecgmon_env.model_store)


def test_a_tampered_metadata_file_is_refused(ecgmon_env, champion):
    from ecgmon.models.autoencoder.detector import METADATA_FILE
    from ecgmon.models.registry.versions import get_version, load_detector

    engine = create_db_engine(ecgmon_env.database_url_plain)
    meta = Path(get_version(engine, champion)["artifact_uri"]) / METADATA_FILE
    meta.write_text(meta.read_text().replace("{", "{ ", 1))
    with pytest.raises(ArtifactIntegrityError):
        load_detector(engine, champion, ecgmon_env.model_store)


def test_a_score_run_with_a_tampered_model_writes_nothing_and_stops_reading(
    ecgmon_env, champion, synthetic_set, tmp_path
):
    """The model loads while the first batches are read: its refusal still ends the run
    before any row is written, and the reader thread does not outlive it."""
    import threading

    from ecgmon.models.autoencoder.detector import MODEL_FILE
    from ecgmon.models.registry.versions import get_version
    from ecgmon.tasks.scoring import resolve_judge, score_new_records
    from tests.conftest import write_day

    engine = create_db_engine(ecgmon_env.database_url_plain)
    folder = tmp_path / "beats"
    write_day(folder, "2026-11-01", synthetic_set.signals[:300])
    model_file = Path(get_version(engine, champion)["artifact_uri"]) / MODEL_FILE
    model_file.write_bytes(model_file.read_bytes() + b"\0evil")
    settings = ecgmon_env.model_copy(update={"batch_size": 50})  # several batches to read ahead
    with pytest.raises(ArtifactIntegrityError):
        score_new_records(settings, str(folder), None, resolve_judge(settings), "run-tampered")
    with engine.connect() as conn:
        for name in ("scores", "ingest_watermarks", "rejected_records"):
            assert conn.exec_driver_sql(f"SELECT count(*) FROM {name}").scalar() == 0
    assert not [t for t in threading.enumerate() if t.name == "ecgmon-read"]


def test_models_load_in_safe_mode_and_nothing_is_unpickled():
    detector = (ROOT / "models" / "autoencoder" / "detector.py").read_text()
    assert "safe_mode=True" in detector
    for folder in ("ecgmon", "models", "tasks", "flows"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text()
            assert not re.search(r"^\s*(import|from)\s+(c?pickle|joblib|dill)\b", text, re.M), path
            assert "allow_pickle=True" not in text, path
            assert "read_pickle" not in text, path


PASSWORD = "s3cr3t-pw"
TOKEN = "tok-123-secret"


@pytest.fixture
def secret_url(db_url: str) -> str:
    """The test database reached as a role with a password (PostgreSQL only)."""
    if not db_url.startswith("postgresql"):
        pytest.skip("a password in the URL needs PostgreSQL")
    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    schema = re.search(r"search_path%3D(\w+)", db_url).group(1)
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.exec_driver_sql("select 1 from pg_roles where rolname='ecg_secret'").first()
        if not exists:
            conn.exec_driver_sql(f"create role ecg_secret login password '{PASSWORD}'")
        conn.exec_driver_sql(f"grant all on schema {schema} to ecg_secret")
    admin.dispose()
    secret = url.set(username="ecg_secret", password=PASSWORD)
    return secret.render_as_string(hide_password=False)


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run ``ecgmon -v ARGS`` in a child process: everything it prints and logs is captured."""
    return subprocess.run(
        [sys.executable, "-m", "ecgmon.cli.main", "-v", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )


def test_no_secret_in_logs_rows_artifacts_or_errors(
    secret_url, tmp_path, synthetic_set, tiny_detector, prefect_harness
):
    from prefect.settings import PREFECT_API_URL

    from ecgmon.models.registry.versions import add_threshold, promote, register_model
    from ecgmon.storage.engine import upgrade_schema
    from tests.conftest import write_day

    assert PASSWORD in secret_url
    engine = create_db_engine(secret_url)
    upgrade_schema(engine)
    version = register_model(engine, tiny_detector, str(tmp_path / "models"))
    add_threshold(engine, version, tiny_detector.threshold(), origin="test")
    promote(engine, version)
    signals = synthetic_set.signals[:30].copy()
    signals[3] = float("nan")
    folder = tmp_path / "in"
    write_day(folder, "2026-11-01", signals)
    env = {
        **os.environ,
        "ECGMON_DATABASE_URL": secret_url,
        "ECGMON_MODEL_STORE": str(tmp_path / "models"),
        # nobody listens on port 9: the alert fails, and its error must not show the token
        "ECGMON_ALERT_URLS": f"json://127.0.0.1:9/hooks?token={TOKEN}",
        "ECGMON_ANOMALY_RATE_BOUND": "0",
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),  # the session's test server
        "PREFECT_LOGGING_LEVEL": "DEBUG",
    }
    ok = _cli(["score", "--source", str(folder), "--json"], env)
    assert ok.returncode == 0, ok.stderr[-2000:]
    missing = _cli(["score", "--source", str(tmp_path / "nowhere")], env)
    down = _cli(
        ["score", "--source", str(folder)],
        env | {"ECGMON_DATABASE_URL": secret_url.replace(":5432/", ":9/")},
    )
    assert missing.returncode != 0 and down.returncode != 0
    texts = {f"{name} {stream}": getattr(run, stream)
             for name, run in (("ok", ok), ("missing", missing), ("down", down))
             for stream in ("stdout", "stderr")}  # fmt: skip
    assert "alert" in texts["ok stderr"].lower() or "alert" in texts["ok stdout"].lower()
    with engine.connect() as conn:
        for t in ("pipeline_runs", "rejected_records", "model_versions", "anomalies"):
            texts[t] = repr(conn.execute(sa.text(f"select * from {t}")).all())
    texts["artifacts"] = "\n".join(
        p.read_bytes().decode("latin-1") for p in (tmp_path / "models").rglob("*") if p.is_file()
    )
    for where, text in texts.items():
        assert PASSWORD not in text, f"password in {where}"
        assert TOKEN not in text, f"alert token in {where}"


def test_redact_url_masks_query_secrets():
    from ecgmon.storage.engine import redact_url, url_has_secret

    url = f"postgresql+psycopg://u@h/db?password={PASSWORD}&sslpassword={PASSWORD}&sslmode=require"
    shown = redact_url(url)
    assert PASSWORD not in shown and "sslmode=require" in shown
    assert url_has_secret(url) and url_has_secret(f"postgresql://u:{PASSWORD}@h/db")
    assert not url_has_secret("postgresql://u@h/db?sslmode=require")


def test_a_password_in_a_source_url_reaches_neither_our_table_nor_prefect(
    secret_url, tmp_path, tiny_detector, prefect_harness
):
    """``score`` and ``backfill --source URL`` with a real password-protected role: neither
    ``pipeline_runs`` nor Prefect's stored flow-run parameters hold the password; a flow given
    the URL as a parameter refuses it (``env:NAME`` required)."""
    import numpy as np
    import pandas as pd
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    from ecgmon.errors import ConfigurationError
    from ecgmon.flows.backfill import backfill_flow
    from ecgmon.flows.score import score_flow
    from ecgmon.models.registry.versions import add_threshold, promote, register_model
    from ecgmon.storage.engine import upgrade_schema

    engine = create_db_engine(secret_url)
    upgrade_schema(engine)
    version = register_model(engine, tiny_detector, str(tmp_path / "models"))
    add_threshold(engine, version, tiny_detector.threshold(), origin="test")
    promote(engine, version)
    columns = {
        "record_id": [f"db-{i}" for i in range(8)],
        "recorded_at": pd.Timestamp("2026-11-01", tz="UTC") + pd.to_timedelta(range(8), "s"),
        "patient_id": "p1",
    }
    for j in range(tiny_detector.input_length):
        columns[f"s{j:03d}"] = np.sin(np.arange(8) + j / 10)
    pd.DataFrame(columns).to_sql("beats", engine, index=False)
    env = {
        **os.environ,
        "ECGMON_DATABASE_URL": secret_url,
        "ECGMON_MODEL_STORE": str(tmp_path / "models"),
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
    }
    day = ["--start", "2026-11-01", "--end", "2026-11-01"]
    for args in (["score"], ["backfill", *day]):
        done = _cli([*args, "--source", secret_url, "--table", "beats"], env)
        assert done.returncode == 0, done.stderr[-2000:]
        assert PASSWORD not in done.stdout + done.stderr
    for flow, extra in ((score_flow, {}), (backfill_flow, {"start": "2026-11-01", "end": "x"})):
        with pytest.raises(ConfigurationError, match="env:NAME") as refused:
            flow.fn(source=secret_url, table="beats", **extra)
        assert PASSWORD not in str(refused.value)
    with engine.connect() as conn:
        runs = conn.execute(sa.text("select flow, parameters, source from pipeline_runs")).all()
    assert {r.flow for r in runs} >= {"score", "backfill"}
    assert PASSWORD not in repr(runs)
    with get_client(sync_client=True) as client:
        stored = client.read_flow_runs()
    sources = [r.parameters.get("source") for r in stored]
    assert sources.count("env:ECGMON_SOURCE_URL") >= 2, sources  # the score and backfill runs
    assert PASSWORD not in repr([r.parameters for r in stored])


def _point_champion_elsewhere(engine, champion: int, elsewhere: Path) -> None:
    """The champion's artifacts copied outside the store (so their sha256 still matches) and
    its registry row pointed at the copy."""
    import shutil

    from ecgmon.models.registry.versions import get_version

    shutil.copytree(get_version(engine, champion)["artifact_uri"], elsewhere)
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE model_versions SET artifact_uri = :u WHERE version = :v"),
            {"u": str(elsewhere), "v": champion},
        )


def test_a_registry_row_pointing_outside_the_model_store_is_refused(ecgmon_env, champion, tmp_path):
    """Scoring refuses to load artifacts a registry row points to outside the store."""
    from ecgmon.tasks.scoring import load_judge, resolve_judge

    engine = create_db_engine(ecgmon_env.database_url_plain)
    _point_champion_elsewhere(engine, champion, tmp_path / "elsewhere")
    with pytest.raises(ArtifactIntegrityError, match="outside the model store"):
        load_judge(ecgmon_env, resolve_judge(ecgmon_env))


def test_recalibration_and_pictures_refuse_artifacts_outside_the_model_store(
    ecgmon_env, champion, synthetic_set, tmp_path
):
    """Every path that loads a model (here recalibration on new normal beats and the flagged-beat
    pictures) is confined to the model store, not only scoring."""
    from ecgmon.synthetic import write_ucr
    from ecgmon.tasks.flagged_beats import draw_beats
    from ecgmon.tasks.recalibration import recalibrate
    from tests.conftest import write_day

    engine = create_db_engine(ecgmon_env.database_url_plain)
    lines = write_ucr(synthetic_set, tmp_path / "all.tsv").read_text().splitlines()
    other = tmp_path / "other.tsv"  # not the training beats: their losses come from the model
    other.write_text("\n".join(lines[1:]) + "\n")
    folder = tmp_path / "beats"
    write_day(folder, "2026-11-01", synthetic_set.signals[:3])
    beat = {
        "record_id": "beat-000000",
        "source": f"parquet:{folder}",
        "model_version": champion,
        "baseline": "population",
        "loss": 1.0,
        "threshold": 0.5,
    }
    _point_champion_elsewhere(engine, champion, tmp_path / "elsewhere")
    with pytest.raises(ArtifactIntegrityError, match="outside the model store"):
        recalibrate(ecgmon_env, data=str(other))
    with pytest.raises(ArtifactIntegrityError, match="outside the model store"):
        draw_beats(engine, [beat], tmp_path / "pictures", ecgmon_env.model_store)
