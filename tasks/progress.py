"""A Prefect progress artifact kept up to date from :mod:`ecgmon.progress` steps of one kind
(the backfill's days, the score run's records), for the run's page in the Prefect UI."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from prefect.artifacts import create_progress_artifact, update_progress_artifact

from ecgmon.progress import ProgressEvent, listening

log = logging.getLogger(__name__)
MIN_SECONDS = 2.0  # between two updates: each is an API call


class ArtifactProgress:
    """Percent done of ``kind`` (units done / expected); updates are throttled."""

    def __init__(self, artifact_id: object, kind: str, total: int | None) -> None:
        self.artifact_id, self.kind, self.total = artifact_id, kind, total
        self.done, self.sent_at, self.lock = 0, 0.0, threading.Lock()

    def percent(self) -> float:
        return min(100.0, 100.0 * self.done / self.total) if self.total else 0.0

    def __call__(self, event: ProgressEvent) -> None:
        if event.kind != self.kind:
            return
        with self.lock:
            if event.total is not None:
                self.total = event.total
            self.done += event.advance
            if time.monotonic() - self.sent_at < MIN_SECONDS:
                return
            self.sent_at = time.monotonic()
            percent = self.percent()
        update_progress_artifact(artifact_id=self.artifact_id, progress=percent)


@contextmanager
def progress_artifact(key: str, kind: str, description: str, total: int | None = None) -> Iterator:
    """A progress artifact ``key`` at 0 %, following ``kind`` steps during the block and set to
    100 % when the block ends without error (a failed run keeps its last figure)."""
    try:
        artifact_id = create_progress_artifact(progress=0.0, key=key, description=description)
    except Exception as err:  # noqa: BLE001 - progress is a courtesy; the work goes on
        log.warning("progress artifact %s not created: %s", key, type(err).__name__)
        yield None
        return
    follower = ArtifactProgress(artifact_id, kind, total)
    with listening(follower):
        yield follower
    try:
        update_progress_artifact(artifact_id=artifact_id, progress=100.0)
    except Exception as err:  # noqa: BLE001 - the work is done; only the figure is stale
        log.warning("progress artifact %s not updated: %s", key, type(err).__name__)
