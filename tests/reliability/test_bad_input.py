"""Every bad-input case of the corpus gets its expected outcome (quarantined with its reasons, all
scored, nothing read, or refused with a named error), never a crash."""

from pathlib import Path

import pytest

from tests.badinput import OUTCOMES, BadCase, corpus


def test_corpus_has_at_least_45_distinct_cases_each_with_an_expected_outcome():
    cases = corpus()
    names = [case.name for case in cases]
    assert len(names) >= 45 and len(set(names)) == len(names)
    assert all(case.outcome in OUTCOMES for case in cases)
    assert all(bool(case.expect) == (case.outcome == "quarantined") for case in cases)


def test_a_case_without_an_expected_outcome_is_refused():
    with pytest.raises(ValueError, match="no expected outcome"):
        BadCase("vague", lambda folder, length: None)


def test_every_bad_input_is_handled(ecgmon_env, champion, tmp_path: Path):
    from benchmarks.chaos import bad_input_phase
    from ecgmon.tasks.scoring import load_judge, resolve_judge

    judge = load_judge(ecgmon_env, resolve_judge(ecgmon_env))
    outcomes = bad_input_phase(ecgmon_env, judge, tmp_path / "feeds")
    crashed = [(o.name, o.detail) for o in outcomes if o.crashed]
    unhandled = [(o.name, o.detail) for o in outcomes if not o.handled]
    assert not crashed, crashed
    assert not unhandled, unhandled


@pytest.mark.parametrize("name", ["file_disappears_mid_read", "duplicate_id_across_files"])
def test_whole_file_and_cross_file_problems_leave_the_rest_scored(
    ecgmon_env, champion, tmp_path: Path, name: str
):
    """The good file next to a bad one is scored in full."""
    import sqlalchemy as sa

    from benchmarks.chaos import run_bad_case
    from ecgmon.storage.engine import create_db_engine
    from ecgmon.tasks.scoring import load_judge, resolve_judge

    case = next(c for c in corpus() if c.name == name)
    judge = load_judge(ecgmon_env, resolve_judge(ecgmon_env))
    outcome = run_bad_case(case, ecgmon_env.model_copy(update={"batch_size": 3}), judge, tmp_path)
    assert outcome.handled, outcome.detail
    with create_db_engine(ecgmon_env.database_url_plain).connect() as conn:
        scored = conn.execute(sa.text("select count(*) from scores")).scalar_one()
    assert scored == 6  # the first file's six beats
