"""prefect.yaml without a server: entrypoints load, parameters validate, schedules build."""

from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from prefect.client.schemas.objects import ConcurrencyLimitConfig
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule
from prefect.flows import load_flow_from_entrypoint

ROOT = Path(__file__).resolve().parents[2]
DOC = yaml.safe_load((ROOT / "prefect.yaml").read_text())
DEPLOYMENTS = {d["name"]: d for d in DOC["deployments"]}
SCHEDULED = {"score": "interval", "retrain": "cron", "recalibrate": "cron"}
KNOWN_KEYS = {
    "name",
    "description",
    "entrypoint",
    "parameters",
    "schedules",
    "concurrency_limit",
    "work_pool",
    "tags",
    "version",
}


def test_the_five_deployments_exist_with_known_keys_only():
    assert set(DEPLOYMENTS) == {"score", "retrain", "recalibrate", "backfill", "report"}
    for spec in DEPLOYMENTS.values():
        assert set(spec) <= KNOWN_KEYS, set(spec) - KNOWN_KEYS  # unknown keys are ignored silently
        assert spec["work_pool"]["name"] == "ecgmon-process"


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_entrypoint_loads_and_parameters_validate(name, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # module entrypoints: loaded from the package, not the checkout
    spec = DEPLOYMENTS[name]
    flow = load_flow_from_entrypoint(spec["entrypoint"])
    assert flow.name == name
    flow.validate_parameters(spec.get("parameters") or {})


@pytest.mark.parametrize("name", sorted(SCHEDULED))
def test_schedules_build_with_slug_and_timezone(name):
    schedules = DEPLOYMENTS[name]["schedules"]
    assert len(schedules) == 1
    for s in schedules:
        assert s["slug"] and s["timezone"] == "UTC"
        body = {k: v for k, v in s.items() if k not in ("slug", "active")}
        built = IntervalSchedule(**body) if SCHEDULED[name] == "interval" else CronSchedule(**body)
        assert built.timezone == "UTC"
    if name == "score":
        assert built.interval == timedelta(minutes=15)


def test_backfill_has_no_schedule_and_concurrency_is_as_documented():
    assert not DEPLOYMENTS["backfill"].get("schedules")
    score = ConcurrencyLimitConfig(**DEPLOYMENTS["score"]["concurrency_limit"])
    assert (score.limit, score.collision_strategy.value) == (1, "CANCEL_NEW")
    backfill = ConcurrencyLimitConfig(**DEPLOYMENTS["backfill"]["concurrency_limit"])
    assert backfill.collision_strategy.value == "ENQUEUE"


def test_pull_step_sets_the_working_directory_and_slugs_are_unique():
    step = DOC["pull"][0]["prefect.deployments.steps.set_working_directory"]
    assert "directory" in step
    slugs = [s["slug"] for d in DEPLOYMENTS.values() for s in d.get("schedules") or []]
    assert len(slugs) == len(set(slugs))


def test_serve_builds_the_same_schedules():
    from ecgmon.flows.serve import build_schedule

    built = build_schedule(DEPLOYMENTS["score"]["schedules"][0])
    assert (built.slug, built.timezone, built.interval) == (
        "score-every-15-minutes",
        "UTC",
        timedelta(minutes=15),
    )


def test_serve_deployments_mirror_prefect_yaml():
    from ecgmon.flows.serve import runner_deployments

    served = {d.name: d for d in runner_deployments()}
    assert set(served) == set(DEPLOYMENTS)
    assert [s.slug for s in served["score"].schedules] == ["score-every-15-minutes"]
    assert served["score"].concurrency_options.collision_strategy.value == "CANCEL_NEW"
    assert not served["backfill"].schedules


def test_report_runs_daily_after_the_utc_day_ended():
    schedule = DEPLOYMENTS["report"]["schedules"][0]
    assert (schedule["cron"], schedule["timezone"]) == ("0 6 * * *", "UTC")
    assert DEPLOYMENTS["report"]["parameters"] == {"days": 1}
