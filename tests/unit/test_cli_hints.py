"""What the command line says when the user's input cannot work: a model version that does not
exist, a database that refuses the login or is not there, a source folder with nothing to read."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from ecgmon.cli.main import main
from tests.conftest import POSTGRES_URL, write_day


def _error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    return capsys.readouterr().err


def _refusal(settings, source: Path, model_version: int | None = None) -> str:
    """What ``ecgmon score`` checks before its flow starts, and says (``ecgmon: error: ...``)."""
    from ecgmon.errors import EcgmonError
    from ecgmon.tasks.scoring import check_score_inputs

    with pytest.raises(EcgmonError) as refused:
        check_score_inputs(settings, str(source), None, model_version)
    return str(refused.value)


def test_a_model_version_that_does_not_exist_is_named_not_recalibrated(
    ecgmon_env, champion, synthetic_set, tmp_path: Path
) -> None:
    write_day(tmp_path / "in", "2026-11-01", synthetic_set.signals[:5])
    said = _refusal(ecgmon_env, tmp_path / "in", 99)
    assert "model version 99 is not registered" in said
    assert "recalibrate" not in said


def test_a_model_version_without_threshold_still_suggests_recalibrate(
    ecgmon_env, tiny_detector, synthetic_set, tmp_path: Path
) -> None:
    from ecgmon.models.registry.versions import register_model
    from ecgmon.storage.engine import create_db_engine

    engine = create_db_engine(ecgmon_env.database_url_plain)
    version = register_model(engine, tiny_detector, ecgmon_env.model_store)
    write_day(tmp_path / "in", "2026-11-01", synthetic_set.signals[:5])
    said = _refusal(ecgmon_env, tmp_path / "in", version)
    assert f"ecgmon recalibrate --model-version {version}" in said


@pytest.mark.parametrize("content", [None, "beats.csv"])
def test_a_source_folder_with_nothing_to_read_is_named(
    ecgmon_env, champion, tmp_path: Path, content: str | None
) -> None:
    folder = tmp_path / "incoming"
    folder.mkdir()
    if content:
        (folder / content).write_text("record_id,recorded_at\n")
    said = _refusal(ecgmon_env, folder)
    assert f"source {folder} holds no Parquet file" in said
    assert ("e.g. beats.csv" in said) if content else ("it is empty" in said)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_server_is_told_apart_from_a_refused_login(monkeypatch, capsys) -> None:
    url = f"postgresql+psycopg://someone:secret-pw@127.0.0.1:{_closed_port()}/ecgmon"
    monkeypatch.setenv("ECGMON_DATABASE_URL", url)
    err = _error(capsys, ["models", "list"])
    assert "no server: nothing answered" in err and "secret-pw" not in err


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason="ECGMON_TEST_POSTGRES_URL is not set")
def test_a_refused_login_is_told_apart_from_no_server(monkeypatch, capsys) -> None:
    from sqlalchemy.engine import make_url

    server = make_url(POSTGRES_URL)
    url = server.set(username="no_such_ecgmon_role", password="secret-pw").render_as_string(
        hide_password=False
    )
    monkeypatch.setenv("ECGMON_DATABASE_URL", url)
    err = _error(capsys, ["models", "list"])
    assert "login refused" in err and "secret-pw" not in err
