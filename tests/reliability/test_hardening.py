"""Hardening of the score path: a failed commit cannot stall a run, nor can a later batch's failure
roll back an earlier one (docs/guarantees.md)."""

from __future__ import annotations

import json
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


def _run_row(settings, run_id: str) -> dict:
    from ecgmon.storage.runs import read_run

    return read_run(create_db_engine(settings.database_url_plain), run_id)


def test_an_ambiguous_commit_retried_does_not_double_the_runs_counts(
    ecgmon_env, champion, synthetic_set, tmp_path: Path, monkeypatch
):
    """The connection dies after the server committed batch 2: the retry rewrites the same rows
    and the run's counts and drift counts are added once (the batch's idempotency key)."""
    import ecgmon.tasks.scoring as scoring
    from ecgmon.storage.runs import start_run
    from tests.conftest import write_day

    monkeypatch.setattr("ecgmon.storage.locks.time.sleep", lambda _s: None)
    real, calls = scoring.commit_batch, {"n": 0}

    def committed_then_lost(*args, **kw) -> None:
        real(*args, **kw)
        calls["n"] += 1
        if calls["n"] == 2:  # committed on the server; the client never hears it
            raise sa.exc.OperationalError("COMMIT", {}, ConnectionError("server closed"))

    monkeypatch.setattr(scoring, "commit_batch", committed_then_lost)
    folder = tmp_path / "beats"
    write_day(folder, "2026-11-01", synthetic_set.signals[:60])
    settings = ecgmon_env.model_copy(update={"batch_size": 20})
    start_run(create_db_engine(settings.database_url_plain), "run-a", "score", {}, str(folder))
    counts = _score(settings, folder, "run-a")
    assert calls["n"] == 4  # three batches, the second one twice
    row = _run_row(settings, "run-a")
    assert counts.n_scored == 60
    assert (row["n_read"], row["n_scored"]) == (60, 60)
    drift = row["drift_counts"]
    drift = json.loads(drift) if isinstance(drift, str) else drift
    assert drift["n"] == 60


@pytest.mark.postgres
def test_a_connection_dropped_inside_the_copy_is_retried(
    ecgmon_env, champion, synthetic_set, tmp_path: Path, monkeypatch
):
    """The server ends the batch's connection while the binary COPY streams (psycopg's own
    error, not SQLAlchemy's): the batch is retried and the run completes."""
    import ecgmon.storage.batches as batches
    from ecgmon.storage.runs import start_run
    from tests.conftest import write_day

    if not ecgmon_env.database_url_plain.startswith("postgresql"):
        pytest.skip("the binary COPY is PostgreSQL's")
    monkeypatch.setattr("ecgmon.storage.locks.time.sleep", lambda _s: None)
    admin = create_db_engine(ecgmon_env.database_url_plain)
    real, calls = batches.copy_columns, {"n": 0}

    def dropped_once(conn: sa.Connection, *args, **kw) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            pid = conn.connection.driver_connection.info.backend_pid
            with admin.connect() as other:
                other.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        real(conn, *args, **kw)

    monkeypatch.setattr(batches, "copy_columns", dropped_once)
    folder = tmp_path / "beats"
    write_day(folder, "2026-11-01", synthetic_set.signals[:60])
    settings = ecgmon_env.model_copy(update={"batch_size": 20})
    start_run(admin, "run-c", "score", {}, str(folder))
    counts = _score(settings, folder, "run-c")
    assert counts.n_scored == 60 and calls["n"] > 3
    with admin.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM scores").scalar() == 60
    assert _run_row(settings, "run-c")["n_scored"] == 60


