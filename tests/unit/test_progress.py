"""Progress: bars on a real terminal (a pseudo-terminal), nothing when not a terminal or with
--json, and the Prefect progress artifact's percentage."""

from __future__ import annotations

import io
import os
import select

from ecgmon import progress
from ecgmon.cli.progress import terminal_progress, wants_bars


def test_no_bars_off_a_terminal_or_with_json():
    assert not wants_bars(io.StringIO(), json_output=False)
    with os.fdopen(os.openpty()[1], "w") as tty:
        assert wants_bars(tty, json_output=False)
        assert not wants_bars(tty, json_output=True)
    with terminal_progress(False):
        assert not progress._listeners  # nobody listens: steps cost nothing and show nothing


def test_bars_are_drawn_on_a_terminal():
    master, slave = os.openpty()
    with os.fdopen(slave, "w") as tty:
        with terminal_progress(True, tty):
            progress.step("epochs", total=4)
            for _ in range(4):
                progress.step("epochs", advance=1)
            progress.step("seeds", total=2, advance=1)
        tty.flush()
    chunks = []
    while select.select([master], [], [], 0.5)[0]:
        try:
            chunks.append(os.read(master, 65536))
        except OSError:  # EIO: the terminal's other end is closed and everything was read
            break
    os.close(master)
    shown = b"".join(chunks).decode(errors="replace")
    assert "epochs" in shown and "4/4" in shown and "seeds" in shown and "1/2" in shown
    assert not progress._listeners


def test_a_failing_listener_never_stops_the_work():
    def broken(event: progress.ProgressEvent) -> None:
        raise RuntimeError("display gone")

    seen = []
    with progress.listening(broken), progress.listening(seen.append):
        progress.step("days", advance=1)
    assert seen == [progress.ProgressEvent("days", 1, None)]


def test_artifact_percentage_follows_its_kind_only(monkeypatch):
    from ecgmon.tasks import progress as artifact

    sent = []
    monkeypatch.setattr(artifact, "MIN_SECONDS", 0.0)
    monkeypatch.setattr(
        artifact, "update_progress_artifact", lambda artifact_id, progress: sent.append(progress)
    )
    follower = artifact.ArtifactProgress("id", "days", None)
    follower(progress.ProgressEvent("days", 0, 8))
    follower(progress.ProgressEvent("records", 500, None))  # another kind: ignored
    follower(progress.ProgressEvent("days", 2))
    follower(progress.ProgressEvent("days", 6))
    assert sent == [0.0, 25.0, 100.0]
