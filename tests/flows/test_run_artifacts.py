"""Artifacts that mean something: the train run's summary shows training figures and pictures
(no table of zeros), a Parquet score run gets flagged-beat pictures, score and backfill runs keep
a progress artifact, all read back from the Prefect API."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import write_day

pytestmark = pytest.mark.flow
PICTURE = "](data:image/png;base64,"


def latest_artifact(key: str) -> object:
    """The data of the newest artifact with ``key``."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactCollectionFilter, ArtifactCollectionFilterKey

    async def read() -> object:
        async with get_client() as client:
            found = await client.read_latest_artifacts(
                artifact_filter=ArtifactCollectionFilter(
                    key=ArtifactCollectionFilterKey(any_=[key])
                )
            )
            return found[0].data if found else None

    return asyncio.run(read())


def test_train_summary_shows_training_figures_and_pictures(
    prefect_harness, ecgmon_env, synthetic_set, tmp_path
):
    from ecgmon.flows.train import train_flow
    from ecgmon.synthetic import write_ucr

    data = write_ucr(synthetic_set, tmp_path / "train" / "T_TRAIN.tsv")
    result = train_flow(data=str(data), architecture="dense", epochs=3, promote=True)
    markdown = latest_artifact("train-run-summary")
    assert f"`{result['run_id']}`" in markdown
    assert "| read | scored |" not in markdown and "n/a" not in markdown
    assert "| final_loss |" in markdown and "| calibration_loss_mean |" in markdown
    assert "## Learning curves" in markdown and "## Held-out loss histogram" in markdown
    assert markdown.count(PICTURE) == 2


def test_parquet_score_run_gets_flagged_beat_pictures_and_progress(
    prefect_harness, ecgmon_env, champion, synthetic_set, tmp_path
):
    from ecgmon.flows.score import score_flow

    write_day(tmp_path / "in", "2026-11-01", synthetic_set.signals[:150], 0)
    result = score_flow(source=str(tmp_path / "in"))
    assert result["n_flagged"] > 0
    markdown = latest_artifact("score-flagged-beats")
    assert f"`{result['run_id']}`" in markdown
    assert markdown.count(PICTURE) == min(result["n_flagged"], 3)
    assert latest_artifact("score-progress") == 100.0


def test_backfill_keeps_a_progress_artifact(
    prefect_harness, ecgmon_env, champion, synthetic_set, tmp_path
):
    from datetime import date

    from ecgmon.flows.backfill import backfill_flow

    for i, day in enumerate(("2026-10-01", "2026-10-02", "2026-10-03")):
        write_day(tmp_path / "in", day, synthetic_set.signals[i * 40 : (i + 1) * 40], i * 40)
    result = backfill_flow(
        source=str(tmp_path / "in"), start=date(2026, 10, 1), end=date(2026, 10, 3)
    )
    assert result["days_done"] == 3
    assert latest_artifact("backfill-progress") == 100.0