def test_replay_neither_overwrites_originals_nor_scores_text_and_re_rejection_is_pending(
    ecgmon_env, champion, synthetic_set, tmp_path: Path
):
    """A repeated id's payload is never replayed over the original beat; samples written as
    text stay refused by an unchanged replay; a row rejected again is pending again."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ecgmon.records import Rejection
    from ecgmon.storage.quarantine import mark_replayed, rejected_rows, upsert_rejections
    from ecgmon.tasks.replay import replay
    from tests.badinput import part

    signals = synthetic_set.signals[:4]
    ids, times = ["r-0", "r-1", "r-1", "r-3"], [f"2026-11-01T00:00:0{i}Z" for i in range(4)]
    folder = tmp_path / "feed"
    pq.write_table(
        pa.table({"record_id": ids, "recorded_at": times, "signal": [list(s) for s in signals]}),
        part(folder, 0),
    )
    text = [[f"{v:.4f}" for v in s] for s in signals[:2]]  # numbers written as text
    pq.write_table(
        pa.table({"record_id": ["t-0", "t-1"], "recorded_at": times[:2], "signal": text}),
        part(folder, 1),
    )
    _score(ecgmon_env, folder, "run-1")
    engine = create_db_engine(ecgmon_env.database_url_plain)

    def loss_of_r1() -> float:
        with engine.connect() as conn:
            query = "SELECT loss FROM scores WHERE record_id = 'r-1'"
            return conn.exec_driver_sql(query).scalar_one()

    before = loss_of_r1()
    totals = replay(ecgmon_env, run_id="replay-1")
    assert (totals["n_scored"], totals["n_still_rejected"]) == (0, 2)  # the two text rows
    assert loss_of_r1() == before
    pending = {r["reason"] for r in rejected_rows(engine)}
    assert pending == {"duplicate_record_id", "non_numeric_signal"}

    row = rejected_rows(engine, reason="non_numeric_signal")[0]
    mark_replayed(engine, [row["id"]])
    again = Rejection(row["record_key"], row["reason"], "again", row["raw_payload"])
    with engine.begin() as conn:
        upsert_rejections(conn, row["source"], "run-2", [again])
    (after,) = [r for r in rejected_rows(engine, pending_only=False) if r["id"] == row["id"]]
    assert after["replayed_at"] is None and after["run_id"] == "run-2"


def test_two_sources_with_the_same_record_ids_keep_their_own_scores(
    ecgmon_env, champion, synthetic_set, tmp_path: Path
):
    """Two folders both numbering their beats beat-000000...: neither overwrites the other."""
    from tests.conftest import write_day

    for name, signals in (("a", synthetic_set.signals[:10]), ("b", synthetic_set.signals[10:20])):
        write_day(tmp_path / name, "2026-11-01", signals)
        _score(ecgmon_env, tmp_path / name, f"run-{name}")
    engine = create_db_engine(ecgmon_env.database_url_plain)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT source, count(*) FROM scores GROUP BY source").all()
    assert sorted(n for _, n in rows) == [10, 10]


def test_a_lost_run_lock_stops_the_run_before_its_next_commit(
    ecgmon_env, champion, synthetic_set, tmp_path: Path, monkeypatch
):
    """The advisory lock's connection ends after batch 1 (the server ends it): the run stops
    with SourceLockLostError instead of writing on without the lock."""
    import ecgmon.tasks.scoring as scoring
    from ecgmon.sources import open_source
    from ecgmon.storage.locks import LOCK_CLASS, SourceLockLostError, lock_key
    from tests.conftest import write_day

    if not ecgmon_env.database_url_plain.startswith("postgresql"):
        pytest.skip("the advisory lock is PostgreSQL's (SQLite's flock ends with the process)")
    admin = create_db_engine(ecgmon_env.database_url_plain)
    folder = tmp_path / "beats"
    write_day(folder, "2026-11-01", synthetic_set.signals[:60])
    key = lock_key(open_source(str(folder), None).key) & 0xFFFFFFFF
    real = scoring.commit_batch

    def end_the_lock_after_the_first(*args, **kw) -> None:
        real(*args, **kw)
        with admin.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
                    " AND classid = :c AND objid = :k AND database = ("
                    "SELECT oid FROM pg_database WHERE datname = current_database())"
                ),
                {"c": LOCK_CLASS, "k": key},
            )

    monkeypatch.setattr(scoring, "commit_batch", end_the_lock_after_the_first)
    settings = ecgmon_env.model_copy(update={"batch_size": 20})
    with pytest.raises(SourceLockLostError):
        _score(settings, folder, "run-l")
    with admin.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM scores").scalar() == 20
