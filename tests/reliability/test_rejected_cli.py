"""``ecgmon rejected list|replay``: quarantined rows keep their payload and score after a fix."""

import json

import numpy as np
import pytest
import sqlalchemy as sa

from ecgmon.storage.engine import create_db_engine
from tests.conftest import write_day


def test_list_then_replay_after_a_fix(ecgmon_env, champion, synthetic_set, tmp_path, monkeypatch):
    import ecgmon.tasks.scoring
    from ecgmon.storage.quarantine import rejected_rows
    from ecgmon.storage.runs import start_run
    from ecgmon.tasks.replay import replay
    from ecgmon.tasks.scoring import resolve_judge, score_new_records
    from ecgmon.validation import validate_batch

    signals = synthetic_set.signals[:20].copy()
    signals[2] = np.nan  # truly bad: stays quarantined
    folder = tmp_path / "in"
    write_day(folder, "2026-11-01", signals)
    # a too strict validator (the "bug") quarantines good beats as implausible
    strict = lambda raw, length: validate_batch(raw, length, max_abs_amplitude=0.3)  # noqa: E731
    engine = create_db_engine(ecgmon_env.database_url_plain)
    start_run(engine, "run-strict", "score", {}, str(folder))
    with monkeypatch.context() as patch:
        patch.setattr(ecgmon.tasks.scoring, "validate_batch", strict)
        counts = score_new_records(
            ecgmon_env, str(folder), None, resolve_judge(ecgmon_env), "run-strict"
        )
    assert counts.n_rejected > 1 and counts.n_read == counts.n_scored + counts.n_rejected

    listed = rejected_rows(engine, run_id="run-strict")
    assert len(listed) == counts.n_rejected
    assert all(json.loads(r["raw_payload"])["record_id"] for r in listed)  # payload kept
    assert {r["reason"] for r in listed} == {"non_finite", "implausible_amplitude"}

    totals = replay(ecgmon_env, reason="implausible_amplitude")
    assert totals["n_scored"] == counts.n_rejected - 1 and totals["n_still_rejected"] == 0
    with engine.connect() as conn:
        scored = conn.execute(sa.text("select count(*) from scores")).scalar_one()
    assert scored == 19
    assert [r["reason"] for r in rejected_rows(engine)] == ["non_finite"]
    totals = replay(ecgmon_env)  # the NaN beat is still bad
    assert (totals["n_scored"], totals["n_still_rejected"]) == (0, 1)


@pytest.mark.flow
def test_the_replay_flow_records_its_run(
    prefect_harness, ecgmon_env, champion, synthetic_set, tmp_path
):
    from ecgmon.flows.replay import replay_flow
    from ecgmon.storage.runs import start_run
    from ecgmon.tasks.scoring import resolve_judge, score_new_records

    signals = synthetic_set.signals[:5].copy()
    signals[1] = np.nan
    folder = tmp_path / "in"
    write_day(folder, "2026-11-01", signals)
    engine = create_db_engine(ecgmon_env.database_url_plain)
    start_run(engine, "run-1", "score", {}, str(folder))
    score_new_records(ecgmon_env, str(folder), None, resolve_judge(ecgmon_env), "run-1")

    totals = replay_flow(reason="non_finite")
    assert (totals["n_replayed"], totals["n_scored"], totals["n_still_rejected"]) == (1, 0, 1)
    with engine.connect() as conn:
        run = conn.execute(
            sa.text("select flow, status, parameters from pipeline_runs where run_id = :r"),
            {"r": totals["run_id"]},
        ).one()
    parameters = json.loads(run.parameters) if isinstance(run.parameters, str) else run.parameters
    assert (run.flow, run.status) == ("replay", "completed")
    assert parameters == {"source": None, "reason": "non_finite"}


def test_the_commands_are_registered():
    from ecgmon.cli.main import build_parser

    args = build_parser().parse_args(["rejected", "list", "--reason", "non_finite", "--json"])
    assert args.reason == "non_finite" and args.json
    args = build_parser().parse_args(["rejected", "replay", "--source", "parquet:/x"])
    assert args.source == "parquet:/x"
