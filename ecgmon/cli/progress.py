"""Progress bars on a terminal for long commands (epochs, seeds, days, records), drawn with rich
on standard error from :mod:`ecgmon.progress` steps; nothing at all when standard error is not a
terminal or the command prints ``--json``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from ecgmon.progress import ProgressEvent, listening


def wants_bars(stream: TextIO, json_output: bool) -> bool:
    """Bars only for a person watching: a terminal, and no machine-read ``--json`` output."""
    return not json_output and stream.isatty()


@contextmanager
def terminal_progress(enabled: bool, stream: TextIO = sys.stderr) -> Iterator[None]:
    """While the block runs, a bar per kind of step (a new total restarts that bar)."""
    if not enabled:
        yield
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description:>8}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(file=stream), transient=False) as bars:
        tasks: dict[str, object] = {}

        def show(event: ProgressEvent) -> None:
            if event.kind not in tasks:
                tasks[event.kind] = bars.add_task(event.kind, total=event.total)
            elif event.total is not None:
                bars.reset(tasks[event.kind], total=event.total)
            if event.advance:
                bars.advance(tasks[event.kind], event.advance)

        with listening(show):
            yield
