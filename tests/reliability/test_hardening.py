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
