"""Hardening of the score path: a failed commit cannot stall a run, nor can a later batch's failure
roll back an earlier one (docs/guarantees.md)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from ecgmon.storage.engine import create_db_engine
from ecgmon.storage.locks import source_lock

DEADLINE = 60  # seconds: a run that takes longer is taken to hang


def _with_deadline(action: Callable[[], object], seconds: float = DEADLINE) -> BaseException:
    """Run ``action`` in a daemon thread; fail the test if it has not ended within ``seconds``;
    returns what it raised (the test expects it to raise)."""
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            action()
        except BaseException as err:
            outcome.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"the run did not end within {seconds} s (it hangs)"
    assert outcome, "the run was expected to fail"
    return outcome[0]


def _refuse_inserts_of(engine: sa.Engine, record_id: str) -> None:
    """A database trigger that makes the commit of the batch holding ``record_id`` fail."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON scores "
                f"WHEN new.record_id = '{record_id}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
            return
        conn.exec_driver_sql(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF new.record_id = '{record_id}' THEN RAISE EXCEPTION 'refused'; END IF; "
            "RETURN new; END $$"
        )
        conn.exec_driver_sql(
            "CREATE TRIGGER refuse BEFORE INSERT ON scores FOR EACH ROW EXECUTE FUNCTION refuse()"
        )


@pytest.mark.parametrize("n_batches", [3, 4, 5])
def test_a_failed_commit_while_the_reader_is_ahead_ends_the_run(
    ecgmon_env, champion, synthetic_set, tmp_path: Path, n_batches: int
):
    """Batch 1's commit fails while the reader has read every later batch and waits to hand on
    its end marker: the run fails with the commit's error and releases the source lock."""
    from ecgmon.sources import open_source
    from ecgmon.tasks.scoring import resolve_judge, score_new_records
    from tests.conftest import write_day

    engine = create_db_engine(ecgmon_env.database_url_plain)
    folder = tmp_path / "beats"
    write_day(folder, "2026-11-01", synthetic_set.signals[: 20 * n_batches])
    _refuse_inserts_of(engine, "beat-000000")
    settings = ecgmon_env.model_copy(update={"batch_size": 20})
    ref = resolve_judge(settings)
    error = _with_deadline(lambda: score_new_records(settings, str(folder), None, ref, "run-1"))
    assert "refused" in str(error)
    with source_lock(engine, open_source(str(folder), None).key, wait=False):
        pass  # the lock was released
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM scores").scalar() == 0
        assert conn.exec_driver_sql("SELECT count(*) FROM ingest_watermarks").scalar() == 0


def test_poison_ids_are_quarantined_and_the_rest_scored(ecgmon_env, champion, tmp_path: Path):
    """A patient_id longer than its column, a NUL in a record_id or a patient_id: each row is
    quarantined with a reason and its batch commits (PostgreSQL refused the whole batch)."""
    from tests.badinput import frame, part

    df = frame("px", champion_length(ecgmon_env))
    df["patient_id"] = df["patient_id"].astype(object)
    df.loc[0, "patient_id"] = "p" * 129
    df.loc[1, "record_id"] = "px-\x00-1"
    df.loc[2, "patient_id"] = "p\x001"
    folder = tmp_path / "feed"
    df.to_parquet(part(folder), index=False)
    engine = create_db_engine(ecgmon_env.database_url_plain)
    for run in ("run-1", "run-2"):  # a second run is fine too (nothing left to read)
        _score(ecgmon_env, folder, run)
    with engine.connect() as conn:
        scored = conn.exec_driver_sql("SELECT count(*) FROM scores").scalar()
        reasons = conn.exec_driver_sql(
            "SELECT reason, record_key FROM rejected_records ORDER BY record_key"
        ).all()
    assert scored == len(df) - 3
    assert sorted(r for r, _ in reasons) == ["nul_in_id", "nul_in_id", "patient_id_too_long"]
    assert any("\\x00" in key for _, key in reasons)


def test_two_long_rejection_keys_sharing_their_start_stay_two_rows(ecgmon_env):
    from ecgmon.records import Rejection
    from ecgmon.storage.quarantine import RECORD_KEY_CHARS, upsert_rejections

    engine = create_db_engine(ecgmon_env.database_url_plain)
    start = "f.parquet#row=1:" + "a" * RECORD_KEY_CHARS
    rejections = [Rejection(start + end, "record_id_too_long", "long") for end in ("1", "2")]
    with engine.begin() as conn:
        upsert_rejections(conn, "src", "run-1", rejections)
    with engine.connect() as conn:
        keys = conn.exec_driver_sql("SELECT record_key FROM rejected_records").scalars().all()
    assert len(set(keys)) == 2 and all(len(k) <= RECORD_KEY_CHARS for k in keys)


def champion_length(settings) -> int:
    from ecgmon.models.registry.versions import champion_version, get_version

    engine = create_db_engine(settings.database_url_plain)
    return int(get_version(engine, champion_version(engine))["input_length"])


def _score(settings, folder: Path, run_id: str):
    from ecgmon.tasks.scoring import resolve_judge, score_new_records

    return score_new_records(settings, str(folder), None, resolve_judge(settings), run_id)
