"""Progress of long work, told to whoever listens: a terminal bar (``ecgmon.cli.progress``) or a
Prefect progress artifact (``ecgmon.tasks.progress``).

Work reports steps where it happens (an epoch, a seed, a committed batch, a backfilled day);
nothing is shown unless a listener is registered, so library code stays quiet by default.
Listeners are process-wide (work runs in reader, writer and task-runner threads) and must be
cheap and never raise.

    with listening(lambda event: print(event)):
        step("epochs", total=40)        # how many to expect (None: unknown)
        step("epochs", advance=1)        # one more done
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProgressEvent:
    """``advance`` more units of ``kind`` done; ``total`` (when not None) the units expected."""

    kind: str
    advance: int = 0
    total: int | None = None


Listener = Callable[[ProgressEvent], None]
_listeners: list[Listener] = []
_lock = threading.Lock()


def step(kind: str, advance: int = 0, total: int | None = None) -> None:
    """Tell every listener that ``advance`` units of ``kind`` are done (and the total, if known)."""
    if not _listeners:
        return
    event = ProgressEvent(kind, advance, total)
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener(event)
        except Exception:
            log.debug("progress listener failed", exc_info=True)


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Register ``listener`` for the duration of the block."""
    with _lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _lock:
            _listeners.remove(listener)
